"""The HTML report of a run: one page, report.html in the run directory, that
a person can open from disk or attach to a ticket.

It is made from the saved files alone (run.json, tests.json, junit.xml,
compliance.json, summary.txt), so `tcup report RUN` can make it again for
any saved run. The page is self-contained: inline CSS, no script, no font,
no image, and a Content-Security-Policy that forbids fetching anything, so
opening it never touches the network. Every text from the run passes through
``html.escape``: test names, reasons and tracebacks come from the cloud.
Tracebacks were masked by the runner before they reached the disk.

Standard library only.
"""

import html
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from tcup import contract
from tcup.launcher.errors import BadInput, plural, printable
from tcup.launcher.results import causes, context
from tcup.launcher.results import verdict as rules
from tcup.launcher.results.runs import COMPLIANCE_JSON, REPORT_FILE, RunRecord, SavedRun, TestResult

SLOWEST = 10
OPEN_TRACEBACKS = 10  # more failures than this show their tracebacks folded
# summary.txt's heading for class and module fixture errors (runner.result_files.summary_text).
FIXTURE_HEADING = "Errors outside the tests (class or module fixtures):"
# tests.json's statuses as a person reads them; others (a later TCUP's) are shown as they are.
STATUS_WORDS = {"success": "passed", "fail": "failed", "skip": "skipped"}
VERDICT_CLASS = {"compliant": "good", "failed": "bad", "not compliant": "warn", "compliant with waivers": "warn"}
# XML 1.0 and HTML forbid most C0 controls; terminal colours in a traceback are noise.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class ShownTest(TestResult):
    """A test as the report shows it: tests.json's entry and junit.xml's detail."""

    detail: str = ""  # the whole traceback of a failure, from junit.xml
    duration: float = 0.0


@dataclass
class RunFacts:
    """What the report shows, read from one run directory."""

    run: SavedRun
    meta: RunRecord  # run.json; empty for an incomplete run
    tests: List[ShownTest]
    missing: List[str]
    compliance: Optional[dict] = None
    fixture_errors: List[str] = field(default_factory=list)
    duration: Optional[float] = None  # the Tempest run's, from junit.xml
    upload_url: Optional[str] = None  # the newest upload's

    @property
    def complete(self) -> bool:
        return self.run.complete

    def count(self, status: str) -> int:
        return sum(test.status == status for test in self.tests)


def read(run: SavedRun) -> RunFacts:
    """The facts of a saved run; a run without tests.json (stopped before
    the runner wrote its results) has nothing to report."""
    tests = [ShownTest(**vars(test)) for test in run.tests()]
    facts = RunFacts(run, run.record(), tests, list(run.tests_document().get("missing") or []),
                     compliance=run.json(COMPLIANCE_JSON))
    facts.duration = _add_junit(run, tests)
    facts.upload_url = context.upload_url(run)
    facts.fixture_errors = _fixture_errors(run)
    return facts


def _add_junit(run: SavedRun, tests: List[ShownTest]) -> Optional[float]:
    """Each test's duration and a failure's whole traceback, from junit.xml
    (tests.json keeps a one-line reason only); the suite's time."""
    try:
        root = ET.fromstring(run.data(contract.JUNIT_FILE))
    except (OSError, ET.ParseError):
        return None
    by_name = {test.name: test for test in tests}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}.{case.get('name', '')}".split("[", 1)[0]
        test = by_name.get(name)
        if test is None:
            continue
        test.duration = _seconds(case.get("time"))
        failure = case.find("failure")
        if failure is not None and failure.text:
            test.detail = failure.text
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return _seconds(suite.get("time")) if suite is not None else None


def _seconds(text: Optional[str]) -> float:
    try:
        return max(float(text or 0), 0.0)
    except ValueError:
        return 0.0


def _fixture_errors(run: SavedRun) -> List[str]:
    """summary.txt's class and module fixture errors: they belong to no test."""
    try:
        lines = run.text(contract.SUMMARY_FILE).splitlines()
    except OSError:
        return []
    if FIXTURE_HEADING not in lines:
        return []
    errors = []
    for line in lines[lines.index(FIXTURE_HEADING) + 1:]:
        if not line.startswith("  "):
            break
        errors.append(line.strip())
    return errors


# --- the page ------------------------------------------------------------------------

def e(text) -> str:
    """Text from the run, safe inside an element or a quoted attribute."""
    return html.escape(_CONTROL.sub("", str(text)), quote=True)


def render(facts: RunFacts) -> str:
    meta = facts.meta
    title = f"TCUP run {facts.run.name}"
    sections = [_header(facts), NAVIGATION, _counts(facts), _causes(facts), _compliance(facts.compliance),
                _failures(facts), _waived(facts), _flaky(facts), _fixed(facts), _skips(facts), _slowest(facts),
                _all_tests(facts)]
    return PAGE.format(title=e(title), style=STYLE, body="\n".join(s for s in sections if s),
                       generated=e(meta.tcup_version or ""))


def _header(facts: RunFacts) -> str:
    meta = facts.meta
    if facts.complete:
        verdict = meta.verdict or "unknown"
        words = _verdict_words(facts, verdict)
    else:
        verdict, words = "incomplete", "INCOMPLETE: the run did not finish; what it wrote is shown"
    merged = meta.merged_from or []
    rows = [("Tests", meta.label), ("Merged from", ", ".join(Path(p).name for p in merged) + " and a rerun"
                                    if merged else None),
            ("Guideline", " ".join(str(part) for part in (meta.guideline, meta.target) if part)),
            ("Started", meta.started), ("Finished", meta.finished),
            ("Tempest run", f"{facts.duration:.0f} s" if facts.duration is not None else None),
            ("Credentials", meta.credentials), ("Concurrency", meta.concurrency),
            ("Cloud (cpid)", meta.cpid), ("TCUP", meta.tcup_version)]
    rows += [(label, value) for _, label, value in context.rows(meta, facts.upload_url)]
    facts_html = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows if v not in (None, ""))
    return (f'<header><h1>TCUP run <span class="mono">{e(facts.run.name)}</span></h1>\n'
            f'<p class="verdict {VERDICT_CLASS.get(verdict, "warn")}" id="verdict">{e(words)}</p>\n'
            f'<table class="facts">{facts_html}</table></header>')


def _rule(facts: RunFacts) -> rules.Rule:
    """The rule the run was judged by; a run saved before runs named theirs was judged strictly."""
    return rules.named(facts.meta.rule)


def _verdict_words(facts: RunFacts, verdict: str) -> str:
    """The verdict as the terminal said it (rules.verdict's words), from the saved results."""
    waived = sum(1 for t in facts.tests if t.status == "fail" and t.waived)
    said = rules.verdict(facts.meta.selected or len(facts.tests), facts.count("success"), facts.count("fail"),
                         facts.count("skip"), len(facts.missing), waived, _rule(facts),
                         rules.skip_reasons({"status": t.status, "reason": t.reason} for t in facts.tests))
    # Results edited since (or a later TCUP's verdict): the recorded verdict stands.
    return said.verdict_words if said.verdict == verdict else verdict.upper()


def _counts(facts: RunFacts) -> str:
    waived = sum(1 for t in facts.tests if t.status == "fail" and t.waived)
    failed = facts.count("fail") - waived
    cells = [("selected", len(facts.tests), ""), ("passed", facts.count("success"), "good"),
             ("failed", failed, "bad" if failed else ""),
             ("skipped", facts.count("skip"), "warn" if facts.count("skip") else "")]
    # Shown only when there are any: most runs have no waiver and no rerun.
    flaky = sum(1 for t in facts.tests if t.flaky)
    cells += [("waived", waived, "warn")] if waived else []
    cells += [("flaky", flaky, "warn")] if flaky else []
    admin = _count(facts.meta.admin_skipped)
    others = sorted({t.status for t in facts.tests} - set(STATUS_WORDS))
    cells += [(status, facts.count(status), "warn") for status in others]
    cells.append(("not in this Tempest", len(facts.missing), "warn" if facts.missing else ""))
    boxes = "".join(f'<div class="count {cls}" id="count-{e(label.replace(" ", "-"))}"><b>{number}</b>'
                    f"<span>{e(label)}</span></div>" for label, number, cls in cells)
    note = (f'<p class="note">{plural(admin, "test")} skipped for lack of admin credentials.</p>'
            if admin else "")
    return f'<section><h2>Counts</h2><div class="counts">{boxes}</div>{note}</section>'


def _count(value) -> int:
    """A count from a saved file, as a number whatever the file holds: it
    goes into the page unescaped."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _causes(facts: RunFacts) -> str:
    """The failures, then the skips, grouped by cause, largest first, each
    with its hint and a few of its tests: what to look at first."""
    found = causes.of_tests({"name": t.name, "status": t.status, "reason": t.reason, "waived": t.waived}
                            for t in facts.tests)
    tables = []
    for status, title in (("fail", "Failures by cause"), ("skip", "Skips by cause")):
        groups = [group for group in found if group.status == status]
        if not groups:
            continue
        rows = "".join(f'<tr><td class="num">{group.count}</td><td>{e(group.cause)}'
                       + (f'<p class="hint">hint: {e(group.hint)}</p>' if group.hint else "")
                       + '</td><td><ul class="names">'
                       + "".join(f'<li class="mono">{e(name)}</li>' for name in causes.shown_tests(group))
                       + "</ul></td></tr>" for group in groups)
        tables.append(f"<h3>{title} ({sum(group.count for group in groups)})</h3>"
                      '<table class="grid"><thead><tr><th>Count</th><th>Cause</th><th>Tests</th></tr></thead>'
                      f"<tbody>{rows}</tbody></table>")
    body = "".join(tables) or "<p>None: no test failed or was skipped.</p>"
    return f'<section id="causes"><h2>Failures and skips by cause</h2>{body}</section>'


def _compliance(report: Optional[dict]) -> str:
    if not report:
        return ('<section id="compliance"><h2>Compliance</h2><p class="note">No compliance report: this run '
                "selected its tests by regex, not from a guideline or test list.</p></section>")
    rows = []
    # What needs a look first: failing capabilities, then the partly shown ones.
    order = {"fail": 0, "partial": 1, "pass": 2, "skip": 3}
    found = report.get("capabilities") if isinstance(report.get("capabilities"), dict) else {}
    capabilities = sorted(((str(name), cap) for name, cap in found.items() if isinstance(cap, dict)),
                          key=lambda item: (order.get(item[1].get("status"), 4), item[0]))
    totals = {key: _count(value) for key, value in report.get("totals", {}).items()} \
        if isinstance(report.get("totals"), dict) else {}
    states = ("failed", "skipped", "missing", "not_run") + (("waived",) if totals.get("waived") else ())
    for name, cap in capabilities:
        numbers = {state: len(cap.get(state) or []) if isinstance(cap.get(state), list) else 0
                   for state in ("passed",) + states}
        total = sum(numbers.values())
        status = str(cap.get("status", "?"))
        rows.append(f'<tr class="cap-{e(status)}"><td><span class="tag {e(status)}">{e(status.upper())}</span></td>'
                    f'<td class="mono">{e(name)}</td><td class="num">{numbers["passed"]}/{total}</td>'
                    + "".join(f'<td class="num">{numbers[s] or ""}</td>' for s in states)
                    + "</tr>")
    summary = (f"{plural(totals.get('capabilities', 0), 'capability')}: {totals.get('pass', 0)} pass, "
               f"{totals.get('fail', 0)} fail, {totals.get('partial', 0)} partial, {totals.get('skip', 0)} skip. "
               f"{plural(totals.get('tests', 0), 'test')} on the list: {totals.get('passed', 0)} passed, "
               f"{totals.get('failed', 0)} failed, {totals.get('skipped', 0)} skipped, "
               f"{totals.get('missing', 0)} not in this Tempest, {totals.get('not_run', 0)} not run.")
    if totals.get("waived"):
        summary += f" {totals['waived']} failed under a waiver (not a pass)."
    label = report.get("label") or report.get("guideline") or ""
    return (f'<section id="compliance"><h2>Compliance with {e(label)}</h2><p>{e(summary)}</p>'
            f'<p class="note">{e(_capability_rule(report))}</p>'
            '<table class="grid"><thead><tr><th>Status</th><th>Capability</th><th>Passed</th><th>Failed</th>'
            f'<th>Skipped</th><th>Missing</th><th>Not run</th>{"<th>Waived</th>" if "waived" in states else ""}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</section>")


def _capability_rule(report: dict) -> str:
    """What a capability's status means under the report's rule (a report
    that names none was made strictly)."""
    rule = rules.named((report.get("rule") or {}).get("id"))
    if rule.counts_skips:
        return f"By {rule.name}, a capability passes only when every one of its tests passed."
    return (f"By {rule.name}, a capability passes when none of its tests failed and at least one passed; its "
            "skipped tests are counted beside it, and one whose tests all skipped shows SKIP.")


def _failures(facts: RunFacts) -> str:
    failed = sorted((t for t in facts.tests if t.status == "fail" and not t.waived), key=lambda t: t.name)
    if not failed and not facts.fixture_errors:
        return '<section id="failures"><h2>Failures</h2><p>None.</p></section>'
    items = []
    # A few tracebacks are read in full; hundreds would bury everything below them.
    state = " open" if len(failed) <= OPEN_TRACEBACKS else ""
    for test in failed:
        traceback = test.detail or test.reason or "no traceback was recorded"
        items.append(f'<article class="failure"><h3 class="mono">{e(test.name)}</h3>'
                     f'<p class="meta">id {e(test.uuid or "?")} &middot; {test.duration:.2f} s</p>'
                     f'<p class="reason">{e(test.reason or "failed")}</p>'
                     f"<details{state}><summary>Traceback</summary><pre>{e(traceback)}</pre></details></article>")
    fixtures = ""
    if facts.fixture_errors:
        fixtures = ("<h3>Errors outside the tests (class or module fixtures)</h3><ul>"
                    + "".join(f'<li class="mono">{e(line)}</li>' for line in facts.fixture_errors) + "</ul>")
    return f'<section id="failures"><h2>Failures ({len(failed)})</h2>{"".join(items)}{fixtures}</section>'


def _waived(facts: RunFacts) -> str:
    """Failures under a waiver: still failures, with the waiver that covers them."""
    waived = sorted((t for t in facts.tests if t.status == "fail" and t.waived), key=lambda t: t.name)
    if not waived:
        return ""
    items = "".join(
        f'<article class="failure waived"><h3 class="mono">{e(t.name)} <span class="tag waived">WAIVED</span></h3>'
        f'<p class="meta">id {e(t.uuid or "?")} &middot; waiver: {e(t.waived.get("reason"))} &middot; bug '
        f'{e(t.waived.get("bug"))} &middot; until {e(t.waived.get("expires"))}</p>'
        f'<p class="reason">{e(t.reason or "failed")}</p>'
        f'<details><summary>Traceback</summary><pre>{e(t.detail or t.reason or "no traceback was recorded")}</pre>'
        "</details></article>" for t in waived)
    return (f'<section id="waived"><h2>Waived failures ({len(waived)})</h2><p class="note">Failures an operator '
            "waived (--waivers): they count as failed for RefStack, which receives passed tests only.</p>"
            f"{items}</section>")


def _flaky(facts: RunFacts) -> str:
    """Tests that failed, then passed when the run was rerun."""
    flaky = sorted((t for t in facts.tests if t.flaky), key=lambda t: t.name)
    if not flaky:
        return ""
    rows = "".join(f'<tr><td class="mono">{e(t.name)} <span class="tag flaky">FLAKY</span></td>'
                   f'<td>{e(t.first_reason or "no reason recorded (the first run was interrupted)")}</td></tr>'
                   for t in flaky)
    return (f'<section id="flaky"><h2>Flaky tests ({len(flaky)})</h2><p class="note">Failed in the earlier run, '
            "passed when rerun (tcup rerun); counted as passed.</p>"
            f'<table class="grid"><thead><tr><th>Test</th><th>First failure</th></tr></thead><tbody>{rows}</tbody>'
            "</table></section>")


def _fixed(facts: RunFacts) -> str:
    """Tests that failed, then passed when rerun with other settings: not flaky, fixed by the change."""
    fixed = sorted((t for t in facts.tests if t.fixed_by and not t.flaky), key=lambda t: t.name)
    if not fixed:
        return ""
    rows = "".join(f'<li><span class="mono">{e(t.name)}</span>: passed with '
                   f'<span class="mono">{e(", ".join(map(str, t.fixed_by)))}</span>; first failed with '
                   f'{e(t.first_reason or "no reason recorded (the first run was interrupted)")}</li>' for t in fixed)
    return (f'<section id="fixed"><h2>Passed after a change of settings ({len(fixed)})</h2><p class="note">Failed '
            "in the earlier run, passed when rerun with the settings named (tcup rerun); counted as passed.</p>"
            f"<ul>{rows}</ul></section>")


def _skips(facts: RunFacts) -> str:
    skipped = sorted((t for t in facts.tests if t.status == "skip"), key=lambda t: t.name)
    if not skipped:
        return '<section id="skips"><h2>Skips</h2><p>None.</p></section>'
    rows = "".join(f'<tr><td class="mono">{e(t.name)}</td><td>{e(t.reason or "no reason given")}</td></tr>'
                   for t in skipped)
    # Grouped by cause once, near the top (_causes); here each test.
    return (f'<section id="skips"><h2>Skips ({len(skipped)})</h2>'
            '<p class="note">Grouped by cause under <a href="#causes">Failures and skips by cause</a>.</p>'
            f"<details><summary>Every skipped test with its reason</summary>"
            f'<table class="grid"><thead><tr><th>Test</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table>'
            "</details></section>")


def _slowest(facts: RunFacts) -> str:
    timed = sorted(facts.tests, key=lambda t: (-t.duration, t.name))[:SLOWEST]
    if not timed:
        return '<section id="slowest"><h2>Slowest tests</h2><p>No test ran.</p></section>'
    total = sum(t.duration for t in facts.tests)
    rows = "".join(f'<tr><td class="num">{t.duration:.2f} s</td><td>{e(STATUS_WORDS.get(t.status, t.status))}</td>'
                   f'<td class="mono">{e(t.name)}</td></tr>' for t in timed)
    return (f'<section id="slowest"><h2>The {plural(len(timed), "slowest test")}</h2>'
            f"<p>All tests together took {total:.1f} s.</p>"
            f'<table class="grid"><thead><tr><th>Duration</th><th>Result</th><th>Test</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></section>")


def _all_tests(facts: RunFacts) -> str:
    rows = "".join(f'<tr><td class="mono">{e(t.name)}</td><td class="mono">{e(t.uuid or "")}</td>'
                   f'<td><span class="tag {e(t.status)}">{e(STATUS_WORDS.get(t.status, t.status))}</span>'
                   f'{_marks(t)}</td>'
                   f'<td class="num">{t.duration:.2f}</td></tr>' for t in sorted(facts.tests, key=lambda t: t.name))
    missing = ""
    if facts.missing:
        missing = (f"<h3>On the list but not in this Tempest ({len(facts.missing)})</h3><ul>"
                   + "".join(f'<li class="mono">{e(uuid)}</li>' for uuid in facts.missing) + "</ul>")
    return (f'<section id="tests"><h2>Every test</h2><details><summary>{plural(len(facts.tests), "test")} with '
            f'result and duration (s)</summary><table class="grid"><thead><tr><th>Test</th><th>Id</th>'
            f'<th>Result</th><th>Duration</th></tr></thead><tbody>{rows}</tbody></table></details>{missing}</section>')


def _marks(test: TestResult) -> str:
    """A test's labels beside its result: flaky (a rerun's), waived."""
    return ((' <span class="tag flaky">flaky</span>' if test.flaky else "")
            + (' <span class="tag waived">waived</span>' if test.waived else ""))


NAVIGATION = ('<nav><a href="#causes">Causes</a> &middot; <a href="#compliance">Compliance</a> &middot; '
              '<a href="#failures">Failures</a> &middot; '
              '<a href="#skips">Skips</a> &middot; <a href="#slowest">Slowest</a> &middot; '
              '<a href="#tests">Every test</a></nav>')

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="TCUP {generated}">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2327; background: #fff; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: .5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ccd; }
h3 { font-size: 1rem; margin: .2rem 0; word-break: break-all; }
.mono, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85rem; }
.verdict { font-size: 1.2rem; font-weight: bold; padding: .6rem 1rem; border-radius: 4px; }
.verdict.good { background: #e3f5e1; color: #14591d; } .verdict.bad { background: #fbe3e4; color: #8a1f11; }
.verdict.warn { background: #fff4d6; color: #6b4e00; }
table { border-collapse: collapse; } .facts th { text-align: left; padding-right: 1rem; color: #555; }
.grid { width: 100%; margin: .5rem 0; } .grid th, .grid td { border: 1px solid #dde; padding: .2rem .4rem;
       text-align: left; vertical-align: top; } .grid thead th { background: #f3f4f8; }
.grid td.mono { word-break: break-all; } .num { text-align: right; white-space: nowrap; }
.counts { display: flex; gap: .8rem; flex-wrap: wrap; }
.count { border: 1px solid #dde; border-radius: 4px; padding: .5rem 1rem; min-width: 6rem; text-align: center; }
.count b { display: block; font-size: 1.6rem; } .count.good b { color: #14591d; } .count.bad b { color: #b3261e; }
.count.warn b { color: #8a6500; }
.tag { font-size: .75rem; font-weight: bold; padding: 0 .3rem; border-radius: 3px; background: #eee; }
.tag.pass, .tag.success { background: #e3f5e1; color: #14591d; }
.tag.fail { background: #fbe3e4; color: #8a1f11; }
.tag.partial, .tag.skip, .tag.flaky, .tag.waived { background: #fff4d6; color: #6b4e00; }
.failure.waived { border-left-color: #8a6500; background: #fffbef; }
.failure { border-left: 4px solid #b3261e; padding: .2rem .8rem; margin: 1rem 0; background: #fdf7f7; }
.hint { color: #1a4d8f; margin: .2rem 0 0; } .names { margin: 0; padding-left: 1rem; }
.reason { font-weight: bold; word-break: break-word; } .meta, .note { color: #555; font-size: .85rem; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
nav { margin: 1rem 0; } nav a, details > summary { color: #1a4d8f; }
details > summary { cursor: pointer; color: #1a4d8f; }
"""


def write(path: Path) -> Path:
    """report.html for the run in ``path``, owner-only like every result file."""
    from tcup.launcher.results.runs import write_file

    target = path / REPORT_FILE
    write_file(target, render(read(SavedRun(path))))
    return target


def write_after_run(path: Path) -> Optional[Path]:
    """At the end of a run: the report is a view of files already saved, so
    failing to write it costs nothing that `tcup report RUN` cannot redo."""
    try:
        return write(path)
    except (OSError, BadInput) as error:
        print(printable(f"tcup: warning: no {REPORT_FILE} ({error}); make it later with: tcup report {path}"),
              file=sys.stderr)
        return None


def command(args) -> int:
    """`tcup report RUN`: make report.html again for a saved run; print its path."""
    path = SavedRun.find(args.run, args.output).path
    try:
        target = write(path)
    except OSError as error:
        raise BadInput(f"cannot write {path / REPORT_FILE} ({error.strerror or error})")
    print(target)
    return 0
