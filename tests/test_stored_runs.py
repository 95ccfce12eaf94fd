"""Every decision of the launcher's results/ package, on small stored run
directories (tests/data/runs, made by make_runs.py there with TCUP's own
writers): no engine, no Keystone, milliseconds each. A developer without
Docker gets a signal here in seconds; the same decisions are tested end to
end in test_rerun.py, test_diff.py, test_report.py, test_bundle.py and
test_waivers.py with real runs.

a-complete: create_token passed, validate_token failed, app_credential
skipped, list_servers passed, default_domain passed. b-later, a day on:
create_token failed, validate_token passed, app_credential skipped,
list_servers skipped, list_images passed. c-interrupted.incomplete: passed,
failed, skipped, one running, one never begun.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tcup import contract, private_files
from tcup.launcher.errors import BadInput
from tcup.launcher.results.runs import SavedRun

DATA = Path(__file__).resolve().parent / "data" / "runs"
CANARIES = json.loads((DATA / "canaries.json").read_text())
REPO = Path(__file__).resolve().parent.parent
UUID = {"create_token": "6f8e4436-fc96-4282-8122-e41df57197a9", "validate_token": "a9512ac3-3909-48a4-b395-11f438e16260",
        "app_credential": "8080c75c-eddc-4786-941a-c2da7039ae61", "list_servers": "fcdf192d-0f74-4d89-911f-1ec002b822c4",
        "list_images": "1e341d7a-90a9-494c-b143-2cdf2aeb6aee", "default_domain": "17a5de24-e6a0-4e4a-a9ee-d85b6e5612b5"}
SHORT = {uuid: name for name, uuid in UUID.items()}
SECRET = "never-to-be-shown-8c1d0a"  # no character HTML or JSON would escape


@pytest.fixture
def runs(tmp_path) -> Path:
    """A private copy of the stored runs: the commands write into them."""
    root = tmp_path / "runs"
    shutil.copytree(DATA, root, ignore=lambda _, names: {"make_runs.py", "canaries.json", "__pycache__"} & set(names))
    root.chmod(0o700)
    for path in root.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    return root


@pytest.fixture
def secret_file(tmp_path) -> Path:
    """A file of the user's that a link planted in a run directory points
    to, shaped as every result file at once, so any reader would show it."""
    test = {"name": SECRET, "uuid": UUID["create_token"], "status": "fail", "reason": SECRET}
    path = tmp_path / "private.json"
    path.write_text(json.dumps({"tests": [test], "missing": [], "label": SECRET, "complete": True,
                                "verdict": SECRET, "cpid": SECRET, "duration_seconds": 1,
                                "results": [{"name": SECRET, "uuid": UUID["create_token"]}],
                                "capabilities": {SECRET: {"status": "fail", "failed": [test]}}}))
    return path


@pytest.fixture
def secret_xml(tmp_path) -> Path:
    path = tmp_path / "private.xml"
    path.write_text(f'<testsuite time="1"><testcase classname="tempest.api.identity.v3.test_tokens.TokensV3Test" '
                    f'name="test_validate_token" time="1"><failure>{SECRET}</failure></testcase></testsuite>')
    return path


def plant(run: Path, name: str, target: Path) -> None:
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(target)


def tcup(*args, cwd=None):
    """`python -m tcup ARGS`, as a user runs it, with no engine in reach."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd or REPO), "PYTHONPATH": str(REPO / "src"),
           "DOCKER_HOST": "unix:///nonexistent.sock"}
    return subprocess.run([sys.executable, "-m", "tcup", *map(str, args)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


# --- one reader for what the container wrote -----------------------------------------

def test_the_reader_takes_regular_files_only_and_bounded(tmp_path, secret_file):
    link = tmp_path / "link"
    link.symlink_to(secret_file)
    with pytest.raises(OSError, match="a link, not a file TCUP wrote"):
        private_files.read_result(link)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opened for reading it would wait for a writer for ever
    with pytest.raises(OSError, match="not a regular file"):
        private_files.read_result(fifo)
    with pytest.raises(OSError, match="larger than 16 bytes"):
        private_files.read_result(secret_file, limit=16)
    assert private_files.read_result(secret_file) == secret_file.read_bytes()


@pytest.mark.parametrize("name", [contract.SUMMARY_FILE, contract.TESTS_FILE, "run.json", contract.JUNIT_FILE,
                                  "compliance.json"])
def test_a_link_planted_in_a_run_shows_nothing_it_points_to(runs, secret_file, secret_xml, tmp_path, name):
    """What the container could leave in the results directory: a link to a
    file of the user's. No command prints, reports or bundles that file."""
    from tcup.launcher.results.finish import closing_text

    run = runs / "a-complete"
    plant(run, name, secret_xml if name.endswith(".xml") else secret_file)
    assert SECRET not in closing_text(run)
    report = tcup("report", run)
    assert SECRET not in report.stdout + report.stderr
    if report.returncode == 0:
        assert SECRET not in (run / "report.html").read_text()
    bundle = tcup("bundle", run, "--file", tmp_path / "b.tar.gz")
    assert bundle.returncode == 0, bundle.stderr
    import tarfile

    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = tar.getnames()
        assert not any(SECRET.encode() in tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert f"results/{name}" not in " ".join(names)
    diff = tcup("diff", run, runs / "b-later")
    assert SECRET not in diff.stdout + diff.stderr


def test_a_planted_link_is_refused_by_diff_rerun_and_upload_in_one_line(runs, secret_file):
    from tcup.launcher.results import rerun

    run = runs / "a-complete"
    plant(run, contract.TESTS_FILE, secret_file)
    diff = tcup("diff", run, runs / "b-later")
    assert diff.returncode == 2 and diff.stderr == f"tcup: error: cannot read {run}/tests.json: a link, not a file " \
                                                   "TCUP wrote\n"
    with pytest.raises(BadInput, match="cannot read .*tests.json: a link, not a file TCUP wrote"):
        rerun.plan(run)
    plant(run, contract.REFSTACK_FILE, secret_file)
    upload = tcup("upload", run, "--upload-url", "http://127.0.0.1:9/api")
    assert upload.returncode == 2 and SECRET not in upload.stderr
    assert upload.stderr == f"tcup: error: cannot read {run}/refstack.json: a link, not a file TCUP wrote\n"


def test_finishing_a_run_reads_no_link(runs, secret_file):
    """results.finish: a planted tests.json or summary.txt is not merged,
    waived or copied into the summary."""
    from tcup.launcher.results import finish, verdict, waivers

    run = runs / "a-complete"
    plant(run, contract.TESTS_FILE, secret_file)
    waiver = waivers.Waiver("validate_token", "known", "https://bugs.example/1", __import__("datetime").date.max, 1)
    asked = finish.Asked(None, contract.Selection(label="x"), contract.Cloud(cpid="c", admin=False), verdict.STRICT, [waiver])
    assert finish._merge_and_waive(run, asked) is None
    assert (run / contract.TESTS_FILE).is_symlink()  # left as it was: nothing was written through it


# --- the run's completeness, decided once ------------------------------------------------

@pytest.mark.parametrize("named", ["directory", "its refstack.json"])
def test_an_incomplete_run_is_not_uploaded_however_it_is_named(runs, named):
    run = runs / "b-later"
    (run / "run.json").unlink()  # what an interrupted run lacks: the launcher writes it last
    run = run.rename(runs / "b-later.incomplete")
    given = run if named == "directory" else run / contract.REFSTACK_FILE
    done = tcup("upload", given, "--upload-url", "http://127.0.0.1:9/api")
    assert done.returncode == 2
    assert done.stderr == (f"tcup: error: {run} is an incomplete run (no readable run.json); its results are partial "
                           "(--force uploads them anyway)\n")


def test_a_run_json_without_its_completeness_mark_is_not_uploaded(runs):
    from tcup.launcher.results.listing import list_runs
    from tcup.launcher.results.runs import unfinished

    run = runs / "a-complete"
    meta = json.loads((run / "run.json").read_text())
    del meta["complete"]
    (run / "run.json").write_text(json.dumps(meta))
    assert unfinished(run) == "is marked incomplete in run.json"
    done = tcup("upload", run / contract.REFSTACK_FILE, "--upload-url", "http://127.0.0.1:9/api")
    assert done.returncode == 2 and "is marked incomplete in run.json" in done.stderr
    assert {entry["name"]: entry["complete"] for entry in list_runs(runs)} == {
        "a-complete": False, "b-later": True, "c-interrupted.incomplete": False}
    assert unfinished(runs / "b-later") is None
    assert unfinished(runs / "c-interrupted.incomplete") == "is an incomplete run (no readable run.json)"


# --- the bundle: what support needs, no identifier ------------------------------------

def bundle_files(run: Path, into: Path) -> dict:
    """The bundle of ``run``, made by `tcup bundle`, as {name: bytes}."""
    import tarfile

    done = tcup("bundle", run, "--file", into / "ticket.tar.gz", cwd=into)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with tarfile.open(into / "ticket.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        assert len({m.name for m in members}) == len(members)  # one of each: a second would shadow the first
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in members}


def test_a_bundle_carries_no_identifier_an_older_run_recorded(runs, tmp_path):
    """a-complete's run.json, settings.json and cleanup.json hold what an
    older TCUP let through: a network named for the project, a project id,
    a host, a --set value, the user's home. None reaches the bundle, in any
    spelling; what support reads (counts, verdict, which options) does."""
    from tcup.masking import spellings

    run = runs / "a-complete"
    (run / "report.html").write_text(f"<p>{run}</p>")  # an older TCUP's report, with the full path
    # What this TCUP's summary.txt says the run ran with, from run.json, and where it was uploaded.
    from tcup.launcher.results import context

    record = json.loads((run / "run.json").read_text())
    with (run / "summary.txt").open("a") as summary:
        summary.write("\n".join(context.lines(context.rows(context.RunRecord.of(record), "https://refstack."
                                                                                   f"{CANARIES['host']}/#/results/1"))))
        summary.write("\n")
    files = bundle_files(run, tmp_path)
    needles = {name: spellings(value) for name, value in CANARIES.items()}
    needles["cpid"] = spellings(json.loads((run / "run.json").read_text())["cpid"])
    needles["runs root"] = spellings(str(runs))
    found = sorted(f"{name} in {member}" for member, data in files.items() for name, forms in needles.items()
                   if any(form.encode() in data for form in forms))
    assert found == []
    assert sorted(files) == ["README.txt", "results/cleanup.json", "results/compliance.json", "results/compliance.txt",
                             "results/junit.xml", "results/refstack.json", "results/report.html", "results/run.json",
                             "results/settings.json", "results/summary.txt", "results/tempest.subunit",
                             "results/tests.json", "services.json", "versions.json"]
    meta = json.loads(files["results/run.json"])
    assert (meta["verdict"], meta["passed"], meta["failed"], meta["skipped"], meta["cpid"]) == ("failed", 3, 1, 1, "<cpid>")
    assert meta["merged_from"] == ["20260104T090000Z-0a0a0a"]
    assert meta["choices"]["network"] == {"id": "<id>", "name": "<name>"}
    assert meta["cleanup"] == {"removed": 2, "error": "<error>", "left": [
        {"kind": "network", "id": "<id>", "name": "<name>", "project": "<project>", "remove_with": "<remove_with>"}]}
    assert meta["settings"]["choices"]["tempest_options"] == {"identity.uri_v3": "<value>"}
    summary = files["results/summary.txt"].decode()
    assert "\nNetwork: <network>\nSettings (--set): identity.uri_v3=<value>\n" in summary
    assert "\nUploaded to RefStack: <upload_url>\n" in summary
    assert meta["settings"]["test_list"]["source"] == "guideline-2026.01.json"
    assert json.loads(files["results/settings.json"]) == meta["settings"]
    report = files["results/report.html"].decode()
    assert "<h1>TCUP run <span class=\"mono\">a-complete</span></h1>" in report and "NOT COMPLIANT" in report
    # The runner's own files go as they are: it masked them before they reached the disk.
    assert files["results/tests.json"] == (run / "tests.json").read_bytes()


# --- the HTML report: every value typed or escaped -------------------------------------

MARKUP = '"><img src=x onerror=alert(1)><form action=//evil.example><base href=//evil.example/>'
# Every element the page itself uses; none loads anything or sends a form.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "span", "table",
             "thead", "tbody", "tr", "th", "td", "nav", "a", "section", "div", "b", "article", "details", "summary",
             "pre", "ul", "li"}


def with_markup(value):
    """Every value of a saved document, numbers and flags included, as markup."""
    if isinstance(value, dict):
        return {key: with_markup(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_markup(item) for item in value]
    return MARKUP


def page_tags(page: str) -> set:
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        found = set()

        def handle_starttag(self, tag, attrs):
            self.found.add(tag)

    parser = Tags()
    parser.feed(page)
    return parser.found


def test_markup_in_every_field_of_a_run_renders_escaped(runs):
    from tcup.launcher.results import report

    run = runs / "a-complete"
    for name in ("run.json", "tests.json", "compliance.json"):
        document = json.loads((run / name).read_text())
        (run / name).write_text(json.dumps(with_markup(document)))
    # tests.json keeps its shape (a list of tests), the rest is markup; a waiver and a flaky mark too.
    tests = json.loads((run / "tests.json").read_text())
    tests["tests"][0].update(waived={"reason": MARKUP, "bug": MARKUP, "expires": MARKUP}, flaky=True,
                             first_reason=MARKUP, status="fail")
    (run / "tests.json").write_text(json.dumps(tests))
    (run / "summary.txt").write_text(f"{report.FIXTURE_HEADING}\n  {MARKUP}\n")
    page = report.render(report.read(SavedRun(run)))
    assert page_tags(page) <= PAGE_TAGS
    assert "<img" not in page and "<form" not in page and "<base" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 10  # shown, as text
    assert "form-action 'none'; base-uri 'none'" in page
    # admin_skipped is a count: markup there is not shown at all.
    assert "skipped for lack of admin credentials" not in page


def test_the_report_names_the_run_not_where_it_is_kept(runs):
    done = tcup("report", "a-complete", "--output", runs)
    assert done.returncode == 0, done.stderr
    page = (runs / "a-complete" / "report.html").read_text()
    assert str(runs) not in page and "<h1>TCUP run <span class=\"mono\">a-complete</span></h1>" in page
    assert 'id="verdict">NOT COMPLIANT' in page
    # Merged from: the earlier run by name, whatever an older TCUP recorded.
    assert "20260104T090000Z-0a0a0a and a rerun" in page and "canary-user" not in page


# --- --set: never a secret, never TCUP's own safety settings ---------------------------

@pytest.mark.parametrize("key, why", [
    ("auth.admin_password", "secret"), ("identity.admin_token", "secret"), ("Auth.Token-Lifetime", "secret"),
    ("service.app_secret_id", "secret"), ("DEFAULT.debug", "protected"), ("default.Log-Dir", "protected"),
    ("DEFAULT.log_file", "protected"), ("DEFAULT.record_resources", "protected"), ("DEFAULT.use_stderr", "protected"),
    ("DEFAULT.resource_name_prefix", "protected"), ("oslo_concurrency.lock_path", "protected"),
    ("auth.test_accounts_file", "protected"), ("auth.admin_username", "protected"), ("identity.uri_v3", "protected"),
    ("identity.disable_ssl_certificate_validation", "protected"),
    ("compute-feature-enabled.resize", None), ("service_available.nova", None), ("validation.run_validation", None),
    ("identity.region", None), ("DEFAULT.log_date_format", None),
])
def test_which_options_a_set_may_not_change(key, why):
    assert contract.option_refusal(key) == why


def test_every_safety_option_the_runner_writes_is_refused():
    """What the runner's tempest.conf gets from TCUP itself (runner.config.overrides)
    for its masking, its cleanup and TLS: none of it can be --set."""
    from tcup.contract import Credentials
    from tcup.runner import config

    decided = config.overrides(Credentials(auth_url="https://k.example/v3", insecure=True), Path("/tmp/tcup/ca.pem"))
    safety = {key for key in decided if not key.endswith("endpoint_type") and key != "identity.region"}
    assert len(safety) == 8 and all(contract.option_refusal(key) == "protected" for key in safety)


def test_a_refused_set_is_one_line_before_anything_else(tmp_path):
    """No credentials, no Keystone, no engine are asked for: the line names
    every refused option, never a value."""
    done = tcup("--no-upload", "--set", "DEFAULT.debug=true", "--set", "compute-feature-enabled.resize=true",
                "--set", "auth.admin_password=hunter2", "--set", "DEFAULT.log_dir=/results", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("tcup: error: --set auth.admin_password would hold a secret, and --set values are saved "
                           "with the run; TCUP gives Tempest your credentials itself; --set DEFAULT.debug, "
                           "DEFAULT.log_dir: TCUP sets 2 options itself, to keep Tempest's logs masked, its "
                           "credentials and Keystone TCUP's own and the cleanup whole; drop the --set\n")


def test_a_rerun_refuses_a_protected_option_its_run_recorded(runs, tmp_path):
    run = runs / "a-complete"
    settings = json.loads((run / "settings.json").read_text())
    settings["choices"]["tempest_options"]["DEFAULT.record_resources"] = "false"
    (run / "settings.json").write_text(json.dumps(settings))
    meta = json.loads((run / "run.json").read_text())
    meta["settings"] = settings
    (run / "run.json").write_text(json.dumps(meta))
    done = tcup("rerun", run, "--no-upload", cwd=tmp_path)
    assert done.returncode == 2
    # a-complete also recorded a --set of Keystone's address, as an older TCUP let it.
    assert done.stderr.splitlines()[-1] == (
        "tcup: error: --set identity.uri_v3, DEFAULT.record_resources: TCUP sets 2 options itself, to keep Tempest's "
        "logs masked, its credentials and Keystone TCUP's own and the cleanup whole; start a new run without them")


# --- diff: what changed from a to b ----------------------------------------------------

def short(entries) -> list:
    return [(SHORT[entry["uuid"]], entry["a"], entry["b"]) for entry in entries]


def test_diff_names_each_change_in_its_own_list(runs):
    from tcup.launcher.results import diff

    found = diff.diff(runs / "a-complete", runs / "b-later")
    assert (found["tests_a"], found["tests_b"]) == (5, 5)
    assert short(found["newly_failing"]) == [("create_token", "success", "fail")]
    assert short(found["newly_passing"]) == [("validate_token", "fail", "success")]
    assert short(found["newly_skipped"]) == [("list_servers", "success", "skip")]
    assert short(found["only_in_a"]) == [("default_domain", "success", None)]
    assert short(found["only_in_b"]) == [("list_images", None, "success")]
    assert found["newly_failing"][0]["reason"] == "testtools.matchers._impl.MismatchError: 401 != 201 (create_token)"
    # The other way round, failing and passing swap.
    back = diff.diff(runs / "b-later", runs / "a-complete")
    assert short(back["newly_failing"]) == [("validate_token", "success", "fail")]
    assert short(back["newly_passing"]) == [("list_servers", "skip", "success"), ("create_token", "fail", "success")]


def test_diff_of_an_interrupted_run_reads_its_stream(runs):
    """No tests.json: the stream says what finished (the test still running did not)."""
    from tcup.launcher.results import diff

    partial = runs / "c-interrupted.incomplete"
    (partial / "tempest.subunit.partial").rename(partial / "tempest.subunit")
    found = diff.diff(partial, runs / "b-later")
    assert found["tests_a"] == 3
    assert short(found["newly_failing"]) == [("create_token", "success", "fail")]
    assert short(found["newly_passing"]) == [("validate_token", "fail", "success")]
    assert sorted(short(found["only_in_b"])) == [("list_images", None, "success"), ("list_servers", None, "skip")]


# --- waivers: through their expiry day, not a day longer --------------------------------

def waiver_for(test: str, expires):
    from tcup.launcher.results import waivers

    return waivers.Waiver(UUID[test], "known bug", "https://bugs.example/1", expires, 1)


def test_a_waiver_holds_through_its_expiry_day_and_not_after(runs):
    import datetime

    from tcup.launcher.results import waivers

    expires = datetime.date(2026, 6, 30)
    for today, applied in ((expires - datetime.timedelta(days=1), True), (expires, True),
                           (expires + datetime.timedelta(days=1), False)):
        tests = json.loads((runs / "a-complete" / "tests.json").read_text())["tests"]
        assert waivers.apply(tests, [waiver_for("validate_token", expires)], today) == int(applied), today
        waived = [SHORT[t["uuid"]] for t in tests if t.get("waived")]
        assert waived == (["validate_token"] if applied else [])
        assert [t["status"] for t in tests if SHORT[t["uuid"]] == "validate_token"] == ["fail"]  # still a failure
        expired = waivers.expired_lines([waiver_for("validate_token", expires)], today)
        assert expired == ([] if applied else [f"waiver 1 ({UUID['validate_token']}; https://bugs.example/1) expired "
                                               "on 2026-06-30, so since 2026-07-01 it waives nothing"])


def test_a_waiver_marks_failures_only(runs):
    import datetime

    from tcup.launcher.results import waivers

    tests = json.loads((runs / "a-complete" / "tests.json").read_text())["tests"]
    everything = waivers.Waiver("tempest", "all", "https://bugs.example/2", datetime.date.max, 1)
    assert waivers.apply(tests, [everything], datetime.date(2026, 1, 1)) == 1
    assert [SHORT[t["uuid"]] for t in tests if t.get("waived")] == ["validate_token"]


def test_finishing_a_waived_run_counts_the_waiver_and_keeps_the_failure(runs):
    import datetime
    import shutil
    from types import SimpleNamespace

    from tcup.launcher.results import finish, verdict
    from tcup.launcher.results.runs import Run

    run_dir = Run(runs, "a-waived")
    shutil.copytree(runs / "a-complete", run_dir.incomplete)
    heard = SimpleNamespace(selected=5, missing=[], done={"duration_seconds": 12}, mode={}, choices={}, cleanup=None)
    asked = finish.Asked(None, contract.Selection(label="x"), contract.Cloud(cpid="c", admin=False), verdict.STRICT,
                         [waiver_for("validate_token", datetime.date.max)])
    finished = finish.finish(run_dir, asked, heard, 0.0, None)
    counts = finished.counts
    assert (counts.selected, counts.passed, counts.failed, counts.skipped, counts.waived) == (5, 3, 1, 1, 1)
    assert finished.conclusion.exit_code == 5  # a test was skipped: no waiver makes that a pass
    saved = json.loads((run_dir.path / "tests.json").read_text())["tests"]
    assert [(SHORT[t["uuid"]], t["status"]) for t in saved if t.get("waived")] == [("validate_token", "fail")]
    assert "\n\nWaived failures (still failures; not uploaded as passed):\n" in finished.text
    record = json.loads((run_dir.path / "run.json").read_text())
    assert (record["waived"], record["failed"], record["format"], record["complete"]) == (1, 1, 2, True)


# --- compliance: a capability passes only when all its tests passed ---------------------

def test_compliance_judges_each_capability_by_all_its_tests(runs):
    from tcup.launcher.guideline import TestList
    from tcup.launcher.results import compliance

    settings = json.loads((runs / "b-later" / "settings.json").read_text())
    listed = TestList(**settings["test_list"])
    outcome = json.loads((runs / "b-later" / "tests.json").read_text())
    report = compliance.report(listed, outcome["tests"], outcome["missing"])
    assert {name: cap["status"] for name, cap in report["capabilities"].items()} == {
        "compute-servers-list": "skip", "identity-v3-application-credentials": "skip",
        "identity-v3-tokens-create": "fail", "images-v2-list": "pass"}
    # Without the failure, what passed with what skipped is partial, not a pass.
    for test in outcome["tests"]:
        test["status"] = "success" if test["status"] == "fail" else test["status"]
    listed.tests.append({"name": "tempest.api.image.v2.test_images.ListUserImagesTest.test_list_with_status",
                         "uuid": "9959ca1d-1aa7-4b7a-a1ea-0fff0499b37e", "capability": "images-v2-list",
                         "capabilities": ["images-v2-list"]})
    report = compliance.report(listed, outcome["tests"], ["9959ca1d-1aa7-4b7a-a1ea-0fff0499b37e"])
    assert report["capabilities"]["images-v2-list"]["status"] == "partial"
    assert report["capabilities"]["identity-v3-tokens-create"]["status"] == "pass"
    assert report["totals"]["missing"] == 1 and report["totals"]["passed"] == 3


# --- rerun: what runs again, and the merge ----------------------------------------------

def test_a_rerun_runs_the_failures_again_and_not_the_skips(runs):
    from tcup.launcher.results import rerun

    plan = rerun.plan(runs / "a-complete")
    assert plan.complete and [SHORT[t["uuid"]] for t in plan.selection.tests] == ["validate_token"]
    assert (plan.failed, plan.not_run, plan.merged_from) == (1, 0, ["a-complete"])


def test_resuming_an_interrupted_run_runs_what_did_not_pass_or_skip(runs):
    from tcup.launcher.results import rerun

    plan = rerun.plan(runs / "c-interrupted.incomplete")
    assert not plan.complete
    assert [SHORT[t["uuid"]] for t in plan.selection.tests] == ["validate_token", "list_servers", "list_images"]
    assert (plan.failed, plan.not_run) == (1, 2)
    assert sorted(SHORT[t["uuid"]] for t in plan.earlier.values()) == ["app_credential", "create_token"]


def test_a_rerun_merges_into_one_run_and_marks_the_flaky(runs, tmp_path):
    """The rerun of a-complete's failure, which passes now: one tests.json,
    one refstack.json of every pass, one junit.xml, one stream."""
    from tcup.testids import read_subunit
    from tcup.launcher.results import rerun

    plan = rerun.plan(runs / "a-complete")
    now = tmp_path / "rerun.incomplete"
    shutil.copytree(runs / "b-later", now)  # a later run's files: validate_token passed there
    outcome = json.loads((now / "tests.json").read_text())
    outcome["tests"] = [t for t in outcome["tests"] if SHORT[t["uuid"]] == "validate_token"]
    (now / "tests.json").write_text(json.dumps(outcome))
    merged = rerun.merge(plan, now)
    statuses = {SHORT[t["uuid"]]: (t["status"], bool(t.get("flaky")), bool(t.get("reran"))) for t in merged["tests"]}
    assert statuses == {"create_token": ("success", False, False), "validate_token": ("success", True, True),
                        "app_credential": ("skip", False, False), "list_servers": ("success", False, False),
                        "default_domain": ("success", False, False)}
    flaky = next(t for t in merged["tests"] if t.get("flaky"))
    assert flaky["first_reason"] == "testtools.matchers._impl.MismatchError: 401 != 201 (validate_token)"
    refstack = json.loads((now / "refstack.json").read_text())
    assert sorted(SHORT[t["uuid"]] for t in refstack["results"]) == [
        "create_token", "default_domain", "list_servers", "validate_token"]
    assert refstack["duration_seconds"] == 24  # both runs' time
    stream = read_subunit((now / "tempest.subunit").read_bytes())
    assert sum(s.status == "exists" for s in stream) == 10  # both runs' streams, joined


def rerun_args(*options):
    """`tcup rerun` as parsed from its command line."""
    from tcup.launcher import cli

    return cli.rerun_parser().parse_args(["a-complete", *options])


def planned_rerun(run, monkeypatch, *options):
    """The Plan `tcup rerun RUN OPTIONS` hands to the run (launch.rerun), without running it."""
    from tcup.launcher import launch

    handed = []
    monkeypatch.setattr(launch, "run", lambda args, summary, rerun: handed.append(rerun) or 0)
    args = rerun_args(*options)
    args.run = run
    assert launch.rerun(args) == 0
    return handed[0]


def rerun_outcome(runs, tmp_path, *names, status="success"):
    """A rerun's results directory: b-later's files, its tests.json holding ``names`` only, each with ``status``."""
    now = tmp_path / "rerun.incomplete"
    shutil.copytree(runs / "b-later", now)
    outcome = json.loads((now / "tests.json").read_text())
    outcome["tests"] = [{**t, "status": status, "reason": None} for t in outcome["tests"] if SHORT[t["uuid"]] in names]
    (now / "tests.json").write_text(json.dumps(outcome))
    return now


CHANGED = ["--image-alt cirros-0.6.2", "--flavor-alt SCS-2V-4-20s", "--set compute-feature-enabled.resize=true"]


def test_a_reruns_options_replace_the_recorded_choices_in_the_new_record(runs, monkeypatch):
    """--image, --image-alt, --flavor, --flavor-alt, --network and --set,
    as a run takes them: those given replace the recorded choices; only
    those that differ from what the earlier run used are a change."""
    from tcup.launcher import cli

    # One definition of each option: the rerun's is the run's.
    helps = {parser: {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
             for parser in (cli.run_parser(), cli.rerun_parser())}
    run_help, rerun_help = helps.values()
    for option in ("--image", "--image-alt", "--flavor", "--flavor-alt", "--network"):
        assert rerun_help[option] == run_help[option]
    plan = planned_rerun(runs / "a-complete", monkeypatch,
                         "--flavor", "42",  # the flavor the runner chose before, by id: no change
                         "--network", "canary-net-7f3a",  # the network the run was given: no change
                         "--image-alt", "cirros-0.6.2", "--flavor-alt", "SCS-2V-4-20s",
                         "--set", "compute-feature-enabled.resize=true",
                         "--set", "identity.uri_v3=https://canary-proxy.example:8443/v3")  # as recorded
    assert plan.changed == CHANGED
    record = plan.record(plan.rule, contract.Cloud(cpid="c0ffee", admin=False))
    assert record["choices"] == {
        "image": None, "image_alt": "cirros-0.6.2", "flavor": "42", "flavor_alt": "SCS-2V-4-20s",
        "network": "canary-net-7f3a", "skip_services": [],
        "tempest_options": {"identity.uri_v3": "https://canary-proxy.example:8443/v3",
                            "compute-feature-enabled.resize": "true"}}
    assert (plan.choices.flavor, plan.choices.flavor_alt, plan.choices.image_alt) == ("42", "SCS-2V-4-20s", "cirros-0.6.2")
    assert record["selection"] == json.loads((runs / "a-complete" / "settings.json").read_text())["selection"]
    assert plan.describe().endswith(f"(2026.01 platform), with {', '.join(CHANGED)}")
    # Nothing given: the recorded choices stand, and nothing changed.
    same = planned_rerun(runs / "a-complete", monkeypatch)
    assert same.changed == [] and same.record(same.rule, contract.Cloud(cpid="c", admin=False))["choices"] == {
        "image": None, "flavor": None, "network": "canary-net-7f3a", "skip_services": [],
        "tempest_options": {"identity.uri_v3": "https://canary-proxy.example:8443/v3"}}


@pytest.mark.parametrize("changed", [True, False])
def test_a_failure_that_passes_after_a_change_of_settings_is_fixed_by_it_not_flaky(runs, tmp_path, monkeypatch,
                                                                                   changed):
    from tcup.launcher.results import report, rerun, verdict

    options = ("--image-alt", "cirros-0.6.2", "--flavor-alt", "SCS-2V-4-20s",
               "--set", "compute-feature-enabled.resize=true") if changed else ()
    plan = planned_rerun(runs / "a-complete", monkeypatch, *options)
    now = rerun_outcome(runs, tmp_path, "validate_token")
    merged = rerun.merge(plan, now)
    rerun.write_summary(plan, now, merged)
    (test,) = [t for t in merged["tests"] if SHORT[t["uuid"]] == "validate_token"]
    reason = "testtools.matchers._impl.MismatchError: 401 != 201 (validate_token)"
    assert test["status"] == "success" and test["first_reason"] == reason and test["reran"] is True
    summary = (now / "summary.txt").read_text().splitlines()
    if changed:
        assert test["fixed_by"] == CHANGED and "flaky" not in test
        assert f"Changed for the rerun: {', '.join(CHANGED)}" in summary
        heading = summary.index("Passed after a change of settings (failed, then passed when rerun with the "
                                "settings named):")
        assert summary[heading + 1] == f"  {test['name']} [{test['uuid']}]: passed with {', '.join(CHANGED)}; " \
                                       f"first failed with {reason}"
        assert not any(line.startswith("Flaky") for line in summary)
    else:
        assert test["flaky"] is True and "fixed_by" not in test
        heading = summary.index("Flaky (failed, then passed when rerun with the same settings):")
        assert summary[heading + 1] == f"  {test['name']} [{test['uuid']}]: first failed with {reason}"
        assert not any(line.startswith(("Passed after", "Changed for")) for line in summary)
    assert verdict.Counts.of_tests(merged).flaky == (0 if changed else 1)
    # report.html: each kind in its own list.
    (now / "run.json").write_text(json.dumps({"complete": True, "verdict": "compliant", "label": "x"}))
    page = report.render(report.read(SavedRun(now)))
    assert ('<section id="fixed"><h2>Passed after a change of settings (1)</h2>' in page) is changed
    assert ('<section id="flaky"><h2>Flaky tests (1)</h2>' in page) is not changed
    if changed:
        assert (f'<li><span class="mono">{test["name"]}</span>: passed with <span class="mono">'
                f'{", ".join(CHANGED)}</span>; first failed with {reason}</li>') in page


def test_a_rerun_of_a_merged_run_counts_only_the_tests_it_ran(runs, tmp_path):
    """A merged run's tests carry its rerun's "reran" marks; rerun again,
    "a rerun of N" counts this rerun's tests, not every rerun's."""
    from tcup.launcher.results import rerun

    run = runs / "a-complete"
    document = json.loads((run / "tests.json").read_text())
    for test in document["tests"]:  # as an earlier merge left them: three reran, one flaky
        if SHORT[test["uuid"]] in ("create_token", "list_servers", "validate_token"):
            test["reran"] = True
        test["flaky"] = SHORT[test["uuid"]] == "create_token" or None
    (run / "tests.json").write_text(json.dumps(document))
    plan = rerun.plan(run)
    now = rerun_outcome(runs, tmp_path, "validate_token")
    merged = rerun.merge(plan, now)
    assert sorted(SHORT[t["uuid"]] for t in merged["tests"] if t.get("reran")) == ["validate_token"]
    # An earlier merge's flaky mark stays; this rerun's flaky test is marked anew.
    assert sorted(SHORT[t["uuid"]] for t in merged["tests"] if t.get("flaky")) == ["create_token", "validate_token"]
    rerun.write_summary(plan, now, merged)
    summary = (now / "summary.txt").read_text().splitlines()
    assert "Merged: a-complete and a rerun of 1 test (its failed tests)" in summary
    assert "Selected: 5 tests" in summary and "Passed: 4  Failed: 0  Skipped: 1" in summary


def test_resuming_keeps_the_earlier_selection_when_a_test_reported_nothing(runs, tmp_path):
    """c-interrupted selected 5 tests; resumed, list_images reports nothing
    in either run: 5 stay selected, and the verdict says one reported nothing."""
    from types import SimpleNamespace

    from tcup.launcher.results import finish, rerun, verdict

    plan = rerun.plan(runs / "c-interrupted.incomplete")
    now = tmp_path / "rerun.incomplete"
    now.mkdir()
    (now / "tests.json").write_text(json.dumps({"missing": [], "tests": [
        {"name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token", "uuid": UUID["validate_token"],
         "status": "success", "reason": None},
        {"name": "tempest.api.compute.servers.test_list_servers_negative.ListServersNegativeTestJSON."
                 "test_list_servers_by_non_existing_image", "uuid": UUID["list_servers"], "status": "success",
         "reason": None}]}))
    merged = rerun.merge(plan, now)
    assert len(merged["tests"]) == 4
    asked = finish.Asked(plan.test_list, plan.selection, contract.Cloud(cpid="c", admin=False), plan.rule, [],
                         rerun=plan)
    counts = finish._counts(merged, asked, SimpleNamespace(selected=2, done={}, missing=[]))
    assert (counts.selected, counts.passed, counts.skipped, counts.failed) == (5, 3, 1, 0)
    words = verdict.judge(counts, verdict.STRICT).verdict_words
    assert "1 selected test reported no result" in words
    rerun.write_summary(plan, now, merged)
    summary = (now / "summary.txt").read_text().splitlines()
    assert "Selected: 5 tests" in summary
    assert "Merged: c-interrupted.incomplete and a rerun of 2 tests (its failed and not-run tests)" in summary
    # A regex narrows a list to a count known only by running: the merged tests are the selection.
    plan.settings = {**plan.settings, "selection": {**plan.settings["selection"], "regex": "identity"}}
    assert finish._counts(merged, asked, SimpleNamespace(selected=2, done={}, missing=[])).selected == 4


def test_include_skipped_reruns_the_skipped_tests_too(runs, monkeypatch):
    from tcup.launcher.results import rerun

    plan = planned_rerun(runs / "a-complete", monkeypatch, "--include-skipped")
    assert sorted(SHORT[t["uuid"]] for t in plan.selection.tests) == ["app_credential", "validate_token"]
    assert (plan.failed, plan.skipped) == (1, 1) and list(plan.failed_before) == [UUID["validate_token"]]
    assert plan.describe() == "rerunning a-complete: 1 failed test, 1 skipped test and 0 not run (2026.01 platform)"
    assert plan.again_words == "its failed and skipped tests"
    # Without it, as before: the failures only.
    assert [SHORT[t["uuid"]] for t in planned_rerun(runs / "a-complete", monkeypatch).selection.tests] == [
        "validate_token"]
    # Resuming: the finished skip runs again, the finished pass does not.
    resumed = rerun.plan(runs / "c-interrupted.incomplete", include_skipped=True)
    assert [SHORT[t["uuid"]] for t in resumed.selection.tests] == [
        "validate_token", "app_credential", "list_servers", "list_images"]
    assert sorted(SHORT[t["uuid"]] for t in resumed.earlier.values()) == ["create_token"]
    assert resumed.again_words == "its failed, skipped and not-run tests"
    # A run with skips and no failure: --include-skipped is what would rerun them.
    document = json.loads((runs / "a-complete" / "tests.json").read_text())
    for test in document["tests"]:
        test["status"] = "success" if test["status"] == "fail" else test["status"]
    (runs / "a-complete" / "tests.json").write_text(json.dumps(document))
    with pytest.raises(BadInput) as refused:
        rerun.plan(runs / "a-complete")
    assert str(refused.value) == (f"{runs / 'a-complete'} has no failed test to rerun (verdict: failed); "
                                  "--include-skipped reruns its 1 skipped test")
    assert [SHORT[t["uuid"]] for t in rerun.plan(runs / "a-complete", include_skipped=True).selection.tests] == [
        "app_credential"]


def test_a_merged_runs_duration_is_both_runs_in_run_json_and_refstack_json(runs, tmp_path):
    from types import SimpleNamespace

    from tcup.launcher.results import finish, rerun, verdict

    plan = rerun.plan(runs / "a-complete")
    now = rerun_outcome(runs, tmp_path, "validate_token")
    merged = rerun.merge(plan, now)
    refstack = json.loads((now / "refstack.json").read_text())
    cloud = contract.Cloud(cpid="c", admin=False)
    asked = finish.Asked(plan.test_list, plan.selection, cloud, plan.rule, [], rerun=plan,
                         settings=plan.record(plan.rule, cloud))
    heard = SimpleNamespace(done={"duration_seconds": 12, "passed": 1}, mode={}, choices=None, cleanup=None,
                            selected=1, missing=[])
    counts = finish._counts(merged, asked, heard)
    record = finish._record(asked, heard, 0.0, None, counts, verdict.judge(counts, plan.rule), [])
    assert record.duration_seconds == refstack["duration_seconds"] == 24  # 12 s before, 12 s now
    assert (record.selected, record.passed, record.merged_from) == (5, 4, ["a-complete"])
