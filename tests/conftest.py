"""Shared fixtures: the real pieces a user meets (Docker engine, TCUP image,
Keystone, the pyz), each started once per session and cleaned up after."""

import json
import os
import signal
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "src", ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Planted as the users' passwords; searched for everywhere TCUP could leak it.
ADMIN_CANARY = "canary-admin-" + secrets.token_hex(6)
MEMBER_CANARY = "canary-member-" + secrets.token_hex(6)
CONTAINER_LABEL = "org.opencontainers.image.title=tcup"
# Run by a pyz's Python (SHIV_INTERPRETER=1): the modules a run, an upload,
# signing and --keyring load, with the compiled parts this Python on this
# machine needs, found as the launcher finds them at start.
LAUNCHER_IMPORT_PROBE = """\
from tcup.launcher.entry import use_machine_packages
use_machine_packages()
import docker, requests, keyring, yaml, secretstorage, cryptography.hazmat.primitives.asymmetric.rsa, bcrypt, _cffi_backend
import tcup.launcher.launch, tcup.launcher.upload.refstack, tcup.launcher.upload.signing, tcup.launcher.engine.container
import tcup.launcher.upload.command, tcup.launcher.engine.connection, tcup.launcher.results.finish, tcup.launcher.plan
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
rsa.generate_private_key(65537, 2048).sign(b'body', padding.PKCS1v15(), hashes.SHA256())
print('IMPORTED')
"""


def _unavailable(reason: str):
    """Skip a test whose engine, Keystone, tool or privilege is missing on a
    developer's machine; in CI fail it: there a missing piece is a broken
    setup, and a test that skips tests nothing."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it: a test that skips in CI tests nothing)")
    pytest.skip(reason)


def needs(condition: bool, reason: str) -> None:
    """Go on only where ``condition`` holds: otherwise _unavailable."""
    if not condition:
        _unavailable(reason)


def require_module(name: str):
    """A module the dev dependencies (or the lock) bring, or _unavailable."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        _unavailable(f"{name} is not installed: install the dev dependencies (`make venv`)")


ORDINARY_USER = "nobody"


def as_ordinary_user(command, **kwargs) -> subprocess.CompletedProcess:
    """``command`` as an ordinary user: as is for one, through setpriv as
    ``nobody`` for root (CI runs as root): what only an ordinary user can
    see is tested in CI too. What it reads must be readable by that user."""
    prefix = []
    if os.geteuid() == 0:
        needs(bool(shutil.which("setpriv")), "setpriv (util-linux) is missing: it runs this test as an ordinary user")
        prefix = ["setpriv", f"--reuid={ORDINARY_USER}", "--regid=nogroup", "--clear-groups"]
    return subprocess.run(prefix + list(command), capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)


@pytest.fixture(scope="session")
def engine():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure means no engine
        _unavailable(f"no Docker engine: {error}")
    yield client
    client.close()


def as_a_terminal_starts_it() -> None:
    """Signals as a user's terminal leaves them for TCUP: a shell starts
    background jobs with SIGINT ignored and `nohup` ignores SIGHUP, and
    children keep that (TCUP keeps an ignored SIGHUP ignored, as nohup asks),
    so a test that sends them starts TCUP with both at their defaults."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


def base_env(tmp: Path) -> dict:
    """What a user's shell has, minus any OS_* of the developer's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k != "REFSTACK_URL"}
    env["XDG_DATA_HOME"] = str(tmp / "data")
    env["SHIV_ROOT"] = str(ROOT / ".cache" / "shiv")
    # The checkout's tcup comes from the editable install, never from a path
    # that would also shadow the pyz's own copy.
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="session")
def image(engine, tmp_path_factory):
    """The TCUP image, built the way users get it (`tcup image`)."""
    env = base_env(tmp_path_factory.mktemp("image"))
    done = subprocess.run([sys.executable, "-m", "tcup", "image"], env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def keystone(tmp_path_factory):
    from keystone_cloud import KeystoneCloud

    cloud = KeystoneCloud(tmp_path_factory.mktemp("keystone"), admin_password=ADMIN_CANARY, member_password=MEMBER_CANARY)
    cloud.start()
    yield cloud
    cloud.stop()


def _test_cloud(request, tmp_path_factory, profiles, variable):
    """A whole test cloud (tools/testcloud) of ``profiles``, once for the
    session; its teardown checks that stop leaves no process and no port. It
    starts only when asked for (-m cloud, or TCUP_TEST_CLOUD=1, as `make
    test` does). ``variable``=DIR uses a cloud started with `tools/cloud.py
    start --dir DIR --profile ...` (started if it is not running) and leaves
    it running."""
    from testcloud.cloud import Cloud
    from testcloud.common import port_open, processes_under

    if not ("cloud" in (request.config.option.markexpr or "") or os.environ.get("TCUP_TEST_CLOUD")
            or os.environ.get("CI")):  # in CI always: a cloud test that skips there tests nothing
        pytest.skip("the test cloud runs with -m cloud (or TCUP_TEST_CLOUD=1)")
    given = os.environ.get(variable)
    started = Cloud(Path(given) if given else tmp_path_factory.mktemp("cloud"), profiles=profiles).start()
    yield started
    if not given:
        ports = started.site.ports
        assert started.stop() == [], "stop had to kill stragglers"
        assert processes_under(started.root) == []
        assert [name for name, port in ports.items() if port_open(port)] == []


@pytest.fixture(scope="session")
def cloud(request, tmp_path_factory):
    """The default test cloud (TCUP_TEST_CLOUD_DIR=DIR: an existing one)."""
    yield from _test_cloud(request, tmp_path_factory, (), "TCUP_TEST_CLOUD_DIR")


# The shapes operators' clouds have, together, as in a real SCS cloud.
OPERATOR_PROFILES = ("scs", "tls", "paging")


@pytest.fixture(scope="session")
def operator_cloud(request, tmp_path_factory):
    """A test cloud shaped like an operator's: SCS flavors and images, TLS
    on every endpoint, small listing limits (TCUP_OPERATOR_CLOUD_DIR=DIR:
    an existing one, started with --profile scs,tls,paging)."""
    yield from _test_cloud(request, tmp_path_factory, OPERATOR_PROFILES, "TCUP_OPERATOR_CLOUD_DIR")


@pytest.fixture(scope="session")
def pyz(tmp_path_factory):
    """dist/tcup.pyz as `make pyz` builds it, into a temporary place."""
    output = tmp_path_factory.mktemp("pyz") / "tcup.pyz"
    done = subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "--output", str(output)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return output


# The engines' own processes, whose log files (what their stdout and stderr
# point to) a watch reads after the fact.
ENGINE_PROCESSES = ("dockerd", "containerd", "podman")
ENGINE_LOG_BYTES = 64 << 20  # the most of one log a watch reads


def engine_logs() -> dict:
    """{log file: its size now} of each engine process whose output goes to
    a file (as .ci/engine.sh and .ci/podman.sh start them); {} where /proc
    does not show them (another user's processes)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry.path, "comm").read_text().strip() not in ENGINE_PROCESSES:
                continue
            targets = {os.readlink(f"{entry.path}/fd/{fd}") for fd in (1, 2)}
        except OSError:
            continue
        for target in targets:
            if os.path.isfile(target):
                found[target] = os.path.getsize(target)
    return found


class ContainerWatch:
    """Records every TCUP container while a command runs: its inspect data
    and its logs, for the leak checks, and whether any outlives the run.
    A container can be too short-lived for a look every 0.5 s, so once the
    command is over the watch reads what the engine keeps of the while:
    its event stream (each container it created, with its attributes) and
    its own log."""

    def __init__(self, client, label: str = CONTAINER_LABEL):
        self.client = client
        self.label = label
        self.seen = {}
        self.events = []  # the engine's events for these containers, read after the fact
        self.engine_log = {}  # log file -> what the engine wrote to it meanwhile
        self._began, self._logs = None, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._began, self._logs = time.time(), engine_logs()
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            for container_id in self.tcup_containers():
                try:
                    record = self.seen.setdefault(container_id, {})
                    record["inspect"] = json.dumps(self.client.api.inspect_container(container_id))
                    record["logs"] = self.client.api.logs(container_id, stdout=True, stderr=True).decode(errors="replace")
                    # Files the container wrote outside its tmpfs and mounts.
                    record["diff"] = [change["Path"] for change in self.client.api.diff(container_id) or []]
                except Exception:  # noqa: BLE001 - it may be gone between list and inspect
                    pass
            self._stop.wait(0.5)

    def tcup_containers(self) -> set:
        """Ids of the TCUP containers there are now, stopped ones included."""
        return {c["Id"] for c in self.client.api.containers(all=True, filters={"label": self.label})}

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self._read_records()

    def _read_records(self) -> None:
        """The engine's records of the while, read after it."""
        # until: the stream ends there instead of waiting for events to come.
        self.events = list(self.client.events(since=int(self._began) - 1, until=int(time.time()) + 1, decode=True,
                                              filters={"type": "container", "label": self.label}))
        for path, start in self._logs.items():
            try:
                with open(path, "rb") as log:
                    log.seek(start if os.path.getsize(path) >= start else 0)  # rotated: from its start
                    self.engine_log[path] = log.read(ENGINE_LOG_BYTES)
            except OSError:
                continue

    def created(self, image: str = None) -> dict:
        """Id -> attributes of each container the engine created while
        watched (of ``image`` only, if given), from its events."""
        return {event["id"]: event.get("Actor", {}).get("Attributes", {}) for event in self.events
                if event.get("Action") == "create" and (image is None or event.get("from") == image)}

    def unseen(self, image: str = None) -> set:
        """The containers the engine created that no look caught: gone
        before their inspect data, environment or log could be read."""
        return {cid for cid in self.created(image) if "inspect" not in self.seen.get(cid, {})}


@pytest.fixture
def watch(engine, tmp_path):
    from tcup.launcher.engine.image import Image

    tag = Image().tag
    before = ContainerWatch(engine).tcup_containers()
    with ContainerWatch(engine) as watcher:
        watcher.before = before
        yield watcher

    def ours() -> set:
        """The test's containers still there: of this checkout's image, or
        with a mount under the test's directory. Other sessions' TCUP
        containers share the engine, and come and go as they please."""
        found = set()
        for container_id in watcher.tcup_containers() - before:
            try:
                inspect = engine.api.inspect_container(container_id)
            except Exception:  # noqa: BLE001 - gone between list and look
                continue
            mounts = [str(m.get("Source", "")) for m in inspect.get("Mounts") or []]
            if inspect["Config"].get("Image") == tag or any(m.startswith(f"{tmp_path}/") for m in mounts):
                found.add(container_id)
        return found

    # Give auto-remove a moment; then no container of ours may be left.
    deadline = time.time() + 15
    while time.time() < deadline and ours():
        time.sleep(0.5)
    left = ours()
    assert not left, f"containers left behind: {left}"


def openrc(cloud, who: str, tmp: Path, **extra) -> dict:
    env = base_env(tmp)
    env.update(cloud.openrc(who))
    env.update(extra)
    return env


def tcup(args, env, *, pyz_path=None, timeout=1200, **kwargs) -> subprocess.CompletedProcess:
    """Run TCUP as a user would: the pyz, or `python -m tcup` from the checkout."""
    command = [str(pyz_path)] if pyz_path else [sys.executable, "-m", "tcup"]
    return subprocess.run(command + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)


def only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


class LoopbackServer:
    """A test's scripted HTTP peer on 127.0.0.1: ``handler`` (an
    http.server.BaseHTTPRequestHandler class) answers; ``url`` is where."""

    def __init__(self, handler):
        from http.server import ThreadingHTTPServer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(handler, status: int, content: bytes, headers=None) -> None:
    """One whole HTTP answer from a scripted peer's handler."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(content)))
    handler.end_headers()
    handler.wfile.write(content)

