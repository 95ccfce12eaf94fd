"""Earlier runs' timings, for the live line's ETA: how long each test took
in the newest saved run that has it."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

from tcup import contract
from tcup.launcher.results.runs import SavedRun
from tcup.testids import FIXTURE_ID, read_subunit, split_test_id, test_key

# The newest saved runs whose timings are read: recent runs know today's cloud.
HISTORY_RUNS = 10


def run_timings(run: SavedRun) -> Dict[str, Tuple[float, str]]:
    """Each test of a saved run: (seconds of the run's wall time it took, its
    full id), by test_key. A test's time runs from the end of the one before
    it on the same worker, so class fixtures are counted; a class that a
    fixture skipped or failed reports no test, so its tests (from tests.json)
    share the fixture's time."""
    statuses = [s for s in read_subunit(run.data(contract.SUBUNIT_FILE))
                if s.timestamp is not None and s.status != "exists"]
    last_end: Dict[str, float] = {}
    seconds: Dict[str, float] = {}
    for status in sorted(statuses, key=lambda s: s.timestamp):
        if status.status == "inprogress":
            last_end.setdefault(status.worker, status.timestamp)
            continue
        since = last_end.get(status.worker, status.timestamp)
        seconds[status.test_id] = seconds.get(status.test_id, 0.0) + max(0.0, status.timestamp - since)
        last_end[status.worker] = status.timestamp
    timings, fixtures = {}, {}
    for test_id, took in seconds.items():
        fixture = FIXTURE_ID.match(test_id)
        if fixture:
            fixtures[fixture.group("scope")] = fixtures.get(fixture.group("scope"), 0.0) + took
        else:
            timings[test_key(*split_test_id(test_id))] = (took, test_id)
    if fixtures:
        # An incomplete run has no tests.json: its fixtures' time is not shared out.
        tests = (run.json(contract.TESTS_FILE) or {}).get("tests") or []
        for scope, took in fixtures.items():
            covered = [t for t in tests if t.get("name", "").startswith(scope + ".")
                       and test_key(t["name"], t.get("uuid")) not in timings]
            for test in covered:
                timings[test_key(test["name"], test.get("uuid"))] = (took / len(covered), test["name"])
    return timings


@dataclass
class Timings:
    """How long each test took in the newest saved run that has it."""

    seconds: Dict[str, float] = field(default_factory=dict)  # by test_key
    ids: Dict[str, str] = field(default_factory=dict)  # full test id by test_key, for a --regex

    @classmethod
    def load(cls, root: Path, newest: int = HISTORY_RUNS) -> "Timings":
        timings = cls()
        try:
            runs = sorted((p for p in Path(root).iterdir() if (p / contract.SUBUNIT_FILE).is_file()),
                          key=lambda p: p.name, reverse=True)[:newest]
        except OSError:
            return timings
        for run in runs:  # run names start with their UTC start time: newest first
            try:
                found = run_timings(SavedRun(run))
            except OSError:
                continue
            for key, (took, test_id) in found.items():
                timings.seconds.setdefault(key, took)
                timings.ids.setdefault(key, test_id)
        return timings
