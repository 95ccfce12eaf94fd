"""`tcup diff RUN_A RUN_B`: what changed from one saved run to another.

Tests are matched by their idempotent id (uuid), by name when a test has
none, as RefStack and the guidelines match them; a renamed test is still the
same test. A run is a run directory, or its name as `tcup results` lists it.
"""

import json
from pathlib import Path
from typing import Dict, List, Optional

from tcup.launcher.errors import printable
from tcup.launcher.results.runs import SavedRun, TestResult

# What the lists are called, in the order they are shown.
SECTIONS = ("newly_failing", "newly_passing", "newly_skipped", "only_in_a", "only_in_b")
TITLES = {
    "newly_failing": "Newly failing",
    "newly_passing": "Newly passing",
    "newly_skipped": "Newly skipped",
    "only_in_a": "Missing from B (only in A)",
    "only_in_b": "Missing from A (only in B)",
}


def compare(a: Dict[str, TestResult], b: Dict[str, TestResult]) -> Dict[str, List[dict]]:
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


def _entry(result: TestResult, before: Optional[TestResult] = None, after: Optional[TestResult] = None) -> dict:
    return {"name": result.name, "uuid": result.uuid,
            "a": before.status if before else None, "b": after.status if after else None,
            "reason": (after or before).reason if (after or before).status != "success" else None}


def diff(run_a: Path, run_b: Path) -> dict:
    """The whole diff, as --json prints it."""
    a, b = SavedRun(run_a).results(), SavedRun(run_b).results()
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


def command(args) -> int:
    """`tcup diff RUN_A RUN_B`: the diff, as text or (--json) one JSON object."""
    from tcup.launcher.results.runs import find_run

    compared = diff(find_run(args.run_a, args.output), find_run(args.run_b, args.output))
    print(json.dumps(compared, indent=2) if args.json else render(compared))
    return 0
