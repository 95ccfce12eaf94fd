"""The per-capability compliance report: grouping by uuid, statuses, text."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from tcup.launcher import guideline
from tcup.launcher.results import verdict as rules
from tcup.launcher.results import compliance  # noqa: E402

DATA = REPO / "tests" / "data" / "interop"

VERSIONS = "tempest.api.compute.test_versions.TestVersions.test_list_api_versions"  # compute-list-api-versions
SHARED = "tempest.api.object_storage.test_account_services.AccountTest.test_list_extensions"  # two capabilities
# Tempest renamed it test_rebuild_reboot_deleted_server; the guideline lists that as an alias.
REBUILD = "tempest.api.compute.servers.test_servers_negative.ServersNegativeTestJSON.test_rebuild_deleted_server"
ZONES = "tempest.api.compute.servers.test_availability_zone.AZV2TestJSON.test_get_availability_zone_list_with_non_admin_user"


def result(entry, status="success", reason=None, name=None):
    return {"name": name or entry["name"], "uuid": entry["uuid"], "status": status, "reason": reason}


def platform():
    tests = guideline.load("2020.06", "platform")
    return tests, {t["name"]: t for t in tests.tests}


def all_passed(tests):
    return [result(t) for t in tests.tests]


def test_everything_passes():
    tests, _ = platform()
    report = compliance.report(tests, all_passed(tests), [])
    assert (report["guideline"], report["target"], report["label"]) == ("2020.06", "platform", "2020.06 platform")
    assert len(report["capabilities"]) == 76
    assert {c["status"] for c in report["capabilities"].values()} == {"pass"}
    totals = report["totals"]
    assert totals["tests"] == totals["passed"] == 273
    assert (totals["failed"], totals["skipped"], totals["missing"], totals["not_run"]) == (0, 0, 0, 0)
    assert (totals["capabilities"], totals["pass"], totals["fail"], totals["partial"], totals["skip"]) == (76, 76, 0, 0, 0)
    # A test of two capabilities counts in both: 273 tests, 275 capability memberships.
    assert sum(len(c["passed"]) for c in report["capabilities"].values()) == 275


def test_renamed_test_is_matched_by_uuid():
    tests, by_name = platform()
    doc = json.loads((DATA / "2020.06.json").read_text())
    new_name = doc["capabilities"]["compute-servers-rebuild"]["tests"][REBUILD]["aliases"][0]
    assert new_name.endswith(".test_rebuild_reboot_deleted_server")
    entry = by_name[REBUILD]
    results = [r for r in all_passed(tests) if r["uuid"] != entry["uuid"]]
    results.append(result(entry, "fail", "AssertionError: 404 expected", name=new_name))
    report = compliance.report(tests, results, [])
    rebuild = report["capabilities"]["compute-servers-rebuild"]
    assert rebuild["status"] == "fail"
    assert rebuild["failed"] == [{"name": REBUILD, "reason": "AssertionError: 404 expected", "ran_as": new_name}]
    assert len(rebuild["passed"]) == 2 and REBUILD not in rebuild["passed"]
    assert report["totals"]["renamed"] == 1 and report["totals"]["not_run"] == 0
    text = compliance.render(report)
    assert f"compute-servers-rebuild: {REBUILD} (ran as {new_name})" in text
    assert "1 test ran under another name (matched by idempotent id)." in text

    # Passing under the new name counts as a pass of the listed test.
    results[-1] = result(entry, "success", name=new_name)
    rebuild = compliance.report(tests, results, [])["capabilities"]["compute-servers-rebuild"]
    assert rebuild["status"] == "pass" and REBUILD in rebuild["passed"]


def test_same_name_other_uuid_is_not_a_match():
    tests, by_name = platform()
    entry = by_name[VERSIONS]
    results = [r for r in all_passed(tests) if r["uuid"] != entry["uuid"]]
    results.append({"name": VERSIONS, "uuid": "00000000-0000-4000-8000-000000000000", "status": "success", "reason": None})
    report = compliance.report(tests, results, [])
    versions = report["capabilities"]["compute-list-api-versions"]
    assert versions["status"] == "skip" and versions["not_run"] == [VERSIONS] and versions["passed"] == []
    assert report["totals"]["unlisted_results"] == 1 and report["totals"]["passed"] == 272


def test_mixed_outcomes_and_statuses():
    tests, by_name = platform()
    servers_list = sorted(n for n, t in by_name.items() if "compute-servers-list" in t["capabilities"])
    failing, skipping, lacking, unrun = servers_list[0], ZONES, servers_list[1], VERSIONS
    results = []
    for entry in tests.tests:
        if entry["name"] == failing:
            results.append(result(entry, "fail", "Traceback (most recent call last):\n  File x\nAssertionError: 2 != 3\n"))
        elif entry["name"] == skipping:
            results.append(result(entry, "skip", "Availability zones are not enabled"))
        elif entry["name"] in (lacking, unrun):
            continue
        elif entry["name"] == SHARED:
            results.append(result(entry, "skip", "extensions listing disabled"))
        else:
            results.append(result(entry))
    report = compliance.report(tests, results, [by_name[lacking]["uuid"].upper()])
    caps = report["capabilities"]
    assert caps["compute-servers-list"]["status"] == "fail"
    assert caps["compute-servers-list"]["failed"] == [{"name": failing, "reason": "Traceback (most recent call last):\n  File x\nAssertionError: 2 != 3\n"}]
    assert caps["compute-servers-list"]["missing"] == [lacking]
    assert len(caps["compute-servers-list"]["passed"]) == 22
    assert caps["compute-availability-zones-list"]["status"] == "skip"
    assert caps["compute-list-api-versions"] == {
        "passed": [], "failed": [], "skipped": [], "missing": [], "not_run": [VERSIONS], "status": "skip",
        "accepted": False}
    # The skipped shared test counts in both of its capabilities: the only test of one of them.
    for name in ("objectstore-account-list", "objectstore-info-request"):
        assert caps[name]["skipped"] == [{"name": SHARED, "reason": "extensions listing disabled"}]
    assert caps["objectstore-account-list"]["status"] == "partial"
    assert caps["objectstore-info-request"]["status"] == "skip"
    totals = report["totals"]
    assert (totals["passed"], totals["failed"], totals["skipped"], totals["missing"], totals["not_run"]) == (268, 1, 2, 1, 1)
    assert (totals["pass"], totals["fail"], totals["partial"], totals["skip"]) == (71, 1, 1, 3)

    text = compliance.render(report)
    lines = text.splitlines()
    assert lines[0] == "Compliance with 2020.06 platform, by the strict rule (every selected test passes)"
    assert sum(1 for line in lines if line.startswith("  ") and line.split()[0] in ("PASS", "FAIL", "PARTIAL", "SKIP")) == 76
    line = next(line for line in lines if " compute-servers-list " in line)
    assert line.split()[:2] == ["FAIL", "compute-servers-list"]
    assert line.endswith("22/24 passed, 1 failed, 1 missing")
    assert f"  compute-servers-list: {failing}\n      AssertionError: 2 != 3\n" in text
    assert "\nSkipped:\n" in text and "      Availability zones are not enabled" in text
    assert f"\nNot in this Tempest:\n  {lacking}\n" in text
    assert f"\nNot run:\n  {VERSIONS}\n" in text
    assert text.endswith(
        "Tests: 273 (268 passed, 1 failed, 2 skipped, 1 missing, 1 not run).\n"
        "Capabilities: 76 (71 pass, 1 fail, 1 partial, 3 skip); 71 met by the strict rule.\n"
    )
    assert text.index("Failed:") < text.index("Skipped:") < text.index("Tests: 273")


def test_worst_result_wins_and_other_events_ignored():
    tests, by_name = platform()
    entry = by_name[VERSIONS]
    results = all_passed(tests) + [
        result(entry, "fail", "second attempt failed"),
        result(entry, "inprogress"),
        {"name": "tempest.api.other.Test.test_no_id", "uuid": None, "status": "success", "reason": None},
    ]
    report = compliance.report(tests, results, [])
    assert report["capabilities"]["compute-list-api-versions"]["failed"] == [{"name": VERSIONS, "reason": "second attempt failed"}]
    assert report["totals"]["failed"] == 1 and report["totals"]["passed"] == 272
    assert report["totals"]["unlisted_results"] == 0


def test_plain_test_list_has_one_group():
    tests = guideline.parse_refstack_list(
        f"{VERSIONS}[id-6c0a0990-43b6-4529-9b61-5fd8daf7c55c]\n"
        "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9]\n",
        "list.txt",
    )
    results = [result(tests.tests[0]), result(tests.tests[1], "skip", None)]
    report = compliance.report(tests, results, [])
    assert list(report["capabilities"]) == [compliance.NO_CAPABILITY]
    group = report["capabilities"][compliance.NO_CAPABILITY]
    assert group["status"] == "partial" and group["passed"] == [VERSIONS]
    text = compliance.render(report)
    assert text.startswith("Compliance with test list list.txt, by the strict rule (every selected test passes)\n")
    assert "      no reason given" in text


def test_long_reason_is_cut_in_text_only():
    tests, by_name = platform()
    entry = by_name[VERSIONS]
    reason = "x" * 500
    results = [r for r in all_passed(tests) if r["uuid"] != entry["uuid"]] + [result(entry, "fail", reason)]
    report = compliance.report(tests, results, [])
    assert report["capabilities"]["compute-list-api-versions"]["failed"][0]["reason"] == reason
    shown = [line.strip() for line in compliance.render(report).splitlines() if line.strip().startswith("xxx")]
    assert shown == ["x" * 197 + "..."]


def scs_results(tests, skipped_names=(), failed_names=(), unrun_names=()):
    """SCS-0128's results: all passed but the named ones."""
    results = []
    for entry in tests.tests:
        if entry["name"] in unrun_names:
            continue
        status = "skip" if entry["name"] in skipped_names else "fail" if entry["name"] in failed_names else "success"
        results.append(result(entry, status, "Resize not available." if status == "skip" else None))
    return results


def test_no_failures_rule_passes_a_capability_with_skips_and_says_so():
    tests = guideline.load("scs-0128", None)
    image = [t["name"] for t in tests.tests if t["capability"] == "image"]
    lacking = next(t for t in tests.tests if t["capability"] == "identity")  # not in this Tempest
    report = compliance.report(tests, scs_results(tests, skipped_names=image[:10], unrun_names=[lacking["name"]]),
                               [lacking["uuid"]], rules.NO_FAILURES)
    assert report["rule"] == {"id": "no-failures", "name": "the no-failures rule",
                              "requires": "no test fails; skips are allowed"}
    caps = report["capabilities"]
    # Skipped and missing tests are counted, not held against their capability.
    assert (caps["image"]["status"], caps["image"]["accepted"], len(caps["image"]["skipped"])) == ("pass", True, 10)
    assert (caps["identity"]["status"], caps["identity"]["missing"]) == ("pass", [lacking["name"]])
    assert {name: cap["status"] for name, cap in caps.items()} == dict.fromkeys(caps, "pass")
    totals = report["totals"]
    assert (totals["pass"], totals["partial"], totals["accepted"], totals["skipped"], totals["missing"]) == (5, 0, 5, 10, 1)
    text = compliance.render(report)
    assert text.startswith("Compliance with scs-0128 iaas, by the no-failures rule (no test fails; skips are allowed)\n")
    assert "  PASS     image       13/23 passed, 10 skipped\n" in text
    assert text.endswith("Capabilities: 5 (5 pass, 0 fail, 0 partial, 0 skip); 5 met by the no-failures rule.\n")

    # The same results by RefStack's rule: a skipped test fails its capability.
    strictly = compliance.report(tests, scs_results(tests, skipped_names=image[:10]), [], rules.REFSTACK)
    assert (strictly["capabilities"]["image"]["status"], strictly["capabilities"]["image"]["accepted"]) == (
        "partial", False)
    assert strictly["totals"]["accepted"] == 4 and strictly["rule"]["id"] == "refstack"


def test_no_failures_rule_still_fails_a_failure_and_a_test_with_no_result():
    tests = guideline.load("scs-0128", None)
    image = [t["name"] for t in tests.tests if t["capability"] == "image"]
    volume = [t["name"] for t in tests.tests if t["capability"] == "volume"]
    network = [t["name"] for t in tests.tests if t["capability"] == "network"]
    report = compliance.report(tests, scs_results(tests, skipped_names=image, failed_names=volume[:1],
                                                  unrun_names=network[:1]), [], rules.NO_FAILURES)
    caps = report["capabilities"]
    assert (caps["volume"]["status"], caps["volume"]["accepted"]) == ("fail", False)
    assert (caps["network"]["status"], caps["network"]["accepted"]) == ("partial", False)
    # Every test skipped: nothing shown, but none failed, so the rule accepts it.
    assert (caps["image"]["status"], caps["image"]["accepted"]) == ("skip", True)
    assert report["totals"]["accepted"] == 3
