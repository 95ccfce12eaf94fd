"""The verdict a run ends with and its exit code, by the rule it is judged
by (launcher/results/verdict.py): RefStack's and the strict rule count a skip against
the run, the no-failures rule (SCS-0128) only a failure; the skips are named
by reason either way. Exit codes are the documented numbers (README)."""

import json
from pathlib import Path

import pytest

from tcup.launcher import guideline
from tcup.launcher.results import verdict as rules
from tcup.launcher.results.verdict import NO_FAILURES, REFSTACK, STRICT, verdict

DATA = Path(__file__).resolve().parent / "data" / "interop"
STRICT_BY = "by the strict rule (every selected test passes)"
REFSTACK_BY = "by RefStack's rule (every required test passes; a skipped test fails its capability)"
NO_FAILURES_BY = "by the no-failures rule (no test fails; skips are allowed)"
SCS_SKIPS = [("image format enforcement prevents testing with bogus image data", 10), ("resize not available", 4),
             ("security compliance not available", 2), ("instance validation tests are disabled", 2),
             ("missing a 2nd set of API credentials", 1)]


@pytest.mark.parametrize(
    "counts, code, name, words",
    [
        ((5, 5, 0, 0, 0), 0, "compliant", f"COMPLIANT {STRICT_BY}: all 5 selected tests passed"),
        ((1, 1, 0, 0, 0), 0, "compliant", f"COMPLIANT {STRICT_BY}: all 1 selected test passed"),
        ((5, 3, 1, 1, 0), 1, "failed", f"NOT COMPLIANT {STRICT_BY}: 1 test failed; 1 test skipped"),
        ((273, 7, 0, 266, 0), 5, "not compliant", f"NOT COMPLIANT {STRICT_BY}: none failed, but 266 tests skipped"),
        ((10, 10, 0, 0, 1), 5, "not compliant", f"NOT COMPLIANT {STRICT_BY}: none failed, but 1 test not in this Tempest"),
        ((10, 9, 0, 1, 1), 5, "not compliant",
         f"NOT COMPLIANT {STRICT_BY}: none failed, but 1 test skipped; 1 test not in this Tempest"),
        ((3, 2, 0, 0, 0), 5, "not compliant",
         f"NOT COMPLIANT {STRICT_BY}: none failed, but 1 selected test reported no result"),
        ((0, 0, 0, 0, 0), 5, "not compliant",
         f"NOT COMPLIANT {STRICT_BY}: none failed, but no test passed (0 of 0 selected tests)"),
    ],
)
def test_strict_rule_needs_every_selected_test_to_pass(counts, code, name, words):
    outcome = verdict(*counts)
    assert (outcome.exit_code, outcome.verdict, outcome.verdict_words) == (code, name, words)
    assert verdict(*counts, rule=STRICT).verdict_words == words  # the default rule is the strict one


def test_refstack_rule_counts_a_skip_against_the_run():
    outcome = verdict(273, 245, 0, 28, 0, rule=REFSTACK, skips=[("service not available", 20), ("needs more", 8)])
    assert (outcome.exit_code, outcome.verdict) == (5, "not compliant")
    assert outcome.verdict_words == (f"NOT COMPLIANT {REFSTACK_BY}: none failed, but 28 tests skipped: "
                                     "20 service not available, 8 needs more")
    assert verdict(273, 273, 0, 0, 0, rule=REFSTACK).verdict_words == f"COMPLIANT {REFSTACK_BY}: all 273 selected tests passed"
    assert verdict(273, 272, 1, 0, 0, rule=REFSTACK).exit_code == 1


def test_no_failures_rule_is_compliant_with_skips_and_names_them():
    """SCS-0128 on the test cloud: 239 passed, 0 failed, 19 skipped."""
    outcome = verdict(258, 239, 0, 19, 0, rule=NO_FAILURES, skips=SCS_SKIPS)
    assert (outcome.exit_code, outcome.verdict) == (0, "compliant")
    assert outcome.verdict_words == (
        f"COMPLIANT {NO_FAILURES_BY}: 239 passed, none failed; 19 tests skipped: 10 image format enforcement "
        "prevents testing with bogus image data, 4 resize not available, 2 security compliance not available, "
        "2 instance validation tests are disabled, 1 missing a 2nd set of API credentials")
    # A test missing from this Tempest is not a failure either: said, not held against the run.
    missing = verdict(256, 237, 0, 19, 2, rule=NO_FAILURES, skips=SCS_SKIPS)
    assert missing.exit_code == 0 and missing.verdict_words.endswith("; 2 tests not in this Tempest")
    assert verdict(258, 258, 0, 0, 0, rule=NO_FAILURES).verdict_words == (
        f"COMPLIANT {NO_FAILURES_BY}: all 258 selected tests passed")


@pytest.mark.parametrize(
    "counts, code, name, said",
    [
        ((258, 238, 1, 19, 0), 1, "failed", "NOT COMPLIANT by the no-failures rule (no test fails; skips are allowed): "
                                             "1 test failed; 19 tests skipped"),
        # Tests that reported nothing are not shown to pass or fail: not compliant by any rule.
        ((258, 230, 0, 19, 0), 5, "not compliant", "none failed, but 9 selected tests reported no result"),
        # Nothing shown at all is not compliance either.
        ((258, 0, 0, 258, 0), 5, "not compliant", "none failed, but no test passed (0 of 258 selected tests)"),
    ],
)
def test_no_failures_rule_still_needs_results(counts, code, name, said):
    outcome = verdict(*counts, rule=NO_FAILURES)
    assert (outcome.exit_code, outcome.verdict) == (code, name)
    assert said in outcome.verdict_words


def test_waivers_work_with_every_rule():
    # A waived failure, nothing else failed: compliant with waivers (6), by no-failures even with skips.
    waived = verdict(258, 238, 1, 19, 0, waived=1, rule=NO_FAILURES, skips=SCS_SKIPS[:1])
    assert (waived.exit_code, waived.verdict) == (6, "compliant with waivers")
    assert waived.verdict_words == (
        f"COMPLIANT with 1 waiver {NO_FAILURES_BY}: 238 of 258 selected tests passed, 1 failed under a waiver; "
        "19 tests skipped: 10 image format enforcement prevents testing with bogus image data")
    assert verdict(10, 9, 1, 0, 0, waived=1, rule=STRICT).exit_code == 6
    assert verdict(10, 9, 1, 0, 0, waived=1, rule=REFSTACK).exit_code == 6
    # The strict and RefStack's rules still count the skips: not compliant (5).
    assert verdict(10, 8, 1, 1, 0, waived=1, rule=STRICT).exit_code == 5
    assert verdict(10, 8, 1, 1, 0, waived=1, rule=REFSTACK).exit_code == 5
    # A failure not waived beside a waived one: failed (1), under every rule.
    for rule in (NO_FAILURES, STRICT, REFSTACK):
        outcome = verdict(10, 8, 2, 0, 0, waived=1, rule=rule)
        assert (outcome.exit_code, outcome.verdict) == (1, "failed")
        assert "1 test failed (1 more waived)" in outcome.verdict_words


@pytest.mark.parametrize("reason, grouped", [
    ("Resize not available.", "resize not available"),
    ("Missing a 2nd set of API credentials in configuration.", "missing a 2nd set of API credentials in configuration"),
    ("API extension not enabled", "API extension not enabled"),
    # A traceback's last line says what happened.
    ("Traceback (most recent call last):\n  File x\nskipTest: Security compliance not available",
     "skipTest: Security compliance not available"),
    # Ids and test names are what differ between tests with one cause.
    ("Volume 6f2c0c9e-8b55-4fd4-9a33-0b8a3c1f2b7d is not bootable", "volume is not bootable"),
    ("Image 0123456789abcdef0123 has no min_disk", "image has no min_disk"),
    ("setUpClass (tempest.api.image.v2.test_images.ListUserImagesTest) skipped: image format",
     "setUpClass skipped: image format"),
    ("Skipped because of bug#2147232", "skipped because of bug#2147232"),
    ("VolumesListTestJSON skipped as Cinder is not available", "skipped as Cinder is not available"),
    ("AZV2TestJSON skipped as nova is not available", "skipped as nova is not available"),
    ("ObjectTestACLs skipped as swift is not available", "skipped as swift is not available"),
    ("IPv6 is not enabled on OpenStack", "IPv6 is not enabled on OpenStack"),
    # What follows a "; " is advice (TCUP's own reasons give it), left to the per-test reasons.
    ("this class needs more member accounts than were given (Tempest: Insufficient number of users provided); "
     "add accounts with --accounts FILE",
     "this class needs more member accounts than were given (Tempest: Insufficient number of users provided)"),
    ("Testing with bogus data is off", "testing with bogus data is off"),
    ("", "no reason given"), (None, "no reason given"), ("  \n ", "no reason given"),
])
def test_a_skip_reason_is_grouped_without_its_particulars(reason, grouped):
    assert rules.cause(reason) == grouped


def test_skips_are_grouped_largest_first_and_the_rest_counted():
    tests = ([{"status": "skip", "reason": f"Server {n:032x} gone"} for n in range(1, 4)]
             + [{"status": "skip", "reason": "Resize not available."}] * 2
             + [{"status": "skip", "reason": f"reason {letter}"} for letter in "abcdef"]
             + [{"status": "success", "reason": None}, {"status": "fail", "reason": "boom"}])
    groups = rules.skip_reasons(tests)
    assert groups[:2] == [("server gone", 3), ("resize not available", 2)]
    assert len(groups) == 8 and sum(count for _, count in groups) == 11
    assert rules.skip_words(groups) == ("3 server gone, 2 resize not available, 1 reason a, 1 reason b, 1 reason c, "
                                        "3 for 3 other reasons")


def test_each_list_is_judged_by_its_own_rule(tmp_path):
    assert rules.applied(guideline.load("scs-0128", None)) is NO_FAILURES
    assert rules.applied(guideline.load("SCS-0128", None), strict=True) is STRICT
    for version, target in (("2020.06", "platform"), ("2019.11", "compute"), ("next", "object"),
                            ("dns.2020.06", None), ("orchestration.2020.06", None)):
        assert rules.applied(guideline.load(version, target)) is REFSTACK, (version, target)
    assert rules.applied(None) is STRICT  # --regex alone
    listing = tmp_path / "list.txt"
    listing.write_text("tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token"
                       "[id-6f8e4436-fc96-4282-8122-e41df57197a9]\n")
    assert rules.applied(guideline.load_test_list(str(listing))) is STRICT
    # A guideline file carries no rule: the strict one, though the same guideline shipped is RefStack's.
    from_file = guideline.load(str(DATA / "2020.06.json"), "platform")
    assert len(from_file.tests) == 273 and rules.applied(from_file) is STRICT
    assert rules.named("") is rules.named(None) is rules.named("from-a-later-tcup") is STRICT


def test_every_shipped_list_names_a_known_rule():
    lists = guideline.shipped_index()["lists"]
    assert {entry["file"]: entry["rule"] for entry in lists if entry["guideline"] == "scs-0128"} == {
        "scs-0128.json": "no-failures"}
    assert {entry["rule"] for entry in lists if entry["guideline"] != "scs-0128"} == {"refstack"}
    assert all(entry["rule"] in rules.RULES for entry in lists)
    assert json.dumps(sorted(rules.RULES)) == '["no-failures", "refstack", "strict"]'
