"""`tcup diff RUN_A RUN_B` on two real runs against a real Keystone whose
outcomes differ on purpose: tempest.conf values (--set) make one test fail in
each run and a class skip in the second; the regexes differ, so each run has
tests the other lacks."""

import json
import shutil

import pytest

from conftest import ADMIN_CANARY, MEMBER_CANARY, openrc, tcup

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

V3 = "tempest.api.identity.v3."
LOCKOUT = r"test_users\.IdentityV3UsersTest\.test_user_account_lockout"
# A: compute "available" in a Keystone-only catalog fails the catalog test;
# security compliance is off, so the lockout test skips.
RUN_A = ["--regex", rf"^tempest\.api\.identity\.v3\.(test_access_rules\.|test_api_discovery\.|test_catalog\.|{LOCKOUT})",
         "--set", "service_available.nova=true"]
# B: access rules "unavailable" skip their class; security compliance "on"
# runs the lockout test, which this Keystone (no lockout set) fails.
RUN_B = ["--regex", rf"^tempest\.api\.identity\.v3\.(test_access_rules\.|test_catalog\.|test_tokens\.|{LOCKOUT})",
         "--set", "identity-feature-enabled.access_rules=false",
         "--set", "identity-feature-enabled.security_compliance=true"]

LOCKOUT_TEST = ("test_users.IdentityV3UsersTest.test_user_account_lockout", "a7ad8bbf-2cff-4520-8c1d-96332e151658")
CATALOG_TEST = ("test_catalog.IdentityCatalogTest.test_catalog_standardization", "56b57ced-22b8-4127-9b8a-565dfb0207e2")
ACCESS_RULES = [("test_access_rules.AccessRulesV3Test.test_delete_access_rule", "278757e9-e193-4bf8-adf2-0b0a229a17d0"),
                ("test_access_rules.AccessRulesV3Test.test_list_access_rules", "2354c498-5119-4ba5-9f0d-44f16f78fb0e"),
                ("test_access_rules.AccessRulesV3Test.test_show_access_rule", "795dd507-ca1e-40e9-ba90-ff0a08689ba4")]
API_DISCOVERY = [("test_api_discovery.TestApiDiscovery.test_api_media_types", "657c1970-4722-4189-8831-7325f3bc4265"),
                 ("test_api_discovery.TestApiDiscovery.test_api_version_resources", "b9232f5e-d9e5-4d97-b96c-28d3db4de1bd"),
                 ("test_api_discovery.TestApiDiscovery.test_api_version_statuses", "8879a470-abfb-47bb-bb8d-5a7fd279ad1e"),
                 ("test_api_discovery.TestApiDiscovery.test_identity_v3_existence", "79aec9ae-710f-4c54-a4fc-3aa25b4feac3"),
                 ("test_api_discovery.TestApiDiscovery.test_list_api_versions", "721f480f-35b6-46c7-846e-047e6acea0dc")]
TOKENS = [("test_tokens.TokensV3Test.test_create_token", "6f8e4436-fc96-4282-8122-e41df57197a9"),
          ("test_tokens.TokensV3Test.test_token_auth_creation_existence_deletion", "0f9f5a5f-d5cd-4a86-8a5b-c5ded151f212"),
          ("test_tokens.TokensV3Test.test_validate_token", "a9512ac3-3909-48a4-b395-11f438e16260")]


@pytest.fixture(scope="module")
def two_runs(image, engine, tmp_path_factory):
    """Runs A and B, saved under one results root. A Keystone of their own:
    the security-compliance tests act on the member's account."""
    from keystone_cloud import KeystoneCloud

    tmp = tmp_path_factory.mktemp("diff")
    cloud = KeystoneCloud(tmp / "cloud", admin_password=ADMIN_CANARY, member_password=MEMBER_CANARY).start()
    runs = tmp / "runs"
    try:
        paths = []
        for args in (RUN_A, RUN_B):
            before = set(runs.iterdir()) if runs.exists() else set()
            done = tcup(["--no-upload", "--output", str(runs), *args], openrc(cloud, "member", tmp))
            assert done.returncode == 1, done.stderr[-2000:]  # each run has its one failure
            (path,) = set(runs.iterdir()) - before
            paths.append(path)
    finally:
        cloud.stop()
    yield runs, paths[0], paths[1], tmp
    shutil.rmtree(tmp, ignore_errors=True)


def names(entries):
    return [(entry["name"], entry["uuid"], entry["a"], entry["b"]) for entry in entries]


def expected(tests, a, b):
    return [(V3 + name, uuid, a, b) for name, uuid in tests]


def test_diff_json_lists_every_change_by_uuid(two_runs):
    runs, run_a, run_b, tmp = two_runs
    done = tcup(["diff", str(run_a), str(run_b), "--json"], openrc_free(tmp))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["a"], result["b"], result["tests_a"], result["tests_b"]) == (str(run_a), str(run_b), 10, 8)
    assert names(result["newly_failing"]) == expected([LOCKOUT_TEST], "skip", "fail")
    assert names(result["newly_passing"]) == expected([CATALOG_TEST], "fail", "success")
    assert names(result["newly_skipped"]) == expected(ACCESS_RULES, "success", "skip")
    assert names(result["only_in_a"]) == expected(API_DISCOVERY, "success", None)
    assert names(result["only_in_b"]) == expected(TOKENS, None, "success")
    # The reason is B's (the failure), not A's (the skip).
    assert result["newly_failing"][0]["reason"].startswith("testtools.matchers._impl.MismatchError")
    assert result["newly_skipped"][0]["reason"] == "Application credential access rules are not available in this environment"
    assert result["newly_passing"][0]["reason"] is None
    # The other way round, the changes turn over.
    back = json.loads(tcup(["diff", str(run_b), str(run_a), "--json"], openrc_free(tmp)).stdout)
    assert names(back["newly_failing"]) == expected([CATALOG_TEST], "success", "fail")
    assert names(back["newly_passing"]) == expected(ACCESS_RULES, "skip", "success")
    assert names(back["newly_skipped"]) == expected([LOCKOUT_TEST], "fail", "skip")
    assert [e["uuid"] for e in back["only_in_a"]] == [uuid for _, uuid in TOKENS]


def test_diff_text_by_run_name(two_runs):
    runs, run_a, run_b, tmp = two_runs
    # Runs by name, as `tcup results` lists them.
    done = tcup(["diff", run_a.name, run_b.name, "--output", str(runs)], openrc_free(tmp))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"A: {run_a} (10 tests)", f"B: {run_b} (8 tests)"]
    sections = {}
    for line in lines[2:]:
        if line and not line.startswith("  "):
            current = sections.setdefault(line, [])
        elif line:
            current.append(line)
    assert list(sections) == ["Newly failing (1):", "Newly passing (1):", "Newly skipped (3):",
                              "Missing from B (only in A) (5):", "Missing from A (only in B) (3):"]
    (failing,) = sections["Newly failing (1):"]
    assert failing.startswith(f"  {V3}{LOCKOUT_TEST[0]} [{LOCKOUT_TEST[1]}] (was skipped): ")
    assert sections["Newly passing (1):"] == [f"  {V3}{CATALOG_TEST[0]} [{CATALOG_TEST[1]}] (was failed)"]
    assert sections["Newly skipped (3):"] == [
        f"  {V3}{name} [{uuid}] (was passed): Application credential access rules are not available in this environment"
        for name, uuid in ACCESS_RULES]
    assert sections["Missing from B (only in A) (5):"] == [f"  {V3}{n} [{u}] (passed in A)" for n, u in API_DISCOVERY]
    assert sections["Missing from A (only in B) (3):"] == [f"  {V3}{n} [{u}] (passed in B)" for n, u in TOKENS]
    # A run against itself has nothing to show.
    same = tcup(["diff", str(run_a), str(run_a)], openrc_free(tmp))
    assert same.stdout.splitlines()[-1] == "No differences: the same tests, with the same results."


def test_diff_reads_an_incomplete_run_from_its_subunit_stream(two_runs):
    """An interrupted run has no tests.json yet: its stream says what finished."""
    runs, run_a, run_b, tmp = two_runs
    cut = tmp / "cut" / (run_b.name + ".incomplete")
    cut.mkdir(parents=True)
    shutil.copy(run_b / "tempest.subunit", cut)
    whole = json.loads(tcup(["diff", str(run_a), str(run_b), "--json"], openrc_free(tmp)).stdout)
    done = tcup(["diff", str(run_a), run_b.name, "--output", str(cut.parent), "--json"], openrc_free(tmp))
    assert done.returncode == 0, done.stderr
    streamed = json.loads(done.stdout)
    # The stream knows the statuses, not the one-line reasons.
    for section in ("newly_failing", "newly_passing", "newly_skipped", "only_in_a", "only_in_b"):
        assert names(streamed[section]) == names(whole[section]), section


@pytest.mark.parametrize("case", ["missing", "not-a-run"])
def test_diff_bad_input_is_one_line(two_runs, case):
    runs, run_a, run_b, tmp = two_runs
    other = str(tmp / "nowhere") if case == "missing" else str(tmp / "cloud")
    done = tcup(["diff", str(run_a), other], openrc_free(tmp))
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("tcup: error: ")
    assert ("is not a run directory" if case == "missing" else "holds no test results") in done.stderr


def openrc_free(tmp):
    from conftest import base_env

    return base_env(tmp)
