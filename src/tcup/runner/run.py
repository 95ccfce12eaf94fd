"""Running Tempest and following its subunit v2 stream live.

`tempest run --subunit` writes the stream on its stdout. We parse it as it
comes (python-subunit), mask secrets in every attachment, re-encode it into
the result file (owner-only from its first byte), and turn each test's end
into a ``test`` event. The parsing pieces are plain classes speaking
testtools' StreamResult protocol, so they can be tested without Tempest;
subunit and testtools are imported only where the stream is actually read.
"""

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from tcup import private_files
from tcup.masking import Mask
from tcup.runner import process
from tcup.runner.errors import InfraError
from tcup.runner.selection import Test

# A whole run of a large guideline takes hours on a slow cloud; this is the
# bound after which Tempest is stopped and the tests without result fail.
RUN_TIMEOUT = 8 * 3600
EXIT_TIMEOUT = 60
REASON_CHARS = 300
# A subunit v2 packet holds at most 4 MiB; a masked attachment is sent on in
# pieces of this size.
PACKET_BYTES = 1 << 20

# Subunit's final statuses, as the contract's three.
STATUS = {"success": "success", "xfail": "success", "fail": "fail", "uxsuccess": "fail", "skip": "skip"}
# unittest reports a class or module fixture's failure or skip under this
# id, and then reports nothing for the tests it covers.
FIXTURE = re.compile(r"^(?P<kind>setUpClass|tearDownClass|setUpModule|tearDownModule) \((?P<scope>[^)]+)\)$")

NO_RESULT = "Tempest reported no result for this test"
# What Tempest's pre-provisioned credential provider says when a class needs
# more accounts (an alternate user, say) than accounts.yaml holds.
TOO_FEW_ACCOUNTS = "Insufficient number of users provided"
NEEDS_ACCOUNTS = ("this class needs more member accounts than were given (Tempest: Insufficient number of users "
                  "provided); add accounts with --accounts FILE")


@dataclass
class Outcome:
    """How one selected test ended."""

    test: Test
    status: str  # "success" | "fail" | "skip"
    reason: Optional[str]  # one line, for skips and failures
    detail: str = ""  # the whole skip reason or traceback, redacted
    duration: float = 0.0


@dataclass
class RunResult:
    outcomes: List[Outcome]  # one per selected test, in selection order
    fixture_failures: List[Tuple[str, str]] = field(default_factory=list)  # (id, reason) not tied to a test
    duration_seconds: float = 0.0


def one_line_reason(status: str, files: Dict[str, bytes]) -> Tuple[Optional[str], str]:
    """(reason, detail) of a finished test from its attachments: the skip
    reason, or the exception a failure's traceback ends with."""
    if status == "skip":
        detail = files.get("reason", b"").decode("utf-8", errors="replace").strip()
        return (" ".join(detail.split())[:REASON_CHARS] or "skipped"), detail
    if status == "fail":
        detail = files.get("traceback", b"").decode("utf-8", errors="replace").strip()
        if not detail:
            detail = "\n".join(data.decode("utf-8", errors="replace").strip() for data in files.values()).strip()
        return (exception_line(detail) or "failed"), detail
    return None, ""


def exception_line(traceback: str) -> str:
    """The exception a traceback ends with, on one line: the unindented lines
    after its last 'Traceback' header (the frames are indented)."""
    lines = traceback.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    tail = lines[starts[-1] + 1:] if starts else lines
    message = [line.strip() for line in tail if line.strip() and not line[0].isspace()]
    text = " ".join(message) if message else (lines[-1].strip() if lines else "")
    return " ".join(text.split())[:REASON_CHARS]


class Collector:
    """Follows the (already redacted) stream: records an Outcome per selected
    test and reports each start and end through on_test(test, status, reason).
    A class fixture's skip or failure is given to the tests it covered."""

    def __init__(self, tests: List[Test], on_test: Callable[[Test, str, Optional[str]], None]):
        self.tests = list(tests)
        self.by_id = {test.id: test for test in self.tests}
        self.on_test = on_test
        self.outcomes: Dict[str, Outcome] = {}
        self.started: Dict[str, datetime] = {}
        self.files: Dict[str, Dict[str, bytes]] = {}
        self.fixture_failures: List[Tuple[str, str]] = []

    def startTestRun(self) -> None:  # noqa: N802 (testtools' protocol)
        pass

    def stopTestRun(self) -> None:  # noqa: N802
        pass

    def status(self, test_id=None, test_status=None, file_name=None, file_bytes=None, timestamp=None, **_) -> None:
        if test_id is None:
            return
        if file_name and file_bytes:
            files = self.files.setdefault(test_id, {})
            files[file_name] = files.get(file_name, b"") + bytes(file_bytes)
        if test_status == "inprogress":
            self.started.setdefault(test_id, timestamp)
            if test_id in self.by_id and test_id not in self.outcomes:
                self.on_test(self.by_id[test_id], "inprogress", None)
        elif test_status in STATUS:
            self._finish(test_id, STATUS[test_status], timestamp)

    def _finish(self, test_id: str, status: str, timestamp: Optional[datetime]) -> None:
        reason, detail = one_line_reason(status, self.files.pop(test_id, {}))
        started = self.started.pop(test_id, None)
        duration = (timestamp - started).total_seconds() if started and timestamp else 0.0
        if test_id in self.by_id:
            self._record(self.by_id[test_id], status, reason, detail, duration)
            return
        fixture = FIXTURE.match(test_id)
        if fixture and status == "fail" and TOO_FEW_ACCOUNTS in (detail or ""):
            # Not the cloud's failure: the class did not run for want of accounts.
            status, reason, detail = "skip", NEEDS_ACCOUNTS, f"{NEEDS_ACCOUNTS}\n\n{detail}"
        if fixture and fixture.group("kind").startswith("setUp") and status != "success":
            scope = fixture.group("scope") + "."
            for test in self.tests:
                if test.name.startswith(scope):
                    self._record(test, status, reason, detail, 0.0)
        elif status == "fail":
            self.fixture_failures.append((test_id, reason or "failed"))

    def _record(self, test: Test, status: str, reason: Optional[str], detail: str, duration: float) -> None:
        """Keep the first result of a test (a fixture's verdict never
        overrides the test's own)."""
        if test.id in self.outcomes:
            return
        self.outcomes[test.id] = Outcome(test, status, reason, detail, max(duration, 0.0))
        self.on_test(test, status, reason)

    def finish(self, reason: str = NO_RESULT) -> List[Outcome]:
        """Every selected test's outcome; those Tempest never reported fail."""
        for test in self.tests:
            if test.id not in self.outcomes:
                self._record(test, "fail", reason, reason, 0.0)
        return [self.outcomes[test.id] for test in self.tests]


class RedactingStream:
    """Masks secrets in attachments before passing the stream on. A file
    arrives in chunks (a traceback line by line), and a secret may straddle
    two, so chunks are joined until the file ends, masked whole, and passed
    on in packets subunit can encode."""

    def __init__(self, target, mask: Mask):
        self.target = target
        self.mask = mask
        self.pending: Dict[tuple, bytearray] = {}
        self.mime_types: Dict[tuple, Optional[str]] = {}

    def startTestRun(self) -> None:  # noqa: N802
        self.target.startTestRun()

    def stopTestRun(self) -> None:  # noqa: N802
        for key in list(self.pending):
            test_id, file_name, route_code = key
            self._flush(key, test_id=test_id, file_name=file_name, route_code=route_code, eof=True)
        self.target.stopTestRun()

    def status(self, test_id=None, test_status=None, file_name=None, file_bytes=None, eof=False,
               mime_type=None, route_code=None, **kwargs) -> None:
        if file_name is None:
            self.target.status(test_id=test_id, test_status=test_status, route_code=route_code, **kwargs)
            return
        key = (test_id, file_name, route_code)
        self.pending.setdefault(key, bytearray()).extend(bytes(file_bytes or b""))
        self.mime_types[key] = mime_type or self.mime_types.get(key)
        # Output outside any test (non-subunit bytes) is flushed line by line.
        if eof or test_status is not None or (test_id is None and self.pending[key].endswith(b"\n")):
            self._flush(key, test_id=test_id, test_status=test_status, file_name=file_name,
                        route_code=route_code, eof=eof, **kwargs)

    def _flush(self, key: tuple, **status) -> None:
        data = self.mask.bytes(bytes(self.pending.pop(key)))
        mime_type = self.mime_types.pop(key, None)
        pieces = [data[start:start + PACKET_BYTES] for start in range(0, len(data), PACKET_BYTES)] or [b""]
        # All but the last piece carry the file alone: the test's status (and
        # the end of the file) come with the last, as they came.
        for piece in pieces[:-1]:
            self.target.status(test_id=status.get("test_id"), file_name=status.get("file_name"), file_bytes=piece,
                               mime_type=mime_type, route_code=status.get("route_code"), eof=False,
                               timestamp=status.get("timestamp"))
        self.target.status(file_bytes=pieces[-1], mime_type=mime_type, **status)


def tempest_command(load_list: Path, concurrency: int) -> List[str]:
    return ["tempest", "run", "--load-list", str(load_list), "--concurrency", str(concurrency), "--subunit"]


def run_tests(workspace, tests: List[Test], load_list: Path, concurrency: int, stream_path: Path,
              mask: Mask, on_test: Callable[[Test, str, Optional[str]], None]) -> RunResult:
    """Run the load list, writing the masked stream to stream_path (a new
    file), and return every selected test's outcome."""
    import subunit
    import testtools

    collector = Collector(tests, on_test)
    tempest = process.start(tempest_command(load_list, concurrency), env=workspace.env, cwd=str(workspace.path))
    tail: List[str] = []
    pump = process.log_lines(tempest.stderr, tail, "tempest run")
    timed_out = threading.Event()

    def give_up() -> None:
        timed_out.set()
        process.stop(tempest)

    watchdog = threading.Timer(RUN_TIMEOUT, give_up)
    watchdog.daemon = True
    watchdog.start()
    started = time.monotonic()
    try:
        with private_files.create_private(stream_path) as out:
            stream = RedactingStream(testtools.CopyStreamResult([subunit.StreamResultToBytes(out), collector]),
                                     mask)
            stream.startTestRun()
            try:
                subunit.ByteStreamToStreamResult(tempest.stdout, non_subunit_name="stdout").run(stream)
            finally:
                stream.stopTestRun()
        # The stream has ended; give Tempest a moment to exit on its own.
        process.stop(tempest, patience=EXIT_TIMEOUT)
    finally:
        watchdog.cancel()
        process.stop(tempest)
        pump.join(5)
    duration = time.monotonic() - started
    if not collector.outcomes and not timed_out.is_set() and tempest.returncode:
        raise InfraError(process.failure("tempest run", tempest.returncode, tail))
    reason = f"Tempest did not finish within {RUN_TIMEOUT // 3600} h" if timed_out.is_set() else NO_RESULT
    return RunResult(collector.finish(reason), collector.fixture_failures, duration)
