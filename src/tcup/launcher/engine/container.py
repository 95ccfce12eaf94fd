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
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from tcup import contract
from tcup.launcher.errors import BadInput, Infrastructure, network_reason

# Seconds the runner gets to wind down before it is killed: it stops Tempest,
# then removes what the tests created in the cloud (tcup.runner.cleanup,
# bounded at 120 s of deleting).
STOP_TIMEOUT = 200
PIDS_LIMIT = 512
DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKETS = ("/run/podman/podman.sock", "{runtime}/podman/podman.sock")
# The label on every image TCUP builds and every container it starts: how
# `tcup image --prune` tells its images from everyone else's.
TITLE_LABEL, TITLE = "org.opencontainers.image.title", "tcup"


def short_name(tag: str) -> str:
    """An image's name as TCUP gives it: Podman adds ``localhost/`` to a
    loaded image's, and ``docker.io/library/`` to one built through its API."""
    for prefix in ("docker.io/library/", "localhost/"):
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def find_host() -> str:
    """The engine to use: DOCKER_HOST when set, else the first socket that
    exists of Docker's, Podman's rootful and this user's rootless Podman."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        if _in_clear_text(host, os.environ):
            # The settings line carries the password; never in clear text over a network.
            raise BadInput(
                f"DOCKER_HOST={host} is a network engine without verified TLS, which would see your password in "
                "clear text; set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use an ssh:// or unix:// DOCKER_HOST "
                "(tcp://127.0.0.1:PORT for an engine on this machine)"
            )
        return host
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    present = [path for path in (DOCKER_SOCKET,) + tuple(p.format(runtime=runtime) for p in PODMAN_SOCKETS)
               if os.path.exists(path)]
    # The first this user may use; else the first there is, whose "permission
    # denied" then says what to do (join the docker group).
    usable = [path for path in present if os.access(path, os.R_OK | os.W_OK)]
    if usable or present:
        return f"unix://{(usable or present)[0]}"
    raise Infrastructure(
        "no container engine found (no Docker socket, no Podman socket, no DOCKER_HOST); install Docker, "
        "or Podman and start its socket (`systemctl --user enable --now podman.socket`)"
    )


def _in_clear_text(host: str, environ) -> bool:
    """Whether the docker SDK would speak to ``host`` over a network without
    verified TLS. The host is read as the SDK reads it (tcp://, TCP://,
    http:// and a bare host:port are all plain HTTP to it); only a literal
    loopback address is this machine: a name can resolve anywhere."""
    import ipaddress
    from urllib.parse import urlsplit

    from docker.errors import DockerException
    from docker.utils import parse_host

    try:
        url = urlsplit(parse_host(host))
    except DockerException as error:
        raise BadInput(f"DOCKER_HOST={host} is not an engine address ({error}); use unix://PATH, ssh://HOST "
                       "or tcp://HOST:PORT with TLS") from None
    # DOCKER_TLS_VERIFY, set to anything but "", is the SDK's verified TLS.
    if url.scheme != "http" or environ.get("DOCKER_TLS_VERIFY", "") != "":
        return False
    try:
        return not ipaddress.ip_address(url.hostname or "").is_loopback
    except ValueError:
        return True


class Engine:
    """A connection to Docker or Podman through the docker SDK."""

    def __init__(self, client, name: str, rootless: bool = False, host: str = ""):
        self.client = client
        self.api = client.api
        self.name = name  # "docker" or "podman"
        self.rootless = rootless
        self.host = host  # as find_host() named it, for messages

    @classmethod
    def connect(cls) -> "Engine":
        """Connect to the engine DOCKER_HOST names, else Docker's socket, else
        Podman's rootful, then rootless one; fail with a line that says how
        to fix it."""
        import docker
        from docker.errors import DockerException, TLSParameterError

        host = find_host()
        try:
            # from_env honours DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, so a
            # tcp:// engine is spoken to over TLS when the user set it up so.
            client = docker.from_env(environment=dict(os.environ, DOCKER_HOST=host))
            version = client.version()
            info = client.info()
        except TLSParameterError as error:
            raise BadInput(f"DOCKER_TLS_VERIFY/DOCKER_CERT_PATH do not work for {host}: {error}")
        except DockerException as error:
            raise Infrastructure(_explain(error, host))
        components = " ".join(c.get("Name", "") for c in version.get("Components", []))
        return cls(
            client,
            "podman" if "podman" in components.lower() else "docker",
            # Podman 4 says Rootless; Docker (and Podman 5) list "name=rootless".
            rootless=info.get("Rootless") is True
            or any("rootless" in option for option in info.get("SecurityOptions") or []),
            host=host,
        )

    def image_labels(self, tag: str) -> Optional[Dict[str, str]]:
        """The labels of image ``tag``, or None when the engine has no such image."""
        from docker.errors import ImageNotFound

        with engine_request(self, f"look up image {tag}"):
            try:
                return self.client.images.get(tag).labels or {}
            except ImageNotFound:
                return None

    def tagged_images(self, repository: str) -> List[str]:
        """The tags in ``repository`` (as the engine spells them) of the
        images TCUP built: only those carry its title label."""
        found = []
        for image in self.client.images.list(filters={"label": f"{TITLE_LABEL}={TITLE}"}):
            found += [tag for tag in image.tags if short_name(tag).rsplit(":", 1)[0] == repository]
        return sorted(found)

    def remove_tag(self, tag: str) -> bool:
        """Untag ``tag``, and so remove the image with its last tag; False,
        and nothing removed, when a container still uses it."""
        from docker.errors import APIError, ImageNotFound

        try:
            self.client.images.remove(tag)
        except ImageNotFound:
            return True  # gone meanwhile (another prune)
        except APIError as error:
            if error.status_code == 409:
                return False
            raise Infrastructure(f"could not remove image {tag}: {error.explanation or error}")
        return True

    def layers_size(self) -> int:
        """Bytes the engine's images take on disk: each image's own layer
        (its size less its parent's), added up. Docker's `system df` total
        would do, but Podman reports none."""
        images = {image["Id"]: image for image in self.api.images(all=True)}
        sizes = {key: int(image.get("Size") or 0) for key, image in images.items()}
        return sum(size - sizes.get(images[key].get("ParentId") or "", 0) for key, size in sizes.items())

    def save_image(self, tag: str) -> Iterator[bytes]:
        """The image as a `docker save` tar, in chunks."""
        with engine_request(self, f"save image {tag}"):
            yield from self.client.images.get(tag).save(named=True)

    def load_image(self, file) -> List[str]:
        """Load a `docker save` tar; the tags it brought."""
        from docker.errors import APIError, ImageLoadError

        try:
            images = self.client.images.load(file)
        except (APIError, ImageLoadError) as error:
            text = getattr(error, "explanation", None) or str(error)
            raise BadInput(f"the engine could not load that file ({text.strip().splitlines()[0][:200]}); "
                           "give the file `tcup image --save` wrote")
        return [tag for image in images for tag in image.tags]

    def build(self, context: bytes, tag: str, proxies: Dict[str, str], on_line, fresh: bool = False,
              labels: Optional[Dict[str, str]] = None) -> None:
        """Build ``tag`` from a context tar, passing each line of the build
        log to ``on_line``. Intermediate containers are removed even when the
        build fails. ``fresh`` ignores cached layers, so Debian's and PyPI's
        files are fetched anew."""
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
                labels={TITLE_LABEL: TITLE, **(labels or {})},
            )
            for chunk in stream:
                if "error" in chunk:
                    raise Infrastructure(f"image build failed: {chunk['error'].strip().splitlines()[-1]}")
                for line in chunk.get("stream", "").splitlines():
                    if line.strip():
                        on_line(line)
        except APIError as error:
            raise Infrastructure(f"image build failed: {error.explanation or error}")

    def user(self) -> str:
        """Who the container runs as: the host user, so result files are theirs."""
        return f"{os.getuid()}:{os.getgid()}"

    def userns_mode(self) -> Optional[str]:
        """Rootless Podman maps the host user to root in the container unless
        told to keep the id; without keep-id the result files would belong to
        one of the user's subordinate ids. Rootful Podman and Docker map
        nothing (rootful Podman refuses keep-id)."""
        return "keep-id" if self.name == "podman" and self.rootless else None


def answers(engine) -> bool:
    """Whether the engine still answers: it may have stopped mid-run."""
    try:
        return bool(engine.api.ping())
    except Exception:  # noqa: BLE001 - a stopped engine fails in many ways
        return False


def describe(engine) -> str:
    """'the container engine at unix:///...', for messages."""
    host = getattr(engine, "host", "")
    return "the container engine" + (f" at {host}" if host else "")


# What an engine's refusal means, by words in its own message, and what to
# do about it (first match wins; compared in lower case).
REFUSAL_HINTS = (
    (("container-init binary not found", "catatonit"),
     "Podman runs TCUP's container with an init process (--init) and needs its helper for that: install the "
     "catatonit package (e.g. `sudo apt-get install catatonit`; Debian only recommends it)"),
    (("cgroups in hybrid mode not supported",),
     "Podman's runtime crun cannot use this host's mix of cgroup v1 and v2; use runc instead: set "
     "runtime = \"runc\" under [engine] in containers.conf (and install the runc package)"),
    (("no space left on device",), "the engine's disk is full; free space (e.g. `docker system prune`)"),
    (("no such image", "image not known"), "the image went away while TCUP used it; run TCUP again to build it"),
)


def refusal(engine, what: str, error) -> str:
    """One line for an engine's refusal: what TCUP asked, the engine's own
    words, and for a known cause what to do."""
    said = " ".join(str(getattr(error, "explanation", None) or error or type(error).__name__).split())[:300]
    hint = next((hint for needles, hint in REFUSAL_HINTS if any(n in said.lower() for n in needles)), None)
    return f"{describe(engine)} refused to {what}: {said}" + (f"; {hint}" if hint else "")


@contextmanager
def engine_request(engine, what: str):
    """Whatever the engine's API answers with an error while TCUP asks it
    ``what`` (an APIError, ImageNotFound, a dropped connection) becomes one
    line, exit 3, never a traceback."""
    import requests
    from docker.errors import DockerException

    try:
        yield
    except DockerException as error:
        raise Infrastructure(refusal(engine, what, error)) from None
    except requests.exceptions.RequestException as error:
        raise Infrastructure(f"{describe(engine)} did not answer when asked to {what} "
                             f"({network_reason(error)})") from None


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
