"""Showing the runner's progress on the user's terminal, and what it ended with.

What the runner says is masked again here (its secrets, in every spelling,
behind the runner's own mask) and stripped of terminal control sequences:
reasons and messages quote the cloud.
"""

import json
import os
import re
import shutil
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from tcup import contract, private_files
from tcup.contract import Credentials
from tcup.masking import Mask
from tcup.launcher.errors import EXIT_BAD_INPUT, EXIT_INFRA, printable, proxy_secrets
from tcup.launcher.rules import STRICT, Conclusion, Rule, plural, verdict


FINISHED = {"success": "passed", "fail": "failed", "skip": "skipped"}
# How often the live line is redrawn while no event comes (a long test):
# its clock and ETA move on.
TICK_SECONDS = 1.0


def secret_mask(credentials: Credentials) -> Mask:
    """The mask for what TCUP prints: the credentials' secrets and the proxies' passwords."""
    mask = Mask()
    for secret in credentials.secrets() + proxy_secrets():
        mask.secret(secret)
    return mask


def by_kind(entries: list) -> str:
    """"2 servers, 1 volume": how many resources of each kind, most first."""
    counts: Dict[str, int] = {}
    for entry in entries:
        counts[entry.get("kind") or "resources"] = counts.get(entry.get("kind") or "resources", 0) + 1
    return ", ".join(f"{count} {contract.kind_words(kind, count)}"
                     for kind, count in sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))


def cleanup_lines(result: dict) -> list:
    """What the runner's cleanup did, for the terminal: what it removed, by
    kind; what could not be checked; and each resource still in the cloud
    with the command that removes it. A dry run (`tcup cleanup --dry-run`)
    says what would be removed."""
    removed, left = result.get("removed") or [], result.get("left") or []
    if isinstance(removed, int):  # a run saved by TCUP before the evidence rule counted only
        removed = [{"kind": "resources"}] * removed
    lines = []
    if removed:
        lines.append(f"tcup: removed {plural(len(removed), 'resource')} the tests left in the cloud: {by_kind(removed)}")
    lines += [f"tcup: note: {note}" for note in result.get("notes") or []]
    if result.get("error"):
        lines.append(f"tcup: warning: the cleanup could not run ({result['error']}); what the tests created may be "
                     "left in the cloud; remove it later with `tcup cleanup RUN`")
    unproven = result.get("unproven") or []
    if unproven:
        lines.append(f"tcup: note: {plural(len(unproven), 'resource')} ({by_kind(unproven)}) carry a name the run "
                     "asked for in a request cut off before its answer; with no recorded id they may or may not be "
                     "the run's, and were not removed; check, and remove by hand with:")
        lines += [f"tcup:   {entry.get('remove_with')}   # {entry.get('kind')} {entry.get('name') or ''}".rstrip()
                  for entry in unproven]
    if left and result.get("dry_run"):
        lines.append(f"tcup: would remove {plural(len(left), 'resource')} the run made: {by_kind(left)}")
        lines += [f"tcup:   {contract.kind_words(entry.get('kind') or '', 1)} {entry.get('id')} {entry.get('name') or ''}".rstrip()
                  for entry in left]
    elif left:
        lines.append(f"tcup: warning: {plural(len(left), 'resource')} the tests created could not be removed "
                     f"from the cloud ({by_kind(left)}); remove them with:")
        lines += [f"tcup:   {entry.get('remove_with') or entry.get('kind') + ' ' + str(entry.get('id'))}"
                  f"   # {entry.get('kind')} {entry.get('name') or ''}".rstrip() for entry in left]
    return lines


class Progress:
    """Consumes the runner's output: events drive a live status, stderr is
    the runner's log (shown with --verbose, kept briefly for errors)."""

    def __init__(self, mask: Mask, verbose: bool = False, out=sys.stderr, history: Optional[Path] = None,
                 selection: Optional[contract.Selection] = None, clock=time.monotonic, rule: Rule = STRICT):
        self.mask = mask
        self.rule = rule  # what the verdict is judged by (rules.py)
        self.verbose = verbose
        self.out = out
        self.live = out.isatty()
        # The ETA: earlier runs' timings (read from the runs under `history`
        # when a terminal shows the live line) of the tests `selection` picks.
        self.history = history
        self.selection = selection
        self.timings = Timings()
        self.clock = clock
        self.began = None  # when the run began, for the elapsed time
        self.tests_began = None  # when the first test began, for the count-based ETA
        self.running: Dict[str, Tuple[float, str]] = {}  # test_key -> (began, name), oldest first
        self.finished_keys: Set[str] = set()
        self.current = None  # the name of the test that began last
        self._expected = None
        self.showing = False  # the live line is on the screen, below everything printed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = None
        self.counts = {"running": 0, "passed": 0, "failed": 0, "skipped": 0}
        self.selected = 0
        self.missing = []
        self.mode = {}
        self.choices = {}
        self.plan = None
        self.cleanup = None
        self.done = None
        self.error = None
        self.error_kind = None
        self.log_tail = []
        self.compliance = None

    def feed(self, stream: int, raw: bytes) -> None:
        """One line of the runner's output. An event is parsed first and then
        its free text masked (contract.masked): masking the raw line would let
        a password such as "done", "0" or "e" break the JSON or a status."""
        line = raw.decode("utf-8", errors="replace")
        event = contract.parse_event(line) if stream == 1 else None
        if event is None:
            line = self.mask.text(line)
            self.log_tail = (self.log_tail + [line])[-20:]
            if self.verbose:
                self._print(f"  | {line}")
            return
        event = contract.masked(event, self.mask.text)
        getattr(self, "_on_" + event["event"], lambda e: None)(event)

    def __enter__(self) -> "Progress":
        """The live line's clock runs from here; on a terminal, earlier runs'
        timings are read and a ticker redraws the line while tests run."""
        self.began = self.clock()
        if self.live:
            if self.history is not None:
                self.timings = Timings.load(self.history)
            self._ticker = threading.Thread(target=self._tick, name="tcup-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
        with self._lock:
            if self.showing:
                # Ended without a done event (an error, Ctrl-C): the last counts
                # stay, and what is printed next starts on a line of its own.
                self.out.write("\n")
                self.out.flush()
                self.showing = False

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                if self.showing and self.done is None:
                    self._draw()

    def _print(self, text: str) -> None:
        with self._lock:
            if self.live:
                self.out.write("\r\033[K")
            print(printable(text), file=self.out, flush=True)
            if self.showing:
                self._draw()  # the live line stays below what scrolls by

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.out.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return shutil.get_terminal_size().columns

    def _draw(self) -> None:
        """Rewrite the live line in place (the caller holds the lock). It is
        cut to the terminal's width: a line that wrapped could not be rewritten."""
        line = printable(self.live_line(self.clock()))[:max(self._width() - 1, 1)]
        self.out.write("\r\033[K" + line)
        self.out.flush()
        self.showing = True

    def live_line(self, now: float) -> str:
        c = self.counts
        finished = c["passed"] + c["failed"] + c["skipped"]
        line = f"tcup: [{finished}/{self.selected}] passed {c['passed']}, failed {c['failed']}, skipped {c['skipped']}"
        if c["running"] > 1:
            line += f", running {c['running']}"
        line += f" | {duration(now - (self.began if self.began is not None else now))} elapsed"
        if self.done is not None or finished >= self.selected:
            return line  # the tests are over: no ETA, no current test
        eta = self.eta_seconds(now)
        line += f" | ETA {duration(eta)}" if eta is not None else " | ETA ?"
        return line + (f" | {short_name(self.current)}" if self.current else "")

    def expected_keys(self) -> Set[str]:
        """The selected tests that earlier runs may have timed: the list's
        uuids, or for a --regex alone, the timed tests it matches."""
        if self._expected is None:
            selection = self.selection
            pattern = re.compile(selection.regex) if selection is not None and selection.regex else None
            keys = set()
            if selection is not None and selection.tests is not None:
                for entry in selection.tests:
                    uuid = bare_uuid(entry.get("uuid"))
                    if uuid and (pattern is None or pattern.search(self.timings.ids.get(uuid, entry.get("name") or ""))):
                        keys.add(uuid)
                keys -= {uuid.lower() for uuid in self.missing}
            elif pattern is not None:
                keys = {key for key, test_id in self.timings.ids.items() if pattern.search(test_id)}
            self._expected = keys
        return self._expected

    def eta_seconds(self, now: float) -> Optional[float]:
        """Seconds left: the earlier timings of the tests not finished (less
        what a running one has had), shared by the workers; a test never timed
        counts as long as this run's tests took on average. None: no basis yet."""
        c = self.counts
        left = self.selected - (c["passed"] + c["failed"] + c["skipped"])
        if left <= 0:
            return 0.0
        workers = max(1, int(self.mode.get("concurrency") or 1))
        work, timed = 0.0, []
        for key in self.expected_keys() - self.finished_keys:
            took = self.timings.seconds.get(key)
            if took is None:
                continue
            timed.append(took)
            if key in self.running:
                took = max(0.0, took - (now - self.running[key][0]))
            work += took
        eta = work / workers
        untimed = max(0, left - len(timed))
        if untimed:
            finished = self.selected - left
            if finished and self.tests_began is not None:
                eta += untimed * (now - self.tests_began) / finished
            elif timed:
                eta += untimed * (sum(timed) / len(timed)) / workers
            else:
                return None
        return eta

    def _status(self, event) -> None:
        """A terminal gets one status line, rewritten in place; a log (CI,
        a pipe) gets a line per finished test."""
        c = self.counts
        finished = c["passed"] + c["failed"] + c["skipped"]
        if self.live:
            with self._lock:
                self._draw()
        elif event["status"] in FINISHED:
            print(printable(f"tcup: [{finished}/{self.selected}] {FINISHED[event['status']]} {event['name']}"),
                  file=self.out, flush=True)

    def _on_phase(self, event) -> None:
        self._print(f"tcup: {event.get('message') or event['name']}")

    def _on_selected(self, event) -> None:
        self.selected = event["count"]
        self.missing = event.get("missing") or []
        self._expected = None
        extra = f" ({len(self.missing)} of the list are not in this Tempest)" if self.missing else ""
        self._print(f"tcup: {plural(self.selected, 'test')} selected{extra}")

    def _on_mode(self, event) -> None:
        self.mode = event
        accounts = event.get("accounts") or 1
        how = ("dynamic credentials (admin)" if event.get("credentials") == "dynamic"
               else "your own account as a pre-provisioned account (member)" if accounts == 1
               else f"{accounts} pre-provisioned member accounts (yours and --accounts)")
        self._print(f"tcup: running with {how}, concurrency {event.get('concurrency')}")

    def _on_choices(self, event) -> None:
        """What the tests' servers will use, chosen by the user or by discovery."""
        self.choices = {key: value for key, value in event.items() if key != "event"}
        for alt, text in ((False, "the tests' servers use"), (True, "and where a test needs a second one")):
            shown = [f"{key} {value.get('name') or value.get('id')}" for key, value in self.choices.items()
                     if isinstance(value, dict) and key.endswith("_alt") == alt]
            if shown:
                self._print(f"tcup: {text}: {', '.join(shown)}")

    def _on_plan(self, event) -> None:
        """`tcup plan`: the catalog's services and the tests per service."""
        self.plan = event
        why = (self.choices.get("why") or "").splitlines()
        if why:
            self._print("tcup: why these:")
        for line in why:
            self._print(f"tcup:   {line}")
        self._print(f"tcup: services in the catalog: {', '.join(event.get('services') or []) or 'none'}")
        skips = event.get("skips") or {}
        for service, count in sorted((event.get("tests") or {}).items()):
            skip = skips.get(service)
            note = f"; {skip['count']} will skip: {skip['reason']}" if skip else ""
            self._print(f"tcup:   {service:<16} {plural(count, 'test')}{note}")

    def _on_cleanup(self, event) -> None:
        self.cleanup = {key: value for key, value in event.items() if key != "event"}
        for line in cleanup_lines(self.cleanup):
            self._print(line)

    def _on_test(self, event) -> None:
        self._follow(event)
        status = event["status"]
        if status == "inprogress":
            self.counts["running"] += 1
        else:
            self.counts["running"] = max(0, self.counts["running"] - 1)
            if status in FINISHED:
                self.counts[FINISHED[status]] += 1
            if status == "fail" and self.live:
                reason = f": {event['reason']}" if event.get("reason") else ""
                self._print(f"tcup: FAILED {event['name']}{reason}")
        self._status(event)

    def _follow(self, event) -> None:
        """Which tests run and which finished, for the live line and its ETA."""
        now = self.clock()
        key = test_key(event["name"], event.get("uuid"))
        if self.began is None:
            self.began = now
        if event["status"] == "inprogress":
            if self.tests_began is None:
                self.tests_began = now
            self.running[key] = (now, event["name"])
            self.current = event["name"]
            return
        self.running.pop(key, None)
        self.finished_keys.add(key)
        if self.running:
            self.current = next(reversed(self.running.values()))[1]

    def _on_done(self, event) -> None:
        self.done = event
        if self.live and self.showing:
            with self._lock:
                self._draw()  # the final counts and time, no ETA
                self.out.write("\n")
                self.out.flush()
                self.showing = False

    def _on_error(self, event) -> None:
        self.error = event["message"]
        self.error_kind = event.get("kind")

    def outcome(self, exit_code: Optional[int], skips=()) -> Conclusion:
        """The launcher's exit code from the runner's events and exit;
        ``skips`` (rules.skip_reasons of the saved tests) for the verdict's words."""
        if self.error:
            code = EXIT_BAD_INPUT if self.error_kind == "input" else EXIT_INFRA
            return Conclusion(code, self.error)
        if self.done is None:
            tail = "; ".join(self.log_tail[-3:]) or "no output"
            self.error = f"the runner ended without results (exit {exit_code}): {tail}"
            return Conclusion(EXIT_INFRA, self.error)
        done = self.done
        return verdict(self.selected, done.get("passed", 0), done.get("failed", 0), done.get("skipped", 0),
                       len(self.missing), rule=self.rule, skips=skips)

    def summary_text(self, path: Path) -> str:
        """What the user reads at the end: the runner's summary, the
        compliance report, and where the results are."""
        parts = []
        try:  # the launcher added the compliance table and the verdict to it
            parts.append(private_files.read_result(path / contract.SUMMARY_FILE).decode(errors="replace").rstrip())
        except OSError:
            parts += [self.compliance.rstrip()] if self.compliance else []
            parts += ["Verdict: " + self.outcome(0).verdict_words] if self.done is not None else []
        parts.append(f"Results saved in {path}")
        return printable("\n\n".join(parts))


def duration(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on."""
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def short_name(name: str) -> str:
    """Class.test_method: what tells a test apart on a narrow line."""
    return ".".join(name.split(".")[-2:])


def bare_uuid(uuid: Optional[str]) -> Optional[str]:
    """A list entry's uuid without its ``id-`` prefix, lower case; None when it has none."""
    uuid = (uuid or "").lower()
    return (uuid[3:] if uuid.startswith("id-") else uuid) or None


def test_key(name: str, uuid: Optional[str]) -> str:
    """How runs are compared: by the idempotent id, by name when a test has none."""
    return uuid.lower() if uuid else name


def split_test_id(test_id: str) -> Tuple[str, Optional[str]]:
    """(name, uuid) of a full Tempest test id: ``name[id-<uuid>,smoke]``."""
    name, _, attrs = test_id.partition("[")
    for attr in attrs.rstrip("]").split(","):
        attr = attr.strip().lower()
        if attr.startswith("id-") and len(attr) == 39:
            return name, attr[3:]
    return name, None


# --- earlier runs' timings, for the ETA -------------------------------------

# The newest saved runs whose timings are read: recent runs know today's cloud.
HISTORY_RUNS = 10
# Subunit v2 (python-subunit's wire format; the launcher does not have that
# package, so the few fields needed are read here).
SUBUNIT_SIGNATURE = 0xB3
SUBUNIT_EXISTS = 1  # stestr lists the tests it will run, up front
SUBUNIT_INPROGRESS = 2
SUBUNIT_ENDED = {3: "success", 4: "fail", 5: "skip", 6: "fail", 7: "success"}  # uxsuccess fails, xfail passes
FIXTURE_ID = re.compile(r"^(?:setUpClass|setUpModule|tearDownClass|tearDownModule) \((?P<scope>[^)]+)\)$")


@dataclass
class SubunitStatus:
    test_id: str
    status: str  # "exists", "inprogress", "success", "fail" or "skip"
    timestamp: Optional[float]  # seconds since the epoch
    worker: str  # stestr's route code (or worker-N tag): tests on one worker run one after another


def read_subunit(data: bytes) -> List[SubunitStatus]:
    """The test statuses of a subunit v2 stream. What is not a whole packet
    (the torn end of an interrupted run, stray output) is stepped over."""
    found = []
    view = memoryview(data)
    position = 0
    while True:
        position = data.find(bytes([SUBUNIT_SIGNATURE]), position)
        if position < 0:
            return found
        try:
            status, length = _subunit_packet(data, view, position)
        except (ValueError, IndexError):
            position += 1
            continue
        if status is not None:
            found.append(status)
        position += length


def _number(data: bytes, position: int) -> Tuple[int, int]:
    # The first byte's two high bits say how many bytes follow.
    extra = data[position] >> 6
    if position + extra >= len(data):
        raise IndexError("number past the end")
    value = data[position] & 0x3F
    for byte in data[position + 1:position + 1 + extra]:
        value = value << 8 | byte
    return value, position + 1 + extra


def _utf8(data: bytes, position: int) -> Tuple[str, int]:
    length, position = _number(data, position)
    if position + length > len(data):
        raise IndexError("string past the end")
    return data[position:position + length].decode("utf-8", errors="replace"), position + length


def _subunit_packet(data: bytes, view: memoryview, start: int) -> Tuple[Optional[SubunitStatus], int]:
    flags = int.from_bytes(data[start + 1:start + 3], "big")
    if flags >> 12 != 2:
        raise ValueError("not a subunit v2 packet")
    length, position = _number(data, start + 3)
    end = start + length
    if length < 8 or end > len(data) or zlib.crc32(view[start:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
        raise ValueError("not a whole packet")
    timestamp, test_id, tags, route = None, None, [], ""
    if flags & 0x0200:
        seconds = int.from_bytes(data[position:position + 4], "big")
        nanoseconds, position = _number(data, position + 4)
        timestamp = seconds + nanoseconds / 1e9
    if flags & 0x0800:
        test_id, position = _utf8(data, position)
    if flags & 0x0080:
        count, position = _number(data, position)
        for _ in range(count):
            tag, position = _utf8(data, position)
            tags.append(tag)
    if flags & 0x0020:
        _, position = _utf8(data, position)  # MIME type
    if flags & 0x0040:
        _, position = _utf8(data, position)  # file name
        size, position = _number(data, position)
        position += size
    if flags & 0x0400:
        route, position = _utf8(data, position)
    code = flags & 0x0007
    named = {SUBUNIT_EXISTS: "exists", SUBUNIT_INPROGRESS: "inprogress", **SUBUNIT_ENDED}
    if not test_id or code not in named:
        return None, length
    worker = route or next((tag for tag in tags if tag.startswith("worker-")), "")
    return SubunitStatus(test_id, named[code], timestamp, worker), length


def run_timings(run: Path) -> Dict[str, Tuple[float, str]]:
    """Each test of a saved run: (seconds of the run's wall time it took, its
    full id), by test_key. A test's time runs from the end of the one before
    it on the same worker, so class fixtures are counted; a class that a
    fixture skipped or failed reports no test, so its tests (from tests.json)
    share the fixture's time."""
    statuses = [s for s in read_subunit(private_files.read_result(run / contract.SUBUNIT_FILE))
                if s.timestamp is not None and s.status != "exists"]
    last_end: Dict[str, float] = {}
    seconds: Dict[str, float] = {}
    for status in sorted(statuses, key=lambda s: s.timestamp):
        if status.status == "inprogress":
            last_end.setdefault(status.worker, status.timestamp)
            continue
        since = last_end.get(status.worker, status.timestamp)
        seconds[status.test_id] = seconds.get(status.test_id, 0.0) + max(0.0, status.timestamp - since)
        last_end[status.worker] = status.timestamp
    timings, fixtures = {}, {}
    for test_id, took in seconds.items():
        fixture = FIXTURE_ID.match(test_id)
        if fixture:
            fixtures[fixture.group("scope")] = fixtures.get(fixture.group("scope"), 0.0) + took
        else:
            timings[test_key(*split_test_id(test_id))] = (took, test_id)
    if fixtures:
        try:
            tests = json.loads(private_files.read_result(run / contract.TESTS_FILE))["tests"]
        except (OSError, ValueError, KeyError, TypeError):
            tests = []  # an incomplete run: its fixtures' time is not shared out
        for scope, took in fixtures.items():
            covered = [t for t in tests if t.get("name", "").startswith(scope + ".")
                       and test_key(t["name"], t.get("uuid")) not in timings]
            for test in covered:
                timings[test_key(test["name"], test.get("uuid"))] = (took / len(covered), test["name"])
    return timings


@dataclass
class Timings:
    """How long each test took in the newest saved run that has it."""

    seconds: Dict[str, float] = field(default_factory=dict)  # by test_key
    ids: Dict[str, str] = field(default_factory=dict)  # full test id by test_key, for a --regex

    @classmethod
    def load(cls, root: Path, newest: int = HISTORY_RUNS) -> "Timings":
        timings = cls()
        try:
            runs = sorted((p for p in Path(root).iterdir() if (p / contract.SUBUNIT_FILE).is_file()),
                          key=lambda p: p.name, reverse=True)[:newest]
        except OSError:
            return timings
        for run in runs:  # run names start with their UTC start time: newest first
            try:
                found = run_timings(run)
            except OSError:
                continue
            for key, (took, test_id) in found.items():
                timings.seconds.setdefault(key, took)
                timings.ids.setdefault(key, test_id)
        return timings
