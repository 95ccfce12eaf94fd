"""The pure logic behind a run's choices, without a cloud: which endpoints a
run will use and the region check, --accounts files, --set options, the
image/flavor/network lookups discovery makes and the plan's per-service
counts; the cleanup's rule is in tests/test_cleanup_rule.py. (The same paths run against the
whole test cloud in tests/test_cloud_runs.py.)"""

import json
import subprocess
import sys

import pytest

from tcup.contract import Cloud, Credentials, Selection, Settings
from tcup.launcher.cloud import credentials as credentials_
from tcup.launcher.cloud import preflight
from tcup.launcher.errors import BadInput
from tcup.runner import __main__ as runner_main
from tcup.runner import discover
from tcup.runner.errors import InputError
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
    assert plan["skips"] == {"object_storage": {"count": 1, "reason": "the catalog has no swift",
                                                "reasons": [{"reason": "the catalog has no swift", "count": 1}]}}
    assert plan["services"] == ["keystone", "nova"]


def test_the_plan_groups_foreseen_skips_by_reason_and_the_catalog_says_first():
    names = ("compute.servers.A.test_a", "compute.servers.A.test_b", "compute.servers.B.test_c",
             "compute.servers.B.test_d", "image.v2.C.test_e", "object_storage.D.test_f")
    tests = [selection.Test(f"tempest.api.{name}[id-x]", f"tempest.api.{name}", None) for name in names]
    foreseen = {"tempest.api.compute.servers.A.test_a[id-x]": "Validation must be enabled",
                "tempest.api.compute.servers.B.test_c[id-x]": "Missing a 2nd set of API credentials in configuration.",
                "tempest.api.compute.servers.B.test_d[id-x]": "Missing a 2nd set of API credentials in configuration.",
                "tempest.api.object_storage.D.test_f[id-x]": "Swift is not available"}
    plan = runner_main.plan(tests, {"nova": True, "glance": True, "swift": False}, foreseen)
    # "count" and "reason" keep their meaning: all of a service's skips, and the largest reason.
    assert plan["skips"]["compute"] == {
        "count": 3, "reason": "Missing a 2nd set of API credentials in configuration.",
        "reasons": [{"reason": "Missing a 2nd set of API credentials in configuration.", "count": 2},
                    {"reason": "Validation must be enabled", "count": 1}]}
    assert plan["skips"]["object_storage"]["reasons"] == [{"reason": "the catalog has no swift", "count": 1}]
    assert "image" not in plan["skips"]
    assert plan["foreseen"] == {"tempest.api.compute.servers.A.test_a": "Validation must be enabled",
                                "tempest.api.compute.servers.B.test_c": foreseen[tests[2].id],
                                "tempest.api.compute.servers.B.test_d": foreseen[tests[3].id],
                                "tempest.api.object_storage.D.test_f": "the catalog has no swift"}


def test_the_plan_shows_each_reason_with_its_count_and_one_reason_alone():
    import io

    from tcup.launcher.progress import Progress
    from tcup.masking import Mask

    out = io.StringIO()
    progress = Progress(Mask(), verbose=False, out=out)
    progress._on_plan({"event": "plan", "services": ["keystone"], "tests": {"compute": 40, "image": 7, "volume": 2},
                       "skips": {"compute": {"count": 5, "reason": "validation is off", "reasons": [
                                     {"reason": "validation is off", "count": 3}, {"reason": "no alt", "count": 2}]},
                                 # an older runner's event: no "reasons"
                                 "image": {"count": 7, "reason": "the catalog has no glance"}}})
    lines = out.getvalue().splitlines()
    assert "tcup:   compute          40 tests; 5 will skip: validation is off (3), no alt (2)" in lines
    assert "tcup:   image            7 tests; 7 will skip: the catalog has no glance" in lines
    assert "tcup:   volume           2 tests" in lines


FAKE_TESTS = '''
import socket
import unittest


class Base(unittest.TestCase):
    skipException = unittest.SkipTest  # as Tempest's test classes have it


class Checked(Base):
    @classmethod
    def skip_checks(cls):
        raise cls.skipException("Validation must  be\\n enabled")

    @unittest.skip("never mind")
    def test_a(self):
        pass


class Asks(Base):
    @classmethod
    def skip_checks(cls):
        try:
            socket.create_connection(("192.0.2.1", 5000), timeout=1)
        except OSError:
            raise cls.skipException("the cloud said no")

    def test_b(self):
        pass


class Broken(Base):
    @classmethod
    def skip_checks(cls):
        raise RuntimeError("needs credentials")

    def test_c(self):
        pass


class Runs(Base):
    @classmethod
    def skip_checks(cls):
        pass

    @unittest.skipUnless(False, "Interface attachment is not available.")
    def test_d(self):
        pass

    def test_e(self):
        pass
'''


def test_foresee_names_the_certain_skips_and_nothing_that_asked_the_network(tmp_path):
    (tmp_path / "fake_tempest_tests.py").write_text(FAKE_TESTS)
    load_list = tmp_path / "load-list.txt"
    ids = [f"fake_tempest_tests.{name}[id-1,smoke]" for name in
           ("Checked.test_a", "Asks.test_b", "Broken.test_c", "Runs.test_d", "Runs.test_e", "Gone.test_f")]
    load_list.write_text("\n".join(ids + ["no_such_module.Class.test_g"]) + "\n")
    out = tmp_path / "foreseen.json"
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run([sys.executable, "-m", "tcup.runner.foresee", str(load_list), str(out)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The class's verdict comes first (its tests never start), on one line as
    # tests.json gives it; a skip decided after reaching for the network, an
    # error, a class or module that is not there: not foreseen.
    assert json.loads(out.read_text()) == {ids[0]: "Validation must be enabled",
                                           ids[3]: "Interface attachment is not available."}
    assert "no_such_module not imported: ModuleNotFoundError" in done.stderr


# --- the tests' images and flavors: what a member can boot ----------------------

def scs_flavors():
    """SCS-0103 v1's mandatory flavors as Nova lists them (the scs profile's seed)."""
    from testcloud import scs

    return [dict(flavor, id=f"id-{flavor['name']}") for flavor in scs.flavors()]


def scs_images():
    from testcloud import scs

    return [dict(image, id=f"id-{image['name']}", status="active") for image in scs.images()]


def names(chosen):
    return {key: (chosen[key] or {}).get("name") for key in ("image", "image_alt", "flavor", "flavor_alt")}


def flavor(name, ram, disk, vcpus=1):
    return {"id": name, "name": name, "ram": ram, "disk": disk, "vcpus": vcpus}


def image(name, size=1, min_disk=0, min_ram=0):
    return {"id": name, "name": name, "size": size, "min_disk": min_disk, "min_ram": min_ram}


def test_on_scs_flavors_the_smallest_two_with_a_disk_are_chosen_for_the_smallest_image():
    chosen = discover.choose_servers(scs_images(), scs_flavors(), {})
    assert names(chosen) == {"image": "Debian 12", "image_alt": "Ubuntu 24.04",
                             "flavor": "SCS-2V-4-20s", "flavor_alt": "SCS-4V-16-100s"}
    assert chosen["why"] == [
        "image Debian 12: the smallest image a flavor can boot",
        "image_alt Ubuntu 24.04: the next smallest image",
        "flavor SCS-2V-4-20s (2 vCPUs, 4 GiB RAM, 20 GB disk): the smallest with a disk >= 8 GiB and "
        "RAM >= 512 MiB (what Debian 12 and Ubuntu 24.04 need)",
        "flavor_alt SCS-4V-16-100s (4 vCPUs, 16 GiB RAM, 100 GB disk): the next one",
        "13 flavors without a disk passed over (a member cannot boot an image on them; name one with --flavor "
        "to use it)"]
    assert "advice" not in chosen


def test_the_default_clouds_m1_flavors_and_raw_images_are_still_chosen():
    flavors = [flavor("m1.small", 512, 5), flavor("m1.nano", 128, 1), flavor("m1.micro", 192, 1)]
    images = [image("tcup-raw-disk-alt", 2 << 20), image("tcup-raw-disk", 1 << 20)]
    assert names(discover.choose_servers(images, flavors, {})) == {
        "image": "tcup-raw-disk", "image_alt": "tcup-raw-disk-alt", "flavor": "m1.nano", "flavor_alt": "m1.micro"}


def test_a_flavor_below_the_images_min_disk_or_min_ram_is_passed_over():
    flavors = [flavor("tiny", 256, 5), flavor("lowram", 256, 40), flavor("fits", 1024, 10),
               flavor("bigger", 2048, 20), flavor("nodisk", 64, 0)]
    chosen = discover.choose_servers([image("debian", min_disk=8, min_ram=512)], flavors, {})
    assert names(chosen) == {"image": "debian", "image_alt": "debian", "flavor": "fits", "flavor_alt": "bigger"}
    assert chosen["why"][1] == "image_alt debian: the same: no other image fits a flavor with it"
    assert chosen["why"][-1] == "2 flavors with a disk too small for a disk >= 8 GiB and RAM >= 512 MiB " \
                                "(what debian needs) passed over"


def test_an_image_no_flavor_can_boot_is_passed_over_and_the_alternate_must_fit_the_same_flavor():
    flavors = [flavor("f10", 1024, 10), flavor("f12", 2048, 12)]
    images = [image("windows", size=1, min_disk=40), image("debian", size=5, min_disk=8),
              image("ubuntu", size=9, min_disk=10), image("cirros-like", size=7, min_ram=4096)]
    chosen = discover.choose_servers(images, flavors, {})
    assert names(chosen) == {"image": "debian", "image_alt": "ubuntu", "flavor": "f10", "flavor_alt": "f12"}
    # Only a CirrOS is preferred whatever its size, as long as a flavor boots it.
    with_cirros = images + [image("cirros-0.6.2", size=20)]
    assert names(discover.choose_servers(with_cirros, flavors, {}))["image"] == "cirros-0.6.2"


def test_a_flavor_without_a_disk_is_used_only_when_named():
    chosen = discover.choose_servers(scs_images(), scs_flavors(), {"flavor": "SCS-1L-1"})
    assert names(chosen)["flavor"] == "SCS-1L-1" and names(chosen)["flavor_alt"] == "SCS-2V-4-20s"
    assert chosen["why"][2] == "flavor SCS-1L-1 (1 vCPU, 1 GiB RAM, no disk): named with --flavor"
    assert chosen["why"][4].startswith("12 flavors without a disk passed over")
    both = discover.choose_servers(scs_images(), scs_flavors(), {"flavor": "SCS-2V-4-20s", "flavor_alt": "SCS-2V-4"})
    assert (names(both)["flavor"], names(both)["flavor_alt"]) == ("SCS-2V-4-20s", "SCS-2V-4")
    alt_only = discover.choose_servers(scs_images(), scs_flavors(), {"flavor_alt": "SCS-2V-4-20s"})
    assert (names(alt_only)["flavor"], names(alt_only)["flavor_alt"]) == ("SCS-4V-16-100s", "SCS-2V-4-20s")


def test_named_images_are_taken_as_named():
    chosen = discover.choose_servers(scs_images(), scs_flavors(), {"image": "Ubuntu 24.04", "image_alt": "id-Debian 12"})
    assert names(chosen)["image"] == "Ubuntu 24.04" and names(chosen)["image_alt"] == "Debian 12"
    assert chosen["why"][:2] == ["image Ubuntu 24.04: named with --image", "image_alt Debian 12: named with --image-alt"]


def test_with_one_bootable_flavor_both_are_that_one():
    flavors = [flavor("SCS-1V-2", 2048, 0), flavor("SCS-2V-4-20s", 4096, 20, vcpus=2)]
    chosen = discover.choose_servers([image("debian", min_disk=8)], flavors, {})
    assert (names(chosen)["flavor"], names(chosen)["flavor_alt"]) == ("SCS-2V-4-20s", "SCS-2V-4-20s")
    assert "flavor_alt SCS-2V-4-20s (2 vCPUs, 4 GiB RAM, 20 GB disk): the same: no other flavor can boot the images" \
        in chosen["why"]


def test_with_no_bootable_flavor_one_line_says_what_to_do():
    no_disk = [f for f in scs_flavors() if not f["disk"]]
    chosen = discover.choose_servers(scs_images(), no_disk, {})
    assert chosen["flavor"] is None and chosen["flavor_alt"] is None
    assert chosen["advice"] == (
        "none of the 13 flavors your project can use has a disk, and Nova lets only admins boot a server from an "
        "image on such a flavor (a member gets 403 \"Only volume-backed servers are allowed\"): ask the cloud's "
        "operator for a flavor with a disk >= 8 GiB and RAM >= 512 MiB (what Debian 12 needs), "
        "or name one with --flavor NAME if your project may boot from a flavor without a disk")
    assert chosen["why"][-1] == chosen["advice"]
    small = discover.choose_servers([image("big", min_disk=50)], [flavor("f20", 4096, 20), flavor("z", 4096, 0)], {})
    assert small["advice"] == ("no flavor can boot the tests' image as a member: it takes a disk >= 50 GiB (what big "
                               "needs), and the flavors with a disk are smaller (f20 (1 vCPU, 4 GiB RAM, 20 GB disk)); "
                               "name a smaller image with --image, or a flavor with --flavor")
    # The runner stops before any test with that line.
    workspace = runner_main.config.Workspace(None, {}, "preprovisioned", 1, {"flavor": None, "advice": small["advice"]})
    with pytest.raises(InputError) as error:
        runner_main.check_choices(MEMBER_SETTINGS, workspace, COMPUTE_TESTS, {"nova": True})
    assert str(error.value) == small["advice"]


MEMBER_SETTINGS = Settings(credentials=MAIN, cloud=CLOUD, selection=Selection("x", regex="x"))
COMPUTE_TESTS = [selection.Test("tempest.api.compute.servers.A.test_a", "tempest.api.compute.servers.A.test_a", None)]


def test_a_flavor_the_cloud_lacks_is_refused_with_each_flavors_size():
    with pytest.raises(discover.Refused) as error:
        discover.choose_servers(scs_images(), scs_flavors()[:4], {"flavor_alt": "SCS-2V-4-20"})
    assert str(error.value) == (
        "--flavor-alt SCS-2V-4-20: the cloud has no flavor with that name or id that you can use (it has: "
        "SCS-1V-4 (1 vCPU, 4 GiB RAM, no disk), SCS-2V-8 (2 vCPUs, 8 GiB RAM, no disk), "
        "SCS-4V-16 (4 vCPUs, 16 GiB RAM, no disk), SCS-4V-16-100s (4 vCPUs, 16 GiB RAM, 100 GB disk))")
    with pytest.raises(discover.Refused) as error:
        discover.choose_servers(scs_images(), scs_flavors(), {"image_alt": "Ubuntu 22.04"})
    assert str(error.value) == ("--image-alt Ubuntu 22.04: the cloud has no active image with that name or id that "
                                "you can use (it has: Debian 12, Ubuntu 24.04)")


def test_every_page_of_a_listing_is_read():
    """Nova's flavors (a link with the next page's marker) and Glance's images (``next``)."""
    pages = {None: {"flavors": [{"id": "a"}, {"id": "b"}],
                    "flavors_links": [{"rel": "next", "href": "https://nova/flavors?marker=b"}]},
             "b": {"flavors": [{"id": "c"}]}}
    seen = discover.every_page(lambda params: pages[params.get("marker")], "flavors")
    assert [f["id"] for f in seen] == ["a", "b", "c"]
    glance = {None: {"images": [{"id": "x"}], "next": "/v2/images?marker=x"}, "x": {"images": [{"id": "y"}]}}
    assert [i["id"] for i in discover.every_page(lambda p: glance[p.get("marker")], "images")] == ["x", "y"]


class Conf(dict):
    """python-tempestconf's TempestConf, as far as discovery uses it."""

    def __init__(self, **user_set):
        super().__init__({("compute", key): value for key, value in user_set.items()})
        self.priority_sectionkeys = set(self)

    def get(self, section, key):
        return self[(section, key)]

    def set(self, section, key, value, priority=False):
        if priority or (section, key) not in self.priority_sectionkeys:
            self[(section, key)] = value


def test_discovery_sets_what_it_chose_and_a_flavor_set_with_set_counts_as_named(monkeypatch):
    monkeypatch.setattr(discover, "choices", {})
    monkeypatch.setattr(discover, "pending", {"flavors": scs_flavors()})
    monkeypatch.setenv("TCUP_IMAGE_ALT", "Debian 12")
    conf = Conf(flavor_ref="id-SCS-1V-2")
    discover.settle(conf, scs_images())
    assert {key: value for (_, key), value in conf.items()} == {
        "flavor_ref": "id-SCS-1V-2", "flavor_ref_alt": "id-SCS-2V-4-20s",
        "image_ref": "id-Debian 12", "image_ref_alt": "id-Debian 12"}
    assert discover.choices["flavor"] == {"id": "id-SCS-1V-2", "name": "SCS-1V-2"}
    why = discover.choices["why"].splitlines()
    assert why[1] == "image_alt Debian 12: named with --image-alt"
    assert why[2] == "flavor SCS-1V-2 (1 vCPU, 2 GiB RAM, no disk): named with --set compute.flavor_ref"
    assert discover.pending == {}


def test_a_rerun_repeats_the_second_image_and_flavor_the_user_named():
    from tcup.contract import Choices
    from tcup.launcher.results import rerun

    named = Choices(image_alt="Ubuntu 24.04", flavor_alt="SCS-4V-16-100s")
    recorded = json.loads(json.dumps(rerun.record(Selection("x", regex="x"), None, None, named)))
    assert rerun.Plan(None, True, recorded, {}, [], None).choices == named
