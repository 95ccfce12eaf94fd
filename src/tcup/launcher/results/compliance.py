"""The per-capability compliance report of a run against a guideline's test list.

Results are matched to the list by uuid (idempotent id), never by name:
Tempest renames tests between releases while their uuid stays.

Each test of the list ends in exactly one state:
  passed   its result is "success"
  failed   its result is "fail"
  skipped  its result is "skip" (Tempest or the runner skipped it, with a reason)
  missing  this Tempest has no test with its uuid (the runner's ``missing``)
  not_run  none of the above: no result came back (for example the run stopped)
  waived   its result is "fail", under a waiver (--waivers): still not a pass

A capability's status follows from the states of its tests and the verdict
rule (launcher/results/verdict.py) the run is judged by:
  pass     every test passed; by the no-failures rule, none failed and at
           least one passed, the others skipped or missing (counted, and shown)
  fail     at least one test failed
  partial  none failed, at least one passed, the others not shown: skipped or
           missing (by RefStack's and the strict rule) or not run (any rule)
  skip     none failed and none passed: nothing was shown either way (the
           no-failures rule accepts it when every test was skipped or missing)
  waived   none failed, the others passed, at least one failed under a waiver
By RefStack's rule (and the strict one) a capability needs all its tests
passed, as the Interop WG requires: only "pass" counts. By the no-failures
rule (SCS-0128) a capability counts unless a test failed or reported
nothing. A test that belongs to two capabilities counts in both; totals
count every test once. ``accepted`` per capability and in the totals says
what the rule counts; ``rule`` names it (a report without them was made by
the strict rule).

Standard library only.
"""

from typing import Dict, List, Optional

from tcup.launcher.results import verdict as rules
from tcup.launcher.guideline import TestList
from tcup.testids import valid_uuid

STATES = ("passed", "failed", "skipped", "missing", "not_run")
STATUSES = ("pass", "fail", "partial", "skip")
# Only a run with --waivers can have these; a report shows (and holds) them
# only when a waiver applied.
WAIVED = "waived"
# A list entry without a capability (a plain --test-list) is reported under this name.
NO_CAPABILITY = "(no capability)"
# Several results for one uuid (a retry, an alias run twice): the worst decides.
_RESULT_RANK = {"fail": 2, "success": 1, "skip": 0}
REASON_WIDTH = 200  # rendered reasons are cut here; the report itself keeps them whole


def report(tests: TestList, results: List[dict], missing: List[str], rule: rules.Rule = rules.STRICT) -> dict:
    """The compliance report of ``results`` against ``tests``.

    ``results`` items are ``{"name", "uuid", "status", "reason"}`` with status
    "success", "fail" or "skip" (others, such as "inprogress", are ignored);
    ``missing`` holds the uuids of list tests this Tempest lacks. Returns
    ``{"guideline", "target", "label", "capabilities": {cap: {"status",
    "passed": [name], "failed": [{name, reason}], "skipped": [{name, reason}],
    "missing": [name], "not_run": [name]}}, "totals": {...}}``, names being the
    list's names; ``ran_as`` is added where Tempest ran the test by another name.
    Statuses and ``accepted`` follow ``rule``; ``rule`` holds its id, name and
    what it requires.
    """
    by_uuid = _results_by_uuid(results)
    lacking = {valid_uuid(u) or u for u in missing}
    capabilities: Dict[str, dict] = {}
    counts = dict.fromkeys(STATES, 0)
    waived = 0
    renamed = 0
    for entry in tests.tests:
        result = by_uuid.get(entry["uuid"])
        state, item = _judge(entry, result, lacking)
        if state == WAIVED:
            waived += 1
        else:
            counts[state] += 1
        renamed += bool(result and result.get("name") and result["name"] != entry["name"])
        for capability in _capabilities_of(entry):
            capabilities.setdefault(capability, {s: [] for s in STATES}).setdefault(state, []).append(item)
    for capability in capabilities.values():
        capability["status"] = capability_status(capability, rule)
        capability["accepted"] = accepted(capability["status"], capability, rule)
    listed = set(tests.uuids())
    totals = {
        "tests": len(tests.tests),
        **counts,
        "renamed": renamed,
        "unlisted_results": sum(1 for u in by_uuid if u not in listed),
        "capabilities": len(capabilities),
        **{status: sum(1 for c in capabilities.values() if c["status"] == status) for status in STATUSES},
        "accepted": sum(1 for c in capabilities.values() if c["accepted"]),
    }
    if waived:
        totals[WAIVED] = waived
        totals["waived_capabilities"] = sum(1 for c in capabilities.values() if c["status"] == WAIVED)
    return {
        "guideline": tests.guideline,
        "target": tests.target,
        "label": tests.label,
        "rule": {"id": rule.id, "name": rule.name, "requires": rule.requires},
        "capabilities": dict(sorted(capabilities.items())),
        "totals": totals,
    }


def capability_status(capability: dict, rule: rules.Rule = rules.STRICT) -> str:
    """pass / fail / partial / skip / waived, as the module docstring says."""
    if capability["failed"]:
        return "fail"
    shown = capability["passed"] or capability.get("waived")
    unshown = capability["not_run"] or (rule.counts_skips and (capability["skipped"] or capability["missing"]))
    if unshown or not shown:
        return "partial" if shown else "skip"
    return "waived" if capability.get("waived") else "pass"


def accepted(status: str, capability: dict, rule: rules.Rule) -> bool:
    """Whether ``rule`` counts the capability as met: a pass (or a waived
    failure, under the operator's waiver); by the no-failures rule also one
    whose tests were all skipped or missing, since none failed."""
    if status in ("pass", WAIVED):
        return True
    return not rule.counts_skips and status == "skip" and not capability["not_run"]


def _results_by_uuid(results: List[dict]) -> Dict[str, dict]:
    """The final result of each uuid; results without a uuid cannot be matched and are dropped."""
    chosen: Dict[str, dict] = {}
    for result in results:
        uuid = valid_uuid(result.get("uuid") or "")
        if uuid is None or result.get("status") not in _RESULT_RANK:
            continue
        current = chosen.get(uuid)
        if current is None or _RESULT_RANK[result["status"]] > _RESULT_RANK[current["status"]]:
            chosen[uuid] = result
    return chosen


def _judge(entry: dict, result: Optional[dict], lacking: set):
    """The state of one list test and how it appears in the report."""
    name = entry["name"]
    if result is None:
        return ("missing" if entry["uuid"] in lacking else "not_run"), name
    state = {"success": "passed", "fail": "failed", "skip": "skipped"}[result["status"]]
    if state == "passed":
        return state, name
    item = {"name": name, "reason": result.get("reason")}
    if state == "failed" and result.get("waived"):
        state, item["waiver"] = "waived", result["waived"]
    if result.get("name") and result["name"] != name:
        item["ran_as"] = result["name"]
    return state, item


def _capabilities_of(entry: dict) -> List[str]:
    """Every capability a list test belongs to."""
    return entry.get("capabilities") or [entry.get("capability") or NO_CAPABILITY]


def render(report: dict, skips: bool = True, failures: bool = True) -> str:
    """The report as text: a line per capability, then the failed and
    skipped tests with reasons, then totals. The terminal's table leaves out
    the skips (hundreds can scroll everything else away) and the failures
    (the summary groups them by cause)."""
    capabilities, totals = report["capabilities"], report["totals"]
    width = max([len(c) for c in capabilities] + [10])
    rule = report.get("rule") or {}
    lines = [f"Compliance with {report.get('label') or report['guideline']}"
             + (f", by {rule['name']} ({rule['requires']})" if rule else "")]
    for name, cap in capabilities.items():
        lines.append(f"  {cap['status'].upper():<8} {name:<{width}}  {_counts(cap)}")
    shown = {"failed": failures, WAIVED: True, "skipped": skips}
    for state, title in (("failed", "Failed"), (WAIVED, "Waived (failed, under a waiver)"), ("skipped", "Skipped")):
        lines += _reasons(capabilities, state, title) if shown[state] else []
    for state, title in (("missing", "Not in this Tempest"), ("not_run", "Not run")):
        names = sorted({n for cap in capabilities.values() for n in cap[state]})
        if names:
            lines += ["", f"{title}:"] + [f"  {n}" for n in names]
    lines += ["", _totals(totals, rule.get("name"))]
    return "\n".join(lines) + "\n"


def _counts(cap: dict) -> str:
    """"3/5 passed, 1 failed, 1 skipped" for one capability."""
    total = sum(len(cap.get(s) or []) for s in STATES + (WAIVED,))
    parts = [f"{len(cap['passed'])}/{total} passed"]
    parts += [f"{len(cap[s])} {s.replace('_', ' ')}" for s in STATES[1:] + (WAIVED,) if cap.get(s)]
    return ", ".join(parts)


def _reasons(capabilities: dict, state: str, title: str) -> List[str]:
    """The failed or skipped tests under their capability, each with its reason."""
    lines = []
    for name, cap in capabilities.items():
        for item in cap.get(state) or []:
            also = f" (ran as {item['ran_as']})" if item.get("ran_as") else ""
            lines.append(f"  {name}: {item['name']}{also}")
            lines.append(f"      {_short_reason(item.get('reason'))}")
            if item.get("waiver"):
                waiver = item["waiver"]
                lines.append(f"      waived: {waiver['reason']} ({waiver['bug']}, until {waiver['expires']})")
    return ["", f"{title}:"] + lines if lines else []


def _short_reason(reason: Optional[str]) -> str:
    """One line of a reason: a traceback's last line says what went wrong."""
    text = [line.strip() for line in (reason or "").splitlines() if line.strip()]
    line = text[-1] if text else "no reason given"
    return line if len(line) <= REASON_WIDTH else line[: REASON_WIDTH - 3] + "..."


def _totals(totals: dict, rule_name: Optional[str] = None) -> str:
    """The closing lines: tests by state, capabilities by status (and how
    many the rule counts as met)."""
    tests = ", ".join(f"{totals[s]} {s.replace('_', ' ')}" for s in STATES)
    caps = ", ".join(f"{totals[s]} {s}" for s in STATUSES)
    if totals.get(WAIVED):
        tests += f", {totals[WAIVED]} waived"
        caps += f", {totals['waived_capabilities']} waived"
    met = f"; {totals['accepted']} met by {rule_name}" if rule_name and "accepted" in totals else ""
    line = f"Tests: {totals['tests']} ({tests}).\nCapabilities: {totals['capabilities']} ({caps}){met}."
    if totals["renamed"]:
        count = totals["renamed"]
        line += f"\n{count} test{'s' if count != 1 else ''} ran under another name (matched by idempotent id)."
    return line
