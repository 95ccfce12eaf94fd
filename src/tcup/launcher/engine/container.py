"""The one container a run uses.

``Container`` owns one container's whole life: entering the ``with`` block
creates and starts it, leaving it (normally, on an exception, on Ctrl-C or
SIGTERM) stops and removes it. Nothing else creates containers.
"""

import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional, Tuple

from tcup import contract
from tcup.launcher.engine.connection import TITLE, TITLE_LABEL, Engine, answers, describe, engine_request
from tcup.launcher.errors import Infrastructure

# Seconds the runner gets to wind down before it is killed: it stops Tempest,
# then removes what the tests created in the cloud (tcup.runner.cleanup,
# bounded at 120 s of deleting).
STOP_TIMEOUT = 200
PIDS_LIMIT = 512


class Container:
    """One run's container: created, attached and started on enter; stopped
    and removed on exit, whatever the exit."""

    def __init__(self, engine: Engine, image: str, *, results: Optional[Path] = None, workspace: Optional[Path] = None):
        self.engine = engine
        self.image = image
        self.results = results
        self.workspace = workspace
        self.id: Optional[str] = None
        self._socket = None
        self._exit_code: Optional[int] = None
        self._waiter: Optional[threading.Thread] = None
        self._started: Optional[float] = None
        self.removed = False  # known gone after the with block (else a warning or error said so)

    def __enter__(self) -> "Container":
        api = self.engine.api
        with engine_request(self.engine, f"create the run's container (image {self.image})"):
            self.id = self._create()["Id"]
        try:
            with engine_request(self.engine, "attach to the run's container"):
                self._socket = api.attach_socket(self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            # Asked before the start, so the exit cannot slip by. Not "removed":
            # Podman 4.3 then always reports status 0.
            self._waiter = threading.Thread(target=self._wait, daemon=True)
            self._waiter.start()
            self._started = time.time()
            with engine_request(self.engine, "start the run's container"):
                api.start(self.id)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _create(self) -> dict:
        """Create the container, least privileged, with its mounts."""
        api = self.engine.api
        mounts = {}
        if self.results is not None:
            mounts[str(self.results)] = {"bind": contract.RESULTS_DIR, "mode": "rw"}
        if self.workspace is not None:
            mounts[str(self.workspace)] = {"bind": contract.WORKSPACE_DIR, "mode": "rw"}
        host_config = api.create_host_config(
            auto_remove=True,
            init=True,  # signals reach the runner, zombies are reaped
            network_mode="host",  # the container reaches exactly what the host reaches
            binds=mounts,
            tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
            # Least privilege: Tempest only talks HTTP to the cloud and
            # writes to its tmpfs and the results, so no capability, no
            # privilege gained through setuid files, a root filesystem it
            # cannot change, and a bound on processes (stestr's workers and
            # the debug shell's use tens).
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            pids_limit=PIDS_LIMIT,
        )
        if self.engine.userns_mode():
            # The docker SDK's create_host_config accepts only Docker's "host"
            # here and raises on keep-id; Podman's API takes the field as is.
            host_config["UsernsMode"] = self.engine.userns_mode()
        return api.create_container(
            self.image,
            command=contract.RUNNER_COMMAND,
            # Not detached: docker-py then attaches stdin once, so the
            # runner's stdin closes when we let go of it.
            stdin_open=True,
            tty=False,
            # Proxies travel in the settings; ~/.docker/config.json's would
            # land in the environment, where `docker inspect` shows them.
            use_config_proxy=False,
            user=self.engine.user(),
            host_config=host_config,
            labels={TITLE_LABEL: TITLE},
        )

    def _wait(self) -> None:
        try:
            self._exit_code = self.engine.api.wait(self.id, condition="next-exit")["StatusCode"]
        except Exception:  # the container went before we could ask; the stream tells the rest
            self._exit_code = None

    def send(self, data: bytes) -> None:
        """Write to the runner's stdin (the settings line, secrets included)."""
        _write_all(self._socket, data)

    def output(self) -> Iterator[Tuple[int, bytes]]:
        """(stream, line) pairs from the runner: 1 is stdout, 2 is stderr."""
        from docker.utils.socket import frames_iter

        pending = {1: b"", 2: b""}
        for stream, payload in frames_iter(self._socket, tty=False):
            if stream not in pending:
                continue
            pending[stream] += payload
            *lines, pending[stream] = pending[stream].split(b"\n")
            for line in lines:
                yield stream, line
        for stream, rest in pending.items():
            if rest:
                yield stream, rest

    def exit_code(self, timeout: float = 30) -> Optional[int]:
        if self._waiter is not None:
            self._waiter.join(timeout)
        return self._exit_code

    def out_of_memory(self) -> Optional[bool]:
        """Whether the engine saw the kernel kill this container for want of
        memory (its "oom" event; the container itself is already removed).
        None when it was not killed, or the engine cannot say."""
        if self.id is None or self._started is None or (self._exit_code or 0) <= 128:
            return None
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        try:
            events = self.engine.api.events(since=int(self._started) - 1, until=int(time.time()) + 1, decode=True,
                                            filters={"container": self.id, "event": "oom"})
            return any(event.get("status", event.get("Action")) == "oom" for event in events)
        except (DockerException, RequestException, ValueError):
            return None

    def shell(self, command=("bash", "-l")) -> int:
        """An interactive shell in the running container, on this terminal."""
        api = self.engine.api
        with engine_request(self.engine, "open a shell in the container"):
            exec_id = api.exec_create(
                self.id,
                list(command),
                stdin=True,
                tty=True,
                user=self.engine.user(),
                workdir=contract.WORKSPACE_DIR,
                environment={"TERM": os.environ.get("TERM", "xterm")},
            )["Id"]
            sock = api.exec_start(exec_id, tty=True, socket=True)
        try:
            _bridge_terminal(sock, lambda rows, cols: api.exec_resize(exec_id, height=rows, width=cols))
        finally:
            _close_attached(sock)
        return api.exec_inspect(exec_id).get("ExitCode") or 0

    def __exit__(self, exc_type, exc, traceback) -> None:
        """Stop and remove the container. A cleanup that fails is reported,
        but never replaces an error (or a Ctrl-C) already on its way."""
        from docker.errors import NotFound

        if self.id is None:
            return
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and self._exit_code is None:
            try:
                print("\ntcup: stopping: the runner ends Tempest and removes what the tests created in the cloud "
                      f"(at most {STOP_TIMEOUT // 60} min)", file=sys.stderr, flush=True)
            except OSError:
                pass  # the terminal is gone (SIGHUP)
        problems = []
        try:
            if self._socket is not None:
                _close_attached(self._socket)
        except Exception as error:  # noqa: BLE001 - the socket may be gone with the engine
            problems.append(f"closing its stream: {error}")
        for action in (lambda: self.engine.api.stop(self.id, timeout=STOP_TIMEOUT),
                       lambda: self.engine.api.remove_container(self.id, force=True, v=True)):
            try:
                action()
            except NotFound:
                pass  # auto-remove was first
            except Exception as error:  # noqa: BLE001 - an engine that died mid-run answers anything
                if not answers(self.engine):
                    problems.append(f"{describe(self.engine)} does not answer")
                    break  # asking it again says no more
                text = getattr(error, "explanation", None) or str(error)
                # Gone already (auto-remove was first), said each engine's way.
                if not any(gone in text.lower() for gone in ("is already in progress", "no such container")):
                    problems.append(text.splitlines()[0][:200] if text else type(error).__name__)
        if self._waiter is not None:
            self._waiter.join(STOP_TIMEOUT + 5)
        self.removed = not problems
        if problems:
            message = (f"could not remove container {self.id[:12]} ({'; '.join(problems)}); "
                       f"remove it with `{self.engine.name} rm -f {self.id[:12]}`")
            if exc_type is None:
                raise Infrastructure(message)
            print(f"tcup: warning: {message}", file=sys.stderr, flush=True)


def _write_all(sock, data: bytes) -> None:
    """All of ``data`` to an attach socket. A TLS or plain socket can send;
    for a unix socket the SDK gives a read-only SocketIO ("rb"), so the
    data goes through a socket object of our own on a copy of its descriptor."""
    if hasattr(sock, "sendall"):
        sock.sendall(data)
        return
    with socket.socket(fileno=os.dup(sock.fileno())) as writer:
        writer.sendall(data)


def _read_some(sock, size: int = 65536) -> bytes:
    return sock.recv(size) if hasattr(sock, "recv") else sock.read(size)


def _close_attached(sock) -> None:
    """Let go of an attach socket: this ends the runner's stdin.

    The SDK hangs the HTTP response that owns the socket on it as
    ``_response`` (its only reference); closing that response first closes
    the socket in order. Closing only the socket leaves the response to be
    collected later, flushing a closed file: Python 3.13 then prints
    "Exception ignored ... I/O operation on closed file"."""
    response = getattr(sock, "_response", None)
    try:
        if response is not None:
            response.close()
    finally:
        sock.close()


def _bridge_terminal(raw, resize) -> None:
    """Copy keys to the exec socket and its output to the terminal, in raw
    mode, until the shell ends; keep the remote size in step with ours."""
    import termios
    import tty

    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()

    def sync_size(*_):
        size = os.get_terminal_size(stdout)
        try:
            resize(size.lines, size.columns)
        except Exception:  # the exec may already be gone
            pass

    saved = termios.tcgetattr(stdin)
    previous = signal.signal(signal.SIGWINCH, sync_size)
    try:
        # TCSANOW, not setraw's default TCSAFLUSH: keys typed while the shell
        # was starting must reach it, not be thrown away.
        tty.setraw(stdin, termios.TCSANOW)
        sync_size()
        while True:
            readable, _, _ = select.select([raw, stdin], [], [])
            if raw in readable:
                data = _read_some(raw)
                if not data:
                    break
                os.write(stdout, data)
            if stdin in readable:
                data = os.read(stdin, 65536)
                if not data:
                    break
                _write_all(raw, data)
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
