"""Each list's own verdict rule, through the real CLI: `tcup guidelines`
names them; SCS-0128's identity tests against a real Keystone (three pass,
three skip: no security compliance, no second account) are compliant by
SCS-0128's rule (no test may fail), named in every result file, and not
compliant with --strict (every selected test passes). Exit codes are the
documented numbers (README)."""

import html
import json
import re

import pytest

from conftest import base_env, only_run, openrc, tcup

# Three of SCS-0128's identity tests pass on a Keystone-only cloud, three skip.
SCS_IDENTITY = r"^tempest\.api\.identity\.v3\.(test_users|test_tokens|test_projects)\."
SKIPS = [{"reason": "security compliance not available", "count": 2},
         {"reason": "missing a 2nd set of API credentials in configuration", "count": 1}]
SKIP_WORDS = ("3 tests skipped: 2 security compliance not available, "
              "1 missing a 2nd set of API credentials in configuration")
NO_FAILURES_BY = "by the no-failures rule (no test fails; skips are allowed)"
STRICT_BY = "by the strict rule (every selected test passes)"


def test_tcup_guidelines_names_each_lists_rule(tmp_path):
    done = tcup(["guidelines"], base_env(tmp_path))
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    column = lines[0].index("RULE")  # the rule of each list, in its column
    first_blank = lines.index("")
    # The add-ons the image cannot run come apart, below their own heading, in the same columns.
    apart = lines[first_blank + 2:lines.index("", first_blank + 1)]
    rules = {line.split("  ")[0]: line[column:].split()[0] for line in lines[1:first_blank] + apart}
    assert len(apart) == 2 and len(rules) == 12 and rules["scs-0128 iaas"] == "no-failures"
    assert {rule for name, rule in rules.items() if name != "scs-0128 iaas"} == {"refstack"}
    assert "  refstack     every required test passes; a skipped test fails its capability" in done.stdout
    assert ("A --test-list, --regex, or a guideline file or URL is judged by the strict rule; --strict applies it "
            "to any list.") in done.stdout


@pytest.mark.engine
@pytest.mark.keystone
def test_scs0128_allows_skips_and_names_them_and_strict_counts_them(image, keystone, watch, tmp_path):
    env = openrc(keystone, "member", tmp_path)
    runs = tmp_path / "runs"
    done = tcup(["--no-upload", "--output", str(runs), "--guideline", "scs-0128", "--regex", SCS_IDENTITY], env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    verdict = f"Verdict: COMPLIANT {NO_FAILURES_BY}: 3 passed, none failed; {SKIP_WORDS}"
    assert verdict in done.stdout.splitlines()
    run = only_run(runs)
    assert (run / "summary.txt").read_text().rstrip().endswith(verdict)
    meta = json.loads((run / "run.json").read_text())
    assert (meta["verdict"], meta["rule"], meta["skip_reasons"]) == ("compliant", "no-failures", SKIPS)
    assert meta["settings"]["rule"] == "no-failures"  # what `tcup rerun` keeps
    report = json.loads((run / "compliance.json").read_text())
    assert report["rule"]["id"] == "no-failures" and report["totals"]["skipped"] == 3
    assert (run / "compliance.txt").read_text().startswith(
        f"Compliance with scs-0128 iaas, {NO_FAILURES_BY}\n")
    page = html.unescape((run / "report.html").read_text())
    assert re.search(r'<p class="verdict good" id="verdict">COMPLIANT by the no-failures rule .*?; 3 tests skipped: '
                     r"2 security compliance not available", page)

    # The same tests by the strict rule: the skips make it not compliant (exit 5).
    strict_runs = tmp_path / "strict"
    done = tcup(["--no-upload", "--json", "--output", str(strict_runs), "--guideline", "scs-0128",
                 "--regex", SCS_IDENTITY, "--strict"], env)
    assert done.returncode == 5, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    run = only_run(strict_runs)
    # The skips by cause: the second account's has a hint, the security compliance's none.
    assert [(c["status"], c["cause"], c["count"], len(c["tests"]), c["hint"]) for c in summary.pop("causes")] == [
        ("skip", "security compliance not available", 2, 2, None),
        ("skip", "missing a 2nd set of API credentials in configuration", 1, 1,
         "give more member accounts with --accounts")]
    assert summary == {"verdict": "not compliant", "rule": "strict",
                       "counts": {"selected": 6, "passed": 3, "failed": 0, "skipped": 3, "missing": 0},
                       "skip_reasons": SKIPS, "label": f"scs-0128 iaas matching {SCS_IDENTITY}",
                       "run_directory": str(run), "upload_url": None, "exit_code": 5}
    assert f"Verdict: NOT COMPLIANT {STRICT_BY}: none failed, but {SKIP_WORDS}" in done.stderr.splitlines()
    assert json.loads((run / "compliance.json").read_text())["rule"]["id"] == "strict"


@pytest.mark.engine
@pytest.mark.keystone
def test_plan_says_which_rule_will_apply(image, keystone, watch, tmp_path):
    done = tcup(["plan", "--guideline", "scs-0128", "--regex", SCS_IDENTITY, "--strict"],
                openrc(keystone, "member", tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    # All of the plan on one stream (stdout is for --json's object).
    assert "tcup: verdict rule: strict (every selected test passes)" in done.stderr.splitlines() and done.stdout == ""
