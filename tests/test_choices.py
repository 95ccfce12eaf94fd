"""The pure logic behind a run's choices, without a cloud: which endpoints a
run will use and the region check, --accounts files, --set options, the
image/flavor/network lookups discovery makes and the plan's per-service
counts; the cleanup's rule is in tests/test_cleanup_rule.py. (The same paths run against the
whole test cloud in tests/test_cloud_runs.py.)"""

import subprocess
import sys

import pytest

from tcup.contract import Cloud, Credentials
from tcup.launcher.cloud import credentials as credentials_
from tcup.launcher.cloud import preflight
from tcup.launcher.errors import BadInput
from tcup.runner import __main__ as runner_main
from tcup.runner import discover
from tcup.runner import selection

AUTH_URL = "https://keystone.example.com:5000/v3"


def endpoint(kind, interface, region, url):
    return {"type": kind, "interface": interface, "region": region, "url": url}


CLOUD = Cloud(cpid="c", admin=False, endpoints=[
    endpoint("compute", "public", "RegionOne", "https://nova.one/v2.1"),
    endpoint("compute", "internal", "RegionOne", "http://nova.internal/v2.1"),
    endpoint("compute", "public", "RegionTwo", "https://nova.two/v2.1"),
    endpoint("identity", "public", "RegionOne", AUTH_URL),
])


def test_the_endpoints_a_run_uses_follow_region_and_interface():
    one = Credentials(auth_url=AUTH_URL, region_name="RegionOne")
    assert preflight.endpoints_to_use(one, CLOUD) == {"compute": "https://nova.one/v2.1", "identity": AUTH_URL}
    two = Credentials(auth_url=AUTH_URL, region_name="RegionTwo", interface="publicURL")
    assert preflight.endpoints_to_use(two, CLOUD) == {"compute": "https://nova.two/v2.1"}
    internal = Credentials(auth_url=AUTH_URL, region_name="RegionOne", interface="internal")
    assert preflight.endpoints_to_use(internal, CLOUD) == {"compute": "http://nova.internal/v2.1"}


def test_a_region_the_catalog_lacks_is_refused_in_one_line():
    with pytest.raises(BadInput) as error:
        preflight.endpoints_to_use(Credentials(auth_url=AUTH_URL, region_name="regionone"), CLOUD)
    assert str(error.value) == ("OS_REGION_NAME=regionone: the catalog has no endpoint in that region "
                                "(it has RegionOne, RegionTwo); fix OS_REGION_NAME")


def test_identity_cannot_be_skipped():
    with pytest.raises(BadInput) as error:
        preflight.check(Credentials(auth_url=AUTH_URL, region_name="RegionOne"), CLOUD, ["identity"])
    assert str(error.value).startswith("--skip-service identity: TCUP and Tempest need Keystone")


def test_skipping_a_service_the_catalog_lacks_is_refused():
    with pytest.raises(BadInput) as error:
        preflight.check(Credentials(auth_url=AUTH_URL, region_name="RegionOne"), CLOUD, ["volumev3"])
    assert str(error.value) == "--skip-service volumev3: not in the catalog (it has compute, identity)"


MAIN = Credentials(auth_url=AUTH_URL, username="me", password="pw", project_name="p", region_name="RegionOne")


def test_accounts_in_tempest_form_become_members_of_the_same_cloud(tmp_path):
    path = tmp_path / "accounts.yaml"
    path.write_text("- username: a\n  password: 'p a'\n  project_name: demo\n  roles: [member]\n"
                    "- username: b\n  password: pb\n  tenant_name: other\n  user_domain_name: Users\n")
    accounts = credentials_.load_accounts(path, MAIN)
    assert [(a.username, a.password, a.project_name, a.user_domain_name, a.project_domain_name)
            for a in accounts] == [("a", "p a", "demo", "Default", "Default"), ("b", "pb", "other", "Users", "Default")]
    assert {a.auth_url for a in accounts} == {AUTH_URL} and {a.region_name for a in accounts} == {"RegionOne"}


def test_accounts_from_a_clouds_yaml_keep_only_this_cloud(tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text(f"clouds:\n  one:\n    auth:\n      auth_url: {AUTH_URL}\n      username: a\n      password: pa\n"
                    "      project_name: demo\n  elsewhere:\n    auth:\n      auth_url: https://other.example/v3\n"
                    "      username: z\n      password: pz\n      project_name: demo\n")
    assert [a.username for a in credentials_.load_accounts(path, MAIN)] == ["a"]


@pytest.mark.parametrize("text,message", [
    ("- username: a\n  project_name: demo\n", "account 1 lacks password"),
    ("just text", "holds neither a list of accounts nor a 'clouds:' mapping"),
    ("- [1, 2]\n", "account 1 is not a mapping"),
    ("- username: a\n  password: [\n", "is not valid YAML"),
    ("[]", "holds no account for"),
])
def test_bad_accounts_files_get_one_line(tmp_path, text, message):
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as error:
        credentials_.load_accounts(path, MAIN)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_set_takes_section_key_value_and_refuses_anything_else(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "tcup", "--set", "nope", "--help"], capture_output=True, text=True)
    assert ok.returncode == 2
    assert "'nope' is not SECTION.KEY=VALUE (e.g. compute-feature-enabled.resize=true)" in ok.stderr
    assert "Traceback" not in ok.stderr
    from tcup.launcher.cli import _tempest_option

    assert _tempest_option("compute-feature-enabled.resize = true") == ("compute-feature-enabled.resize", "true")


RESOURCES = [{"id": "1", "name": "cirros"}, {"id": "2", "name": "ubuntu"}, {"id": "3", "name": "ubuntu"}]


def test_discovery_finds_a_named_resource_by_id_or_unique_name():
    assert discover.named(RESOURCES, "cirros", "image", "--image")["id"] == "1"
    assert discover.named(RESOURCES, "3", "image", "--image")["name"] == "ubuntu"
    with pytest.raises(discover.Refused) as error:
        discover.named(RESOURCES, "ubuntu", "image", "--image")
    assert str(error.value) == "--image ubuntu: 2 images have that name; give the id of one of them"
    with pytest.raises(discover.Refused) as error:
        discover.named(RESOURCES, "fedora", "active image", "--image")
    assert str(error.value) == ("--image fedora: the cloud has no active image with that name or id that you can "
                                "use (it has: cirros, ubuntu)")


def test_the_plan_counts_tests_per_service_and_the_skips_it_is_sure_of():
    tests = [selection.Test(f"tempest.api.{name}", f"tempest.api.{name}", None) for name in
             ("compute.servers.A.test_a", "compute.servers.A.test_b", "object_storage.B.test_c", "identity.v3.C.test_d")]
    plan = runner_main.plan(tests, {"nova": True, "swift": False})
    assert plan["tests"] == {"compute": 2, "object_storage": 1, "identity": 1}
    assert plan["skips"] == {"object_storage": {"count": 1, "reason": "the catalog has no swift"}}
    assert plan["services"] == ["keystone", "nova"]
