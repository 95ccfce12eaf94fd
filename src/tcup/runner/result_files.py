"""The result files in RESULTS_DIR, each written whole or not at all, and
readable by the user alone from the first byte (``private_files.write_atomically``).

refstack.json is what RefStack takes: the passed tests only. tests.json
keeps every selected test's status and reason; junit.xml is the same for CI
tools; summary.txt is what a person reads. None of them names the user, the
project or the cloud: reasons come from the redacted stream.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from tcup import contract, junit, private_files
from tcup.runner.run import Outcome

# The skip Tempest gives a test class that needs admin credentials it lacks.
ADMIN_SKIP_MARKERS = ("Missing Identity Admin API credentials",)


@dataclass
class Report:
    """What the result files are made from."""

    outcomes: List[Outcome]
    missing: List[str]
    cpid: str
    label: str
    credentials: str  # "dynamic" | "preprovisioned"
    concurrency: int
    duration_seconds: float
    tempest_version: str
    fixture_failures: List[Tuple[str, str]] = field(default_factory=list)


def counts(outcomes: Iterable[Outcome]) -> Dict[str, int]:
    """The done event's numbers."""
    outcomes = list(outcomes)
    return {
        "passed": sum(o.status == "success" for o in outcomes),
        "failed": sum(o.status == "fail" for o in outcomes),
        "skipped": sum(o.status == "skip" for o in outcomes),
        "admin_skipped": sum(is_admin_skip(o) for o in outcomes),
    }


def is_admin_skip(outcome: Outcome) -> bool:
    return outcome.status == "skip" and any(marker in (outcome.reason or "") for marker in ADMIN_SKIP_MARKERS)


def refstack_json(report: Report) -> dict:
    """RefStack's upload body: the passed tests, sorted, each once."""
    passed = {(o.test.name, o.test.uuid) for o in report.outcomes if o.status == "success"}
    results = []
    for name, uuid in sorted(passed, key=lambda pair: (pair[0], pair[1] or "")):
        results.append({"name": name, "uuid": uuid} if uuid else {"name": name})
    return {"cpid": report.cpid, "duration_seconds": int(report.duration_seconds), "results": results}


def tests_json(report: Report) -> dict:
    """Every selected test with its status and one-line reason."""
    tests = [{"name": o.test.name, "uuid": o.test.uuid, "status": o.status, "reason": o.reason}
             for o in sorted(report.outcomes, key=lambda o: o.test.id)]
    return {"tests": tests, "missing": list(report.missing)}


def junit_xml(report: Report) -> bytes:
    """A JUnit XML document, one testcase per selected test."""
    return junit.document((junit.Case(o.test.id, o.test.name, o.status, o.reason or "", o.detail or "", o.duration)
                           for o in report.outcomes), report.duration_seconds)


def summary_text(report: Report) -> str:
    """The run in a few lines a person reads; failures with their reasons."""
    number = counts(report.outcomes)
    how = ("dynamic credentials (admin)" if report.credentials == "dynamic"
           else "the user's own account, pre-provisioned (member)")
    lines = [
        f"TCUP run: {report.label}",
        f"Tempest {report.tempest_version}, {how}, concurrency {report.concurrency}",
        f"Selected: {len(report.outcomes)} test{'' if len(report.outcomes) == 1 else 's'}"
        + (f" ({len(report.missing)} more on the list are not in this Tempest)" if report.missing else ""),
        f"Passed: {number['passed']}  Failed: {number['failed']}  Skipped: {number['skipped']}"
        f" ({number['admin_skipped']} for lack of admin credentials)",
        f"Duration: {int(report.duration_seconds)} s",
    ]
    failures = sorted((o for o in report.outcomes if o.status == "fail"), key=lambda o: o.test.id)
    if failures:
        lines += ["", "Failures:"]
        lines += [f"  {o.test.name} [{o.test.uuid}]: {o.reason}" for o in failures]
    if report.fixture_failures:
        lines += ["", "Errors outside the tests (class or module fixtures):"]
        lines += [f"  {test_id}: {reason}" for test_id, reason in report.fixture_failures]
    return "\n".join(lines) + "\n"


def write_all(results_dir: Path, report: Report) -> None:
    """refstack.json, tests.json, junit.xml and summary.txt (the subunit
    stream is already in place, written during the run). Their reasons come
    from the redacted stream; test names are Tempest's own and stay whole."""
    def as_json(document: dict) -> bytes:
        return (json.dumps(document, indent=2) + "\n").encode()

    private_files.write_atomically(results_dir / contract.REFSTACK_FILE, as_json(refstack_json(report)))
    private_files.write_atomically(results_dir / contract.TESTS_FILE, as_json(tests_json(report)))
    private_files.write_atomically(results_dir / contract.JUNIT_FILE, junit_xml(report))
    private_files.write_atomically(results_dir / contract.SUMMARY_FILE, summary_text(report).encode())
    # For `tcup bundle`: tempest.conf made safe, and what ran. tempest.conf
    # exists only in the container, on the tmpfs, once discovery wrote it.
    from tcup.runner import config, events, support

    if config.CONFIG_FILE.is_file():
        support.write(results_dir, config.CONFIG_FILE, events.mask(), report.tempest_version)
