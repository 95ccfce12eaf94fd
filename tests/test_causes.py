"""A run's failures and skips grouped by cause (results/causes.py): each
cause once, largest first, with a few of its tests and a hint where the
cause is known; and the same groups in summary.txt, report.html and the
--json summary, on small run directories made here. No engine."""

import html
import json
import re
import uuid
from types import SimpleNamespace

import pytest

from tcup import contract
from tcup.launcher.guideline import TestList
from tcup.launcher.results import causes, finish, report, verdict
from tcup.launcher.results.runs import Run, SavedRun

ZERO_DISK = ("tempest.lib.exceptions.Forbidden: Forbidden Details: {{'code': 403, 'message': 'Only volume-backed "
             "servers are allowed for flavors with zero disk.', 'request_id': 'req-{id}'}} (server {id})")
TIMEOUT = ("tempest.lib.exceptions.TimeoutException: Request timed out Details: ({cls}:{test}) Server {id} failed to "
           "reach ACTIVE status and task state \"None\" within the required time (196 s). Current status: BUILD.")
ZERO_DISK_HINT = ("the flavor has no disk: name one that has with --flavor and --flavor-alt "
                  "(`tcup plan -v` lists flavors)")


def an_id(n: int) -> str:
    return str(uuid.UUID(int=0x6F2C0C9E8B554FD49A330B8A3C1F0000 + n))


def failed_run() -> list:
    """tests.json's tests of the issue's first run: 68 failures for a
    zero-disk flavor (each test and server its own), 2 timeouts, a pass."""
    tests = [{"name": f"tempest.api.compute.servers.test_{n // 10}.Servers{n // 10}TestJSON.test_case_{n:02}",
              "uuid": an_id(n), "status": "fail", "reason": ZERO_DISK.format(id=an_id(1000 + n))}
             for n in range(68)]
    tests += [{"name": f"tempest.api.compute.admin.test_live.LiveTestJSON.test_{which}", "uuid": an_id(100 + n),
               "status": "fail", "reason": TIMEOUT.format(cls="LiveTestJSON", test=f"test_{which}", id=an_id(200 + n))}
              for n, which in enumerate(("migrate", "block"))]
    return tests + [{"name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
                     "uuid": an_id(300), "status": "success", "reason": None}]


# --- the grouping ---------------------------------------------------------------------------

def test_68_failures_of_one_cause_are_one_group_first_with_its_hint():
    found = causes.of_tests(failed_run())
    assert [(group.status, group.count) for group in found] == [("fail", 68), ("fail", 2)]
    zero_disk, timeout = found
    assert zero_disk.cause == ("Forbidden: Forbidden Details: {'code': 403, 'message': 'Only volume-backed servers are "
                               "allowed for flavors with zero disk.', 'request_id': } (server )")
    assert zero_disk.hint == ZERO_DISK_HINT
    assert zero_disk.tests[0] == "tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_00"
    assert len(set(zero_disk.tests)) == 68
    assert timeout.cause == ('TimeoutException: Request timed out Details: Server failed to reach ACTIVE status and '
                             'task state "None" within the required time (196 s). Current status: BUILD')
    assert timeout.hint is None


def test_skips_are_grouped_apart_from_failures_with_the_same_reason():
    tests = ([{"name": f"t.s.A.test_{n}", "status": "skip", "reason": "Resize not available."} for n in range(5)]
             + [{"name": "t.f.B.test_x", "status": "fail", "reason": "Resize not available."}]
             + [{"name": "t.s.C.test_y", "status": "skip", "reason": "Instance validation tests are disabled."}])
    found = causes.of_tests(tests)
    # Failures first, however many skips share their reason; then the skips, largest first.
    assert [(group.status, group.cause, group.count) for group in found] == [
        ("fail", "resize not available", 1), ("skip", "resize not available", 5),
        ("skip", "instance validation tests are disabled", 1)]
    assert found[1].tests == [f"t.s.A.test_{n}" for n in range(5)]


def test_a_waived_failure_is_left_to_the_waivers():
    tests = [{"name": "a.b.C.test_1", "status": "fail", "reason": "boom", "waived": {"bug": "https://bugs.example/1"}},
             {"name": "a.b.C.test_2", "status": "fail", "reason": "boom"}]
    assert [(group.cause, group.tests) for group in causes.of_tests(tests)] == [("boom", ["a.b.C.test_2"])]


def test_one_normaliser_groups_skips_for_the_verdict_and_causes_alike():
    tests = [{"name": f"x.y.Z.test_{n}", "status": "skip", "reason": f"Volume {an_id(n)} is not bootable"}
             for n in range(3)]
    assert verdict.skip_reasons(tests) == [("volume is not bootable", 3)]
    assert [(group.cause, group.count) for group in causes.of_tests(tests)] == [("volume is not bootable", 3)]


@pytest.mark.parametrize("reason, hint", [
    # Nova's own words for a flavor without a disk, as a member boots an image.
    (ZERO_DISK.format(id=an_id(1)), ZERO_DISK_HINT),
    # Tempest's skip messages, as its tests give them.
    ("Resize not available.", "--set compute-feature-enabled.resize=true if the cloud can resize"),
    ("Resize is not available.", "--set compute-feature-enabled.resize=true if the cloud can resize"),
    ("Image format enforcement prevents testing with bogus image data",
     "the cloud's Glance checks image formats (Tempest's image-feature-enabled.image_format_enforcement, on by "
     "default); --set image-feature-enabled.image_format_enforcement=false only if it takes any image data"),
    ("Instance validation tests are disabled.",
     "--set validation.run_validation=true (needs a reachable network for the tests' servers)"),
    ("Validation must be enabled", "--set validation.run_validation=true (needs a reachable network for the tests' "
                                   "servers)"),
    ("validation is required for this test", "--set validation.run_validation=true (needs a reachable network for "
                                             "the tests' servers)"),
    ("this class needs more member accounts than were given (Tempest: Insufficient number of users provided); add "
     "accounts with --accounts FILE", "give more member accounts with --accounts"),
    ("Missing a 2nd set of API credentials in configuration.", "give more member accounts with --accounts"),
    ("Not enough accounts: this test requires 3 accounts", "give more member accounts with --accounts"),
    # Causes TCUP knows nothing to do about.
    ("Security compliance not available.", None),
    ("testtools.matchers._impl.MismatchError: 401 != 201 (validate_token)", None),
])
def test_a_known_cause_gets_its_hint(reason, hint):
    (group,) = causes.of_tests([{"name": "a.b.C.test_x", "status": "skip", "reason": reason}])
    assert group.hint == hint


@pytest.mark.parametrize("reason, grouped", [
    # The exception keeps its own name; its module goes.
    ("testtools.matchers._impl.MismatchError: 401 != 201 (validate_token)",
     "MismatchError: 401 != 201 (validate_token)"),
    # Request ids, IP addresses and a waiter's "(Class:test)" differ from test to test.
    (f"tempest.lib.exceptions.SSHTimeout: Connection to the 172.24.4.{7} via SSH timed out. req-{an_id(9)}",
     "SSHTimeout: Connection to the via SSH timed out"),
    ("(TestServerBasicOps:test_server_basic_ops) Server gone", "server gone"),
    ("TestServerBasicOps skipped as nova is not available", "skipped as nova is not available"),
    # A bug's number is the cause of its skip: it stays.
    ("Skipped until bug: 1600349 is resolved.", "skipped until bug: 1600349 is resolved"),
])
def test_a_failure_reason_is_grouped_without_its_particulars(reason, grouped):
    assert verdict.cause(reason) == grouped


def test_a_group_shows_three_tests_and_counts_the_rest():
    (zero_disk, _) = causes.of_tests(failed_run())
    assert causes.shown_tests(zero_disk) == [
        "tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_00",
        "tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_01",
        "tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_02", "and 65 more"]
    lines = causes.summary_lines(causes.of_tests(failed_run()))
    assert lines[:6] == [
        "Failures by cause (70 tests, 2 causes):",
        "  68 failed: " + zero_disk.cause,
        "      hint: " + ZERO_DISK_HINT,
        "      tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_00",
        "      tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_01",
        "      tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_02"]
    assert lines[6] == "      and 65 more"
    assert lines[7].startswith("  2 failed: TimeoutException: Request timed out")
    assert lines[8:] == ["      tempest.api.compute.admin.test_live.LiveTestJSON.test_block",
                         "      tempest.api.compute.admin.test_live.LiveTestJSON.test_migrate"]
    assert "Skips by cause" not in "\n".join(lines)  # nothing skipped


def test_the_json_form_holds_each_group_with_its_first_tests():
    assert causes.as_json(causes.of_tests(failed_run()))[0] == {
        "status": "fail", "cause": causes.of_tests(failed_run())[0].cause, "count": 68, "hint": ZERO_DISK_HINT,
        "tests": [f"tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_0{n}" for n in range(3)]}
    assert causes.as_json([]) == []


# --- where they show: summary.txt, the --json summary, report.html ----------------------------

FIXTURE_ERROR = ("tearDownClass (tempest.api.compute.servers.test_0.Servers0TestJSON)", "BadRequest: cannot delete")


def runner_summary(tests: list) -> str:
    """summary.txt as the runner writes it: a line per failed test, then an error outside the tests."""
    from tcup.runner.result_files import Report, summary_text
    from tcup.runner.run import Outcome
    from tcup.runner.selection import Test

    outcomes = [Outcome(Test(t["name"], t["name"], t["uuid"]), t["status"], t["reason"]) for t in tests]
    return summary_text(Report(outcomes, [], "c0ffee", "the issue's run", "preprovisioned", 1, 60.0, "47.0.0",
                               [FIXTURE_ERROR]))


@pytest.fixture
def finished(tmp_path):
    """The issue's run, saved by finish() against a list of its tests, and
    its report.html written."""
    tests = failed_run() + [{"name": "tempest.api.compute.servers.test_resize.ResizeTestJSON.test_resize",
                             "uuid": an_id(400), "status": "skip", "reason": "Resize not available."}]
    root = tmp_path / "runs"
    root.mkdir(mode=0o700)
    run_dir = Run(root, "20260101T000000Z-c0ffee")
    run_dir.begin()
    (run_dir.incomplete / contract.TESTS_FILE).write_text(json.dumps({"tests": tests, "missing": []}))
    summary = runner_summary(tests)
    assert summary.count("tempest.api.compute.servers.test_6.Servers6TestJSON.test_case_67") == 1  # the runner's list
    (run_dir.incomplete / contract.SUMMARY_FILE).write_text(summary)
    listed = TestList("the issue's list", "", "",
                      [{"name": t["name"], "uuid": t["uuid"], "capability": "compute-servers"} for t in tests])
    asked = finish.Asked(listed, contract.Selection(label="the issue's list"), contract.Cloud(cpid="c", admin=False),
                         verdict.NO_FAILURES, [],
                         settings={"choices": {"tempest_options": {"compute-feature-enabled.resize": "false"}}})
    heard = SimpleNamespace(selected=len(tests), missing=[], done={"duration_seconds": 60}, mode={}, choices=CHOICES,
                            cleanup=None)
    done = finish.finish(run_dir, asked, heard, 0.0, "tcup:0123456789abcdef")
    report.write(done.path)
    return done


# What discovery chose on the SCS cloud, as the runner reports it.
CHOICES = {"image": {"id": "i1", "name": "Ubuntu 24.04"}, "image_alt": {"id": "i2", "name": "Debian 12"},
           "flavor": {"id": "f1", "name": "SCS-1L-1"}, "flavor_alt": {"id": "f2", "name": "SCS-1L-1"},
           "network": {"id": "n1", "name": "private"}}
RAN_WITH = ("Image (servers): Ubuntu 24.04 (second: Debian 12)\nFlavors: SCS-1L-1\nNetwork: private\n"
            "Settings (--set): compute-feature-enabled.resize=false\n"
            "Verdict rule: no-failures: no test fails; skips are allowed\nTCUP image: tcup:0123456789abcdef\n")


def test_the_summary_says_each_cause_once_and_no_failure_twice(finished):
    text = (finished.path / contract.SUMMARY_FILE).read_text()
    assert finished.text.startswith(text.rstrip())  # what the terminal shows at the end
    assert "\nFailures:\n" not in text and "\nFailed:\n" not in text  # the runner's and the table's lists are gone
    assert text.count("Failures by cause (70 tests, 2 causes):\n  68 failed: Forbidden: ") == 1
    assert text.count("Only volume-backed servers") == 1
    assert f"\n      hint: {ZERO_DISK_HINT}\n" in text and "\n      and 65 more\n" in text
    assert ("Skips by cause (1 test, 1 cause):\n  1 skipped: resize not available\n"
            "      hint: --set compute-feature-enabled.resize=true if the cloud can resize\n"
            "      tempest.api.compute.servers.test_resize.ResizeTestJSON.test_resize\n") in text
    # Each of the first tests once; those past the first three not at all (report.html has them).
    assert text.count("test_0.Servers0TestJSON.test_case_00") == 1 and "test_case_67" not in text
    assert "(each test with its reason and traceback: report.html in the run directory)" in text
    # The runner's header, its errors outside the tests and the compliance table stay; the verdict ends it.
    assert text.startswith("TCUP run: the issue's run\nTempest 47.0.0")
    # Then what the run ran with (results/context.py), before its causes.
    assert (f"Duration: 60 s\n\n{report.FIXTURE_HEADING}\n  {FIXTURE_ERROR[0]}: {FIXTURE_ERROR[1]}\n\n"
            f"{RAN_WITH}\nFailures by cause (70 tests, 2 causes):\n") in text
    assert "\n  FAIL     compute-servers  1/72 passed, 70 failed, 1 skipped\n" in text
    assert "(each failed and skipped test under its capability: compliance.txt in the run directory)" in text
    assert text.rstrip().endswith("Verdict: NOT COMPLIANT by the no-failures rule (no test fails; skips are allowed): "
                                  "70 tests failed; 1 test skipped: 1 resize not available")
    # compliance.txt keeps every failed test with its reason.
    assert (finished.path / "compliance.txt").read_text().count("Only volume-backed servers") == 68


def test_the_json_summary_lists_the_causes(finished):
    summary = finish.run_summary(finished.path, 71)
    assert [(c["status"], c["count"], c["hint"]) for c in summary["causes"]] == [
        ("fail", 68, ZERO_DISK_HINT), ("fail", 2, None),
        ("skip", 1, "--set compute-feature-enabled.resize=true if the cloud can resize")]
    assert summary["causes"][0]["tests"] == [
        f"tempest.api.compute.servers.test_0.Servers0TestJSON.test_case_0{n}" for n in range(3)]
    assert summary["counts"]["failed"] == 70 and summary["skip_reasons"] == [{"reason": "resize not available",
                                                                             "count": 1}]


def test_the_json_summary_of_a_run_without_tests_json_has_no_causes(finished):
    (finished.path / contract.TESTS_FILE).unlink()
    summary = finish.run_summary(finished.path, 71)
    assert summary["causes"] == [] and summary["counts"]["failed"] == 70


def section(page: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert match, f"no section {name}"
    return match.group(1)


def test_the_report_shows_the_causes_near_the_top(finished):
    page = (finished.path / "report.html").read_text()
    assert page.index('<section id="causes">') < page.index('<section id="compliance">')
    shown = section(page, "causes")
    text = html.unescape(re.sub(r"<[^>]+>", " ", shown))
    assert re.search(r"Failures by cause \(70\)\s+Count\s+Cause\s+Tests\s+68\s+Forbidden: .*zero disk.*\s+hint: "
                     + re.escape(ZERO_DISK_HINT) + r"\s+tempest\S+test_case_00\s+\S+test_case_01\s+\S+test_case_02\s+"
                     r"and 65 more\s+2\s+TimeoutException", text)
    assert re.search(r"Skips by cause \(1\)\s+Count\s+Cause\s+Tests\s+1\s+resize not available", text)
    # Escaped, as everything from the run: the cause's quotes.
    assert "{&#x27;code&#x27;: 403" in shown and "{'code'" not in shown
    # The error outside the tests, read back from summary.txt, is still on the page.
    assert html.escape(FIXTURE_ERROR[1]) in section(page, "failures")


def test_a_cause_from_the_cloud_is_escaped_in_the_report(tmp_path):
    path = tmp_path / "20260101T000000Z-bad"
    path.mkdir()
    markup = "<script>alert(1)</script><img src=x>"
    (path / contract.TESTS_FILE).write_text(json.dumps({"tests": [
        {"name": f"a.b.C.test_{markup}", "uuid": None, "status": "fail", "reason": f"Boom {markup}"}], "missing": []}))
    (path / "run.json").write_text(json.dumps({"complete": True, "verdict": "failed", "selected": 1}))
    shown = section(report.render(report.read(SavedRun(path))), "causes")
    assert "<script>" not in shown and "<img" not in shown
    assert "boom &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x&gt;" in shown.lower()
    assert "a.b.C.test_&lt;script&gt;" in shown


def test_the_report_and_tcup_results_say_what_the_run_ran_with(finished, capsys):
    page = (finished.path / "report.html").read_text()
    for line in RAN_WITH.splitlines():
        label, value = line.split(": ", 1)
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in page, line
    from tcup.launcher.results import listing

    listing.command(SimpleNamespace(run=str(finished.path), output=None, json=False))
    shown = capsys.readouterr().out
    assert shown.endswith(RAN_WITH) and "\nVerdict: failed (1 passed, 70 failed, 1 skipped of 72 selected)\n" in shown
