"""TCUP on Podman, through its Docker-compatible API, as users run it:
rootful (root's `podman system service`) and rootless (an ordinary user's
own service, found by TCUP itself, result files owned by that user).
`.ci/podman.sh` starts both services with the base image in each store."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CONTAINER_LABEL, ROOT, _unavailable, needs, openrc, tcup

pytestmark = [pytest.mark.engine, pytest.mark.keystone, pytest.mark.podman]

ROOTLESS_USER = "tcup-rootless"
ROOTFUL_SOCKET = "/run/podman/podman.sock"
TWO_TESTS = r"test_tokens\.TokensV3Test\.test_(create|validate)_token\["
# Debian's own python3: the developer's may live under /root, out of an ordinary user's reach.
SYSTEM_PYTHON = "/usr/bin/python3"


def answering(socket_path: str) -> bool:
    import docker

    try:
        return docker.DockerClient(base_url=f"unix://{socket_path}", timeout=5).ping()
    except Exception:  # noqa: BLE001 - not there, not listening: not answering
        return False


@pytest.fixture(scope="session")
def podman_services():
    """Both Podman services; stopped again after the tests when they started them."""
    needs(os.geteuid() == 0 and bool(shutil.which("setpriv")), "the Podman tests set up a rootless user, which needs "
          "root and setpriv")
    were_running = answering(ROOTFUL_SOCKET)
    done = subprocess.run(["bash", str(ROOT / ".ci" / "podman.sh")], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    user = pwd.getpwnam(ROOTLESS_USER)
    yield {"rootful": f"unix://{ROOTFUL_SOCKET}",
           "rootless": f"unix:///run/user/{user.pw_uid}/podman/podman.sock"}
    if not were_running:
        subprocess.run(["bash", str(ROOT / ".ci" / "podman.sh"), "stop"], capture_output=True, timeout=300)


class Mode:
    """How one Podman mode runs a command: the user, the environment."""

    def __init__(self, name, socket, home: Path):
        self.name, self.socket, self.home = name, socket, home
        self.user = pwd.getpwnam(ROOTLESS_USER) if name == "rootless" else pwd.getpwuid(0)

    def env(self, extra):
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8",
               "TCUP_CA_CERT": os.environ.get("TCUP_CA_CERT") or os.environ.get("PIP_CERT", ""),
               "XDG_DATA_HOME": str(self.home / "data"), "SHIV_ROOT": str(self.home / "shiv"), **extra}
        if self.name == "rootful":
            env["DOCKER_HOST"] = self.socket  # root has dockerd's socket too, which TCUP would take first
        else:
            # No DOCKER_HOST: TCUP finds the user's own Podman socket by itself.
            env["XDG_RUNTIME_DIR"] = f"/run/user/{self.user.pw_uid}"
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    def run(self, command, extra=None, timeout=1800):
        prefix = [] if self.name == "rootful" else [
            "setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups"]
        return subprocess.run(prefix + command, env=self.env(extra or {}), cwd=self.home, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.socket)


@pytest.fixture(params=["rootful", "rootless"])
def mode(request, podman_services, pyz):
    # pytest's own temporary tree is root's alone; the user gets a home of its own.
    home = Path(tempfile.mkdtemp(prefix=f"tcup-{request.param}-"))
    try:
        shutil.copy(pyz, home / "tcup.pyz")
        mode = Mode(request.param, podman_services[request.param], home)
        for path in [home, *home.rglob("*")]:
            os.chown(path, mode.user.pw_uid, mode.user.pw_gid)
        yield mode
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_the_engine_is_podman_in_the_expected_mode(mode):
    client = mode.client()
    components = " ".join(c["Name"] for c in client.version().get("Components", []))
    assert "Podman" in components
    assert client.info().get("Rootless") is (mode.name == "rootless")
    # What `podman pull debian:bookworm-slim` would have given a user.
    assert any("docker.io/library/debian:bookworm-slim" in tag for image in client.images.list() for tag in image.tags)


def test_a_real_run_on_podman(mode, keystone):
    before = {c.id for c in mode.client().containers.list(all=True, filters={"label": CONTAINER_LABEL})}
    done = mode.run([SYSTEM_PYTHON, str(mode.home / "tcup.pyz"), "--no-upload", "--regex", TWO_TESTS],
                    extra=keystone.openrc("member"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "Passed: 2  Failed: 0  Skipped: 0" in done.stdout, done.stdout
    runs = list((mode.home / "data" / "tcup" / "runs").iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".incomplete")
    files = [runs[0], *runs[0].iterdir()]
    assert {"refstack.json", "tests.json", "tempest.subunit"} <= {p.name for p in files}
    # Rootless: the user's own files, not a subordinate id's (keep-id).
    assert {p.stat().st_uid for p in files} == {mode.user.pw_uid}, [(p.name, p.stat().st_uid) for p in files]
    left = {c.id for c in mode.client().containers.list(all=True, filters={"label": CONTAINER_LABEL})} - before
    assert not left


@pytest.fixture
def podman_without_init(engine):
    """Podman as a user gets it where Debian's `catatonit` (only a
    recommendation) was not installed: a rootful service of its own, with
    its own storage, in a mount namespace where /usr/libexec/podman is empty
    (nothing is uninstalled). Its store holds the base image under TCUP's
    tag, so TCUP builds nothing and goes straight to creating its container."""
    import docker

    from tcup.launcher.engine.image import Image

    if os.geteuid() != 0 or not (shutil.which("podman") and shutil.which("unshare")):
        _unavailable("this test runs its own Podman service without catatonit, which needs root, podman and unshare "
                     "(`bash .ci/podman.sh` installs Podman)")
    root = Path(tempfile.mkdtemp(prefix="tcup-noinit-"))  # Podman wants a runroot of at most 50 characters
    socket = root / "podman.sock"
    hide = ("mount -t tmpfs -o size=1m tcup-no-catatonit /usr/libexec/podman && exec podman "
            f"--root {root}/storage --runroot {root}/run system service --time=0 unix://{socket}")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root), "CONTAINERS_CONF": "/etc/tcup-ci/containers.conf"}
    with open(root / "service.log", "wb") as log:
        service = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", hide], env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        for _ in range(100):
            if answering(str(socket)):
                break
            assert service.poll() is None, (root / "service.log").read_text()[-2000:]
            time.sleep(0.2)
        client = docker.DockerClient(base_url=f"unix://{socket}")
        base = root / "base.tar"
        with open(base, "wb") as file:
            for chunk in engine.images.get("debian:bookworm-slim").save(named=True):
                file.write(chunk)
        with open(base, "rb") as file:
            (loaded,) = client.images.load(file)
        repository, tag = Image().tag.split(":")
        loaded.tag(repository, tag)
        yield f"unix://{socket}", client
    finally:
        service.terminate()
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(10)
        # Its mounts lived in its own namespace and went with it.
        shutil.rmtree(root, ignore_errors=True)


def test_an_engine_that_refuses_is_one_line_with_what_to_do(podman_without_init, keystone, tmp_path):
    host, client = podman_without_init
    env = openrc(keystone, "member", tmp_path, DOCKER_HOST=host)
    env.pop("TCUP_CA_CERT", None)  # the image on hand serves; no build
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs"), "--regex", TWO_TESTS], env, timeout=300)
    assert done.returncode == 3, done.stderr[-3000:]
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"tcup: error: the container engine at {host} refused to create the run's container "
                           "(image tcup:"), done.stderr
    assert "container-init binary not found on the host: stat /usr/libexec/podman/catatonit" in last
    assert last.endswith("install the catatonit package (e.g. `sudo apt-get install catatonit`; Debian only "
                         "recommends it)")
    assert "Traceback" not in done.stderr and "building image" not in done.stderr
    # Nothing left behind: no container, no run directory.
    assert client.containers.list(all=True) == []
    assert list((tmp_path / "runs").iterdir()) == []
