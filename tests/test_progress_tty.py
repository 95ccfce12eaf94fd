"""Progress as users see it: a real run without a terminal (a line per
finished test), then the same tests on a real terminal (tmux), whose live
line is read off the screen while the run goes and after it ends. The second
run's ETA comes from the first run's timings."""

import io
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, openrc, tcup

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

SUBSET = r"^tempest\.api\.identity\.v3\.(test_tokens|test_api_discovery|test_catalog)\."
TESTS = 9  # 3 tokens, 5 api discovery, 1 catalog
WIDTH = 120
LIVE = re.compile(r"^tcup: \[(\d+)/(\d+)\] passed (\d+), failed (\d+), skipped (\d+) \| (\d+:\d\d) elapsed(.*)$")


@pytest.fixture(scope="module")
def history(image, keystone, tmp_path_factory):
    """A first run of SUBSET, with no terminal: the timings the ETA uses."""
    tmp = tmp_path_factory.mktemp("progress")
    done = tcup(["--no-upload", "--output", str(tmp / "runs"), "--regex", SUBSET], openrc(keystone, "member", tmp))
    assert done.returncode == 0, done.stderr[-2000:]
    yield tmp, done
    shutil.rmtree(tmp, ignore_errors=True)


def test_without_a_terminal_a_line_per_finished_test(history):
    tmp, done = history
    finished = [line for line in done.stderr.splitlines() if line.startswith("tcup: [")]
    assert [line.split("]")[0] for line in finished] == [f"tcup: [{n}/{TESTS}" for n in range(1, TESTS + 1)]
    assert all(re.fullmatch(r"tcup: \[\d+/9\] passed tempest\.api\.identity\.v3\.\S+", line) for line in finished)
    # No live line, no cursor movement: a log stays readable.
    assert "\r" not in done.stderr and "\x1b" not in done.stderr and "ETA" not in done.stderr


def subunit_slots(stream: Path) -> dict:
    """Each test's share of the run's wall time, by uuid, read with
    python-subunit: from the previous end on its worker to its own end."""
    import subunit
    import testtools

    events = []

    class Collect(testtools.StreamResult):
        def status(self, test_id=None, test_status=None, timestamp=None, route_code=None, **_):
            if test_id and timestamp and test_status in ("inprogress", "success", "fail", "skip"):
                events.append((timestamp.timestamp(), test_id, test_status, route_code))

    with stream.open("rb") as source:
        subunit.ByteStreamToStreamResult(source, non_subunit_name="stdout").run(Collect())
    last, slots = {}, {}
    for when, test_id, status, worker in sorted(events):
        if status == "inprogress":
            last.setdefault(worker, when)
            continue
        slots[re.search(r"id-([0-9a-f-]{36})", test_id).group(1)] = when - last.get(worker, when)
        last[worker] = when
    return slots


def test_the_eta_comes_from_earlier_runs_timings(history):
    """The launcher's own subunit reader agrees with python-subunit, and the
    ETA is those timings of the tests not yet finished."""
    from tcup import contract
    from tcup.launcher.progress import Progress
    from tcup.launcher.results.timings import Timings
    from tcup.masking import Mask

    tmp, _ = history
    (run,) = (tmp / "runs").iterdir()
    slots = subunit_slots(run / "tempest.subunit")
    timings = Timings.load(tmp / "runs")
    assert len(slots) == TESTS and set(timings.seconds) == set(slots)
    for uuid, took in slots.items():
        assert timings.seconds[uuid] == pytest.approx(took, abs=1e-5)
        assert re.search(SUBSET, timings.ids[uuid])

    now = [100.0]
    progress = Progress(Mask(), out=io.StringIO(), selection=contract.Selection(label="x", regex=SUBSET),
                        clock=lambda: now[0])
    progress.took, progress.test_ids = timings.seconds, timings.ids
    progress.feed(1, contract.event("selected", count=TESTS, missing=[]).encode())
    progress.feed(1, contract.event("mode", credentials="preprovisioned", concurrency=1).encode())
    total = sum(slots.values())
    assert progress.eta_seconds(now[0]) == pytest.approx(total)
    tests = json.loads((run / "tests.json").read_text())["tests"]
    first = tests[0]
    progress.feed(1, contract.event("test", name=first["name"], uuid=first["uuid"], status="inprogress").encode())
    now[0] += slots[first["uuid"]] / 2  # half its earlier time spent
    assert progress.eta_seconds(now[0]) == pytest.approx(total - slots[first["uuid"]] / 2)
    progress.feed(1, contract.event("test", name=first["name"], uuid=first["uuid"], status="success").encode())
    assert progress.eta_seconds(now[0]) == pytest.approx(total - slots[first["uuid"]])
    # Without earlier timings: nothing to go on until a test finished, then the count.
    bare = Progress(Mask(), out=io.StringIO(), clock=lambda: now[0])
    bare.feed(1, contract.event("selected", count=4, missing=[]).encode())
    bare.feed(1, contract.event("test", name="t.A.test_a", uuid=None, status="inprogress").encode())
    assert bare.eta_seconds(now[0]) is None
    now[0] += 10
    bare.feed(1, contract.event("test", name="t.A.test_a", uuid=None, status="success").encode())
    assert bare.eta_seconds(now[0]) == pytest.approx(30.0)
    assert "ETA 0:30" in bare.live_line(now[0])


class Tmux:
    """A terminal of its own (a private tmux server), WIDTH columns wide;
    everything written to it is also kept raw (pipe-pane)."""

    def __init__(self, tmp: Path):
        self.socket = f"tcup-test-{secrets.token_hex(4)}"
        self.raw = tmp / "pane.raw"

    def tmux(self, *args, check=True) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 or not check, done.stderr
        return done.stdout

    def start(self, command: str):
        self.tmux("new-session", "-d", "-s", "tcup", "-x", str(WIDTH), "-y", "50", command)
        self.tmux("pipe-pane", "-t", "tcup", "-o", f"cat >> {self.raw}")
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def screen(self) -> list:
        return self.tmux("capture-pane", "-p", "-t", "tcup").rstrip("\n").split("\n")

    def stop(self):
        self.tmux("kill-server", check=False)
        if getattr(self, "socket_path", None):
            self.socket_path.unlink(missing_ok=True)  # a killed server leaves its socket file


def test_the_live_line_on_a_real_terminal(history, keystone, watch):
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing: run .ci/tmux.sh")
    tmp, _ = history
    env = openrc(keystone, "member", tmp)
    script = tmp / "run-in-tmux.sh"
    script.write_text("".join(f"export {k}={shlex_quote(v)}\n" for k, v in env.items())
                      + f"cd {ROOT}\n{sys.executable} -m tcup --no-upload --output {tmp / 'runs'} "
                        f"--regex {shlex_quote(SUBSET)}\necho TCUP-EXIT=$?\nsleep 3600\n")
    command = f"sh {script}"
    terminal = Tmux(tmp)
    terminal.start(command)
    during = []
    try:
        # Read the screen while the run goes; a hang guard, not a timing.
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            screen = terminal.screen()
            if any(line.startswith("TCUP-EXIT=") for line in screen):
                break
            during += [line for line in screen if LIVE.match(line) and "ETA" in line]
            time.sleep(0.1)
        final = terminal.screen()
    finally:
        terminal.stop()
    assert "TCUP-EXIT=0" in final, "\n".join(final)

    # While the tests ran, the live line: counts, elapsed, ETA, the test's short name.
    assert during, "the live line was never on the screen"
    line = during[-1]
    found = LIVE.match(line)
    assert found.group(2) == str(TESTS) and found.group(4) == "0"
    assert int(found.group(3)) + int(found.group(5)) == int(found.group(1))
    assert re.match(r" \| ETA (\d+:\d\d|\?)( \| \w+\.)?", found.group(7)), line
    assert len(line) <= WIDTH - 1

    # Every redraw, as written: each fits the terminal (so none wrapped); the
    # long test names were cut; the first one already had an ETA from run 1.
    raw = terminal.raw.read_bytes().decode(errors="replace")
    drawn = [piece for piece in raw.replace("\r\n", "\n").split("\r\x1b[K") if piece.startswith("tcup: [")]
    live = [piece for piece in drawn if "\n" not in piece]
    assert live and all(len(piece) <= WIDTH - 1 for piece in live)
    assert any(len(piece) == WIDTH - 1 for piece in live), "no line needed cutting"
    assert re.match(rf"tcup: \[0/{TESTS}\] passed 0, failed 0, skipped 0 \| \d+:\d\d elapsed \| ETA \d+:\d\d \| ",
                    live[0]), live[0]
    names = {piece.rsplit(" | ", 1)[-1] for piece in live if piece.count(" | ") == 3}
    assert "TokensV3Test.test_validate_token" in names and "TestApiDiscovery.test_list_api_versions" in names

    # After the run: one final live line with the final counts (no ETA), the
    # phases once each, the summary, nothing doubled and no leftovers.
    text = [line for line in final if line.strip()]
    status = [line for line in text if line.startswith("tcup: [")]
    assert status == [status[0]] and re.fullmatch(
        rf"tcup: \[{TESTS}/{TESTS}\] passed {TESTS}, failed 0, skipped 0 \| \d+:\d\d elapsed", status[0])
    tcup_lines = [line for line in text if line.startswith("tcup: ")]
    assert len(tcup_lines) == len(set(tcup_lines)), tcup_lines
    verdict = "Verdict: COMPLIANT by the strict rule (every selected test passes): all 9 selected tests passed"
    assert f"tcup: {TESTS} tests selected" in text and verdict in text
    assert text.index(status[0]) < text.index(verdict)
    assert not any("ETA" in line for line in final)
    assert text[-1] == "TCUP-EXIT=0"


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(str(text))


def test_a_runner_killed_by_a_signal_is_said_in_words():
    """Exit 137 once during `plan`: a kill, not an error of the runner's own."""
    from tcup.launcher.progress import Progress
    from tcup.masking import Mask

    seen = Progress(Mask(), out=io.StringIO())
    code, message = seen.failure(137)
    assert code == 3 and message.startswith("the runner ended without results (exit 137: killed by SIGKILL; most "
                                            "often the machine or the engine ran out of memory")
    assert Progress(Mask(), out=io.StringIO()).failure(1)[1] == ("the runner ended without results (exit 1): no output; "
                                                                 "the runner's whole log: run again with --verbose")
    assert Progress(Mask(), verbose=True, out=io.StringIO()).failure(1)[1].endswith("(exit 1): no output")
    # When the engine saw the kernel's out-of-memory killer, that is said, and what to do.
    assert ("(exit 137: killed by SIGKILL, out of memory (the engine reports OOMKilled): give the machine or the "
            "engine's VM more memory, or run with a lower --concurrency)") in \
        Progress(Mask(), out=io.StringIO()).failure(137, out_of_memory=True)[1]
    assert "killed by SIGTERM)" in Progress(Mask(), out=io.StringIO()).failure(143)[1]


def test_a_terminal_that_reports_zero_columns_gets_a_whole_live_line(monkeypatch):
    """Serial consoles and some CI terminals say they are 0 columns wide: the
    live line is then cut to $COLUMNS (else 80), not to one character."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    from tcup.launcher.progress import Progress
    from tcup.masking import Mask

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 0, 0, 0))
    out = os.fdopen(terminal, "w")
    try:
        assert os.get_terminal_size(out.fileno()).columns == 0
        for columns, width in (("", 80), ("50", 50)):
            monkeypatch.setenv("COLUMNS", columns)
            progress = Progress(Mask(), out=out)
            progress.selected, progress.current = 3, "tempest.api.identity.v3.test_tokens.TokensV3Test." + "x" * 90
            progress.began = progress.clock()
            progress._draw()
            drawn = os.read(controller, 4096).decode().rsplit("\r\x1b[K", 1)[-1]
            assert drawn == progress.live_line(progress.clock())[:width - 1] and len(drawn) == width - 1
            assert drawn.startswith("tcup: [0/3] passed 0, failed 0, skipped 0 | 0:00 ")
    finally:
        out.close()
        os.close(controller)
