"""`tcup results`: the saved runs, one line each; and what earlier runs say
about a new one (its expected duration, for `tcup plan`)."""

from pathlib import Path
from typing import List, Optional

from tcup import contract
from tcup.launcher.errors import printable
from tcup.launcher.results import context
from tcup.launcher.results.runs import RUN_FILE, SavedRun, default_root
from tcup.launcher.results.verdict import Counts


def list_runs(root: Optional[Path] = None) -> List[dict]:
    """Saved runs under ``root``, oldest first, each as its run.json plus its
    path and upload record; an incomplete run with the counts of the tests
    that finished (the partial tests.json an interrupt leaves), when it has them."""
    root = Path(root or default_root()).expanduser()
    runs = []
    if not root.is_dir():
        return runs
    for path in sorted(root.iterdir()):
        if not path.is_dir():
            continue
        saved = SavedRun(path)
        entry = {"path": str(path), "name": path.name, **(saved.json(RUN_FILE) or {})}
        entry["complete"] = saved.complete
        entry["uploads"] = saved.uploads()
        if not entry["complete"]:
            entry.update(_finished_so_far(saved))
        runs.append(entry)
    return runs


def _finished_so_far(saved: SavedRun) -> dict:
    """An incomplete run's counts and selection, from what it kept."""
    document = saved.json(contract.TESTS_FILE)
    if document is None or not isinstance(document.get("tests"), list):
        return {}
    counts = Counts.of_tests(document)
    settings = saved.settings() or {}
    return {"passed": counts.passed, "failed": counts.failed, "skipped": counts.skipped,
            "label": (settings.get("selection") or {}).get("label"), "cpid": settings.get("cpid")}


def render_runs(runs: List[dict]) -> str:
    """`tcup results`: one line per run, in columns as wide as their widest cell."""
    if not runs:
        return "no saved runs"
    header = ("run", "cpid", "list", "verdict", "pass", "fail", "skip", "upload")
    rows = []
    for run in runs:
        if not run.get("complete") and "passed" not in run:
            rows.append((run["name"], "(incomplete: kept as it was left)"))
            continue
        url = context.newest_url(run.get("uploads"))
        verdict = (run.get("verdict") or "-") if run.get("complete") else "incomplete"
        rows.append((run["name"], str(run.get("cpid") or "?"), str(run.get("label") or "?"), verdict,
                     str(run.get("passed", 0)), str(run.get("failed", 0)), str(run.get("skipped", 0)),
                     url or "not uploaded"))
    full = [header] + [row for row in rows if len(row) == len(header)]
    widths = [max(len(row[i]) for row in full) for i in range(len(header) - 1)]
    numbers = {"pass", "fail", "skip"}
    lines = []
    for row in [header] + rows:
        if len(row) != len(header):
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]}")
            continue
        cells = [cell.rjust(widths[i]) if header[i] in numbers else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join(cells) + "  " + row[-1])
    # run.json and uploads.json quote a server (the result URL).
    return printable("\n".join(lines))


def runs_document(runs: List[dict]) -> dict:
    """`tcup results --json`: each run's name, place, verdict, rule, selection, cloud, counts and
    upload URL (the last upload's; None when not uploaded, or when the run does not say)."""
    keys = ("name", "path", "complete", "verdict", "rule", "label", "cpid", "passed", "failed", "skipped")
    return {"runs": [{**{key: run.get(key) for key in keys},
                      "upload_url": context.newest_url(run.get("uploads"))} for run in runs]}


def earlier_run(label: str, credentials: str, cpid: Optional[str], concurrency: Optional[int] = None,
                root: Optional[Path] = None) -> Optional[dict]:
    """The last complete run of this selection on this cloud, in the same
    mode (admin or member) and, when one is asked for, at this concurrency:
    what a new run's duration is best told from. None when none is saved."""
    same = [run for run in list_runs(root)
            if run.get("complete") and run.get("label") == label and run.get("cpid") == cpid
            and run.get("credentials") == credentials
            and (concurrency is None or run.get("concurrency") == concurrency)
            and isinstance(run.get("duration_seconds"), (int, float))]
    return same[-1] if same else None


def expected_duration(last: Optional[dict]) -> Optional[str]:
    """How long ``last`` (an earlier_run) took, as words; None for no run."""
    if last is None:
        return None
    minutes, seconds = divmod(int(last["duration_seconds"]), 60)
    took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    return f"about {took} (the last such run, {last['name']}, at concurrency {last.get('concurrency')})"


def command(args) -> int:
    """`tcup results`: the saved runs, one a line; with --json, one object.
    `tcup results RUN`: that run, with what it ran with."""
    if args.run is not None:
        return _one(SavedRun.find(args.run, args.output), args.json)
    runs = list_runs(args.output)
    if args.json:
        import json

        print(json.dumps(runs_document(runs)))
    else:
        print(render_runs(runs))
    return 0


def _one(run: SavedRun, as_json: bool) -> int:
    record = run.record()
    found = context.of_run(run)
    entry = {"name": run.path.name, "path": str(run.path), "complete": run.complete, "verdict": record.verdict,
             "label": record.label, "cpid": record.cpid, "passed": record.passed, "failed": record.failed,
             "skipped": record.skipped, "selected": record.selected, "ran_with": context.as_json(found)}
    if not run.complete:
        entry.update(_finished_so_far(run))
    if as_json:
        import json

        print(json.dumps(entry))
        return 0
    counts = (f"{entry.get('passed', 0)} passed, {entry.get('failed', 0)} failed, {entry.get('skipped', 0)} skipped"
              + (f" of {record.selected} selected" if record.selected else ""))
    shown = [f"Run: {run.path.name} ({run.path})", f"Tests: {entry.get('label') or '?'}",
             f"Cloud (cpid): {entry.get('cpid') or '?'}", f"Verdict: {record.verdict or 'incomplete'} ({counts})"]
    print(printable("\n".join(shown + context.lines(found))))
    return 0
