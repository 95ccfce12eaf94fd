"""The container engine and the one container a run uses.

``Engine`` is the only place that knows Docker from Podman. ``Container``
owns one container's whole life: entering the ``with`` block creates and
starts it, leaving it (normally, on an exception, on Ctrl-C or SIGTERM)
stops and removes it. Nothing else creates containers.
"""

import os
import select
import signal
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from tcup import contract
from tcup.launcher.errors import Infrastructure

STOP_TIMEOUT = 10  # seconds Tempest gets to wind down before it is killed
PODMAN_SOCKETS = ("/run/podman/podman.sock", "/run/user/{uid}/podman/podman.sock")


class Engine:
    """A connection to Docker or Podman through the docker SDK."""

    def __init__(self, client, name: str):
        self.client = client
        self.api = client.api
        self.name = name  # "docker" or "podman"

    @classmethod
    def connect(cls) -> "Engine":
        """Connect to the engine DOCKER_HOST names, else Docker's socket, else
        Podman's; fail with a line that says how to fix it."""
        import docker
        from docker.errors import DockerException

        host = os.environ.get("DOCKER_HOST")
        if not host and not os.path.exists("/var/run/docker.sock"):
            podman = [p.format(uid=os.getuid()) for p in PODMAN_SOCKETS]
            host = next((f"unix://{p}" for p in podman if os.path.exists(p)), None)
            if host is None:
                raise Infrastructure(
                    "no container engine found (no /var/run/docker.sock and no Podman socket); "
                    "install Docker, or Podman with `systemctl --user enable --now podman.socket`"
                )
        try:
            client = docker.DockerClient(base_url=host) if host else docker.from_env()
            version = client.version()
        except DockerException as error:
            raise Infrastructure(_explain(error, host or "unix:///var/run/docker.sock"))
        components = " ".join(c.get("Name", "") for c in version.get("Components", []))
        return cls(client, "podman" if "podman" in components.lower() else "docker")

    def has_image(self, tag: str) -> bool:
        from docker.errors import ImageNotFound

        try:
            self.client.images.get(tag)
            return True
        except ImageNotFound:
            return False

    def build(self, context: bytes, tag: str, proxies: Dict[str, str], out, fresh: bool = False) -> None:
        """Build ``tag`` from a context tar, streaming the build log to ``out``.
        Intermediate containers are removed even when the build fails.
        ``fresh`` ignores cached layers, so Debian's and PyPI's files are fetched anew."""
        import io

        from docker.errors import APIError

        try:
            stream = self.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,  # the base image is local; no registry may be reachable
                nocache=fresh,
                decode=True,
                # Docker keeps these predefined proxy arguments out of the image history.
                buildargs={k: v for k, v in proxies.items() if v},
                labels={"org.opencontainers.image.title": "tcup"},
            )
            for chunk in stream:
                if "error" in chunk:
                    raise Infrastructure(f"image build failed: {chunk['error'].strip().splitlines()[-1]}")
                text = chunk.get("stream", "")
                if text.strip():
                    out.write(text if text.endswith("\n") else text + "\n")
                    out.flush()
        except APIError as error:
            raise Infrastructure(f"image build failed: {error.explanation or error}")

    def run_options(self) -> dict:
        """How containers run here; the engines differ only in user mapping."""
        if self.name == "podman":
            # Rootless Podman maps the host user to root unless told to keep
            # the id; without it result files would belong to a subuid.
            return {"userns_mode": "keep-id", "user": f"{os.getuid()}:{os.getgid()}"}
        return {"user": f"{os.getuid()}:{os.getgid()}"}


def _explain(error, host: str) -> str:
    text = str(error)
    if "PermissionError" in text or "Permission denied" in text:
        return (
            f"permission denied on the container engine socket ({host}); add yourself to the 'docker' group "
            "(then log in again) or run with sudo"
        )
    if "FileNotFoundError" in text or "ConnectionRefused" in text or "Connection refused" in text:
        return f"the container engine is not running ({host}); start it, e.g. `sudo systemctl start docker`"
    return f"cannot talk to the container engine at {host}: {text.splitlines()[0][:200]}"


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

    def __enter__(self) -> "Container":
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
            userns_mode=self.engine.run_options().get("userns_mode"),
        )
        created = api.create_container(
            self.image,
            command=contract.RUNNER_COMMAND,
            # Not detached: docker-py then attaches stdin once, so the
            # runner's stdin closes when we let go of it.
            stdin_open=True,
            tty=False,
            # Proxies travel in the settings; ~/.docker/config.json's would
            # land in the environment, where `docker inspect` shows them.
            use_config_proxy=False,
            user=self.engine.run_options()["user"],
            host_config=host_config,
            labels={"org.opencontainers.image.title": "tcup"},
        )
        self.id = created["Id"]
        try:
            self._socket = api.attach_socket(self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            # Wait for removal, not exit: with auto-remove a late wait would find no container.
            self._waiter = threading.Thread(target=self._wait, daemon=True)
            self._waiter.start()
            api.start(self.id)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _wait(self) -> None:
        try:
            self._exit_code = self.engine.api.wait(self.id, condition="removed")["StatusCode"]
        except Exception:  # the container went before we could ask; the stream tells the rest
            self._exit_code = None

    def send(self, data: bytes) -> None:
        """Write to the runner's stdin (the settings line, secrets included)."""
        self._raw().sendall(data)

    def _raw(self) -> socket.socket:
        return getattr(self._socket, "_sock", self._socket)

    def output(self) -> Iterator[Tuple[int, bytes]]:
        """(stream, line) pairs from the runner: 1 is stdout, 2 is stderr."""
        raw = self._raw()
        pending = {1: b"", 2: b""}
        while True:
            header = _read_exactly(raw, 8)
            if not header:
                break
            stream, size = struct.unpack(">BxxxL", header)
            payload = _read_exactly(raw, size)
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

    def shell(self, command=("bash", "-l")) -> int:
        """An interactive shell in the running container, on this terminal."""
        api = self.engine.api
        exec_id = api.exec_create(
            self.id,
            list(command),
            stdin=True,
            tty=True,
            user=self.engine.run_options()["user"],
            workdir=contract.WORKSPACE_DIR,
            environment={"TERM": os.environ.get("TERM", "xterm")},
        )["Id"]
        sock = api.exec_start(exec_id, tty=True, socket=True)
        _bridge_terminal(getattr(sock, "_sock", sock), lambda rows, cols: api.exec_resize(exec_id, height=rows, width=cols))
        return api.exec_inspect(exec_id).get("ExitCode") or 0

    def __exit__(self, *exc) -> None:
        from docker.errors import APIError, NotFound

        if self.id is None:
            return
        try:
            if self._socket is not None:
                self._socket.close()
        finally:
            for action in (lambda: self.engine.api.stop(self.id, timeout=STOP_TIMEOUT),
                           lambda: self.engine.api.remove_container(self.id, force=True, v=True)):
                try:
                    action()
                except NotFound:
                    pass  # auto-remove was first
                except APIError as error:
                    if "is already in progress" not in str(error) and "No such container" not in str(error):
                        raise Infrastructure(f"could not remove container {self.id[:12]}: {error.explanation}")
            if self._waiter is not None:
                self._waiter.join(STOP_TIMEOUT + 5)


def _read_exactly(raw: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.recv(size - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def _bridge_terminal(raw: socket.socket, resize) -> None:
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
                data = raw.recv(65536)
                if not data:
                    break
                os.write(stdout, data)
            if stdin in readable:
                data = os.read(stdin, 65536)
                if not data:
                    break
                raw.sendall(data)
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
