"""A run's failures and skips grouped by cause, largest first, with a hint
where the cause is known: what summary.txt, report.html and the --json
summary show instead of one line per test.

A cause is a reason without what differs between tests with one cause
(verdict.cause: ids, names); the hints match its text. Pure functions over
tests.json's test dicts. Standard library only.
"""

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

from tcup.launcher.errors import plural
from tcup.launcher.results import verdict

# How many test names a group shows; the rest are counted ("and 65 more").
TESTS_SHOWN = 3
STATUS_WORDS = {"fail": "failed", "skip": "skipped"}

# (what the cause says, case-insensitive; the hint): the first that matches gives the hint.
HINTS = (
    (r"volume-backed servers are allowed for flavors with zero disk",
     "the flavor has no disk: name one that has with --flavor and --flavor-alt (`tcup plan -v` lists flavors)"),
    (r"\bresize (is )?not available",
     "--set compute-feature-enabled.resize=true if the cloud can resize"),
    (r"image format|image_format|disk_format|glance does not (currently )?reject",
     "the cloud's Glance checks image formats (Tempest's image-feature-enabled.image_format_enforcement, on by "
     "default); --set image-feature-enabled.image_format_enforcement=false only if it takes any image data"),
    (r"(instance|ssh) validation|validation (is|must be|should be) (required|enabled|not enabled)|run_validation",
     "--set validation.run_validation=true (needs a reachable network for the tests' servers)"),
    (r"not enough accounts|requires? \d+ accounts|more (member )?accounts|insufficient number of users"
     r"|2nd set of api credentials",
     "give more member accounts with --accounts"),
)


@dataclass(frozen=True)
class Cause:
    """Tests that failed, or skipped, for one cause."""

    status: str  # tests.json's: "fail" or "skip"
    cause: str  # the reason, as verdict.cause groups it
    tests: Sequence[str]  # every test's name, sorted
    hint: Optional[str] = None

    @property
    def count(self) -> int:
        return len(self.tests)


def hint_for(cause: str) -> Optional[str]:
    """What to do about a known cause; None for the others."""
    for pattern, hint in HINTS:
        if re.search(pattern, cause, re.IGNORECASE):
            return hint
    return None


def of_tests(tests: Iterable[dict]) -> List[Cause]:
    """tests.json's failures, then its skips, each grouped by cause, largest
    first. A failure under a waiver is left out: the waivers name it."""
    groups = {}
    for test in tests:
        status = test.get("status") if isinstance(test, dict) else None
        if status not in STATUS_WORDS or (status == "fail" and test.get("waived")):
            continue
        key = (status, verdict.cause(test.get("reason")))
        groups.setdefault(key, []).append(str(test.get("name")))
    found = [Cause(status, cause, sorted(names), hint_for(cause)) for (status, cause), names in groups.items()]
    return sorted(found, key=lambda c: (list(STATUS_WORDS).index(c.status), -c.count, c.cause))


def shown_tests(group: Cause, shown: int = TESTS_SHOWN) -> List[str]:
    """The first names of a group, and "and N more" for the rest."""
    rest = group.count - shown
    return list(group.tests[:shown]) + ([f"and {rest} more"] if rest > 0 else [])


def summary_lines(causes: Sequence[Cause]) -> List[str]:
    """summary.txt's sections: "Failures by cause:" and "Skips by cause:",
    each group once: its count and cause, its hint, a few of its tests."""
    lines = []
    for status, title in (("fail", "Failures by cause"), ("skip", "Skips by cause")):
        groups = [group for group in causes if group.status == status]
        if not groups:
            continue
        tests = sum(group.count for group in groups)
        lines += ([""] if lines else []) + [f"{title} ({plural(tests, 'test')}, {plural(len(groups), 'cause')}):"]
        for group in groups:
            lines.append(f"  {group.count} {STATUS_WORDS[status]}: {group.cause}")
            lines += [f"      hint: {group.hint}"] if group.hint else []
            lines += [f"      {name}" for name in shown_tests(group)]
    return lines


def as_json(causes: Sequence[Cause]) -> List[dict]:
    """The --json summary's "causes": each group with its first tests."""
    return [{"status": group.status, "cause": group.cause, "count": group.count,
             "tests": list(group.tests[:TESTS_SHOWN]), "hint": group.hint} for group in causes]
