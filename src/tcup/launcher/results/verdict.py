"""Verdict rules: which results make a run compliant, and the verdict's words.

Each shipped list carries its rule (src/tcup/guidelines/index.json, written
by tools/make_guidelines.py):

  refstack     the interop guidelines: every required test passes; a skipped
               test, or one missing from this Tempest, fails its capability
               (RefStack's own rule)
  no-failures  SCS-0128: no test fails ("Tempest MUST NOT report any failed
               test cases"); skipped tests are allowed, and always reported
  strict       every selected test passes: for --test-list, --regex, a
               guideline file or URL (none carries a rule), and --strict

Exit codes keep their meanings under every rule: 0 compliant, 1 a test
failed, 5 not compliant because of skipped or missing tests (refstack and
strict count them; no-failures does not) or tests that reported nothing,
6 compliant but for failures under a waiver (--waivers).

Standard library only.
"""

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from tcup.contract import EXIT_OK, EXIT_TESTS_FAILED
from tcup.launcher.errors import EXIT_NOT_COMPLIANT, EXIT_WAIVED, plural


@dataclass(frozen=True)
class Rule:
    id: str  # as index.json, run.json and compliance.json name it
    name: str  # how the verdict line names it
    requires: str  # what it asks of the results, in a few words
    counts_skips: bool  # a skipped or missing test makes the run not compliant


REFSTACK = Rule("refstack", "RefStack's rule", "every required test passes; a skipped test fails its capability",
                True)
NO_FAILURES = Rule("no-failures", "the no-failures rule", "no test fails; skips are allowed", False)
STRICT = Rule("strict", "the strict rule", "every selected test passes", True)
RULES = {rule.id: rule for rule in (REFSTACK, NO_FAILURES, STRICT)}

# The most skip reasons a verdict line names; the rest are counted together.
SKIP_REASONS_SHOWN = 5


def named(rule_id: Optional[str]) -> Rule:
    """The rule of that id; a run or list that names none (saved by an
    older TCUP, or a list from a file or URL) is judged strictly."""
    return RULES.get(rule_id or "", STRICT)


def applied(test_list, strict: bool = False) -> Rule:
    """The rule a run is judged by: --strict, else its list's own."""
    return STRICT if strict or test_list is None else named(getattr(test_list, "rule", None))


@dataclass
class Conclusion:
    exit_code: int
    message: Optional[str] = None
    verdict: Optional[str] = None  # "compliant", "failed", "not compliant" or "compliant with waivers"
    verdict_words: str = ""


@dataclass
class Counts:
    """A run's numbers, as the verdict and run.json take them: counted from
    the saved tests (tests.json) for every kind of run, plain, merged or waived."""

    selected: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    missing: int = 0  # tests of the list this Tempest lacks
    waived: int = 0  # failures under a waiver (--waivers)
    flaky: int = 0  # a rerun's: failed first, then passed

    @classmethod
    def of_tests(cls, document: dict, selected: Optional[int] = None) -> "Counts":
        """From tests.json's document. ``selected`` is what the runner ran
        when it knows better than the file: tests that reported nothing are
        in neither."""
        tests = document.get("tests") or []
        status = [test.get("status") for test in tests]
        return cls(selected=len(tests) if selected is None else selected, passed=status.count("success"),
                   failed=status.count("fail"), skipped=status.count("skip"),
                   missing=len(document.get("missing") or []),
                   waived=sum(1 for test in tests if test.get("status") == "fail" and test.get("waived")),
                   flaky=sum(bool(test.get("flaky")) for test in tests))


def judge(counts: Counts, rule: Rule, skips: Sequence[Tuple[str, int]] = ()) -> Conclusion:
    """The verdict of these counts by ``rule``."""
    return verdict(counts.selected, counts.passed, counts.failed, counts.skipped, counts.missing, counts.waived,
                   rule, skips)


def verdict(selected: int, passed: int, failed: int, skipped: int, missing: int, waived: int = 0,
            rule: Rule = STRICT, skips: Sequence[Tuple[str, int]] = ()) -> Conclusion:
    """The run's verdict by ``rule``. ``selected`` are the tests this Tempest
    has (``missing`` are the list's others); ``waived`` of the ``failed`` are
    under a waiver: with nothing else against the run, it is compliant with
    waivers, an exit code of its own, since RefStack will not see those tests
    pass. ``skips`` are (reason, count), largest first, for the words."""
    by = f"by {rule.name} ({rule.requires})"
    unshown = _unshown(skipped, missing, skips)
    if failed > waived:
        return Conclusion(EXIT_TESTS_FAILED, verdict="failed",
                          verdict_words=f"NOT COMPLIANT {by}: {plural(failed - waived, 'test')} failed"
                                        + (f" ({waived} more waived)" if waived else "") + _tail(unshown))
    silent = selected - passed - failed - skipped  # tests that reported no result at all
    against = [f"{plural(silent, 'selected test')} reported no result"] if silent > 0 else []
    if rule.counts_skips:
        against = unshown + against
    if against or not (passed + waived):
        against = against or [f"no test passed ({passed} of {plural(selected, 'selected test')})"]
        return Conclusion(EXIT_NOT_COMPLIANT, verdict="not compliant",
                          verdict_words=f"NOT COMPLIANT {by}: none failed, but {'; '.join(against)}")
    if waived:
        return Conclusion(EXIT_WAIVED, verdict="compliant with waivers",
                          verdict_words=f"COMPLIANT with {plural(waived, 'waiver')} {by}: {passed} of "
                                        f"{plural(selected, 'selected test')} passed, {waived} failed under a waiver"
                                        + _tail(unshown))
    done = f"all {plural(passed, 'selected test')} passed" if passed == selected else f"{passed} passed, none failed"
    return Conclusion(EXIT_OK, verdict="compliant", verdict_words=f"COMPLIANT {by}: {done}" + _tail(unshown))


def _unshown(skipped: int, missing: int, skips: Sequence[Tuple[str, int]]) -> List[str]:
    """The skipped tests by reason and the missing ones, as the verdict says them."""
    said = [f"{plural(skipped, 'test')} skipped" + (f": {skip_words(skips)}" if skips else "")] if skipped else []
    return said + ([f"{plural(missing, 'test')} not in this Tempest"] if missing else [])


def _tail(unshown: List[str]) -> str:
    return "; " + "; ".join(unshown) if unshown else ""



# --- reasons by cause --------------------------------------------------------------------

# What tells one test's reason from another's with the same cause: ids
# (uuids, request ids, long hex ids, IP addresses; not plain numbers: a
# bug's number is the cause of its skip), dotted Python names (test,
# module), test class names ("VolumesListTestJSON skipped as Cinder is not
# available", "TestServerBasicOps ...") and the "(Class:test_method)" a
# Tempest waiter puts before its message.
_PARTICULARS = re.compile(
    r"(?i:(?:\breq-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?i:\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b)"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*){2,}\b"
    r"|\b[A-Z][A-Za-z0-9]*[a-z0-9]Test\w*\b|\bTest[A-Z]\w*\b"
    r"|\(\w+:\w+\)"
)
# A traceback's "tempest.lib.exceptions.Forbidden: ..." names its exception
# by a dotted name: the class's own name stays, its module goes.
_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)(?=:)")


def cause(reason: Optional[str]) -> str:
    """A failure's or skip's reason as grouped by cause: its last line (a
    traceback's says what happened) up to any "; " (advice follows; the
    verdict's line uses "; " between its parts), without ids and test names,
    a lower-case start unless it names an exception."""
    lines = [line.strip() for line in (reason or "").splitlines() if line.strip()]
    text = _EXCEPTION.sub(r"\1", (lines[-1] if lines else "").split("; ")[0])
    text = _PARTICULARS.sub("", text)
    text = re.sub(r"\(\s*\)|\[\s*\]|''|\"\"", "", text)
    text = re.sub(r"\s+", " ", text).strip(" .:;,-")
    if not text:
        return "no reason given"
    # "Resize not available" reads as "4 resize not available"; "API ..." and "Forbidden: ..." keep their capitals.
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first[1:].islower() and not first.endswith(":") else text


def skip_reasons(tests: Iterable[dict]) -> List[Tuple[str, int]]:
    """(reason, count) of tests.json's skipped tests, largest first."""
    counts = {}
    for test in tests:
        if test.get("status") == "skip":
            key = cause(test.get("reason"))
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def skip_words(skips: Sequence[Tuple[str, int]]) -> str:
    """"10 image format enforcement ..., 4 resize not available", the
    largest reasons first, the rest counted together."""
    shown = [f"{count} {reason}" for reason, count in skips[:SKIP_REASONS_SHOWN]]
    rest = skips[SKIP_REASONS_SHOWN:]
    if rest:
        shown.append(f"{sum(count for _, count in rest)} for {plural(len(rest), 'other reason')}")
    return ", ".join(shown)
