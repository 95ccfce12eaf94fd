"""`tcup diff RUN_A RUN_B`: what changed from one saved run to another.

Tests are matched by their idempotent id (uuid), by name when a test has
none, as RefStack and the guidelines match them; a renamed test is still the
same test. A run is a run directory, or its name as `tcup results` lists it.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from tcup import contract, private_files
from tcup.launcher.errors import BadInput, printable
from tcup.launcher.progress import FIXTURE_ID, read_subunit, split_test_id, test_key
from tcup.launcher.results.runs import read_file

# What the lists are called, in the order they are shown.
SECTIONS = ("newly_failing", "newly_passing", "newly_skipped", "only_in_a", "only_in_b")
TITLES = {
    "newly_failing": "Newly failing",
    "newly_passing": "Newly passing",
    "newly_skipped": "Newly skipped",
    "only_in_a": "Missing from B (only in A)",
    "only_in_b": "Missing from A (only in B)",
}


@dataclass
class Result:
    name: str
    uuid: Optional[str]
    status: str  # "success", "fail" or "skip"
    reason: Optional[str] = None


def read_run(path: Path) -> Dict[str, Result]:
    """A run's results by test key: tests.json, or for a run interrupted
    before it wrote that, what its subunit stream says finished."""
    tests_file = path / contract.TESTS_FILE
    stream = path / contract.SUBUNIT_FILE
    if tests_file.exists() or tests_file.is_symlink():
        try:
            tests = json.loads(read_file(tests_file))["tests"]
            return {test_key(t["name"], t.get("uuid")): Result(t["name"], t.get("uuid"), t["status"], t.get("reason"))
                    for t in tests}
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{tests_file} is not a TCUP test results file") from None
        except OSError as error:
            raise BadInput(f"cannot read {tests_file}: {error.strerror or error}") from None
    if stream.exists() or stream.is_symlink():
        try:
            data = private_files.read_result(stream)
        except OSError as error:
            raise BadInput(f"cannot read {stream}: {error.strerror or error}") from None
        return stream_results(data)
    raise BadInput(f"{path} holds no test results ({contract.TESTS_FILE} or {contract.SUBUNIT_FILE}); "
                   "is it a TCUP run directory?")


def stream_results(data: bytes) -> Dict[str, Result]:
    """Results from a subunit stream. A class or module fixture's skip or
    failure is its tests' (unittest then reports none of them); they are
    known from the list of tests stestr streams first."""
    listed, found, fixtures = [], {}, []
    for status in read_subunit(data):
        fixture = FIXTURE_ID.match(status.test_id)
        if status.status == "exists":
            listed.append(split_test_id(status.test_id))
        elif status.status == "inprogress":
            continue
        elif fixture:
            fixtures.append((fixture.group("scope") + ".", status.status))
        else:
            name, uuid = split_test_id(status.test_id)
            found[test_key(name, uuid)] = Result(name, uuid, status.status)
    for scope, outcome in fixtures:
        for name, uuid in listed:
            if name.startswith(scope):
                found.setdefault(test_key(name, uuid), Result(name, uuid, outcome))
    return found


def compare(a: Dict[str, Result], b: Dict[str, Result]) -> Dict[str, List[dict]]:
    """Each list of the diff, sorted by test name. Newly failing: fails in B
    and did not in A; newly passing: passes in B and did not in A; newly
    skipped: skipped in B, not in A."""
    changes = {section: [] for section in SECTIONS}
    for key in a.keys() | b.keys():
        before, after = a.get(key), b.get(key)
        if after is None:
            changes["only_in_a"].append(_entry(before, before=before))
            continue
        if before is None:
            changes["only_in_b"].append(_entry(after, after=after))
            continue
        if before.status == after.status:
            continue
        section = {"fail": "newly_failing", "success": "newly_passing", "skip": "newly_skipped"}.get(after.status)
        if section:
            changes[section].append(_entry(after, before=before, after=after))
    for entries in changes.values():
        entries.sort(key=lambda entry: (entry["name"], entry["uuid"] or ""))
    return changes


def _entry(result: Result, before: Optional[Result] = None, after: Optional[Result] = None) -> dict:
    return {"name": result.name, "uuid": result.uuid,
            "a": before.status if before else None, "b": after.status if after else None,
            "reason": (after or before).reason if (after or before).status != "success" else None}


def diff(run_a: Path, run_b: Path) -> dict:
    """The whole diff, as --json prints it."""
    a, b = read_run(run_a), read_run(run_b)
    return {"a": str(run_a), "b": str(run_b), "tests_a": len(a), "tests_b": len(b), **compare(a, b)}


WORDS = {"success": "passed", "fail": "failed", "skip": "skipped", None: "not run"}


def render(result: dict) -> str:
    """The diff for a person: one section per kind of change, a test a line."""
    lines = [f"A: {result['a']} ({result['tests_a']} tests)", f"B: {result['b']} ({result['tests_b']} tests)"]
    changed = 0
    for section in SECTIONS:
        entries = result[section]
        changed += len(entries)
        if not entries:
            continue
        lines += ["", f"{TITLES[section]} ({len(entries)}):"]
        for entry in entries:
            uuid = f" [{entry['uuid']}]" if entry["uuid"] else ""
            if entry["a"] and entry["b"]:
                was = f" (was {WORDS[entry['a']]})"
            else:
                was = f" ({WORDS[entry['a'] or entry['b']]} in {'A' if entry['a'] else 'B'})"
            reason = f": {entry['reason']}" if entry["reason"] else ""
            lines.append(f"  {entry['name']}{uuid}{was}{reason}")
    if not changed:
        lines += ["", "No differences: the same tests, with the same results."]
    # Names and reasons come from the saved files, which quote the cloud.
    return printable("\n".join(lines))
