"""Showing the runner's progress on the user's terminal, and what it ended with.

What the runner says is masked again here (its secrets, in every spelling,
behind the runner's own mask) and stripped of terminal control sequences:
reasons and messages quote the cloud.
"""

import os
import re
import shutil
import sys
import threading
import time
from typing import Callable, Dict, Optional, Set, Tuple

from tcup import contract
from tcup.contract import Credentials
from tcup.masking import Mask
from tcup.testids import bare_uuid, test_key
from tcup.contract import EXIT_BAD_INPUT, EXIT_INFRA
from tcup.launcher.errors import plural, printable, proxy_secrets


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

    def __init__(self, mask: Mask, verbose: bool = False, out=sys.stderr,
                 history: Optional[Callable[[], object]] = None, selection: Optional[contract.Selection] = None,
                 clock=time.monotonic, concurrency: Optional[int] = None):
        self.mask = mask
        self.asked_concurrency = concurrency  # --concurrency, to say why the runner chose fewer
        self.verbose = verbose
        self.out = out
        self.live = out.isatty()
        # The ETA: earlier runs' timings (``history`` reads them, only when a
        # terminal shows the live line) of the tests ``selection`` picks.
        self.history = history
        self.selection = selection
        self.took: Dict[str, float] = {}  # earlier runs' seconds by test_key
        self.test_ids: Dict[str, str] = {}  # their full test ids by test_key, for a --regex
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
                found = self.history()  # results.timings.Timings
                self.took, self.test_ids = found.seconds, found.ids
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
        """The terminal's columns; one that says 0 (a serial console, some CI
        terminals) or none: $COLUMNS, else 80."""
        try:
            columns = os.get_terminal_size(self.out.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        return columns or shutil.get_terminal_size().columns or 80

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
                    if uuid and (pattern is None or pattern.search(self.test_ids.get(uuid, entry.get("name") or ""))):
                        keys.add(uuid)
                keys -= {uuid.lower() for uuid in self.missing}
            elif pattern is not None:
                keys = {key for key, test_id in self.test_ids.items() if pattern.search(test_id)}
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
            took = self.took.get(key)
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
        chosen, asked = event.get("concurrency"), self.asked_concurrency
        if event.get("credentials") != "dynamic" and isinstance(chosen, int) and asked and chosen < asked:
            # Each member worker locks an account of its own: fewer accounts, fewer workers.
            have = "only yours" if accounts == 1 else f"{accounts} (yours and --accounts)"
            self._print(f"tcup: note: concurrency {chosen}, not {asked}: a member run needs one account per worker "
                        f"and has {have}; give more with --accounts FILE")

    def _on_choices(self, event) -> None:
        """What the tests' servers will use, chosen by the user or by discovery."""
        self.choices = {key: value for key, value in event.items() if key != "event"}
        for alt, text in ((False, "the tests' servers use"), (True, "and where a test needs a second one")):
            shown = [f"{key} {value.get('name') or value.get('id')}" for key, value in self.choices.items()
                     if isinstance(value, dict) and key.endswith("_alt") == alt]
            if shown:
                self._print(f"tcup: {text}: {', '.join(shown)}")
        flavors = self.choices.get("flavors") or []
        if self.verbose and flavors:  # to compare with the choice (`tcup plan -v`)
            self._print(f"tcup: the {plural(len(flavors), 'flavor')} your project can use (vCPUs, RAM, disk):")
            for flavor in flavors:
                self._print(f"tcup:   {flavor}")

    def _on_plan(self, event) -> None:
        """`tcup plan`: the catalog's services, the tests per service and
        those certain to skip, by reason (one reason alone: without its count)."""
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
            # An older runner's event has one reason and no "reasons".
            reasons = (skip or {}).get("reasons") or []
            said = (", ".join(f"{r['reason']} ({r['count']})" for r in reasons) if len(reasons) > 1
                    else skip and skip["reason"])
            note = f"; {skip['count']} will skip: {said}" if skip else ""
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

    def failure(self, exit_code: Optional[int], out_of_memory: Optional[bool] = None) -> Optional[Tuple[int, str]]:
        """(exit code, message) when the runner ended in an error or without
        its results; None when it finished and its results can be judged.
        ``out_of_memory``: what the engine says of a killed container."""
        if self.error:
            return (EXIT_BAD_INPUT if self.error_kind == "input" else EXIT_INFRA), self.error
        if self.done is None:
            tail = "; ".join(self.log_tail[-3:]) or "no output"
            # The log is not kept: --verbose shows all of it as it comes.
            where = "" if self.verbose else "; the runner's whole log: run again with --verbose"
            self.error = f"the runner ended without results ({ending(exit_code, out_of_memory)}): {tail}{where}"
            return EXIT_INFRA, self.error
        return None


def ending(exit_code: Optional[int], out_of_memory: Optional[bool] = None) -> str:
    """How a process ended, in words: 128 + N is signal N, as the engine
    reports a killed process; SIGKILL is most often the kernel's out-of-memory
    killer, which the engine names when it saw it (``out_of_memory``)."""
    import signal

    if exit_code is None or exit_code <= 128:
        return f"exit {exit_code}"
    try:
        name = signal.Signals(exit_code - 128).name
    except ValueError:
        return f"exit {exit_code}"
    if out_of_memory:
        return (f"exit {exit_code}: killed by {name}, out of memory (the engine reports OOMKilled): give the "
                "machine or the engine's VM more memory, or run with a lower --concurrency")
    why = ("; most often the machine or the engine ran out of memory (see `dmesg`), or something stopped the "
           "container") if name == "SIGKILL" else ""
    return f"exit {exit_code}: killed by {name}{why}"


def duration(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on."""
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def short_name(name: str) -> str:
    """Class.test_method: what tells a test apart on a narrow line."""
    return ".".join(name.split(".")[-2:])
