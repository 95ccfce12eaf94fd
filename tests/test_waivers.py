"""--waivers FILE on real runs against a real Keystone of their own (the
lockout test acts on the member's account).

Two failures are forced with tempest.conf values (--set): the catalog test
(compute "available" in a Keystone-only catalog) and the lockout test
(security compliance "on" in a Keystone with no lockout). The first run
waives the catalog failure and has an expired waiver for the lockout one:
the run fails on the lockout test alone, and the expired waiver is said.
A rerun with a waiver in force for both is compliant with waivers (exit 6);
neither failure is ever in what would be uploaded.

A malformed waivers file is refused before anything is contacted: those
tests need neither an engine nor a Keystone."""

import datetime
import json
import shutil

import pytest

from conftest import ADMIN_CANARY, MEMBER_CANARY, base_env, openrc, tcup
from tcup.launcher.errors import BadInput
from tcup.launcher.results import waivers

V3 = "tempest.api.identity.v3."
CATALOG = (V3 + "test_catalog.IdentityCatalogTest.test_catalog_standardization", "56b57ced-22b8-4127-9b8a-565dfb0207e2")
LOCKOUT = (V3 + "test_users.IdentityV3UsersTest.test_user_account_lockout", "a7ad8bbf-2cff-4520-8c1d-96332e151658")
PASSING = [(V3 + "test_api_discovery.TestApiDiscovery.test_api_media_types", "657c1970-4722-4189-8831-7325f3bc4265"),
           (V3 + "test_api_discovery.TestApiDiscovery.test_list_api_versions", "721f480f-35b6-46c7-846e-047e6acea0dc")]
CATALOG_WAIVER = f"""- test: id-{CATALOG[1]}
  reason: this cloud has no compute yet
  bug: https://bugs.example.com/101
  expires: 2999-12-31
"""
EXPIRED_LOCKOUT_WAIVER = """- test: 'IdentityV3UsersTest\\.test_user_account_lockout'
  reason: lockout is off here
  bug: https://bugs.example.com/202
  expires: 2000-01-31
"""
LOCKOUT_WAIVER = EXPIRED_LOCKOUT_WAIVER.replace("2000-01-31", "2999-12-31")


@pytest.fixture(scope="module")
def waived_runs(image, engine, tmp_path_factory):
    from keystone_cloud import KeystoneCloud

    tmp = tmp_path_factory.mktemp("waivers")
    listing = tmp / "list.txt"
    listing.write_text("".join(f"{name}[id-{uuid}]\n" for name, uuid in [CATALOG, LOCKOUT, *PASSING]))
    first_waivers, second_waivers = tmp / "first.yaml", tmp / "second.yaml"
    first_waivers.write_text(CATALOG_WAIVER + EXPIRED_LOCKOUT_WAIVER)
    second_waivers.write_text(CATALOG_WAIVER + LOCKOUT_WAIVER)
    runs = tmp / "runs"
    cloud = KeystoneCloud(tmp / "cloud", admin_password=ADMIN_CANARY, member_password=MEMBER_CANARY).start()
    try:
        env = openrc(cloud, "member", tmp)
        first = tcup(["--no-upload", "--output", str(runs), "--test-list", str(listing), "--waivers", str(first_waivers),
                      "--set", "service_available.nova=true", "--set", "identity-feature-enabled.security_compliance=true"],
                     env)
        (first_run,) = runs.iterdir()
        second = tcup(["rerun", str(first_run), "--no-upload", "--waivers", str(second_waivers)], env)
        (second_run,) = set(runs.iterdir()) - {first_run}
    finally:
        cloud.stop()
    yield (first, first_run), (second, second_run)
    shutil.rmtree(tmp, ignore_errors=True)


def statuses(run):
    return {t["name"]: (t["status"], (t.get("waived") or {}).get("bug"))
            for t in json.loads((run / "tests.json").read_text())["tests"]}


@pytest.mark.engine
@pytest.mark.keystone
def test_a_waived_failure_is_shown_as_waived_and_an_expired_waiver_waives_nothing(waived_runs):
    (done, run), _ = waived_runs
    assert done.returncode == 1, done.stderr[-3000:]  # the lockout failure is not waived
    expired = ("tcup: warning: waiver 2 (IdentityV3UsersTest\\.test_user_account_lockout; https://bugs.example.com/202) "
               "expired on 2000-01-31, so since 2000-02-01 it waives nothing")
    assert done.stderr.splitlines().count(expired) == 1, done.stderr[-3000:]
    # Still failures in tests.json; only the catalog one carries its waiver.
    assert statuses(run) == {CATALOG[0]: ("fail", "https://bugs.example.com/101"), LOCKOUT[0]: ("fail", None),
                             PASSING[0][0]: ("success", None), PASSING[1][0]: ("success", None)}
    # What RefStack would receive: the two passes, never a waived failure.
    refstack = json.loads((run / "refstack.json").read_text())
    assert sorted(r["uuid"] for r in refstack["results"]) == sorted(uuid for _, uuid in PASSING)
    meta = json.loads((run / "run.json").read_text())
    assert (meta["verdict"], meta["passed"], meta["failed"], meta["waived"]) == ("failed", 2, 2, 1)
    summary = (run / "summary.txt").read_text()
    assert ("Waived failures (still failures; not uploaded as passed):\n"
            f"  {CATALOG[0]} [{CATALOG[1]}]: this cloud has no compute yet (https://bugs.example.com/101, "
            "until 2999-12-31)\n") in summary
    assert "Expired waivers (not applied):\n  waiver 2 (" in summary
    verdict = "NOT COMPLIANT by the strict rule (every selected test passes): 1 test failed (1 more waived)"
    assert summary.rstrip().endswith("Verdict: " + verdict)
    report = json.loads((run / "compliance.json").read_text())
    assert (report["totals"]["failed"], report["totals"]["waived"], report["totals"]["passed"]) == (1, 1, 2)
    (cap,) = report["capabilities"].values()
    assert cap["status"] == "fail"
    assert [item["name"] for item in cap["waived"]] == [CATALOG[0]]
    assert cap["waived"][0]["waiver"]["bug"] == "https://bugs.example.com/101"
    assert "Waived (failed, under a waiver):" in (run / "compliance.txt").read_text()
    page = (run / "report.html").read_text()
    assert '<section id="waived"><h2>Waived failures (1)</h2>' in page
    assert 'id="count-waived"><b>1</b>' in page and 'id="count-failed"><b>1</b>' in page
    assert verdict in page


@pytest.mark.engine
@pytest.mark.keystone
def test_a_rerun_with_every_failure_waived_is_compliant_with_waivers(waived_runs):
    (_, first_run), (done, run) = waived_runs
    assert done.returncode == 6, done.stderr[-3000:]
    assert "tcup: 2 tests selected" in done.stderr  # the two failures, run again
    assert "expired" not in done.stderr
    assert statuses(run) == {CATALOG[0]: ("fail", "https://bugs.example.com/101"),
                             LOCKOUT[0]: ("fail", "https://bugs.example.com/202"),
                             PASSING[0][0]: ("success", None), PASSING[1][0]: ("success", None)}
    refstack = json.loads((run / "refstack.json").read_text())
    assert sorted(r["uuid"] for r in refstack["results"]) == sorted(uuid for _, uuid in PASSING)
    meta = json.loads((run / "run.json").read_text())
    assert (meta["verdict"], meta["passed"], meta["failed"], meta["waived"]) == ("compliant with waivers", 2, 2, 2)
    assert meta["merged_from"] == [first_run.name]
    verdict = ("COMPLIANT with 2 waivers by the strict rule (every selected test passes): 2 of 4 selected tests "
               "passed, 2 failed under a waiver")
    assert (run / "summary.txt").read_text().rstrip().endswith("Verdict: " + verdict)
    assert "Failures:" not in (run / "summary.txt").read_text()  # both are waived
    report = json.loads((run / "compliance.json").read_text())
    assert [cap["status"] for cap in report["capabilities"].values()] == ["waived"]
    page = (run / "report.html").read_text()
    assert verdict in page and '<section id="waived"><h2>Waived failures (2)</h2>' in page
    assert 'id="count-failed"><b>0</b>' in page


GOOD = "- {test: x, reason: r, bug: 'https://b/1', expires: 2999-01-01}\n"


@pytest.mark.parametrize("content, says", [
    ("- test: [unclosed\n", "is not valid YAML at line 2: expected ',' or ']'"),
    ("test: x\n", "expected a list of waivers"),
    ("- test: x\n  reason: r\n  expires: 2999-01-01\n", "waiver 1 has no 'bug'"),
    ("- {test: x, reason: r, bug: 'https://b/1', expires: soon}\n", "waiver 1: expires 'soon' is not a date"),
    (GOOD + "- {test: x, reason: r, bug: 'https://b/1', expires: 2027-13-45}\n",
     "waiver 2: expires '2027-13-45' is not a date (YYYY-MM-DD)"),
    ("- {test: '(', reason: r, bug: 'https://b/1', expires: 2999-01-01}\n", "neither a uuid nor a valid regular"),
    ("- {test: x, reason: r, bug: 'not a url', expires: 2999-01-01}\n", "is not an http(s) URL"),
    ("- {test: x, reason: r, bug: 'https://b/1', expires: 2999-01-01, owner: me}\n", "unknown field 'owner'"),
    ('[{"test": "x", "reason": "r", "bug": "https://b/1", "expires": 20991231}]', "waiver 1: expires 20991231"),
])
def test_a_malformed_waivers_file_is_one_line(tmp_path, content, says):
    """As a user meets it: read before credentials or a cloud are looked for
    (no OS_* is set here), one line, exit 2."""
    waivers_file = tmp_path / "waivers.yaml"
    waivers_file.write_text(content)
    done = tcup(["--no-upload", "--regex", "x", "--waivers", str(waivers_file)], base_env(tmp_path), timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"tcup: error: --waivers {waivers_file}")
    assert says in done.stderr


def _refusal(tmp_path, content) -> str:
    path = tmp_path / "waivers.yaml"
    path.write_text(content) if isinstance(content, str) else path.write_bytes(content)
    with pytest.raises(BadInput) as refused:
        waivers.load(path)
    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert "\n" not in message
    prefix = f"--waivers {path}"
    assert message.startswith(prefix)
    return message[len(prefix):]


ENTRY = {"test": "x", "reason": "r", "bug": "'https://b/1'", "expires": "2999-01-01"}


def entry(**changed) -> str:
    fields = {**ENTRY, **changed}
    return "- {" + ", ".join(f"{key}: {value}" for key, value in fields.items() if value is not None) + "}\n"


@pytest.mark.parametrize("content, says", [
    (entry(expires="2027-13-45"), ": waiver 1: expires '2027-13-45' is not a date (YYYY-MM-DD)"),
    (entry(expires="2027-02-30"), ": waiver 1: expires '2027-02-30' is not a date (YYYY-MM-DD)"),
    (entry(expires="2027-01-01 10:00:00"), ": waiver 1: expires '2027-01-01 10:00:00' is not a date (YYYY-MM-DD)"),
    (entry(expires="20270101"), ": waiver 1: expires 20270101 is not a date (YYYY-MM-DD)"),
    (entry(expires="[2027-01-01]"), ": waiver 1: expires ['2027-01-01'] is not a date (YYYY-MM-DD)"),
    (entry(expires="''"), ": waiver 1 has no 'expires'"),
    (entry(expires=None), ": waiver 1 has no 'expires'"),
    (entry(test="''"), ": waiver 1 has no 'test'"),
    (entry(test="'   '"), ": waiver 1 has no 'test'"),  # a blank regex would waive every failure
    (entry(test="[a, b]"), ": waiver 1: test ['a', 'b'] is not text (write it as a string; quote it if YAML "
                           "reads it otherwise)"),
    (entry(reason="42"), ": waiver 1: reason 42 is not text (write it as a string; quote it if YAML reads it "
                         "otherwise)"),
    (entry(reason="{why: x}"), ": waiver 1: reason {'why': 'x'} is not text (write it as a string; quote it if "
                               "YAML reads it otherwise)"),
    (entry(bug="true"), ": waiver 1: bug True is not text (write it as a string; quote it if YAML reads it "
                        "otherwise)"),
    (entry() + "- just a line\n", ": waiver 2 is not a mapping with test, reason, bug, expires"),
    (entry() + entry() + "- 7\n", ": waiver 3 is not a mapping with test, reason, bug, expires"),
    ("{test: x}\n", ": expected a list of waivers (- test: ..., reason: ..., bug: ..., expires: YYYY-MM-DD)"),
    ("just text\n", ": expected a list of waivers (- test: ..., reason: ..., bug: ..., expires: YYYY-MM-DD)"),
    ('[{"test": "x",]', " is not valid YAML at line 1: expected the node content, but found ']'"),
    ("- a\n---\n- b\n", " is not valid YAML at line 2: expected a single document in the stream but found "
                         "another document"),
    (b"\xff\xfe- test\n", ": cannot read it (not UTF-8 text; write it as a YAML or JSON list)"),
])
def test_each_bad_value_names_the_file_the_waiver_and_the_field(tmp_path, content, says):
    assert _refusal(tmp_path, content) == says


def test_an_unreadable_waivers_file_is_one_line(tmp_path):
    with pytest.raises(BadInput) as refused:
        waivers.load(tmp_path / "absent.yaml")
    assert (str(refused.value), refused.value.exit_code) == (
        f"--waivers {tmp_path / 'absent.yaml'}: cannot read it (No such file or directory)", 2)
    with pytest.raises(BadInput) as refused:
        waivers.load(tmp_path)
    assert (str(refused.value), refused.value.exit_code) == (
        f"--waivers {tmp_path}: cannot read it (Is a directory)", 2)


def test_good_waivers_load_with_their_days(tmp_path):
    """YAML's dates, quoted ones and JSON's strings all read as days."""
    path = tmp_path / "waivers.yaml"
    path.write_text(entry(expires="2026-6-3") + entry(test="'  x\\.y  '", expires="'2026-06-30'"))
    assert [(w.number, w.test, w.reason, w.bug, w.expires) for w in waivers.load(path)] == [
        (1, "x", "r", "https://b/1", datetime.date(2026, 6, 3)),
        (2, "x\\.y", "r", "https://b/1", datetime.date(2026, 6, 30))]
    path.write_text('[{"test": "id-56b57ced-22b8-4127-9b8a-565dfb0207e2", "reason": "r", "bug": "https://b/2", '
                    '"expires": "2026-06-30"}]')
    (waiver,) = waivers.load(path)
    assert (waiver.test, waiver.bug, waiver.expires) == ("id-56b57ced-22b8-4127-9b8a-565dfb0207e2", "https://b/2",
                                                        datetime.date(2026, 6, 30))
    assert waiver.matches("any name", "56b57ced-22b8-4127-9b8a-565dfb0207e2")
