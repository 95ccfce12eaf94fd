"""Interrupting TCUP in each phase of a run.

The story: a user's run is cut short by Ctrl-C (SIGINT), a closed terminal
or dropped ssh (SIGHUP), the system stopping it (SIGTERM), or a kill that
gives it no chance at all (SIGKILL), while the image builds, while Keystone
is asked for a token, while Tempest is configured, while the tests run, or
while the results are uploaded. Whatever the moment, within 15 s no
container, build container, volume or temporary file of the run is left;
the tests that finished are kept in a directory plainly marked incomplete,
owner-only, and nothing is uploaded. A catchable signal ends TCUP with 130
and one line that says what really happened in that phase.

The Keystone and RefStack that stall here are a few lines of socket code:
they accept, read, and never answer.
"""

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import CONTAINER_LABEL, ContainerWatch, as_a_terminal_starts_it, openrc

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

EXIT_INTERRUPTED = 130
CATCHABLE = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SIGNALS = CATCHABLE + (signal.SIGKILL,)
PHASES = ("build", "preflight", "config", "run", "upload")
GONE_WITHIN = 15  # seconds, the promise
# Two quick tests a member account passes.
TWO_TESTS = r"test_tokens\.TokensV3Test\.test_(create|validate)_token\["
# For the run phase: enough tests, one at a time, that the run is still
# going when the first has passed.
MANY_TESTS = r"^tempest\.api\.identity\.v3\.test_(tokens|catalog|projects)\."


class StallServer:
    """An HTTP server that accepts, reads the request, and never answers:
    a Keystone or RefStack that hangs. Records each request line."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests = []
        self._arrived = threading.Condition()
        self._held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._held.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection):
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            with self._arrived:
                self.requests.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                self._arrived.notify_all()
            while connection.recv(65536):
                pass  # read on, answer never
        except OSError:
            pass

    def wait_for_request(self, prefix: str, timeout: float = 120) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: any(r.startswith(prefix) for r in self.requests), timeout):
                raise AssertionError(f"no {prefix!r} request reached {self.url}; got {self.requests}")

    def close(self):
        self._listener.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def stalling():
    """A fresh stalling server per use, closed after the test."""
    servers = []

    def make():
        servers.append(StallServer())
        return servers[-1]

    yield make
    for server in servers:
        server.close()


class Launched:
    """TCUP started as from a terminal, its stderr read line by line as it comes."""

    def __init__(self, args, env, cwd: Path):
        command = [sys.executable, "-m", "tcup"] + list(args)
        self.stdout_path = cwd / "stdout.txt"
        with open(self.stdout_path, "w") as stdout:
            self.process = subprocess.Popen(
                command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                text=True, preexec_fn=as_a_terminal_starts_it)
        self.lines = []
        self._more = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            with self._more:
                self.lines.append(line.rstrip("\n"))
                self._more.notify_all()
        with self._more:
            self.lines.append(None)  # end of stream
            self._more.notify_all()

    def wait_for(self, pattern: str, timeout: float = 300) -> re.Match:
        """The first stderr line that matches, waiting for it (bounded)."""
        found = None

        def seen():
            nonlocal found
            for line in self.lines:
                found = line is not None and re.search(pattern, line)
                if found or line is None:
                    return True
            return False

        with self._more:
            self._more.wait_for(seen, timeout)
        assert found, f"never saw {pattern!r}; stderr:\n" + "\n".join(filter(None, self.lines))[-3000:]
        return found

    def finish(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.process.kill()
            self._reader.join(10)

    @property
    def stderr(self) -> str:
        return "\n".join(filter(None, self.lines))

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()


class RunWatch(ContainerWatch):
    """ContainerWatch narrowed to one test's own runs: the TCUP containers
    whose mounts lie under the test's directory. Other developers' tests run
    TCUP containers on the same engine at the same time."""

    def __init__(self, client, mine: Path):
        super().__init__(client)
        self.mine = str(mine)

    def tcup_containers(self) -> set:
        return {c["Id"] for c in self.client.api.containers(all=True, filters={"label": CONTAINER_LABEL})
                if any(str(m.get("Source", "")).startswith(self.mine + "/") for m in c.get("Mounts") or [])}

    def volumes(self) -> set:
        """Names of the volumes the seen containers had mounted."""
        names = set()
        for record in self.seen.values():
            if "inspect" in record:
                names |= {m["Name"] for m in json.loads(record["inspect"]).get("Mounts") or [] if m.get("Type") == "volume"}
        return names


def wait_until_gone(engine, containers: set, volumes: set = frozenset(), within: float = GONE_WITHIN) -> None:
    """Every container (by id) and volume (by name) is gone within the promise."""
    from docker.errors import NotFound

    def left():
        still = {c for c in containers if engine.api.containers(all=True, filters={"id": c})}
        for name in volumes:
            try:
                engine.api.inspect_volume(name)
                still.add(f"volume {name}")
            except NotFound:
                pass
        return still

    deadline = time.monotonic() + within
    while left() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left(), f"left behind more than {within} s after the run ended: {left()}"


def build_containers(engine, before: set) -> set:
    """The image build's own containers (step 2 runs apt-get) that were not there before."""
    return {c["Id"] for c in engine.api.containers(all=True)
            if c["Id"] not in before and "apt-get update" in c.get("Command", "")}


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def check_private(run: Path) -> None:
    """Owner-only: the directory 0700, every file 0600."""
    assert mode(run) == "0o700", run
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {mode(p) for p in files} <= {"0o600"}, {p.name: mode(p) for p in files}


def subunit_successes(run: Path) -> set:
    """Names (without attributes) of the tests the subunit stream, whole or partial, says passed."""
    import subunit
    import testtools

    passed = set()

    class Collect(testtools.StreamResult):
        def status(self, test_id=None, test_status=None, **_):
            if test_id and test_status == "success":
                passed.add(re.sub(r"\[.*\]$", "", test_id))

    for path in run.glob("tempest.subunit*"):
        with path.open("rb") as stream:
            subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(Collect())
    return passed


def interrupt_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("tcup: interrupted")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def reach(phase, keystone, stalling, tmp_path, engine):
    """Start a run and wait until it is in ``phase``; returns it and what the checks need."""
    refstack = stalling()
    (tmp_path / "tmp").mkdir(mode=0o700)
    env = openrc(keystone, "member", tmp_path, TMPDIR=str(tmp_path / "tmp"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    args = ["--output", str(tmp_path / "runs"), "--upload-url", refstack.url + "/api", "--upload-timeout", "600",
            "--regex", MANY_TESTS if phase == "run" else TWO_TESTS]
    facts = {"refstack": refstack, "builds": set()}
    if phase == "build":
        args.append("--rebuild")
    if phase == "preflight":
        import certifi

        stalled_keystone = stalling()
        # A CA file, as a TLS cloud's openrc has: TCUP must keep no copy of it in $TMPDIR.
        env.update(OS_AUTH_URL=stalled_keystone.url + "/v3", OS_CACERT=certifi.where())
    before = {c["Id"] for c in engine.api.containers(all=True)}
    launched = Launched(args, env, tmp_path)
    if phase == "build":
        launched.wait_for(r"building image")
        deadline = time.monotonic() + 120
        while not facts["builds"] and time.monotonic() < deadline:
            facts["builds"] = build_containers(engine, before)
            time.sleep(0.2)
        assert facts["builds"], "the build never ran its apt-get step:\n" + launched.stderr[-2000:]
    elif phase == "preflight":
        stalled_keystone.wait_for_request("POST /v3/auth/tokens")
    elif phase == "config":
        launched.wait_for(r"writing tempest\.conf")
    elif phase == "run":
        facts["passed"] = launched.wait_for(r"\] passed (tempest\.\S+)").group(1)
    else:
        launched.wait_for(r"uploading \d+ passed tests? to")
        refstack.wait_for_request("POST /api/v1/results")
    return launched, facts


# What the one line after a catchable signal must say, per phase ({run} is
# the run directory, {url} the upload URL).
SAYS = {
    "build": ["while preparing the image", "no test ran and nothing was saved"],
    "preflight": ["while asking Keystone for a token", "no container was started and nothing was saved"],
    "config": ["while the container ran", "the container is stopped and removed", "nothing was saved"],
    "run": ["while the container ran", "the container is stopped and removed",
            "the results of the tests that finished are kept, marked incomplete, in {run}"],
    "upload": ["while uploading to {url}", "the upload did not finish, and {run} is kept as it was",
               "tcup upload {run} --upload-url {url}"],
}


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("phase", PHASES)
def test_an_interrupted_run_leaves_nothing_running_and_keeps_what_finished(
        phase, signum, image, keystone, engine, stalling, tmp_path):
    with RunWatch(engine, tmp_path) as watch:
        launched, facts = reach(phase, keystone, stalling, tmp_path, engine)
        launched.process.send_signal(signum)
        code = launched.finish()
        # Within the promise: no container, build container or volume of this run.
        wait_until_gone(engine, watch.tcup_containers() | set(watch.seen) | facts["builds"], watch.volumes())
    if phase in ("config", "run", "upload"):
        assert watch.seen, "the run's container was never seen"

    # No temporary file, and nothing uploaded (the upload phase's one request got no answer).
    assert not list((tmp_path / "tmp").iterdir()), "a temporary file was left behind"
    runs = sorted((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    for run in runs:
        check_private(run)
        assert not (run / "uploads.json").exists(), "an interrupted run was recorded as uploaded"
    assert facts["refstack"].requests == (["POST /api/v1/results HTTP/1.1"] if phase == "upload" else [])

    # What finished is kept; a run that never started leaves no directory.
    if phase in ("build", "preflight"):
        assert runs == []
    elif phase == "config":
        # Nothing had finished: TCUP removes the empty run directory, unless it was killed outright.
        if signum == signal.SIGKILL:
            assert all(r.name.endswith(".incomplete") and not list(r.iterdir()) for r in runs)
        else:
            assert runs == []
    elif phase == "run":
        (run,) = runs
        assert run.name.endswith(".incomplete")
        assert facts["passed"] in subunit_successes(run)
        assert not (run / "run.json").exists()
    else:
        (run,) = runs
        assert not run.name.endswith(".incomplete")
        assert json.loads((run / "run.json").read_text())["complete"] is True
        assert len(json.loads((run / "refstack.json").read_text())["results"]) == 2

    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        return
    # One line that says what happened in this phase, and where the results are.
    assert code == EXIT_INTERRUPTED, launched.stderr[-3000:]
    assert "Traceback" not in launched.stderr
    assert not re.search(r"^tcup: (error|warning):", launched.stderr, re.M), launched.stderr[-3000:]
    line = interrupt_line(launched.stderr)
    where = str(runs[0]) if runs else "-"
    for phrase in SAYS[phase]:
        assert phrase.format(run=where, url=facts["refstack"].url + "/api") in line, line
