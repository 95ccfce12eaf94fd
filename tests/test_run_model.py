"""The one model of a saved run (results/runs.py), the verdict's counts
(results/verdict.py) and the one parser of test ids (tcup/testids.py):
milliseconds, no engine."""

import json

import pytest

from tcup import contract
from tcup.launcher.errors import BadInput
from tcup import testids
from tcup.launcher.results import runs
from tcup.launcher.results.runs import RECORD_FORMAT, RunRecord, SavedRun
from tcup.launcher.results.verdict import STRICT, Counts, judge

UUID = "6f8e4436-fc96-4282-8122-e41df57197a9"
NAME = "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token"


def test_a_test_id_is_parsed_one_way_on_both_sides():
    split = testids.split_test_id
    assert split(f"{NAME}[id-{UUID.upper()},smoke]") == (NAME, UUID)
    assert split(f"{NAME}[smoke]") == (NAME, None)
    assert split(f"{NAME}[id-not-a-uuid]") == (NAME, None)
    assert split("setUpClass (tempest.api.compute.Foo)") == ("setUpClass (tempest.api.compute.Foo)", None)
    assert testids.valid_uuid(f"id-{UUID.upper()}") == testids.valid_uuid(UUID) == UUID
    assert testids.valid_uuid("id-1234") is None and testids.valid_uuid(None) is None
    assert testids.bare_uuid(f" ID-{UUID} ") == UUID and testids.bare_uuid("") is None
    assert testids.test_key(NAME, UUID.upper()) == UUID and testids.test_key(NAME, None) == NAME


def test_a_run_record_reads_what_any_tcup_wrote_and_writes_its_format():
    older = RunRecord.of({"verdict": "compliant", "passed": 3, "a_later_field": 1, "complete": True})
    assert (older.format, older.verdict, older.passed, older.failed, older.complete) == (1, "compliant", 3, 0, True)
    written = RunRecord(label="x", selected=2, passed=2, verdict="compliant", complete=True).as_json()
    assert written["format"] == RECORD_FORMAT == 2
    assert "waived" not in written and "merged_from" not in written  # only merged or waived runs have them
    assert RunRecord.of(json.loads(json.dumps(written))) == RunRecord.of(written)


def test_the_verdict_counts_come_from_the_saved_tests():
    document = {"tests": [{"name": "a", "status": "success"}, {"name": "b", "status": "fail", "waived": {}},
                          {"name": "c", "status": "fail", "waived": {"reason": "known"}},
                          {"name": "d", "status": "skip"}, {"name": "e", "status": "success", "flaky": True}],
                "missing": ["m"]}
    counts = Counts.of_tests(document)
    assert (counts.selected, counts.passed, counts.failed, counts.skipped, counts.missing) == (5, 2, 2, 1, 1)
    assert (counts.waived, counts.flaky) == (1, 1)  # an empty waiver record is no waiver
    assert Counts.of_tests(document, selected=7).selected == 7  # two reported nothing
    said = judge(Counts.of_tests(document, selected=7), STRICT)
    assert said.exit_code == 1 and said.verdict == "failed"


def _run(tmp_path, files: dict):
    run = tmp_path / "20260101T000000Z-abcdef"
    run.mkdir()
    for name, content in files.items():
        (run / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return run


def test_a_saved_run_is_read_by_one_reader(tmp_path):
    run = _run(tmp_path, {contract.TESTS_FILE: {"tests": [{"name": NAME, "uuid": UUID, "status": "fail",
                                                           "reason": "boom", "flaky": False}],
                                                "missing": []},
                          "run.json": {"complete": True, "label": "L"}})
    saved = SavedRun.find(run.name, tmp_path)
    assert saved.complete and saved.record().label == "L"
    assert saved.tests() == [runs.TestResult(NAME, UUID, "fail", "boom")]
    assert list(saved.results()) == [UUID]
    (run / "run.json").unlink()
    (run / "run.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps({"complete": True}))
    assert not saved.complete and saved.record().complete is False  # never read through a link


def test_what_is_not_a_saved_run_is_refused_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="is not a TCUP run directory"):
        SavedRun.find("empty", tmp_path)
    run = _run(tmp_path, {contract.TESTS_FILE: {"tests": "not a list"}})
    with pytest.raises(BadInput, match="is not TCUP's tests.json"):
        SavedRun(run).tests()
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(BadInput, match="holds no test results"):
        SavedRun(bare).results()
