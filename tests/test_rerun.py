"""`tcup rerun RUN` on real runs against a real Keystone.

A test list run where a tempest.conf value (--set) makes the catalog test
fail; rerun with that cause removed: only the failed test runs again, and the
new run merges both into one compliant result with the test marked passed
after a change of settings (the --set named), not flaky. A run whose --set
skips a test, rerun with --include-skipped and the --set that enables it.
An interrupted run (SIGINT while its tests run), resumed with `tcup rerun` on
its .incomplete directory: the tests that had not finished run, and the
merged run holds every selected test once."""

import json
import xml.etree.ElementTree as ET
import re
import shutil
import signal

import pytest

from conftest import openrc, tcup
from test_interrupts import MANY_TESTS, Launched, RunWatch, wait_until_gone

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

V3 = "tempest.api.identity.v3."
CATALOG = (V3 + "test_catalog.IdentityCatalogTest.test_catalog_standardization", "56b57ced-22b8-4127-9b8a-565dfb0207e2")
DISCOVERY = [(V3 + "test_api_discovery.TestApiDiscovery.test_api_media_types", "657c1970-4722-4189-8831-7325f3bc4265"),
             (V3 + "test_api_discovery.TestApiDiscovery.test_list_api_versions", "721f480f-35b6-46c7-846e-047e6acea0dc")]
NOVA_ON = "service_available.nova=true"  # compute "available" in a Keystone-only catalog: the catalog test fails


def by_name(run):
    return {t["name"]: t for t in json.loads((run / "tests.json").read_text())["tests"]}


def new_run(root, before):
    (path,) = {p for p in root.iterdir() if p.is_dir()} - before
    return path


@pytest.fixture(scope="module")
def failed_then_rerun(image, keystone, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rerun")
    listing = tmp / "list.txt"
    listing.write_text("".join(f"{name}[id-{uuid}]\n" for name, uuid in [CATALOG, *DISCOVERY]))
    runs = tmp / "runs"
    env = openrc(keystone, "member", tmp)
    first = tcup(["--no-upload", "--output", str(runs), "--test-list", str(listing), "--set", NOVA_ON], env)
    assert first.returncode == 1, first.stderr[-2000:]
    first_run = new_run(runs, set())
    # By name, as `tcup results` lists it; the new run lands beside it.
    again = tcup(["rerun", first_run.name, "--output", str(runs), "--no-upload",
                  "--set", "service_available.nova=false"], env)
    merged = new_run(runs, {first_run})
    yield first_run, again, merged
    shutil.rmtree(tmp, ignore_errors=True)


def test_rerun_runs_only_the_failures_and_merges_one_verdict(failed_then_rerun):
    first_run, again, merged = failed_then_rerun
    assert again.returncode == 0, again.stderr[-3000:]
    assert (f"tcup: rerunning {first_run.name}: 1 failed test and 0 not run (test list list.txt), with --set "
            "service_available.nova=false") in again.stderr
    assert "tcup: 1 test selected" in again.stderr  # the rerun ran the failure alone
    before, after = by_name(first_run), by_name(merged)
    assert [name for name, t in before.items() if t["status"] == "fail"] == [CATALOG[0]]
    # Every test once; the passes of the first run kept, the failure now passed, fixed by the --set.
    assert sorted(after) == sorted([CATALOG[0]] + [name for name, _ in DISCOVERY])
    assert {name: t["status"] for name, t in after.items()} == dict.fromkeys(after, "success")
    assert after[CATALOG[0]]["fixed_by"] == ["--set service_available.nova=false"]
    assert "flaky" not in after[CATALOG[0]] and after[CATALOG[0]]["reran"] is True
    assert after[CATALOG[0]]["first_reason"] == before[CATALOG[0]]["reason"]
    assert not any(after[name].get("flaky") or after[name].get("reran") for name, _ in DISCOVERY)
    meta = json.loads((merged / "run.json").read_text())
    assert meta["merged_from"] == [first_run.name]
    assert (meta["verdict"], meta["selected"], meta["passed"], meta["failed"], meta["flaky"]) == ("compliant", 3, 3, 0, 0)
    assert meta["label"] == json.loads((first_run / "run.json").read_text())["label"] == "test list list.txt"
    # The rerun's settings are the first run's with the cause removed.
    assert meta["settings"]["choices"]["tempest_options"] == {"service_available.nova": "false"}
    assert [t["uuid"] for t in meta["settings"]["test_list"]["tests"]] == [CATALOG[1]] + [u for _, u in DISCOVERY]
    # One result to upload: all three passes.
    refstack = json.loads((merged / "refstack.json").read_text())
    assert sorted(r["uuid"] for r in refstack["results"]) == sorted([CATALOG[1]] + [u for _, u in DISCOVERY])
    # Both runs' time, in run.json as in refstack.json.
    first_seconds = json.loads((first_run / "run.json").read_text())["duration_seconds"]
    assert meta["duration_seconds"] == refstack["duration_seconds"] >= first_seconds
    compliance = json.loads((merged / "compliance.json").read_text())
    assert (compliance["totals"]["passed"], compliance["totals"]["failed"], compliance["totals"]["pass"]) == (3, 0, 1)
    summary = (merged / "summary.txt").read_text()
    assert f"Merged: {first_run.name} and a rerun of 1 test (its failed tests)" in summary
    assert "Passed: 3  Failed: 0  Skipped: 0\nChanged for the rerun: --set service_available.nova=false\n" in summary
    assert ("Passed after a change of settings (failed, then passed when rerun with the settings named):\n"
            f"  {CATALOG[0]} [{CATALOG[1]}]: passed with --set service_available.nova=false; first failed with ") in summary
    assert "Flaky" not in summary
    assert summary.rstrip().endswith("Verdict: COMPLIANT by the strict rule (every selected test passes): "
                                     "all 3 selected tests passed")
    assert meta["rule"] == "strict"  # a --test-list is judged strictly
    # junit.xml holds all three; the HTML report lists the test as passed after the change, not flaky.
    assert (merged / "junit.xml").read_text().count("<testcase ") == 3
    page = (merged / "report.html").read_text()
    assert '<section id="fixed"><h2>Passed after a change of settings (1)</h2>' in page
    assert 'passed with <span class="mono">--set service_available.nova=false</span>' in page
    assert 'id="flaky"' not in page and '<span class="tag flaky">' not in page and 'id="count-flaky"' not in page


def test_rerun_of_a_run_without_failures_is_refused(failed_then_rerun):
    first_run, again, merged = failed_then_rerun
    done = tcup(["rerun", str(merged), "--no-upload"], openrc_free(merged.parent.parent))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"tcup: error: {merged} has no failed test to rerun (verdict: compliant)"]


@pytest.mark.parametrize("case", ["missing", "not-a-run"])
def test_rerun_bad_input_is_one_line(tmp_path, case):
    target = tmp_path / ("nowhere" if case == "missing" else "empty")
    if case == "not-a-run":
        target.mkdir()
        (target / "tests.json").write_text('{"tests": [], "missing": []}')
    done = tcup(["rerun", str(target)], openrc_free(tmp_path))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("tcup: error: "), done.stderr
    assert ("is not a run directory" if case == "missing" else "does not record its selection") in done.stderr


# A test that Tempest skips unless an option says the feature is there.
APP_CREDENTIAL = (V3 + "test_application_credentials.ApplicationCredentialsV3Test."
                  "test_create_application_credential_access_rules", "529936eb-aa5d-463d-9f79-01c113d3b88f")
APP_CREDENTIALS = "identity-feature-enabled.access_rules"


def test_rerun_include_skipped_runs_a_skip_again_once_a_set_enables_it(image, keystone, tmp_path):
    """A --set that turns application credentials off skips their test; a
    rerun with --include-skipped and the --set that turns them on runs it
    (alone) and the merged run passes. Without --include-skipped there is
    nothing to rerun, and the line says what would."""
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{name}[id-{uuid}]\n" for name, uuid in [APP_CREDENTIAL, DISCOVERY[0]]))
    runs = tmp_path / "runs"
    env = openrc(keystone, "member", tmp_path)
    first = tcup(["--no-upload", "--output", str(runs), "--test-list", str(listing), "--set", f"{APP_CREDENTIALS}=false"],
                 env)
    assert first.returncode == 5, first.stderr[-2000:]  # a skip, under the strict rule
    first_run = new_run(runs, set())
    assert by_name(first_run)[APP_CREDENTIAL[0]]["status"] == "skip"
    refused = tcup(["rerun", str(first_run), "--no-upload"], env)
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        f"tcup: error: {first_run} has no failed test to rerun (verdict: not compliant); --include-skipped reruns "
        "its 1 skipped test"]
    again = tcup(["rerun", str(first_run), "--no-upload", "--include-skipped", "--set", f"{APP_CREDENTIALS}=true"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (f"tcup: rerunning {first_run.name}: 0 failed tests, 1 skipped test and 0 not run (test list list.txt), "
            f"with --set {APP_CREDENTIALS}=true") in again.stderr
    assert "tcup: 1 test selected" in again.stderr
    merged = new_run(runs, {first_run})
    after = by_name(merged)
    assert {name: (t["status"], bool(t.get("reran"))) for name, t in after.items()} == {
        APP_CREDENTIAL[0]: ("success", True), DISCOVERY[0][0]: ("success", False)}
    assert not any("flaky" in t or "fixed_by" in t for t in after.values())  # a skip that passes is a pass
    meta = json.loads((merged / "run.json").read_text())
    assert (meta["verdict"], meta["selected"], meta["passed"], meta["skipped"]) == ("compliant", 2, 2, 0)
    assert meta["settings"]["choices"]["tempest_options"] == {APP_CREDENTIALS: "true"}
    assert meta["duration_seconds"] == json.loads((merged / "refstack.json").read_text())["duration_seconds"]
    summary = (merged / "summary.txt").read_text()
    assert f"Merged: {first_run.name} and a rerun of 1 test (its failed and skipped tests)" in summary
    assert f"Changed for the rerun: --set {APP_CREDENTIALS}=true" in summary


def test_resume_an_interrupted_run(image, keystone, engine, tmp_path):
    runs = tmp_path / "runs"
    env = openrc(keystone, "member", tmp_path)
    with RunWatch(engine, tmp_path) as watch:
        launched = Launched(["--no-upload", "--output", str(runs), "--regex", MANY_TESTS], env, tmp_path)
        selected = int(launched.wait_for(r"^tcup: (\d+) tests selected").group(1))
        passed = launched.wait_for(r"\] passed (tempest\.\S+)").group(1)
        launched.process.send_signal(signal.SIGINT)
        assert launched.finish() == 130, launched.stderr[-3000:]
        wait_until_gone(engine, watch.tcup_containers() | set(watch.seen), watch.volumes())
    (incomplete,) = runs.iterdir()
    assert incomplete.name.endswith(".incomplete") and (incomplete / "settings.json").is_file()
    # What finished before the stop is kept as result files: report, diff, results and upload read them.
    kept = json.loads((incomplete / "tests.json").read_text())["tests"]
    assert 0 < len(kept) < selected and {t["name"]: t["status"] for t in kept}[passed] == "success"
    assert re.search(rf"kept, marked incomplete, in \S+ \({len(kept)} finished tests?: tests\.json", launched.stderr)
    body = json.loads((incomplete / "refstack.json").read_text())
    assert body["cpid"] and {"name": passed.split("[")[0], "uuid": by_uuid_of(kept, passed)} in body["results"]
    assert len(body["results"]) == sum(t["status"] == "success" for t in kept)
    # ... and JUnit XML for a CI job that was stopped: a testcase per finished test, the same statuses.
    suite = ET.parse(incomplete / "junit.xml").getroot().find("testsuite")
    cases = {f"{case.get('classname')}.{case.get('name')}": case for case in suite.iter("testcase")}
    assert sorted(cases) == sorted(t["name"] for t in kept) and int(suite.get("tests")) == len(kept)
    assert int(suite.get("skipped")) == sum(case.find("skipped") is not None for case in cases.values()) \
        == sum(t["status"] == "skip" for t in kept)
    assert float(cases[passed.split("[")[0]].get("time")) > 0
    report = tcup(["report", str(incomplete)], env)
    assert report.returncode == 0 and "INCOMPLETE" in (incomplete / "report.html").read_text()
    listed = tcup(["results", "--output", str(runs)], env)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(incomplete.name))
    assert row.split()[-6:-2] == ["incomplete", str(sum(t["status"] == "success" for t in kept)),
                                str(sum(t["status"] == "fail" for t in kept)), str(sum(t["status"] == "skip" for t in kept))]
    one = tcup(["results", incomplete.name, "--output", str(runs)], env)
    assert one.returncode == 0 and f"Tests: regex {MANY_TESTS}" in one.stdout
    assert (f"Verdict: incomplete ({sum(t['status'] == 'success' for t in kept)} passed, "
            f"{sum(t['status'] == 'fail' for t in kept)} failed") in one.stdout
    same = tcup(["diff", str(incomplete), str(incomplete)], env)
    assert same.returncode == 0 and f"({len(kept)} tests)" in same.stdout

    with RunWatch(engine, tmp_path) as watch:
        done = tcup(["rerun", str(incomplete), "--no-upload"], env)
        wait_until_gone(engine, watch.tcup_containers() | set(watch.seen), watch.volumes())
    said = re.search(r"^tcup: resuming the interrupted run \S+: 0 failed tests and (\d+) not run", done.stderr, re.M)
    assert said, done.stderr[-3000:]
    rerun_selected = int(re.search(r"^tcup: (\d+) tests? selected", done.stderr, re.M).group(1))
    merged = new_run(runs, {incomplete})
    tests = by_name(merged)
    finished_first = [name for name, t in tests.items() if not t.get("reran")]
    # Every selected test once: those that finished first, and the rest run now.
    assert len(tests) == selected
    assert rerun_selected == int(said.group(1)) == selected - len(finished_first)
    assert passed in finished_first and tests[passed]["status"] == "success"
    # A member skips the admin-only tests; none fails.
    count = {status: sum(t["status"] == status for t in tests.values()) for status in ("success", "skip")}
    assert count["success"] + count["skip"] == selected and count["success"] > 0, tests
    assert done.returncode == (5 if count["skip"] else 0), done.stdout[-3000:] + done.stderr[-3000:]
    assert not any(t.get("flaky") for t in tests.values())
    meta = json.loads((merged / "run.json").read_text())
    assert meta["merged_from"] == [incomplete.name]
    assert ((meta["verdict"], meta["selected"], meta["passed"], meta["failed"], meta["skipped"])
            == ("not compliant" if count["skip"] else "compliant", selected, count["success"], 0, count["skip"]))
    assert meta["label"] == f"regex {MANY_TESTS}"
    assert len(json.loads((merged / "refstack.json").read_text())["results"]) == count["success"]
    assert f"Passed: {count['success']}  Failed: 0  Skipped: {count['skip']}" in (merged / "summary.txt").read_text()


def by_uuid_of(tests, name):
    """The uuid tests.json gives the test whose name a live line showed."""
    return next(t["uuid"] for t in tests if t["name"] == name.split("[")[0])


def openrc_free(tmp):
    from conftest import base_env

    return base_env(tmp)


def stored_failed_run(root, name, cpid, credentials, complete=True):
    """A saved run with one failed test, as ``tcup rerun`` reads it: run.json
    (a complete run) or settings.json (an interrupted one) says where it ran."""
    from tcup import contract
    from tcup.launcher.results import rerun as rerun_

    tests = [{"name": CATALOG[0], "uuid": CATALOG[1]}]
    record = rerun_.record(contract.Selection(label="test list list.txt", tests=tests), None, 1, contract.Choices())
    record.update(cpid=cpid, credentials=credentials, rule="strict")
    path = root / (name if complete else name + ".incomplete")
    path.mkdir(parents=True)
    if complete:
        (path / "tests.json").write_text(json.dumps({"tests": [{**tests[0], "status": "fail", "reason": "boom"}],
                                                     "missing": []}))
        (path / "run.json").write_text(json.dumps({"complete": True, "verdict": "failed", "cpid": cpid,
                                                   "credentials": credentials, "settings": record}))
    else:
        (path / "settings.json").write_text(json.dumps(record))
    return path


def keystone_cpid(keystone):
    from tcup.launcher.cloud.identity import cpid_from_catalog

    return cpid_from_catalog(keystone.token("member")[1]["catalog"], keystone.auth_url)


@pytest.mark.parametrize("case", ["other cloud", "admin run, member rerun", "member run resumed by an admin"])
def test_a_rerun_refuses_to_merge_another_cloud_or_mode(keystone, tmp_path, case):
    cpid = keystone_cpid(keystone)
    runs = tmp_path / "runs"
    earlier = {"other cloud": ("0" * 32, "preprovisioned", True),
               "admin run, member rerun": (cpid, "dynamic", True),
               "member run resumed by an admin": (cpid, "preprovisioned", False)}[case]
    path = stored_failed_run(runs, "20260101T000000Z-aaaaaa", *earlier)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    who = "admin" if case == "member run resumed by an admin" else "member"
    done = tcup(["rerun", str(path), "--no-upload"], openrc(keystone, who, tmp_path))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    said = {
        "other cloud": f"tcup: error: {path.name} ran against another cloud (cpid {'0' * 32}) than these credentials "
                       f"reach (cpid {cpid}); a rerun merges only runs of one cloud: source that cloud's credentials, "
                       "or start a new run",
        "admin run, member rerun": f"tcup: error: {path.name} ran as an admin (dynamic credentials), and these "
                                   "credentials would run as a member (pre-provisioned credentials); a rerun merges "
                                   "only runs in one mode: use credentials like the earlier run's, or start a new run",
        "member run resumed by an admin": f"tcup: error: {path.name} ran as a member (pre-provisioned credentials), "
                                          "and these credentials would run as an admin (dynamic credentials); a rerun "
                                          "merges only runs in one mode: use credentials like the earlier run's, or "
                                          "start a new run",
    }[case]
    # One line; nothing written, no container started, no test run.
    assert done.stderr.splitlines() == [said], done.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_rerun_keeps_the_earlier_runs_rule_unless_strict(tmp_path):
    from tcup import contract
    from tcup.launcher.results import verdict as rules
    from tcup.launcher.results import rerun as rerun_

    path = stored_failed_run(tmp_path, "20260101T000000Z-aaaaaa", "c0ffee", "preprovisioned")
    meta = json.loads((path / "run.json").read_text())
    meta["settings"]["rule"] = "no-failures"
    (path / "run.json").write_text(json.dumps(meta))
    plan = rerun_.plan(path)
    assert (plan.rule, plan.cpid, plan.credentials) == (rules.NO_FAILURES, "c0ffee", "preprovisioned")
    cloud = contract.Cloud(cpid="c0ffee", admin=False)
    assert plan.record(plan.rule, cloud)["rule"] == "no-failures"
    assert plan.record(rules.STRICT, cloud)["rule"] == "strict"  # tcup rerun --strict
    # A record without a rule (an older TCUP's) was judged strictly, and is again.
    del meta["settings"]["rule"]
    (path / "run.json").write_text(json.dumps(meta))
    assert rerun_.plan(path).rule is rules.STRICT
