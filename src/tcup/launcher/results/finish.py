"""Finishing a run's results, once the container is gone: a rerun merged
into its earlier run, the waivers marked, the verdict, the compliance report,
summary.txt and run.json; then the run directory is marked complete.

The verdict is counted from the saved tests (tests.json) for every kind of
run, plain, merged or waived: the files the user keeps and uploads are what
it judges. What the runner said while it ran (its mode, choices, cleanup and
selection) comes in as ``heard``: the launcher's progress display, read
here, never imported.
"""

import datetime
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from tcup import contract
from tcup.launcher.errors import BadInput, printable
from tcup.launcher.results import causes, compliance, context, verdict, waivers
from tcup.launcher.results.runs import (COMPLIANCE_JSON, COMPLIANCE_TXT, REPORT_FILE, SETTINGS_FILE, RunRecord,
                                        SavedRun, json_object, read_file, write_file, write_json)

# The heading of the runner's list of failed tests in summary.txt
# (runner.result_files.summary_text; results.rerun.write_summary writes it too).
FAILURES_HEADING = "Failures:"


def load_waivers(path: Optional[Path]) -> list:
    """--waivers FILE, read before anything runs (a malformed file is one
    line, exit 2); each expired waiver is said now, once."""
    if path is None:
        return []
    found = waivers.load(path)
    for line in waivers.expired_lines(found, datetime.date.today()):
        print(printable(f"tcup: warning: {line}"), file=sys.stderr, flush=True)
    return found


def record_settings(results_dir: Path, record: dict) -> bool:
    """settings.json in a running run's directory: what resuming it repeats."""
    try:
        write_json(results_dir / SETTINGS_FILE, record)
    except OSError:
        pass  # only a resume needs it; the run goes on, and says at the end if it cannot save
    return True


@dataclass
class Asked:
    """What the run was asked to do and judged by: the saving's inputs from
    the check phase."""

    test_list: object  # a guideline.TestList; None for --regex alone
    selection: contract.Selection
    cloud: contract.Cloud
    rule: verdict.Rule
    waivers: list
    rerun: object = None  # a rerun.Plan: its earlier run is merged into this one
    settings: Optional[dict] = None  # what `tcup rerun` repeats


@dataclass
class Finished:
    path: Path  # the run directory, complete
    conclusion: verdict.Conclusion
    counts: verdict.Counts
    text: str  # what the user reads at the end: summary, compliance, verdict, where


def finish(run_dir, asked: Asked, heard, started: float, image_tag: Optional[str]) -> Finished:
    """The run's result files finished and the directory marked complete.
    ``heard`` is what the runner reported (progress.Progress: mode, choices,
    cleanup, selected, missing, done)."""
    results_dir = run_dir.incomplete
    document = _merge_and_waive(results_dir, asked)
    skips = verdict.skip_reasons(document["tests"]) if document is not None else []
    found = causes.of_tests(document["tests"]) if document is not None else None
    counts = _counts(document, asked, heard)
    conclusion = verdict.judge(counts, asked.rule, skips)
    table = ""
    if asked.test_list is not None and document is not None:
        table = _write_compliance(results_dir, asked.test_list, document, asked.rule)
    extra = _waiver_lines(document, asked.waivers) if asked.waivers else []
    record = _record(asked, heard, started, image_tag, counts, conclusion, skips)
    _write_summary(results_dir, context.lines(context.rows(record)), extra, table, conclusion.verdict_words, found)
    path = run_dir.complete(record.as_json())
    return Finished(path, conclusion, counts, closing_text(path, table, conclusion.verdict_words))


def _merge_and_waive(results_dir: Path, asked: Asked) -> Optional[dict]:
    """tests.json, with a rerun merged into it and the waived failures
    marked (rewritten only then); None when the runner wrote none readable."""
    document = json_object(results_dir / contract.TESTS_FILE)
    if document is None or not isinstance(document.get("tests"), list):
        return None
    if asked.rerun is None and not asked.waivers:
        return document
    from tcup.launcher.results import rerun as rerun_

    if asked.rerun is not None:
        document = rerun_.merge(asked.rerun, results_dir)
    waivers.apply(document["tests"], asked.waivers, datetime.date.today())
    write_json(results_dir / contract.TESTS_FILE, document)
    if asked.rerun is not None:
        rerun_.write_summary(asked.rerun, results_dir, document)
    return document


def _counts(document: Optional[dict], asked: Asked, heard) -> verdict.Counts:
    """From the saved tests; a merged run's selection is the earlier run's
    (rerun.selected: its tests that reported nothing count too). Without a
    readable tests.json, the runner's own numbers (its done event)."""
    if document is not None:
        if asked.rerun is not None:
            from tcup.launcher.results import rerun as rerun_

            return verdict.Counts.of_tests(document, rerun_.selected(asked.rerun, document))
        return verdict.Counts.of_tests(document, heard.selected)
    done = heard.done or {}
    return verdict.Counts(heard.selected, done.get("passed", 0), done.get("failed", 0), done.get("skipped", 0),
                          len(heard.missing))


def _waiver_lines(document: Optional[dict], waiver_list: list) -> List[str]:
    tests = document["tests"] if document is not None else []
    return waivers.summary_lines(tests, waivers.expired_lines(waiver_list, datetime.date.today()))


def _write_compliance(results_dir: Path, test_list, document: dict, rule: verdict.Rule) -> str:
    """compliance.json and compliance.txt by ``rule``; the table (without
    each skip) for the terminal's summary."""
    report = compliance.report(test_list, document["tests"], document.get("missing", []), rule)
    write_json(results_dir / COMPLIANCE_JSON, report)
    write_file(results_dir / COMPLIANCE_TXT, compliance.render(report))
    table = compliance.render(report, skips=False, failures=False)
    if report["totals"]["failed"] or report["totals"]["skipped"]:
        table += "(each failed and skipped test under its capability: compliance.txt in the run directory)\n"
    return table


def _write_summary(results_dir: Path, ran_with: List[str], extra: List[str], table: str, verdict_words: str,
                   found: Optional[List[causes.Cause]]) -> None:
    """summary.txt holds what the terminal shows at the end: the runner's
    summary, what the run ran with (``ran_with``: results/context.py), the
    failures and skips grouped by cause (``found``; None without
    a readable tests.json), the waivers, the compliance table and the verdict.
    The runner's list of each failure goes: with the compliance table's, it
    said every failure twice, and the live display says each as it comes."""
    summary_file = results_dir / contract.SUMMARY_FILE
    try:
        summary = read_file(summary_file)
    except OSError:
        return  # the runner wrote none (or planted something else there)
    grouped = causes.summary_lines(found or [])
    if found is not None:
        summary = _without_failures(summary)
    if grouped:
        grouped.append(f"(each test with its reason and traceback: {REPORT_FILE} in the run directory)")
    parts = [summary.rstrip(), "\n".join(ran_with), "\n".join(grouped), "\n".join(extra), table.rstrip(),
             "Verdict: " + verdict_words]
    write_file(summary_file, "\n\n".join(part for part in parts if part) + "\n")


def _without_failures(summary: str) -> str:
    """The runner's (or a rerun's) summary without its "Failures:" list, a
    line per failed test ("  name [uuid]: reason"), and the blank line before it."""
    lines = summary.splitlines()
    if FAILURES_HEADING not in lines:
        return summary
    start = end = lines.index(FAILURES_HEADING)
    end += 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    if start and not lines[start - 1].strip():
        start -= 1
    return "\n".join(lines[:start] + lines[end:]) + "\n"


def _record(asked: Asked, heard, started: float, image_tag: Optional[str], counts: verdict.Counts,
            conclusion: verdict.Conclusion, skips) -> RunRecord:
    from tcup.launcher.version import version

    done, mode = heard.done or {}, heard.mode or {}
    duration = done.get("duration_seconds")
    if asked.rerun is not None and duration is not None:
        duration += asked.rerun.duration_before  # both runs' time, as the merged refstack.json says
    judged_later = asked.rerun is not None or bool(asked.waivers)  # only these record waived and flaky
    return RunRecord(
        tcup_version=version(), image=image_tag,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        label=asked.selection.label, guideline=getattr(asked.test_list, "guideline", None),
        target=getattr(asked.test_list, "target", None), cpid=asked.cloud.cpid,
        credentials=mode.get("credentials"), concurrency=mode.get("concurrency"), accounts=mode.get("accounts"),
        choices=heard.choices, cleanup=heard.cleanup, duration_seconds=duration,
        passed=counts.passed, failed=counts.failed, skipped=counts.skipped,
        admin_skipped=done.get("admin_skipped", 0), missing=counts.missing, selected=counts.selected,
        verdict=conclusion.verdict, rule=asked.rule.id,
        skip_reasons=[{"reason": reason, "count": count} for reason, count in skips],
        settings=asked.settings, waived=counts.waived if judged_later else None,
        flaky=counts.flaky if judged_later else None,
        merged_from=asked.rerun.merged_from if asked.rerun is not None else None,
        complete=True)


def closing_text(path: Path, table: str = "", verdict_words: str = "") -> str:
    """What the user reads at the end: the saved summary (the runner's, with
    the compliance table and the verdict), and where the results are."""
    try:
        parts = [SavedRun(path).text(contract.SUMMARY_FILE).rstrip()]
    except OSError:
        parts = [part for part in (table.rstrip(), "Verdict: " + verdict_words if verdict_words else "") if part]
    parts.append(f"Results saved in {path}")
    return printable("\n\n".join(parts))


def run_summary(path: Path, selected: int) -> dict:
    """The --json summary of a saved run, from its run.json; its failures
    and skips by cause from its tests.json."""
    run = SavedRun(path)
    record = run.record()
    counts = {"selected": selected, "passed": record.passed, "failed": record.failed, "skipped": record.skipped,
              "missing": record.missing}
    try:
        found = causes.as_json(causes.of_tests(run.tests_document()["tests"]))
    except BadInput:
        found = []  # the runner wrote no tests.json: the counts are its own
    return {"verdict": record.verdict, "rule": record.rule, "counts": counts, "skip_reasons": record.skip_reasons,
            "causes": found, "label": record.label, "run_directory": str(path)}
