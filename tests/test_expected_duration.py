"""`tcup plan`'s expected duration: told only from earlier runs of the same
cloud (cpid), selection, credentials mode and, when asked for, concurrency."""

import json

from tcup.launcher.results import listing

LABEL = "2020.06 platform"


def saved(root, name, **fields):
    """A complete run directory holding only its run.json."""
    run = {"complete": True, "label": LABEL, "cpid": "cloud-a", "credentials": "preprovisioned", "concurrency": 1,
           "duration_seconds": 60, **fields}
    (root / name).mkdir(parents=True)
    (root / name / "run.json").write_text(json.dumps(run))


def test_only_runs_of_the_same_cloud_selection_mode_and_concurrency_tell_the_duration(tmp_path):
    saved(tmp_path, "20260101T000000Z-000001", duration_seconds=600)
    saved(tmp_path, "20260102T000000Z-000002", duration_seconds=150, concurrency=4)
    # Each later run differs in one thing, so none of them may be the estimate.
    saved(tmp_path, "20260103T000000Z-000003", duration_seconds=7, cpid="cloud-b")
    saved(tmp_path, "20260104T000000Z-000004", duration_seconds=8, label="scs-0128 iaas")
    saved(tmp_path, "20260105T000000Z-000005", duration_seconds=9, credentials="dynamic")
    saved(tmp_path, "20260106T000000Z-000006", duration_seconds=10, complete=False)

    at_one = listing.earlier_run(LABEL, "preprovisioned", "cloud-a", 1, tmp_path)
    assert at_one["name"] == "20260101T000000Z-000001"
    assert listing.expected_duration(at_one) == (
        "about 10 min 0 s (the last such run, 20260101T000000Z-000001, at concurrency 1)")
    at_four = listing.earlier_run(LABEL, "preprovisioned", "cloud-a", 4, tmp_path)
    assert listing.expected_duration(at_four) == (
        "about 2 min 30 s (the last such run, 20260102T000000Z-000002, at concurrency 4)")
    # No concurrency asked for: the last run of this cloud, selection and mode, whatever its concurrency.
    assert listing.earlier_run(LABEL, "preprovisioned", "cloud-a", None, tmp_path)["name"] == "20260102T000000Z-000002"
    assert listing.earlier_run(LABEL, "preprovisioned", "cloud-a", 8, tmp_path) is None
    assert listing.earlier_run(LABEL, "preprovisioned", "cloud-c", None, tmp_path) is None
    assert listing.earlier_run(LABEL, "dynamic", "cloud-b", None, tmp_path) is None
    assert listing.earlier_run("scs-0128 iaas", "preprovisioned", "cloud-a", None, tmp_path)["duration_seconds"] == 8
    assert listing.expected_duration(None) is None


def test_the_stored_runs_are_matched_by_their_cpid(tmp_path):
    from pathlib import Path

    runs = Path(__file__).parent / "data" / "runs"
    meta = json.loads((runs / "a-complete" / "run.json").read_text())
    found = listing.earlier_run(meta["label"], meta["credentials"], meta["cpid"], None, runs)
    assert found is not None and found["cpid"] == meta["cpid"] and found["label"] == meta["label"]
    assert listing.earlier_run(meta["label"], meta["credentials"], "another-cloud", None, runs) is None
