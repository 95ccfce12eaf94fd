"""Faults during a run: the world fails around TCUP, and TCUP says so.

The story: a user's run is going when the container engine stops, when the
cloud goes away, when the disk under the results fills up, or when RefStack
is slow, broken or down. Each time TCUP ends with one clear line and an exit
code from README's table, and nothing is lost: what finished is on disk
(owner-only, marked incomplete when the run did not finish), and what could
not be uploaded can be, later, with the command the message gives.

The upload faults themselves (retries, bounds, resuming with ``upload()``)
are tested against the real RefStack in test_upload_refstack.py; here they
are met through the command line.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import ADMIN_CANARY, CONTAINER_LABEL, MEMBER_CANARY, _unavailable, openrc, tcup
from test_interrupts import GONE_WITHIN, TWO_TESTS, Launched, RunWatch, check_private, subunit_successes, wait_until_gone

EXIT_TESTS_FAILED, EXIT_INFRA, EXIT_UPLOAD_FAILED = 1, 3, 4
IDENTITY_V3 = r"^tempest\.api\.identity\.v3\."


def error_line(stderr: str) -> str:
    """The one line TCUP ends a failure with."""
    errors = [line for line in stderr.splitlines() if line.startswith("tcup: error: ")]
    assert len(errors) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    return errors[0]


def only(root: Path) -> Path:
    runs = sorted(root.iterdir())
    assert len(runs) == 1, runs
    return runs[0]


# ---------------------------------------------------------------------------
# The container engine stops mid-run


class PrivateDockerd:
    """A dockerd of the test's own, to stop as `systemctl stop docker` would,
    without touching the engine everyone else's tests use.

    Its default network is a bridge made here: `--bridge=none` would make
    dockerd delete the host's docker0, the shared engine's bridge. TCUP's
    containers use the host's network, so the bridge only has to exist."""

    def __init__(self, workdir: Path):
        # containerd's socket lives under --exec-root: keep that path short.
        self.exec_root = Path(tempfile.mkdtemp(prefix="tcupd-", dir="/tmp"))
        self.data_root = workdir / "data"
        self.host = f"unix://{self.exec_root}/docker.sock"
        number = os.getpid() % 250
        self.bridge, self.bridge_ip = f"tcupf{os.getpid()}"[:15], f"10.213.{number}.1/24"
        self.log = workdir / "dockerd.log"
        self.process = None

    def start(self) -> "PrivateDockerd":
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode != 0:
            for command in (["ip", "link", "add", self.bridge, "type", "bridge"],
                            ["ip", "addr", "add", self.bridge_ip, "dev", self.bridge]):
                subprocess.run(command, check=True, capture_output=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                 "--pidfile", str(self.exec_root / "dockerd.pid"), "--host", self.host,
                 "--bridge", self.bridge, "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                 "--ip-masq=false", "--cgroup-parent", f"/{self.bridge}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.answers():
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)
        return self

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host)

    def answers(self) -> bool:
        try:
            client = self.client()
            try:
                return client.ping()
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - not up (yet, or any more)
            return False

    def stop(self) -> None:
        """As `systemctl stop docker` does: SIGTERM, and wait for it to end."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def remove(self) -> None:
        """Stop it and take away all it made: its bridge, mounts and directories."""
        self.stop()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        with open("/proc/mounts") as mounts:
            points = [line.split()[1] for line in mounts]
        for point in sorted(points, key=len, reverse=True):  # the deepest first
            if point.startswith((str(self.exec_root), str(self.data_root))):
                subprocess.run(["umount", point], capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.data_root, ignore_errors=True)


@pytest.fixture
def private_engine(image, tmp_path):
    """A private dockerd holding the TCUP image (copied from the shared engine)."""
    if not shutil.which("dockerd") or os.getuid() != 0:
        _unavailable("needs dockerd and root, to start an engine of the test's own")
    engine = PrivateDockerd(tmp_path)
    try:
        engine.start()
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "--host", engine.host, "load", "-q"], stdin=save.stdout,
                              capture_output=True, text=True, timeout=600)
        save.stdout.close()
        assert save.wait(60) == 0 and load.returncode == 0, load.stderr
        yield engine
    finally:
        engine.remove()


@pytest.mark.engine
@pytest.mark.keystone
def test_the_engine_stopping_mid_run_is_an_infrastructure_error_and_keeps_what_finished(
        private_engine, keystone, tmp_path):
    env = openrc(keystone, "admin", tmp_path, DOCKER_HOST=private_engine.host)
    args = ["--no-upload", "--output", str(tmp_path / "runs"), "--regex", IDENTITY_V3, "--concurrency", "1"]
    launched = Launched(args, env, tmp_path)
    try:
        launched.wait_for(r"\[2/\d+\] ")
        private_engine.stop()
        code = launched.finish(timeout=120)
    finally:
        launched.process.kill()
    passed = set(re.findall(r"\] passed (tempest\.\S+)", launched.stderr))
    assert code == EXIT_INFRA, launched.stderr[-3000:]
    run = only(tmp_path / "runs")
    line = error_line(launched.stderr)
    assert f"the container engine at {private_engine.host} stopped answering during the run" in line
    assert f"what it wrote is kept, marked incomplete, in {run}" in line
    (warning,) = [w for w in launched.stderr.splitlines() if w.startswith("tcup: warning: ")]
    assert re.match(rf"tcup: warning: could not remove container \w+ \(the container engine at "
                    rf"{re.escape(private_engine.host)} does not answer\); remove it with `docker rm -f \w+`$", warning)
    # Nothing lost: every test TCUP said had passed is in the stream kept on disk.
    assert run.name.endswith(".incomplete") and passed
    assert passed <= subunit_successes(run)
    check_private(run)

    # Once the engine is back, no container of the run is left in it.
    private_engine.start()
    client = private_engine.client()
    try:
        deadline = time.monotonic() + GONE_WITHIN
        while client.api.containers(all=True, filters={"label": CONTAINER_LABEL}) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not client.api.containers(all=True, filters={"label": CONTAINER_LABEL})
    finally:
        client.close()


# ---------------------------------------------------------------------------
# The cloud becomes unreachable (test_run.py's
# test_test_failures_exit_1_keep_results_and_remove_the_container has the
# basics of an outage while the tests run: exit 1, failures with reasons)


class OneConnection:
    """A TCP forwarder to ``port`` that serves one connection, then stops
    listening: the cloud answers TCUP's Keystone check, then is gone."""

    def __init__(self, port: int):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self._target = port
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        client, _ = self._listener.accept()
        self._listener.close()
        with client, socket.create_connection(("127.0.0.1", self._target)) as server:
            back = threading.Thread(target=self._pump, args=(server, client))
            back.start()
            self._pump(client, server)
            back.join()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.mark.engine
@pytest.mark.keystone
def test_a_cloud_gone_after_the_check_stops_the_run_in_configuration(image, keystone, engine, tmp_path):
    cut = OneConnection(keystone.port)
    env = openrc(keystone, "admin", tmp_path, OS_AUTH_URL=f"http://127.0.0.1:{cut.port}/v3")
    with RunWatch(engine, tmp_path) as watch:
        done = tcup(["--no-upload", "--output", str(tmp_path / "runs"), "--regex", TWO_TESTS], env, timeout=600)
        wait_until_gone(engine, watch.tcup_containers() | set(watch.seen))
    assert done.returncode == EXIT_INFRA, done.stderr[-3000:]
    line = error_line(done.stderr)
    assert "discover-tempest-config failed" in line and "Connection" in line
    # No test ran, so no run directory is left.
    assert not list((tmp_path / "runs").iterdir())


@pytest.fixture(scope="module")
def refstack(tmp_path_factory):
    from refstack_server import RefStackServer

    with RefStackServer(tmp_path_factory.mktemp("refstack")) as server:
        yield server


@pytest.mark.engine
@pytest.mark.keystone
@pytest.mark.refstack
def test_a_cloud_gone_while_tests_run_fails_the_rest_and_uploads_what_passed(image, refstack, tmp_path):
    from keystone_cloud import KeystoneCloud
    from test_upload_refstack import get_result

    cloud = KeystoneCloud(tmp_path / "cloud", admin_password=ADMIN_CANARY, member_password=MEMBER_CANARY).start()
    try:
        args = ["--output", str(tmp_path / "runs"), "--upload-url", refstack.base_url, "--regex", IDENTITY_V3,
                "--concurrency", "1"]
        launched = Launched(args, openrc(cloud, "admin", tmp_path), tmp_path)
        try:
            launched.wait_for(r"\[2/\d+\] passed ")
            cloud.stop()
            code = launched.finish(timeout=900)
        finally:
            launched.process.kill()
    finally:
        cloud.stop()
    assert code == EXIT_TESTS_FAILED, launched.stderr[-3000:]
    run = only(tmp_path / "runs")
    meta = json.loads((run / "run.json").read_text())
    tests = json.loads((run / "tests.json").read_text())["tests"]
    said_passed = set(re.findall(r"\] passed (tempest\.\S+)", launched.stderr))
    # Every selected test is accounted for; each failure says the cloud could not be reached.
    assert len(tests) == meta["passed"] + meta["failed"] + meta["skipped"]
    assert meta["failed"] >= 1 and meta["passed"] == len(said_passed) >= 2
    failed = [t for t in tests if t["status"] == "fail"]
    assert len(failed) == meta["failed"]
    # A reason is cut at 300 characters: a long URL can push urllib3's "Failed to establish a new
    # connection" past the cut, but not the error's class before it.
    assert all(re.search(r"Connection refused|Failed to establish a new connection|NewConnectionError", t["reason"])
               for t in failed), [t["reason"] for t in failed]
    assert f"Verdict: NOT COMPLIANT by the strict rule (every selected test passes): {meta['failed']} test" in launched.stdout
    # What passed before the outage is saved and uploaded, exactly.
    refstack_json = json.loads((run / "refstack.json").read_text())
    assert {t["name"] for t in refstack_json["results"]} == said_passed
    (entry,) = json.loads((run / "uploads.json").read_text())
    assert sorted(get_result(refstack, entry["test_id"]).json()["results"]) == sorted(said_passed)
    check_private(run)


# ---------------------------------------------------------------------------
# The results disk fills up


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KiB tmpfs as the results root, ``fill(pages)`` leaving that many 4 KiB pages free."""
    if os.getuid() != 0:
        _unavailable("mounting a tmpfs needs root")
    root = tmp_path / "disk"
    root.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k,mode=0700", "tmpfs", str(root)], check=True)

    def fill(pages: int) -> Path:
        # tmpfs counts whole pages of file data (directories cost none).
        free = os.statvfs(root).f_bavail
        (root / "filler").write_bytes(b"\0" * (free - pages) * os.statvfs(root).f_bsize)
        assert os.statvfs(root).f_bavail == pages
        return root

    try:
        yield fill
    finally:
        subprocess.run(["umount", str(root)], check=True)


@pytest.mark.engine
@pytest.mark.keystone
def test_a_disk_that_fills_while_tests_run_keeps_what_was_written(image, keystone, small_disk, tmp_path):
    # Three pages hold the stream of a few tests, not of 26.
    disk = small_disk(3)
    done = tcup(["--no-upload", "--output", str(disk), "--regex", IDENTITY_V3, "--concurrency", "1"],
                openrc(keystone, "admin", tmp_path), timeout=900)
    assert done.returncode == EXIT_INFRA, done.stderr[-3000:]
    (run,) = [p for p in disk.iterdir() if p.is_dir()]
    line = error_line(done.stderr)
    assert "No space left on device" in line and f"what it wrote is kept, marked incomplete, in {run}" in line
    assert run.name.endswith(".incomplete")
    check_private(run)
    # The tests whose results reached the disk before it was full are there.
    assert subunit_successes(run) and subunit_successes(run) <= set(re.findall(r"\] passed (tempest\.\S+)", done.stderr))


@pytest.mark.engine
@pytest.mark.keystone
def test_a_disk_that_fills_while_tcup_saves_keeps_the_runners_results(image, keystone, small_disk, tmp_path):
    # Ten pages: the runner's nine files of a two-test run (the stream,
    # refstack.json, tests.json, junit.xml, summary.txt, cleanup.json, the
    # record of what it created, the sanitised tempest.conf, versions.json)
    # and the launcher's settings.json fit; TCUP's own compliance report,
    # summary and run.json do not (each file takes a page).
    disk = small_disk(10)
    done = tcup(["--no-upload", "--output", str(disk), "--regex", TWO_TESTS],
                openrc(keystone, "admin", tmp_path), timeout=900)
    assert done.returncode == EXIT_INFRA, done.stderr[-3000:]
    (run,) = [p for p in disk.iterdir() if p.is_dir()]
    line = error_line(done.stderr)
    assert line == (f"tcup: error: cannot finish saving the results (No space left on device); the tests' results "
                    f"are kept, marked incomplete and not uploaded, in {run}")
    # The runner had finished: its results are whole.
    assert run.name.endswith(".incomplete")
    assert len(json.loads((run / "refstack.json").read_text())["results"]) == 2
    assert {t["status"] for t in json.loads((run / "tests.json").read_text())["tests"]} == {"success"}
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "a temporary file was left"
    check_private(run)


# ---------------------------------------------------------------------------
# RefStack is down, answers 500, or is slow: through the command line (the
# upload's own retries and bounds: test_upload_refstack.py)


@pytest.mark.engine
@pytest.mark.keystone
@pytest.mark.refstack
def test_refstack_down_broken_or_slow_exits_4_keeps_the_run_and_the_printed_command_resumes(
        image, keystone, tmp_path):
    import sqlite3
    from contextlib import closing

    from refstack_server import RefStackServer
    from test_upload_refstack import get_result, snapshot, stored_runs

    server = RefStackServer(tmp_path / "refstack").start()
    base, port = server.base_url, server.port
    server.stop()
    env = openrc(keystone, "member", tmp_path)
    bounds = ["--upload-retries", "2", "--upload-timeout", "5"]

    # Down: the run is saved, the upload fails, the line says how to resume.
    done = tcup(["--output", str(tmp_path / "runs"), "--regex", TWO_TESTS, "--upload-url", base] + bounds, env)
    assert done.returncode == EXIT_UPLOAD_FAILED, done.stderr[-3000:]
    run = only(tmp_path / "runs")
    line = error_line(done.stderr)
    assert "failed after 2 tries: cannot reach the server (Connection refused)" in line
    resume = line.split("to try again: ", 1)[1]
    assert shlex.split(resume)[-4:] == ["upload", str(run), "--upload-url", base]
    assert not run.name.endswith(".incomplete") and not (run / "uploads.json").exists()
    before = snapshot(run)
    cpid = json.loads((run / "refstack.json").read_text())["cpid"]
    passed = sorted(t["name"] for t in json.loads((run / "refstack.json").read_text())["results"])

    server = RefStackServer(tmp_path / "refstack", port=port).start()
    try:
        # Broken: a real 500 (its results table renamed away), retried within the bounds.
        with closing(sqlite3.connect(server.db_path, timeout=10)) as db:
            db.execute("ALTER TABLE results RENAME TO results_away")
            db.commit()
            done = tcup(["upload", str(run), "--upload-url", base] + bounds, env)
            db.execute("ALTER TABLE results_away RENAME TO results")
            db.commit()
        assert done.returncode == EXIT_UPLOAD_FAILED
        assert "failed after 2 tries: HTTP 500" in error_line(done.stderr)
        assert snapshot(run) == before and stored_runs(server, cpid) == 0

        # Slow: no answer within the bounds; the line warns it may be stored anyway.
        server.pause()
        try:
            done = tcup(["upload", str(run), "--upload-url", base] + bounds, env)
        finally:
            server.resume()
        assert done.returncode == EXIT_UPLOAD_FAILED
        assert "may still be stored there" in error_line(done.stderr)
        assert snapshot(run) == before

        # Well again: the command the first failure printed finishes the job.
        done = tcup(shlex.split(resume)[-4:], env)
        assert done.returncode == 0, done.stderr[-3000:]
        (entry,) = json.loads((run / "uploads.json").read_text())
        assert sorted(get_result(server, entry["test_id"]).json()["results"]) == passed
    finally:
        server.stop()


@pytest.mark.engine
@pytest.mark.parametrize("how", ["out of memory", "killed"])
def test_an_engine_says_whether_the_kernel_killed_the_container_for_memory(engine, image, how):
    """Exit 137 has two usual causes, and the engine's "oom" event tells them
    apart even after the container is removed: the runner's container here
    (TCUP's image) either outgrows a memory limit or is killed by someone."""
    import time

    from tcup.launcher.engine.connection import Engine
    from tcup.launcher.engine.container import Container

    api = engine.api
    grow = "b = bytearray(400 * 2**20); " if how == "out of memory" else ""
    started = time.time()
    created = api.create_container(image, entrypoint=["python3", "-c", grow + "import time; time.sleep(60)"],
                                   host_config=api.create_host_config(mem_limit="64m", memswap_limit="64m",
                                                                      auto_remove=True))
    container = Container(Engine(engine, "docker"), image)
    container.id, container._started = created["Id"], started
    api.start(created["Id"])
    if how == "killed":
        time.sleep(2)
        api.kill(created["Id"])
    container._exit_code = api.wait(created["Id"], condition="next-exit")["StatusCode"]
    assert container._exit_code == 137
    assert container.out_of_memory() is (how == "out of memory")
