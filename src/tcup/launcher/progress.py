"""Showing the runner's progress on the user's terminal, and what it ended with.

What the runner says is masked again here (its secrets, in every spelling,
behind the runner's own mask) and stripped of terminal control sequences:
reasons and messages quote the cloud.
"""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tcup import contract
from tcup.contract import Credentials
from tcup.masking import Mask
from tcup.launcher.errors import EXIT_BAD_INPUT, EXIT_INFRA, EXIT_NOT_COMPLIANT, EXIT_OK, EXIT_TESTS_FAILED, printable


FINISHED = {"success": "passed", "fail": "failed", "skip": "skipped"}


def secret_mask(credentials: Credentials) -> Mask:
    """The mask for what TCUP prints: the credentials' secrets."""
    mask = Mask()
    for secret in credentials.secrets():
        mask.secret(secret)
    return mask


@dataclass
class Outcome:
    exit_code: int
    message: Optional[str] = None
    verdict: Optional[str] = None  # "compliant", "failed" or "not compliant"
    verdict_words: str = ""


def verdict(selected: int, passed: int, failed: int, skipped: int, missing: int) -> Outcome:
    """A run is compliant only when every selected test passed: a skip or a
    test this Tempest lacks is not a pass, however many others passed."""
    if failed:
        return Outcome(EXIT_TESTS_FAILED, verdict="failed",
                       verdict_words=f"NOT COMPLIANT: {plural(failed, 'test')} failed")
    if skipped or missing or passed < selected or not passed:
        reasons = [f"{plural(skipped, 'test')} skipped"] if skipped else []
        reasons += [f"{plural(missing, 'test')} missing from this Tempest"] if missing else []
        reasons += [] if reasons else [f"{passed} of {selected} passed"]
        return Outcome(EXIT_NOT_COMPLIANT, verdict="not compliant",
                       verdict_words=f"NOT COMPLIANT: none failed, but {' and '.join(reasons)}; "
                                     "compliance needs every selected test to pass")
    return Outcome(EXIT_OK, verdict="compliant", verdict_words=f"COMPLIANT: all {plural(passed, 'selected test')} passed")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


class Progress:
    """Consumes the runner's output: events drive a live status, stderr is
    the runner's log (shown with --verbose, kept briefly for errors)."""

    def __init__(self, mask: Mask, verbose: bool = False, out=sys.stderr):
        self.mask = mask
        self.verbose = verbose
        self.out = out
        self.live = out.isatty()
        self.counts = {"running": 0, "passed": 0, "failed": 0, "skipped": 0}
        self.selected = 0
        self.missing = []
        self.mode = {}
        self.done = None
        self.error = None
        self.error_kind = None
        self.log_tail = []
        self.compliance = None

    def feed(self, stream: int, raw: bytes) -> None:
        """One line of the runner's output. An event is parsed first and only
        its text fields are masked: masking the raw line would let a password
        such as "done", "0" or "e" break the JSON or a status."""
        line = raw.decode("utf-8", errors="replace")
        event = contract.parse_event(line) if stream == 1 else None
        if event is None:
            line = self.mask.text(line)
            self.log_tail = (self.log_tail + [line])[-20:]
            if self.verbose:
                self._print(f"  | {line}")
            return
        for key in contract.TEXT_FIELDS:
            if isinstance(event.get(key), str):
                event[key] = self.mask.text(event[key])
        getattr(self, "_on_" + event["event"], lambda e: None)(event)

    def _print(self, text: str) -> None:
        if self.live:
            self.out.write("\r\033[K")
        print(printable(text), file=self.out, flush=True)

    def _status(self, event) -> None:
        """A terminal gets one status line, rewritten in place; a log (CI,
        a pipe) gets a line per finished test."""
        c = self.counts
        finished = c["passed"] + c["failed"] + c["skipped"]
        if self.live:
            self.out.write(f"\r\033[Ktcup: [{finished}/{self.selected}] running {c['running']}, "
                           f"passed {c['passed']}, failed {c['failed']}, skipped {c['skipped']}")
            self.out.flush()
        elif event["status"] in FINISHED:
            print(printable(f"tcup: [{finished}/{self.selected}] {FINISHED[event['status']]} {event['name']}"),
                  file=self.out, flush=True)

    def _on_phase(self, event) -> None:
        self._print(f"tcup: {event.get('message') or event['name']}")

    def _on_selected(self, event) -> None:
        self.selected = event["count"]
        self.missing = event.get("missing") or []
        extra = f" ({len(self.missing)} of the list are not in this Tempest)" if self.missing else ""
        self._print(f"tcup: {plural(self.selected, 'test')} selected{extra}")

    def _on_mode(self, event) -> None:
        self.mode = event
        how = ("dynamic credentials (admin)" if event.get("credentials") == "dynamic"
               else "your own account as a pre-provisioned account (member)")
        self._print(f"tcup: running with {how}, concurrency {event.get('concurrency')}")

    def _on_test(self, event) -> None:
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

    def _on_done(self, event) -> None:
        self.done = event
        if self.live:
            self.out.write("\n")

    def _on_error(self, event) -> None:
        self.error = event["message"]
        self.error_kind = event.get("kind")

    def outcome(self, exit_code: Optional[int]) -> Outcome:
        """The launcher's exit code from the runner's events and exit."""
        if self.error:
            code = EXIT_BAD_INPUT if self.error_kind == "input" else EXIT_INFRA
            return Outcome(code, self.error)
        if self.done is None:
            tail = "; ".join(self.log_tail[-3:]) or "no output"
            self.error = f"the runner ended without results (exit {exit_code}): {tail}"
            return Outcome(EXIT_INFRA, self.error)
        done = self.done
        return verdict(self.selected, done.get("passed", 0), done.get("failed", 0), done.get("skipped", 0),
                       len(self.missing))

    def summary_text(self, path: Path) -> str:
        """What the user reads at the end: the runner's summary, the
        compliance report, and where the results are."""
        parts = []
        summary = path / contract.SUMMARY_FILE
        if summary.exists():  # the launcher added the compliance table and the verdict to it
            parts.append(summary.read_text().rstrip())
        else:
            parts += [self.compliance.rstrip()] if self.compliance else []
            parts += ["Verdict: " + self.outcome(0).verdict_words] if self.done is not None else []
        parts.append(f"Results saved in {path}")
        return printable("\n\n".join(parts))
