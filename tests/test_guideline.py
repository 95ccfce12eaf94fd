"""Guideline selection: shipped lists, files, URLs, RefStack test lists, errors."""

import json
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from tcup.launcher import guideline  # noqa: E402
from tcup.launcher.errors import BadInput  # noqa: E402
from tcup.launcher.guideline import GuidelineError  # noqa: E402

DATA = REPO / "tests" / "data" / "interop"
SCS = REPO / "tests" / "data" / "scs-0128"

# Required, unflagged tests per shipped list, counted from the interop data.
EXPECTED_COUNTS = {
    ("2019.11", "platform"): 273,
    ("2019.11", "compute"): 217,
    ("2019.11", "object"): 58,
    ("2020.06", "platform"): 273,
    ("2020.06", "compute"): 217,
    ("2020.06", "object"): 58,
    ("next", "platform"): 270,
    ("next", "compute"): 214,
    ("next", "object"): 57,
    ("2020.06", "dns"): 10,
    ("2020.06", "orchestration"): 60,
}

# A required 2020.06 test that is flagged (Tempest skips it, bug 1600349).
FLAGGED_UUID = "43a1242e-7b31-48d1-88f2-3f72aa9f2077"
# Required by two capabilities of the storage component.
SHARED_TEST = "tempest.api.object_storage.test_account_services.AccountTest.test_list_extensions"
# Required by both the compute and the storage component.
TOKEN_CAPABILITY = "identity-v3-tokens-create"


def flagged_uuids(path: Path) -> set:
    """Every flagged test's uuid in a guideline file."""
    doc = json.loads(path.read_text())
    return {
        details["idempotent_id"].replace("id-", "", 1)
        for capability in doc["capabilities"].values()
        for details in capability["tests"].values()
        if details.get("flagged")
    }


# --- shipped lists -----------------------------------------------------------


@pytest.mark.parametrize("version,target", sorted(EXPECTED_COUNTS))
def test_shipped_list_counts(version, target):
    tests = guideline.load(version, target)
    assert len(tests.tests) == EXPECTED_COUNTS[(version, target)]
    assert tests.target == target
    names = [t["name"] for t in tests.tests]
    uuids = [t["uuid"] for t in tests.tests]
    assert names == sorted(names)
    assert len(set(names)) == len(names) and len(set(uuids)) == len(uuids)
    assert all(guideline.valid_uuid(u) == u for u in uuids)  # bare lowercase, no id- prefix
    assert all(t["capability"] == t["capabilities"][0] for t in tests.tests)


def test_default_is_newest_approved_platform_list():
    tests = guideline.load(None)
    assert (tests.label, tests.guideline, tests.target, len(tests.tests)) == ("2020.06 platform", "2020.06", "platform", 273)
    assert tests.source == "https://opendev.org/openstack/interop/raw/branch/master/2020.06.json"
    index = guideline.shipped_index()
    assert index["default"] == "2020.06"
    assert {e["status"] for e in index["lists"] if e["version"] == "next"} == {"draft"}
    assert guideline.shipped_versions() == ["2020.06", "2019.11", "next", "scs-0128"]


def test_platform_list_contents():
    tests = {t["name"]: t for t in guideline.load("2020.06", "platform").tests}
    first = tests["tempest.api.compute.test_versions.TestVersions.test_list_api_versions"]
    assert first == {
        "name": "tempest.api.compute.test_versions.TestVersions.test_list_api_versions",
        "uuid": "6c0a0990-43b6-4529-9b61-5fd8daf7c55c",
        "capability": "compute-list-api-versions",
        "capabilities": ["compute-list-api-versions"],
    }
    assert tests[SHARED_TEST]["capabilities"] == ["objectstore-account-list", "objectstore-info-request"]
    # The token test is required by both components yet listed once.
    assert sum(1 for t in tests.values() if TOKEN_CAPABILITY in t["capabilities"]) == 1
    capabilities = {c for t in tests.values() for c in t["capabilities"]}
    # 78 required capabilities; two (compute-servers-resize, identity-v3-list-projects) have only flagged tests.
    assert len(capabilities) == 76
    assert "compute-servers-resize" not in capabilities


@pytest.mark.parametrize("version,source", [("2019.11", "2019.11.json"), ("2020.06", "2020.06.json"), ("next", "next.json")])
def test_no_flagged_tests(version, source):
    flagged = flagged_uuids(DATA / source)
    assert FLAGGED_UUID in flagged and len(flagged) == 11
    for target in ("platform", "compute", "object"):
        assert not flagged & set(guideline.load(version, target).uuids())


def test_addons_by_version_and_by_id():
    dns = guideline.load("2020.06", "dns")
    assert (dns.label, dns.guideline, dns.target, len(dns.tests)) == ("dns.2020.06", "dns.2020.06", "dns", 10)
    assert guideline.load("dns.2020.06", "dns").tests == dns.tests
    assert guideline.load("dns.2020.06", None).tests == dns.tests
    # The dns add-on writes idempotent ids without "id-"; they come out the same way.
    assert "d03b69a5-5052-43bc-a38a-b511b6b34304" in dns.uuids()
    orchestration = guideline.load("orchestration.2020.06", None)
    assert orchestration.label == "orchestration.2020.06" and len(orchestration.tests) == 60
    assert all(t["name"].startswith("heat_tempest_plugin.") for t in orchestration.tests)


def test_scs_0128_is_shipped_per_service():
    tests = guideline.load("scs-0128", None)
    assert tests.label == "scs-0128 iaas" and len(tests.tests) == 258
    assert guideline.load("SCS-0128", "iaas").tests == tests.tests
    by_service = {}
    for test in tests.tests:
        by_service[test["capability"]] = by_service.get(test["capability"], 0) + 1
    assert by_service == {"compute": 88, "network": 66, "volume": 65, "image": 23, "identity": 16}
    # The same tests, by id, as the list SCS publishes.
    published = guideline.parse_refstack_list((SCS / "tempest-tests-non-admin.lst").read_text(), "scs")
    assert {t["uuid"] for t in published.tests} == set(tests.uuids())
    assert "SovereignCloudStack/standards@077174d9" in tests.source


def test_tcup_guidelines_lists_every_shipped_list():
    from tcup.launcher import guideline_listing

    text = guideline_listing.render(guideline_listing.shipped_lists())
    lines = text.splitlines()
    assert lines[0].split() == ["LIST", "DATE", "STATUS", "TESTS", "RULE", "SOURCE"]
    rows = lines[1:lines.index("")]
    assert len(rows) == 10 and len(guideline.shipped_index()["lists"]) == 12
    scs = next(row for row in rows if row.startswith("scs-0128 iaas"))
    assert "2026-08-06" in scs and " 258  no-failures " in scs and "CC BY-SA 4.0" in scs
    assert any(row.startswith("2020.06 platform (default)") and " 273  refstack " in row for row in rows)
    assert not any(row.startswith(("dns", "orchestration")) for row in rows)
    # The add-ons whose plugin the image lacks come apart, each naming it.
    apart = lines[lines.index("") + 1:]
    assert apart[0].startswith("Not runnable with this image (needs PLUGIN")
    assert apart[1].split()[:5] + apart[1].split()[-2:] == [
        "dns.2020.06", "2020-06", "approved", "10", "refstack", "needs", "designate-tempest-plugin"]
    assert apart[2].split()[:5] + apart[2].split()[-2:] == [
        "orchestration.2020.06", "2020-06", "approved", "60", "refstack", "needs", "heat-tempest-plugin"]
    assert apart[3] == ""
    # Every interop list is judged by RefStack's rule; the rules are explained below the table.
    assert sum(" refstack " in row for row in rows + apart[1:3]) == 11
    assert "  no-failures  no test fails; skips are allowed" in lines
    assert "  strict       every selected test passes" in lines


def test_the_index_names_the_plugin_an_add_on_needs():
    needs = {e["guideline"]: e.get("needs") for e in guideline.shipped_index()["lists"]}
    assert {name: plugin for name, plugin in needs.items() if plugin} == {
        "dns.2020.06": "designate-tempest-plugin", "orchestration.2020.06": "heat-tempest-plugin"}
    assert guideline.load("dns.2020.06", None).needs == "designate-tempest-plugin"
    assert guideline.load("2020.06", "platform").needs == ""


@pytest.mark.parametrize("version,target,plugin", [
    ("dns.2020.06", None, "dns.2020.06 needs designate-tempest-plugin"),
    ("dns", None, "dns.2020.06 needs designate-tempest-plugin"),  # the README's form
    ("DNS", None, "dns.2020.06 needs designate-tempest-plugin"),
    (None, "dns", "dns.2020.06 needs designate-tempest-plugin"),  # --target dns
    ("2020.06", "orchestration", "orchestration.2020.06 needs heat-tempest-plugin"),
    ("orchestration", None, "orchestration.2020.06 needs heat-tempest-plugin"),
])
def test_a_run_of_a_list_whose_plugin_the_image_lacks_is_refused(version, target, plugin):
    with pytest.raises(GuidelineError) as caught:
        guideline.load_runnable(version, target)
    assert str(caught.value) == (f"{plugin}, a Tempest plugin TCUP's image does not carry, so none of its tests "
                                 "can run; choose a list `tcup guidelines` shows as runnable")
    assert caught.value.exit_code == 2
    assert len(guideline.load_runnable("2020.06", "platform").tests) == 273
    assert len(guideline.load_runnable("scs-0128", None).tests) == 258


def test_the_readmes_add_on_name_is_its_newest_shipped_list():
    dns = guideline.load("dns", None)
    assert (dns.label, len(dns.tests)) == ("dns.2020.06", 10)
    with pytest.raises(GuidelineError, match=r"valid targets: dns$"):
        guideline.load("dns", "platform")


def _tcup(args, tmp_path):
    from conftest import base_env

    return subprocess.run([sys.executable, "-m", "tcup", *args], env=base_env(tmp_path), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args", [["--guideline", "dns.2020.06", "--no-upload"], ["plan", "--guideline", "dns"],
                                  ["--dry-run", "--target", "dns"]])
def test_tcup_refuses_an_add_on_in_one_line_before_the_credentials(args, tmp_path):
    # No OS_* in the environment: the refusal comes before the credentials are read.
    done = _tcup(args, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "tcup: error: dns.2020.06 needs designate-tempest-plugin, a Tempest plugin TCUP's image does not carry, "
        "so none of its tests can run; choose a list `tcup guidelines` shows as runnable"]


def test_tcup_guidelines_json_is_one_object(tmp_path):
    done = _tcup(["guidelines", "--json"], tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.count("\n") == 1
    document = json.loads(done.stdout)
    by_name = {entry["name"]: entry for entry in document["guidelines"]}
    assert len(by_name) == 12 and document["default"] == "2020.06"
    assert {name for name, entry in by_name.items() if not entry["runnable"]} == {"dns.2020.06", "orchestration.2020.06"}
    assert by_name["dns.2020.06"]["needs"] == "designate-tempest-plugin"
    assert (by_name["2020.06 platform"]["tests"], by_name["2020.06 platform"]["rule"],
            by_name["2020.06 platform"]["runnable"], by_name["2020.06 platform"]["needs"],
            by_name["2020.06 platform"]["default"]) == (273, "refstack", True, None, True)
    assert (by_name["scs-0128 iaas"]["rule"], by_name["scs-0128 iaas"]["tests"]) == ("no-failures", 258)
    assert sorted(document["rules"]) == ["no-failures", "refstack", "strict"]


def test_selection_for_runner():
    selection = guideline.load("2020.06", "object").selection()
    assert selection.label == "2020.06 object" and len(selection.tests) == 58
    assert set(selection.tests[0]) == {"name", "uuid"}


def test_committed_lists_match_generator():
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_guidelines.py"), "--check", "--source", str(DATA), "--scs", str(SCS)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "13 files up to date" in done.stdout


def test_generator_check_reports_drift(tmp_path):
    script = [sys.executable, str(REPO / "tools" / "make_guidelines.py"), "--source", str(DATA), "--scs", str(SCS),
              "--output", str(tmp_path)]
    assert subprocess.run(script, capture_output=True, timeout=60).returncode == 0
    assert len(list(tmp_path.glob("*.json"))) == 13
    (tmp_path / "2020.06-object.json").write_text("{}\n")
    (tmp_path / "old-platform.json").write_text("{}\n")
    done = subprocess.run(script + ["--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "differs" in done.stderr and "2020.06-object.json" in done.stderr
    assert "stale" in done.stderr and "old-platform.json" in done.stderr
    # Writing again repairs the drift and removes the stale list.
    assert subprocess.run(script, capture_output=True, timeout=60).returncode == 0
    assert subprocess.run(script + ["--check"], capture_output=True, timeout=60).returncode == 0
    assert not (tmp_path / "old-platform.json").exists()


# --- files -------------------------------------------------------------------


def test_load_guideline_file():
    tests = guideline.load(str(DATA / "2020.06.json"), "platform")
    assert tests.label == "2020.06 platform" and len(tests.tests) == 273
    assert tests.tests == guideline.load("2020.06").tests
    assert tests.source == str(DATA / "2020.06.json")
    storage = guideline.load(str(DATA / "next.json"), "OpenStack Powered Storage")  # the long name works too
    assert storage.target == "object" and len(storage.tests) == 57
    dns = guideline.load(str(DATA / "add-ons" / "dns.2020.06.json"), None)
    assert dns.target == "dns" and len(dns.tests) == 10


def test_required_tests_from_dict():
    doc = json.loads((DATA / "add-ons" / "orchestration.2020.06.json").read_text())
    tests = guideline.required_tests(doc, "orchestration", "memory")
    assert len(tests.tests) == 60 and tests.source == "memory"
    assert len({c for t in tests.tests for c in t["capabilities"]}) == 23


# --- errors ------------------------------------------------------------------


def test_unknown_version():
    with pytest.raises(GuidelineError) as caught:
        guideline.load("2021.01", "platform")
    message = str(caught.value)
    assert "2021.01" in message and "2020.06, 2019.11, next" in message
    assert isinstance(caught.value, BadInput) and caught.value.exit_code == 2


def test_unknown_target():
    with pytest.raises(GuidelineError, match=r"no target 'storage'; valid targets: compute, dns, object, orchestration, platform"):
        guideline.load("2020.06", "storage")
    with pytest.raises(GuidelineError, match=r"valid targets: dns$"):
        guideline.load("dns.2020.06", "platform")
    with pytest.raises(GuidelineError, match=r"no target 'dns'; valid targets: compute, object, platform"):
        guideline.load(str(DATA / "2020.06.json"), "dns")


def test_missing_file(tmp_path):
    with pytest.raises(GuidelineError, match="neither a shipped version .* nor an existing file"):
        guideline.load(str(tmp_path / "nothing.json"))
    with pytest.raises(GuidelineError, match="does not exist"):
        guideline.load_test_list(str(tmp_path / "nothing.txt"))


def test_not_json(tmp_path):
    path = tmp_path / "guideline.json"
    path.write_text("platform: yes\n")
    with pytest.raises(GuidelineError, match="is not JSON"):
        guideline.load(str(path))


def test_not_schema_2(tmp_path):
    old = tmp_path / "2016.01.json"
    old.write_text(json.dumps({"schema": "1.4", "capabilities": {}, "components": {}, "platform": {"required": []}}))
    with pytest.raises(GuidelineError, match=r"not a schema 2.0 interop guideline \(schema '1.4'\)"):
        guideline.load(str(old))
    plain = tmp_path / "other.json"
    plain.write_text("[1, 2]")
    with pytest.raises(GuidelineError, match="expected a JSON object"):
        guideline.load(str(plain))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"metadata": {"schema": "2.0"}, "components": {}, "capabilities": {}}))
    with pytest.raises(GuidelineError, match="neither 'platforms' nor 'add-ons'"):
        guideline.load(str(broken))


def test_missing_capability_is_named(tmp_path):
    doc = json.loads((DATA / "2020.06.json").read_text())
    del doc["capabilities"]["compute-servers-create"]
    with pytest.raises(GuidelineError, match="'compute-servers-create' is not described"):
        guideline.required_tests(doc, "platform", "edited.json")


# --- test lists --------------------------------------------------------------

TEST_LIST = """\
# comments and blank lines are ignored
tempest.api.compute.test_versions.TestVersions.test_list_api_versions[id-6c0a0990-43b6-4529-9b61-5fd8daf7c55c]

tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9,smoke]
tempest.api.a.renamed.Alias.test_create_token[id-6F8E4436-FC96-4282-8122-E41DF57197A9]
designate_tempest_plugin.tests.api.v2.test_zones.ZonesTest.test_create_zone[9d2e20fc-e56f-4a62-9c61-9752a9ec615c]
"""


def test_parse_test_list():
    tests = guideline.parse_refstack_list(TEST_LIST, "list.txt")
    assert tests.label == "test list list.txt" and tests.source == "list.txt"
    assert [t["uuid"] for t in tests.tests] == [
        "6c0a0990-43b6-4529-9b61-5fd8daf7c55c",
        "6f8e4436-fc96-4282-8122-e41df57197a9",  # the alias line shares it and is folded in
        "9d2e20fc-e56f-4a62-9c61-9752a9ec615c",  # a bare uuid is accepted too
    ]
    assert tests.tests[1] == {
        "name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
        "uuid": "6f8e4436-fc96-4282-8122-e41df57197a9",
        "capability": None,
    }


def test_parse_test_list_line_without_id():
    text = TEST_LIST + "tempest.api.compute.servers.test_servers.ServersTestJSON.test_create_server\n"
    with pytest.raises(GuidelineError, match=r"list.txt line 7 has no idempotent id: 'tempest.api.compute.servers"):
        guideline.parse_refstack_list(text, "list.txt")
    with pytest.raises(GuidelineError, match="line 1 has no idempotent id"):
        guideline.parse_refstack_list("tempest.api.x.test_y[smoke]\n", "list.txt")


def test_parse_empty_test_list():
    with pytest.raises(GuidelineError, match="lists no tests"):
        guideline.parse_refstack_list("\n# nothing\n\n", "empty.txt")


def test_load_test_list_file(tmp_path):
    path = tmp_path / "required.txt"
    path.write_text(TEST_LIST)
    assert len(guideline.load_test_list(str(path)).tests) == 3


# --- URLs --------------------------------------------------------------------


def refstack_lines(version: str, target: str, flagged: bool) -> str:
    """What a RefStack server answers for a test list: name[id] lines, aliases included, sorted."""
    path = DATA / (f"{version}.json" if version[0].isdigit() or version == "next" else f"add-ons/{version}.json")
    doc = json.loads(path.read_text())
    long_names = {"platform": "OpenStack Powered Platform", "compute": "OpenStack Powered Compute",
                  "object": "OpenStack Powered Storage", "dns": "DNS", "orchestration": "Orchestration"}
    targets = doc.get("platforms") or doc["add-ons"]
    required = {
        capability
        for component in targets[long_names[target]]["components"]
        for capability in doc["components"][component["name"]]["capabilities"]["required"]
    }
    lines = []
    for capability in required:
        for name, details in doc["capabilities"][capability]["tests"].items():
            if flagged or not details.get("flagged"):
                for alias in [name] + details.get("aliases", []):
                    lines.append(f"{alias}[{details['idempotent_id']}]")
    return "\n".join(sorted(set(lines)))


class Handler(SimpleHTTPRequestHandler):
    """Serves the interop data as files, and /v1/guidelines/<v>/tests as RefStack does."""

    queries = []

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path.startswith("/v1/guidelines/") and parts.path.endswith("/tests"):
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.queries.append(query)
            version = parts.path.split("/")[3]
            target = query.get("target", "platform")
            if target not in ("platform", "compute", "object", "dns", "orchestration"):
                body = f"Invalid target: {target}"  # RefStack answers 200 with this
            else:
                body = refstack_lines(version, target, flagged=query.get("flag") != "false")
            self.send_text(body)
        elif parts.path == "/lists/required.txt":
            self.send_text(TEST_LIST)
        elif parts.path == "/moved.json":
            self.send_response(302)
            self.send_header("Location", "/2020.06.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path in ("/endless.json", "/drip.json"):
            # No Content-Length: the body ends when the connection does, if ever.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.stream_body(b" " * 65536 if parts.path == "/endless.json" else b" ")
        else:
            super().do_GET()

    def stream_body(self, piece: bytes):
        """Bytes until the client goes, for 20 s at most (0.05 s apart for a single byte)."""
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                self.wfile.write(piece)
                self.wfile.flush()
                if len(piece) == 1:
                    time.sleep(0.05)
        except OSError:
            pass  # the client gave up, as it should

    def send_text(self, body: str):
        self._send(body)

    def _send(self, body: str):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # keep pytest output clean


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server over tests/data/interop, stopped after the test."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy must not see the local server
    Handler.queries = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(DATA)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_load_guideline_url(server):
    tests = guideline.load(f"{server}/2020.06.json", "platform")
    assert tests.label == "2020.06 platform" and len(tests.tests) == 273
    assert tests.source == f"{server}/2020.06.json"
    assert tests.tests == guideline.load("2020.06").tests
    dns = guideline.load(f"{server}/add-ons/dns.2020.06.json", None)
    assert dns.label == "dns.2020.06" and len(dns.tests) == 10


def test_load_refstack_test_list_url(server):
    tests = guideline.load(f"{server}/v1/guidelines/2020.06/tests", "platform")
    assert (tests.label, tests.guideline, tests.target) == ("2020.06 platform", "2020.06", "platform")
    # The alias lines RefStack adds fold into their tests: the same 273 uuids as the shipped list.
    assert len(tests.tests) == 273
    assert set(tests.uuids()) == set(guideline.load("2020.06").uuids())
    assert Handler.queries[-1] == {"type": "required", "flag": "false", "target": "platform"}
    assert "type=required" in tests.source and "flag=false" in tests.source


def test_refstack_url_keeps_given_parameters(server):
    tests = guideline.load(f"{server}/v1/guidelines/2020.06/tests?target=compute&flag=true", "platform")
    assert Handler.queries[-1] == {"target": "compute", "flag": "true", "type": "required"}
    assert tests.label == "2020.06 compute"
    flagged = flagged_uuids(DATA / "2020.06.json")
    assert len(tests.tests) == 217 + 11  # the user asked for the 11 flagged compute tests too
    assert len(flagged & set(tests.uuids())) == 11
    addon = guideline.load(f"{server}/v1/guidelines/dns.2020.06/tests?target=dns", None)
    assert addon.label == "dns.2020.06" and len(addon.tests) == 10


def test_refstack_url_errors(server):
    with pytest.raises(GuidelineError, match="RefStack refused .*Invalid target: storage"):
        guideline.load(f"{server}/v1/guidelines/2020.06/tests", "storage")
    with pytest.raises(GuidelineError, match="answered HTTP 404"):
        guideline.load(f"{server}/2031.01.json", "platform")
    with pytest.raises(GuidelineError, match="is not JSON"):
        guideline.load(f"{server}/README.md", "platform")


def test_plain_test_list_url(server):
    # A non-JSON body that reads as a test list is taken as one.
    tests = guideline.load(f"{server}/lists/required.txt", "platform")
    assert tests.label == "test list required.txt" and len(tests.tests) == 3


def test_a_guideline_url_that_redirects_is_refused(server):
    with pytest.raises(GuidelineError, match=rf"^{server}/moved.json redirects \(HTTP 302\) to /2020.06.json; "
                                             "give that URL instead$"):
        guideline.load(f"{server}/moved.json", "platform")


def test_a_guideline_url_larger_than_the_bound_is_refused(server, monkeypatch):
    monkeypatch.setattr(guideline, "FETCH_BYTES", 100 * 1024)
    with pytest.raises(GuidelineError, match="is larger than"):
        guideline.load(f"{server}/2020.06.json", "platform")  # says so in its Content-Length
    with pytest.raises(GuidelineError, match="is larger than"):
        guideline.load(f"{server}/endless.json", "platform")  # says nothing, and never ends


def test_a_guideline_url_that_drips_is_given_up_in_time(server, monkeypatch):
    # A byte every 0.05 s never trips a read timeout; the bound on the whole does.
    monkeypatch.setattr(guideline, "FETCH_TOTAL", 0.5)
    with pytest.raises(GuidelineError, match=rf"^{server}/drip.json did not arrive within 0.5 s; download it"):
        guideline.load(f"{server}/drip.json", "platform")


def test_a_refstack_refusal_is_shown_without_terminal_control(server, monkeypatch):
    hostile = "Error: \x1b]0;owned\x07\x1b[2Jno such version\r"
    monkeypatch.setattr(Handler, "send_text", lambda self, body: Handler._send(self, hostile))
    with pytest.raises(GuidelineError) as caught:
        guideline.load(f"{server}/v1/guidelines/2020.06/tests", "platform")
    assert str(caught.value).endswith(": Error: no such version")


def test_unreachable_url():
    with pytest.raises(GuidelineError, match="cannot fetch http://127.0.0.1:9/"):
        guideline.load("http://127.0.0.1:9/2020.06.json", "platform")


PROXY_PASSWORD = "pr0xy-s3cret/+é"
IN_A_URL = quote(PROXY_PASSWORD, safe="")


@pytest.mark.parametrize("proxy", [f"http://alice:{IN_A_URL}@proxy.example:bad-port",
                                   f"http://alice:{IN_A_URL}@127.0.0.1:9"])
def test_a_fetch_through_a_proxy_never_prints_its_password(tmp_path, proxy):
    """A proxy URL with a password that cannot be used (a port that is not a
    number; a proxy that is not there): the one line, on the terminal and in
    --json, names what failed, not the proxy's URL."""
    from tcup.masking import spellings

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "https_proxy": proxy, "HTTP_PROXY": proxy}
    done = subprocess.run([sys.executable, "-m", "tcup", "--json", "--guideline", "https://guidelines.example/x.json"],
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tcup: error: cannot fetch https://guidelines.example/x.json")
    assert json.loads(done.stdout)["error"] == lines[0][len("tcup: error: "):]
    assert not [form for form in spellings(PROXY_PASSWORD) if form in done.stdout + done.stderr]


def test_the_launchers_masks_hold_the_proxies_passwords(monkeypatch):
    from tcup.contract import Credentials
    from tcup.launcher.errors import TcupError
    from tcup.launcher.progress import secret_mask

    monkeypatch.setenv("ALL_PROXY", f"socks5://bob:{IN_A_URL}@proxy.example:1080")
    monkeypatch.setenv("http_proxy", "user:0ther-pw@proxy.example:3128")  # no scheme: requests reads http://
    shown = secret_mask(Credentials(auth_url="http://keystone.example/v3", password="pw-of-the-user")).text(
        f"{PROXY_PASSWORD} 0ther-pw pw-of-the-user")
    assert shown == "*** *** ***"
    assert str(TcupError(f"Failed to parse: socks5://bob:{IN_A_URL}@proxy.example")) == \
        "Failed to parse: socks5://bob:***@proxy.example"
