"""What an interrupted run keeps: the finished tests' result files.

When Ctrl-C, a signal or a runner error stops a run after its first test,
the runner never writes its result files; its subunit stream, as far as it
got, is in the run directory. From that stream the launcher writes what the
finished tests say (tests.json, refstack.json, junit.xml, compliance.json
and .txt, report.html), in the directory that stays marked ``.incomplete`` (it gets no
run.json): `tcup report`, `tcup diff`, `tcup results` and `tcup upload
--force` then work on it, and `tcup rerun` resumes it from the same stream.
"""

from pathlib import Path
from typing import Dict, List, Optional

from tcup import contract, junit, private_files
from tcup.launcher.results.runs import COMPLIANCE_JSON, COMPLIANCE_TXT, SavedRun, write_file, write_json
from tcup.testids import FIXTURE_ID, read_subunit, split_test_id, test_key


def keep_finished(results_dir: Path, asked=None) -> int:
    """Write the finished tests' result files into an interrupted run's
    directory (``asked``: a finish.Asked, for the cloud and the list);
    returns how many tests had finished. Files the runner wrote are kept."""
    saved = SavedRun(results_dir)
    if (results_dir / contract.TESTS_FILE).exists() or not results_dir.is_dir():
        return 0
    data = saved.stream()
    if data is None:
        return 0
    _, finished = saved.listed_and_finished()
    if not finished:
        return 0
    tests = sorted(({"name": t.name, "uuid": t.uuid, "status": t.status, "reason": t.reason}
                    for t in finished.values()), key=lambda t: t["name"])
    document = {"tests": tests, "missing": [], "incomplete": True}
    write_json(results_dir / contract.TESTS_FILE, document)
    cpid = asked.cloud.cpid if asked is not None else (saved.settings() or {}).get("cpid")
    span = _seconds(data)
    write_json(results_dir / contract.REFSTACK_FILE,
               {"cpid": cpid, "duration_seconds": span, "results": _passed(tests)})
    took = _durations(data)
    cases = (junit.Case(t["name"], t["name"], t["status"], t["reason"] or "",
                        seconds=took.get(test_key(t["name"], t["uuid"]), 0.0)) for t in tests)
    private_files.write_atomically(results_dir / contract.JUNIT_FILE, junit.document(cases, span))
    test_list = getattr(asked, "test_list", None)
    if test_list is not None:
        from tcup.launcher.results import compliance

        report = compliance.report(test_list, tests, [], asked.rule)
        write_json(results_dir / COMPLIANCE_JSON, report)
        write_file(results_dir / COMPLIANCE_TXT, compliance.render(report))
    from tcup.launcher.results import report as report_page

    report_page.write_after_run(results_dir)
    return len(tests)


def _passed(tests: List[dict]) -> List[dict]:
    """RefStack's results: the passed tests, each once."""
    passed = sorted({(t["name"], t["uuid"]) for t in tests if t["status"] == "success"},
                    key=lambda pair: (pair[0], pair[1] or ""))
    return [{"name": name, "uuid": uuid} if uuid else {"name": name} for name, uuid in passed]


def _durations(data: bytes) -> Dict[str, float]:
    """Each finished test's time, from its start to its end in the stream."""
    began, took = {}, {}
    for status in read_subunit(data):
        if status.timestamp is None or FIXTURE_ID.match(status.test_id):
            continue
        key = test_key(*split_test_id(status.test_id))
        if status.status == "inprogress":
            began[key] = status.timestamp
        elif key in began:
            took[key] = max(0.0, status.timestamp - began[key])
    return took


def _seconds(data: bytes) -> int:
    """The stream's span, first timestamp to last: the tests' time so far."""
    stamps: List[float] = [s.timestamp for s in read_subunit(data) if s.timestamp is not None]
    return int(max(stamps) - min(stamps)) if stamps else 0


def kept_words(count: Optional[int]) -> str:
    """How the closing line names what was kept."""
    if not count:
        return ""
    return (f" ({count} finished test{'s' if count != 1 else ''}: tests.json, refstack.json, junit.xml and "
            "report.html; `tcup report`, `tcup diff` and `tcup upload --force` read them, `tcup rerun` resumes "
            "the run)")
