"""`tcup --json`: a real run whose stdout is one JSON object, the run's
summary, and whose human text is all on stderr."""

import json

import pytest

from conftest import only_run, openrc, tcup

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

# Five api-discovery tests pass; compute "available" in a Keystone-only
# catalog fails the catalog test.
REGEX = r"^tempest\.api\.identity\.v3\.(test_api_discovery|test_catalog)\."


def test_json_prints_the_summary_alone_on_stdout(image, keystone, watch, tmp_path):
    runs = tmp_path / "runs"
    done = tcup(["--json", "--no-upload", "--output", str(runs), "--regex", REGEX, "--set", "service_available.nova=true"],
                openrc(keystone, "member", tmp_path))
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stdout.endswith("}\n") and done.stdout.count("\n") == 1
    summary = json.loads(done.stdout)
    run = only_run(runs)
    # The one failure, by its cause (the exception, its module and ids left out); no known hint.
    (cause,) = summary.pop("causes")
    assert (cause["status"], cause["count"], cause["hint"]) == ("fail", 1, None)
    assert cause["tests"] == ["tempest.api.identity.v3.test_catalog.IdentityCatalogTest.test_catalog_standardization"]
    assert cause["cause"] and "tempest." not in cause["cause"]
    assert summary == {
        "verdict": "failed",
        "rule": "strict",  # a --regex alone is judged strictly
        "counts": {"selected": 6, "passed": 5, "failed": 1, "skipped": 0, "missing": 0},
        "skip_reasons": [],
        "label": f"regex {REGEX}",
        "run_directory": str(run),
        "upload_url": None,
        "exit_code": 1,
    }
    meta = json.loads((run / "run.json").read_text())
    assert (meta["passed"], meta["failed"], meta["verdict"], meta["rule"]) == (5, 1, "failed", "strict")
    # The human summary went to stderr, whole.
    assert (run / "summary.txt").read_text().strip() in done.stderr
    assert "Verdict: NOT COMPLIANT by the strict rule (every selected test passes): 1 test failed" in done.stderr
    assert f"Results saved in {run}" in done.stderr and "tcup: not uploaded (--no-upload)" in done.stderr


def test_json_after_bad_input_says_the_error_in_both_places(tmp_path, keystone):
    done = tcup(["--json", "--no-upload", "--output", str(tmp_path / "runs"), "--regex", "("],
                openrc(keystone, "member", tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("tcup: error: --regex '(' is not a valid regular expression")
    assert len(done.stderr.strip().splitlines()) == 1
    summary = json.loads(done.stdout)
    assert summary["exit_code"] == 2 and summary["verdict"] is None and summary["run_directory"] is None
    assert summary["error"] == done.stderr.strip()[len("tcup: error: "):]


def test_json_is_refused_with_debug(tmp_path):
    from conftest import base_env

    done = tcup(["--json", "--debug"], base_env(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "tcup: error: --json summarises a run or a plan; drop it for --debug")


def test_plan_json_prints_the_plan_alone_on_stdout(image, keystone, watch, tmp_path):
    runs = tmp_path / "runs"
    done = tcup(["plan", "--json", "--output", str(runs), "--regex", REGEX], openrc(keystone, "member", tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.endswith("}\n") and done.stdout.count("\n") == 1
    plan = json.loads(done.stdout)
    assert "keystone" in plan["services"] and sum(plan["tests"].values()) == 6  # the six REGEX selects
    assert (plan["rule"], plan["label"]) == ("strict", f"regex {REGEX}")
    assert plan["expected_duration"] is None and plan["expected_seconds"] is None  # no run saved yet
    # The human plan went to stderr, whole; nothing was saved.
    assert "tcup: verdict rule: strict" in done.stderr and "tcup: nothing was run" in done.stderr
    assert not runs.exists() or not any(runs.iterdir())
