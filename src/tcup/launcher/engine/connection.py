"""The container engine: which one to use, the connection to it, and
what its refusals mean.

``Engine`` is the only place that knows Docker from Podman; every request
TCUP makes of it goes through ``engine_request``, so an error the engine
answers with becomes one line, never a traceback.
"""

import os
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

from tcup.launcher.errors import BadInput, Infrastructure, network_reason

DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKETS = ("/run/podman/podman.sock", "{runtime}/podman/podman.sock")
# The label on every image TCUP builds and every container it starts: how
# `tcup image --prune` tells its images from everyone else's.
TITLE_LABEL, TITLE = "org.opencontainers.image.title", "tcup"


def short_name(tag: str) -> str:
    """An image's name as TCUP gives it (and Docker writes it): Podman adds
    ``localhost/`` to a loaded image's, and ``docker.io/library/`` to one
    built through its API; all three name the same image."""
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
