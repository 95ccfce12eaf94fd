"""Shared fixtures: the real pieces a user meets (Docker engine, TCUP image,
Keystone, the pyz), each started once per session and cleaned up after."""

import json
import os
import secrets
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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
rsa.generate_private_key(65537, 2048).sign(b'body', padding.PKCS1v15(), hashes.SHA256())
print('IMPORTED')
"""


def _unavailable(reason: str):
    # In CI a missing engine is a broken setup, not a reason to pass quietly.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


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

    if "cloud" not in (request.config.option.markexpr or "") and not os.environ.get("TCUP_TEST_CLOUD"):
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


class ContainerWatch:
    """Records every TCUP container while a command runs: its inspect data
    and its logs, for the leak checks, and whether any outlives the run."""

    def __init__(self, client):
        self.client = client
        self.seen = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
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
        return {c["Id"] for c in self.client.api.containers(all=True, filters={"label": CONTAINER_LABEL})}

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def watch(engine):
    before = ContainerWatch(engine).tcup_containers()
    with ContainerWatch(engine) as watcher:
        watcher.before = before
        yield watcher
    # Give auto-remove a moment; then no container of ours may be left.
    deadline = time.time() + 15
    while time.time() < deadline and watcher.tcup_containers() - before:
        time.sleep(0.5)
    left = watcher.tcup_containers() - before
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
