"""The runner's pure logic, on the host: test ids and selection, redaction,
the live stream's bookkeeping, and the result files.

python-subunit and testtools live in the image, not on the host: the test
that round-trips a real subunit v2 stream is skipped when they are missing
(everything else needs the standard library only).
"""

import json
import os
import subprocess
import threading
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import require_module
from tcup import contract, private_files
from tcup.contract import Cloud, Credentials, Selection, Settings
from tcup.masking import Mask
from tcup.runner import config, redact, result_files
from tcup.runner.errors import InputError
from tcup.runner.run import Collector, RedactingStream, exception_line, one_line_reason
from tcup.runner import selection
from tcup.runner.selection import choose, parse_listed_tests
from tcup.testids import split_test_id

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = 'canary-pw-"q\\7f3e'
AUTH_URL = "https://keystone.example.net:5000/v3"

TOKENS = "tempest.api.identity.v3.test_tokens.TokensV3Test"
CREATE_TOKEN = f"{TOKENS}.test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9]"
VALIDATE_TOKEN = f"{TOKENS}.test_validate_token[id-a9512ac3-3909-48a4-b395-11f438e16260]"
DOMAINS = "tempest.api.identity.admin.v3.test_domains.DomainsTestJSON"
LIST_DOMAINS = f"{DOMAINS}.test_list_domains[id-8cf516ef-2114-48f1-907b-d32726c734d4,smoke]"
NEGATIVE = ("tempest.api.identity.v3.test_users_negative.UsersNegative.test_x"
            "[negative,id-0f9f5a5f-d5cd-4a86-8a5b-c5ded151f212]")


def credentials(**overrides) -> Credentials:
    values = dict(auth_url=AUTH_URL, username="alice.cloudy", password=PASSWORD, project_name="acme-prod",
                  project_id="3f1e0c6a9b5d4e2f8a7c6b5d4e3f2a1b", user_domain_name="Default",
                  project_domain_name="Default", region_name="RegionOne")
    values.update(overrides)
    return Credentials(**values)


def installed(*ids):
    """Tests as Tempest lists them."""
    return [selection.Test(i, *split_test_id(i)) for i in ids]


def ts(seconds: float) -> datetime:
    return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)


# --- test ids and selection -------------------------------------------------

def test_a_test_id_gives_its_name_without_attributes_and_its_uuid():
    assert split_test_id(LIST_DOMAINS) == (f"{DOMAINS}.test_list_domains", "8cf516ef-2114-48f1-907b-d32726c734d4")
    # The id- attribute need not come first, and the uuid comes out in lower case.
    assert split_test_id(NEGATIVE.replace("0f9f5a5f", "0F9F5A5F"))[1] == "0f9f5a5f-d5cd-4a86-8a5b-c5ded151f212"
    assert split_test_id("tempest.foo.Bar.test_plain") == ("tempest.foo.Bar.test_plain", None)
    assert split_test_id("tempest.foo.Bar.test_x[smoke]") == ("tempest.foo.Bar.test_x", None)


def test_the_test_list_keeps_test_ids_and_drops_log_lines():
    text = "\n".join(["2026-01-01 00:00:00.000 1 INFO tempest [-] Using tempest config file x",
                      CREATE_TOKEN, "", LIST_DOMAINS, "some noise"])
    assert [t.id for t in parse_listed_tests(text)] == [CREATE_TOKEN, LIST_DOMAINS]


def test_a_guideline_list_is_matched_by_uuid_and_reports_what_tempest_lacks():
    tempest = installed(CREATE_TOKEN, VALIDATE_TOKEN, LIST_DOMAINS)
    wanted = [
        # Renamed upstream: the uuid still finds it.
        {"name": "tempest.api.identity.v3.TokensV3Test.test_create_token",
         "uuid": "id-6f8e4436-fc96-4282-8122-e41df57197a9"},
        {"name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token",
         "uuid": "a9512ac3-3909-48a4-b395-11f438e16260"},
        {"name": "tempest.api.gone.Test.test_gone", "uuid": "id-00000000-0000-4000-8000-000000000000"},
    ]
    chosen = choose(tempest, Selection(label="list", tests=wanted), "47.0.0")
    assert [t.id for t in chosen.tests] == [CREATE_TOKEN, VALIDATE_TOKEN]
    assert chosen.missing == ["00000000-0000-4000-8000-000000000000"]


def test_an_inherited_uuid_selects_the_listed_test_once():
    """Subclasses repeat their parent's tests with the same uuid; the list means one."""
    parent = "tempest.api.compute.servers.test_create_server.ServersTestJSON.test_list_servers[id-9a438d88-10c6-4bcd-8b5b-5b6e25e1346f]"
    child = parent.replace("ServersTestJSON", "ServersTestBootFromVolume")
    renamed_child = "tempest.api.compute.servers.test_create_server.ServersTestManualDisk.test_list_servers_x[id-11111111-10c6-4bcd-8b5b-5b6e25e1346f]"
    renamed_parent = renamed_child.replace("ServersTestManualDisk", "ServersTestJSON")
    tempest = installed(child, parent, renamed_child, renamed_parent)
    wanted = [{"name": "tempest.api.compute.servers.test_create_server.ServersTestJSON.test_list_servers",
               "uuid": "9a438d88-10c6-4bcd-8b5b-5b6e25e1346f"},
              {"name": "tempest.api.compute.servers.test_create_server.ServersTestJSON.test_list_servers_old_name",
               "uuid": "11111111-10c6-4bcd-8b5b-5b6e25e1346f"}]
    chosen = choose(tempest, Selection(label="list", tests=wanted), "47.0.0")
    assert sorted(t.id for t in chosen.tests) == sorted([parent, renamed_parent])


def test_a_regex_narrows_the_list_and_alone_searches_full_ids():
    tempest = installed(CREATE_TOKEN, VALIDATE_TOKEN, LIST_DOMAINS)
    wanted = [{"name": "x", "uuid": "6f8e4436-fc96-4282-8122-e41df57197a9"},
              {"name": "y", "uuid": "8cf516ef-2114-48f1-907b-d32726c734d4"}]
    both = choose(tempest, Selection(label="l", tests=wanted, regex=r"test_tokens"), "47.0.0")
    assert [t.id for t in both.tests] == [CREATE_TOKEN]
    alone = choose(tempest, Selection(label="r", regex=r"smoke\]$"), "47.0.0")
    assert [t.id for t in alone.tests] == [LIST_DOMAINS]


def test_a_selection_matching_nothing_is_bad_input():
    tempest = installed(CREATE_TOKEN)
    with pytest.raises(InputError) as raised:
        choose(tempest, Selection(label="nothing", regex="does_not_exist"), "47.0.0")
    assert "matches no test in Tempest 47.0.0" in str(raised.value)
    assert raised.value.exit_code == 2
    with pytest.raises(InputError):
        choose(tempest, Selection(label="bad", regex="(unclosed"), "47.0.0")


# --- redaction ----------------------------------------------------------------

def test_the_mask_hides_secrets_and_identifying_strings():
    mask = redact.for_credentials(credentials(application_credential_secret="s3cr3t-app"))
    text = (f"POST {AUTH_URL}/auth/tokens as alice.cloudy in acme-prod (3f1e0c6a9b5d4e2f8a7c6b5d4e3f2a1b) "
            f'password={PASSWORD} json="{json.dumps(PASSWORD)[1:-1]}" app=s3cr3t-app '
            "compute at https://keystone.example.net:8774/v2.1 and keystone.example.net:5000")
    masked = mask.text(text)
    for needle in (PASSWORD, "s3cr3t-app", "alice.cloudy", "acme-prod", "3f1e0c6a9b5d", "keystone.example.net",
                   json.dumps(PASSWORD)[1:-1]):
        assert needle not in masked
    assert "<auth-url>/auth/tokens" in masked and masked.count("***") == 3
    assert mask.bytes(text.encode()) == masked.encode()


def test_the_mask_leaves_generic_and_tiny_names_alone():
    # Masking "admin" would turn every tempest/api/identity/admin/ path into noise.
    mask = redact.for_credentials(credentials(username="admin", project_name="ab", password="pw"))
    masked = mask.text("tempest/api/identity/admin/v3 ab pw")
    assert masked == "tempest/api/identity/admin/v3 ab ***"


# --- the live stream ------------------------------------------------------------

class Recorder:
    """A StreamResult target that keeps every status call."""

    def __init__(self):
        self.calls = []

    def startTestRun(self):  # noqa: N802
        pass

    def stopTestRun(self):  # noqa: N802
        pass

    def status(self, **kwargs):
        self.calls.append(kwargs)


TRACEBACK = [
    "Traceback (most recent call last):\n",
    '  File "tempest/api/identity/v3/test_tokens.py", line 40, in test_validate_token\n',
    f"    self.client.auth('alice.cloudy', '{PASSWORD[:6]}",  # the password straddles two chunks
    f"{PASSWORD[6:]}')\n",
    f"tempest.lib.exceptions.Unauthorized: Unauthorized\nDetails: 401 from {AUTH_URL}\n",
]


def feed_run(stream, skip_reason="Missing Identity Admin API credentials in configuration."):
    """A small run: one pass, one fail (chunked traceback), a class skipped
    in setUpClass, and a class teardown error."""
    stream.startTestRun()
    stream.status(test_id=CREATE_TOKEN, test_status="inprogress", timestamp=ts(0))
    stream.status(test_id=CREATE_TOKEN, test_status="success", timestamp=ts(1.5))
    stream.status(test_id=VALIDATE_TOKEN, test_status="inprogress", timestamp=ts(2))
    for chunk in TRACEBACK:
        stream.status(test_id=VALIDATE_TOKEN, file_name="traceback", file_bytes=chunk.encode(),
                      mime_type="text/x-traceback; charset=utf8; language=python", eof=False)
    stream.status(test_id=VALIDATE_TOKEN, file_name="traceback", file_bytes=b"", eof=True)
    stream.status(test_id=VALIDATE_TOKEN, test_status="fail", timestamp=ts(3))
    stream.status(test_id=f"setUpClass ({DOMAINS})", file_name="reason", file_bytes=skip_reason.encode(), eof=True,
                  mime_type="text/plain;charset=utf8")
    stream.status(test_id=f"setUpClass ({DOMAINS})", test_status="skip", timestamp=ts(4))
    stream.status(test_id=f"tearDownClass ({TOKENS})", file_name="traceback",
                  file_bytes=b"Traceback (most recent call last):\n  x\nKeyError: 'cleanup'\n", eof=True,
                  mime_type="text/x-traceback; charset=utf8; language=python")
    stream.status(test_id=f"tearDownClass ({TOKENS})", test_status="fail", timestamp=ts(5))
    stream.stopTestRun()


def test_the_collector_reports_each_test_and_gives_class_skips_to_their_tests():
    tests = installed(CREATE_TOKEN, VALIDATE_TOKEN, LIST_DOMAINS, NEGATIVE)
    seen = []
    collector = Collector(tests, lambda test, status, reason: seen.append((test.id, status, reason)))
    feed_run(RedactingStream(collector, redact.for_credentials(credentials())))
    outcomes = {o.test.id: o for o in collector.finish()}

    assert [(i, s) for i, s, _ in seen] == [
        (CREATE_TOKEN, "inprogress"), (CREATE_TOKEN, "success"), (VALIDATE_TOKEN, "inprogress"),
        (VALIDATE_TOKEN, "fail"), (LIST_DOMAINS, "skip"), (NEGATIVE, "fail")]
    assert outcomes[CREATE_TOKEN].duration == 1.5
    failed = outcomes[VALIDATE_TOKEN]
    assert failed.reason == "tempest.lib.exceptions.Unauthorized: Unauthorized Details: 401 from <auth-url>"
    assert PASSWORD not in failed.detail and "alice.cloudy" not in failed.detail and "***" in failed.detail
    assert outcomes[LIST_DOMAINS].reason == "Missing Identity Admin API credentials in configuration."
    assert outcomes[NEGATIVE].reason == "Tempest reported no result for this test"
    assert collector.fixture_failures == [(f"tearDownClass ({TOKENS})", "KeyError: 'cleanup'")]


def test_a_class_short_of_accounts_is_skipped_with_what_to_do_not_failed():
    tests = installed(CREATE_TOKEN, VALIDATE_TOKEN)
    collector = Collector(tests, lambda *a: None)
    collector.status(test_id=f"setUpClass ({TOKENS})", file_name="traceback",
                     file_bytes=b"Traceback (most recent call last):\n  x\ntempest.lib.exceptions.InvalidCredentials: "
                                b"Invalid Credentials\nDetails: Insufficient number of users provided. TokensV3Test "
                                b"have allocated all the credentials for this allocation request\n", eof=True)
    collector.status(test_id=f"setUpClass ({TOKENS})", test_status="fail")
    outcomes = collector.finish()
    assert {o.status for o in outcomes} == {"skip"} and len(outcomes) == 2
    assert outcomes[0].reason.endswith("add accounts with --accounts FILE")
    assert "Insufficient number of users provided. TokensV3Test" in outcomes[0].detail
    assert collector.fixture_failures == []


def test_attachments_reach_the_target_whole_and_masked():
    recorder = Recorder()
    feed_run(RedactingStream(recorder, redact.for_credentials(credentials())))
    files = [c for c in recorder.calls if c.get("file_name") == "traceback" and c["test_id"] == VALIDATE_TOKEN]
    assert len(files) == 1 and files[0]["eof"] is True
    body = files[0]["file_bytes"].decode()
    assert PASSWORD not in body and AUTH_URL not in body
    assert body == redact.for_credentials(credentials()).text("".join(TRACEBACK))
    assert files[0]["mime_type"].startswith("text/x-traceback")


def test_a_reason_is_the_exception_a_traceback_ends_with():
    chained = ("Traceback (most recent call last):\n  File \"a\", line 1\nValueError: first\n\n"
               "During handling of the above exception, another exception occurred:\n\n"
               "Traceback (most recent call last):\n  File \"b\", line 2\n    raise X\n"
               "tempest.lib.exceptions.NotFound: Object not found\nDetails: {'code': 404}\n")
    assert exception_line(chained) == "tempest.lib.exceptions.NotFound: Object not found Details: {'code': 404}"
    assert one_line_reason("skip", {"reason": b"  no\n  admin  "}) == ("no admin", "no\n  admin")
    assert one_line_reason("success", {}) == (None, "")
    assert one_line_reason("fail", {})[0] == "failed"


def test_a_real_subunit_stream_is_rewritten_without_secrets():
    subunit = require_module("subunit")  # in the image, and in the dev dependencies
    testtools = require_module("testtools")
    import io

    original = io.BytesIO()
    feed_run(subunit.StreamResultToBytes(original))
    assert PASSWORD.encode()[:6] in original.getvalue()

    rewritten = io.BytesIO()
    collector = Collector(installed(CREATE_TOKEN, VALIDATE_TOKEN, LIST_DOMAINS), lambda *a: None)
    target = testtools.CopyStreamResult([subunit.StreamResultToBytes(rewritten), collector])
    stream = RedactingStream(target, redact.for_credentials(credentials()))
    stream.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(original.getvalue()), non_subunit_name="stdout").run(stream)
    stream.stopTestRun()

    data = rewritten.getvalue()
    for needle in (PASSWORD, "alice.cloudy", AUTH_URL, "keystone.example.net"):
        assert needle.encode() not in data
    # The rewritten stream parses, with the same test statuses.
    summary = testtools.StreamSummary()
    summary.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(data)).run(summary)
    summary.stopTestRun()
    assert summary.testsRun == 4  # pass, fail, class skip, class teardown error
    assert len(summary.errors) == 2 and len(summary.skipped) == 1
    assert {o.status for o in collector.finish()} == {"success", "fail", "skip"}


def test_a_failed_command_is_told_by_its_exception_not_its_log_noise():
    from tcup.runner.process import last_error_line

    lines = ["2026-11-25 17:13:21.951 10 INFO tempest [-] Using tempest config file x",
             "2026-11-25 17:13:21.951 10 ERROR tempest Traceback (most recent call last):",
             '2026-11-25 17:13:21.951 10 ERROR tempest   File "x.py", line 1, in f',
             "2026-11-25 17:13:21.951 10 ERROR tempest requests.exceptions.SSLError: certificate verify failed",
             "2026-11-25 17:13:21.951 10 ERROR tempest "]
    assert last_error_line(lines) == "requests.exceptions.SSLError: certificate verify failed"
    assert last_error_line(["starting", "2026-11-25 17:13:21.951 10 ERROR x [-] no catalog", "bye"]) == "no catalog"
    assert last_error_line(["just this"]) == "just this" and last_error_line([]) == ""


# --- discovery creates nothing ----------------------------------------------------

# Runs inside the image, where Tempest and python-tempestconf are installed.
DISCOVERY_GUARD_CHECK = """
from config_tempest.flavors import Flavors
from config_tempest.services.image import ImageService
from tempest.lib import exceptions
from tempest.lib.common import rest_client
from tcup.runner import discover

discover.guard_rest_clients()
discover.choose_images_and_flavors()
client = rest_client.RestClient.__new__(rest_client.RestClient)
for method in ("POST", "PUT", "PATCH", "DELETE"):
    try:
        client.raw_request("http://127.0.0.1:9/v2/images", method)
    except exceptions.Forbidden as error:
        assert "creates nothing" in str(error), error
    else:
        raise AssertionError(method + " was let through")

class Images:
    def list_images(self, params=None):
        return {"images": [
            {"id": "big", "name": "ubuntu", "status": "active", "size": 900},
            {"id": "cirros", "name": "cirros-0.6.2", "status": "active", "size": 20},
            {"id": "queued", "name": "cirros-new", "status": "queued", "size": 1}]}

class Conf(dict):
    def has_option(self, section, key):
        return (section, key) in self
    def get(self, section, key):
        return self[(section, key)]
    def set(self, section, key, value):
        self[(section, key)] = value

class FlavorsClient:
    def list_flavors(self, detail=False, **params):
        assert detail, "flavors are chosen by their disk and RAM"
        return {"flavors": [{"id": "zero", "name": "SCS-1L-1", "ram": 1024, "disk": 0, "vcpus": 1},
                            {"id": "f1", "name": "small", "ram": 2048, "disk": 5, "vcpus": 1},
                            {"id": "f2", "name": "large", "ram": 4096, "disk": 20, "vcpus": 2}]}

conf = Conf()
flavors = Flavors.__new__(Flavors)
flavors.client, flavors._conf = FlavorsClient(), conf
flavors.create_tempest_flavors()  # waits for the image: nothing set yet
assert conf == {}, conf
service = ImageService.__new__(ImageService)
service.client = Images()
service.create_tempest_images(conf)
assert conf == {("compute", "image_ref"): "cirros", ("compute", "image_ref_alt"): "big",
                ("compute", "flavor_ref"): "f1", ("compute", "flavor_ref_alt"): "f2"}, conf
print("guard holds")
"""


@pytest.mark.engine
def test_discovery_cannot_write_to_the_cloud_and_picks_an_existing_image(engine, image):
    output = engine.containers.run(image, ["python", "-c", DISCOVERY_GUARD_CHECK], remove=True,
                                   tmpfs={"/tmp": "mode=1777"}, labels={"org.opencontainers.image.title": "tcup"})
    assert output.decode().strip().endswith("guard holds")


# --- result files ---------------------------------------------------------------

def report(tmp_path=None) -> result_files.Report:
    tests = installed(CREATE_TOKEN, VALIDATE_TOKEN, LIST_DOMAINS, NEGATIVE)
    collector = Collector(tests, lambda *a: None)
    feed_run(RedactingStream(collector, redact.for_credentials(credentials())))
    # A test reported twice (a retry) is counted once.
    return result_files.Report(outcomes=collector.finish(), missing=["00000000-0000-4000-8000-000000000000"],
                          cpid="cloud-1234", label="interop 2020.06 identity", credentials="preprovisioned",
                          concurrency=1, duration_seconds=61.9, tempest_version="47.0.0",
                          fixture_failures=collector.fixture_failures)


def test_refstack_json_holds_the_passed_tests_only_sorted_once():
    data = report()
    data.outcomes.append(data.outcomes[0])  # a duplicate pass
    body = result_files.refstack_json(data)
    assert body == {"cpid": "cloud-1234", "duration_seconds": 61,
                    "results": [{"name": f"{TOKENS}.test_create_token", "uuid": "6f8e4436-fc96-4282-8122-e41df57197a9"}]}


def test_tests_json_and_counts_cover_every_selected_test():
    data = report()
    body = result_files.tests_json(data)
    assert [t["status"] for t in body["tests"]] == ["skip", "success", "fail", "fail"]
    assert body["tests"][0]["name"] == f"{DOMAINS}.test_list_domains"
    assert body["missing"] == ["00000000-0000-4000-8000-000000000000"]
    assert result_files.counts(data.outcomes) == {"passed": 1, "failed": 2, "skipped": 1, "admin_skipped": 1}


def test_junit_xml_parses_with_the_right_counts():
    root = ET.fromstring(result_files.junit_xml(report()))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failed = cases["test_validate_token[id-a9512ac3-3909-48a4-b395-11f438e16260]"]
    assert failed.get("classname") == TOKENS and failed.get("time") == "1.000"
    assert failed.find("failure").get("message").startswith("tempest.lib.exceptions.Unauthorized")
    assert "Traceback" in failed.find("failure").text
    assert cases["test_list_domains[id-8cf516ef-2114-48f1-907b-d32726c734d4,smoke]"].find("skipped") is not None


def test_summary_names_failures_but_not_the_user_or_the_cloud(tmp_path):
    data = report()
    result_files.write_all(tmp_path, data)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([contract.REFSTACK_FILE, contract.TESTS_FILE, contract.JUNIT_FILE, contract.SUMMARY_FILE])
    summary = (tmp_path / contract.SUMMARY_FILE).read_text()
    assert "Passed: 1  Failed: 2  Skipped: 1 (1 for lack of admin credentials)" in summary
    assert "test_validate_token [a9512ac3-3909-48a4-b395-11f438e16260]: tempest.lib" in summary
    everything = "".join(p.read_text() for p in tmp_path.iterdir())
    for needle in (PASSWORD, "alice.cloudy", "acme-prod", AUTH_URL, "keystone.example.net"):
        assert needle not in everything


def test_results_are_replaced_whole(tmp_path):
    target = tmp_path / "refstack.json"
    target.write_text("old")
    private_files.write_atomically(target, b"new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
    assert oct(target.stat().st_mode & 0o777) == "0o600"


# --- config -----------------------------------------------------------------------

def test_only_discover_tempest_config_gets_the_credentials_and_only_in_its_environment(monkeypatch):
    monkeypatch.setenv("OS_PASSWORD", "from-the-developer-shell")
    creds = credentials(interface="internal", insecure=True)
    env = config.cloud_env(creds, Path("/tmp/tcup/cacert.pem"))
    assert env["OS_PASSWORD"] == PASSWORD and env["OS_CACERT"] == "/tmp/tcup/cacert.pem"
    assert env["OS_INSECURE"] == "true" and env["OS_REGION_NAME"] == "RegionOne"
    assert not any(key.startswith("OS_") for key in config.tempest_env())
    options = {"validation.run_validation": "false", "compute-feature-enabled.resize": "true"}
    argv = config.discover_command(creds, Path("/tmp/tcup/accounts.yaml"), Path("/tmp/tcup/cacert.pem"), options)
    assert PASSWORD not in " ".join(argv)
    assert argv[argv.index("--test-accounts") + 1] == "/tmp/tcup/accounts.yaml" and "--non-admin" in argv
    assert "--create" not in argv and "--insecure" in argv
    overrides = config.overrides(creds, Path("/tmp/tcup/cacert.pem"))
    wanted = {**overrides, **options}
    assert argv[-2 * len(wanted):] == [item for pair in wanted.items() for item in pair]
    assert overrides["DEFAULT.record_resources"] == "true"
    assert overrides["identity.v3_endpoint_type"] == "internal" and overrides["compute.endpoint_type"] == "internal"
    assert overrides["identity.disable_ssl_certificate_validation"] == "true"
    assert overrides["identity.ca_certificates_file"] == "/tmp/tcup/cacert.pem"
    assert overrides["DEFAULT.debug"] == "false" and overrides["identity.region"] == "RegionOne"


def test_the_member_account_is_tempest_accounts_yaml():
    entry = config.accounts_entry(credentials(user_domain_name=None, project_domain_id="default",
                                              project_domain_name=None))
    assert entry == {"username": "alice.cloudy", "password": PASSWORD, "project_name": "acme-prod",
                     "project_id": "3f1e0c6a9b5d4e2f8a7c6b5d4e3f2a1b", "user_domain_name": "Default",
                     "project_domain_id": "default", "roles": ["member"]}


def test_credentials_tempest_cannot_use_are_refused():
    with pytest.raises(InputError, match="application credentials"):
        config.check_credentials(credentials(auth_type="v3applicationcredential", username=None, password=None,
                                             application_credential_id="x", application_credential_secret="y"))
    with pytest.raises(InputError, match="project_name"):
        config.check_credentials(credentials(project_name=None))
    with pytest.raises(InputError, match="interface"):
        config.check_credentials(credentials(interface="private"))


# --- the runner's front door ---------------------------------------------------

def test_events_are_contract_lines_with_reasons_masked_and_names_whole(capsys):
    from tcup.runner import events

    events.use_mask(redact.for_credentials(credentials(username="identity")))
    try:
        events.emit("test", name="tempest.api.identity.v3.T.test_x", uuid=None, status="fail",
                    reason=f"401 for identity with {PASSWORD}")
        events.emit("phase", name="run", message="running")
    finally:
        events.use_mask(Mask())
    test, phase = (contract.parse_event(line) for line in capsys.readouterr().out.splitlines())
    assert test["name"] == "tempest.api.identity.v3.T.test_x"
    assert test["reason"] == "401 for <username> with ***"
    assert phase == {"event": "phase", "name": "run", "message": "running"}


def run_runner(line: bytes, hold_stdin: bool = True):
    """The runner fed as the launcher feeds it: the line, then stdin held
    open until the runner ends (stdin closing means the launcher is gone)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "tcup.runner"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    output = {}
    readers = [threading.Thread(target=lambda name=name: output.update({name: getattr(process, name).read()}))
               for name in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    process.stdin.write(line)
    process.stdin.flush()
    if not hold_stdin:
        process.stdin.close()
    try:
        process.wait(timeout=60)
    finally:
        process.kill()
        if not process.stdin.closed:
            process.stdin.close()
        for reader in readers:
            reader.join(10)
    return subprocess.CompletedProcess(process.args, process.returncode, output.get("stdout", b""),
                                       output.get("stderr", b""))


def test_bad_settings_give_one_error_event_and_exit_2():
    done = run_runner(b'{"contract": 1, "credentials": {"password": "' + PASSWORD.encode()[:5] + b"\n", hold_stdin=False)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 2 and len(lines) == 1
    event = contract.parse_event(lines[0])
    assert event["event"] == "error" and event["kind"] == "input"
    assert b"Traceback" not in done.stderr


def test_application_credentials_are_refused_without_leaking_the_secret():
    creds = Credentials(auth_url=AUTH_URL, auth_type="v3applicationcredential", application_credential_id="app-id",
                        application_credential_secret="canary-app-secret")
    settings = Settings(creds, Cloud(cpid="c", admin=False), Selection(label="x", regex="."))
    done = run_runner(settings.to_line())
    assert done.returncode == 2
    event = contract.parse_event(done.stdout.decode().splitlines()[-1])
    assert event["kind"] == "input" and "password" in event["message"]
    assert b"canary-app-secret" not in done.stdout + done.stderr


def test_the_runner_refuses_a_protected_option_the_launcher_let_through():
    """Never one check alone: settings that would switch Tempest's debug log
    on or blind the cleanup are refused inside the container too."""
    from tcup.runner.__main__ import check_settings
    from tcup.runner.errors import InputError

    creds = Credentials(auth_url=AUTH_URL, username="alice", password=PASSWORD, project_name="p")
    for key in ("DEFAULT.debug", "DEFAULT.record_resources", "auth.admin_token"):
        settings = Settings(creds, Cloud(cpid="c", admin=False), Selection(label="x", regex="."),
                            choices=contract.Choices(tempest_options={key: "x"}))
        with pytest.raises(InputError, match=f"option {key} is TCUP's own or would hold a secret"):
            check_settings(settings)
