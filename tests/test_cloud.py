"""The test cloud (tools/testcloud): a member uses a real OpenStack.

One cloud for the session (Keystone, Placement, Glance, Neutron, Cinder,
Swift and Nova on fake drivers, MariaDB and RabbitMQ), started the way
``tools/cloud.py start`` starts it. A member boots a server, creates volumes
and stores an object; a stop and second start reuse everything; the last stop
leaves no process and no port.

It takes minutes (the first time it installs seven venvs), so it runs only
when asked for: ``pytest -m cloud tests/test_cloud.py`` (or TCUP_TEST_CLOUD=1).
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from testcloud.cloud import FLAVORS, IMAGE_NAME, IMAGES, SERVICES, Cloud  # noqa: E402
from testcloud.common import port_open, processes_under  # noqa: E402

from cloud_views import Session  # noqa: E402

pytestmark = pytest.mark.cloud



@pytest.fixture(scope="module")
def member(cloud):
    return Session(*cloud.token("member"))


def test_member_sees_a_public_cloud(member):
    assert set(member.endpoints) == {"identity", "compute", "placement", "image", "network",
                                     "volumev3", "block-storage", "object-store"}
    images = member.call("GET", "image", "/v2/images", 200)["images"]
    assert sorted((i["name"], i["size"], i["disk_format"], i["visibility"], i["status"])
                  for i in images) == [(name, size, "raw", "public", "active") for name, size in IMAGES]
    flavors = member.call("GET", "compute", "/flavors", 200)["flavors"]
    assert sorted(f["name"] for f in flavors) == sorted(f[0] for f in FLAVORS)
    networks = member.call("GET", "network", "/v2.0/networks", 200)["networks"]
    assert {(n["name"], n["router:external"]) for n in networks} == {("public", True), ("private", False)}


def test_member_boots_a_server_to_active_and_deletes_it(member):
    image = member.call("GET", "image", f"/v2/images?name={IMAGE_NAME}", 200)["images"][0]
    network = member.call("GET", "network", "/v2.0/networks?name=private", 200)["networks"][0]
    server = member.call("POST", "compute", "/servers", 202, body={"server": {
        "name": "tcup-test", "imageRef": image["id"], "flavorRef": "42",
        "networks": [{"uuid": network["id"]}]}})["server"]
    path = f"/servers/{server['id']}"
    booted = member.wait("compute", path, "status", {"BUILD"})
    assert booted["status"] == "ACTIVE", booted.get("fault")
    ports = member.call("GET", "network", f"/v2.0/ports?device_id={server['id']}", 200)["ports"]
    assert [p["status"] for p in ports] == ["ACTIVE"]
    assert list(booted["addresses"]) == ["private"]

    member.call("DELETE", "compute", path, 204)
    assert member.wait("compute", path, "status", {"ACTIVE", "DELETED"}) is None
    assert member.call("GET", "network", f"/v2.0/ports?device_id={server['id']}", 200)["ports"] == []


def test_member_creates_volumes_blank_and_from_the_image(member):
    image = member.call("GET", "image", f"/v2/images?name={IMAGE_NAME}", 200)["images"][0]
    for extra in ({}, {"imageRef": image["id"]}):
        volume = member.call("POST", "volumev3", "/volumes", 202,
                             body={"volume": dict({"size": 1, "name": "tcup-test"}, **extra)})["volume"]
        path = f"/volumes/{volume['id']}"
        created = member.wait("volumev3", path, "status", {"creating", "downloading"})
        assert created["status"] == "available"
        assert created["bootable"] == ("true" if extra else "false")
        member.call("DELETE", "volumev3", path, 202)
        assert member.wait("volumev3", path, "status", {"available", "deleting"}) is None


def test_member_stores_an_object(member):
    member.call("PUT", "object-store", "/tcup-test", 201)
    member.call("PUT", "object-store", "/tcup-test/hello.txt", 201, data=b"hello, swift")
    assert member.call("GET", "object-store", "/tcup-test/hello.txt", 200) == b"hello, swift"
    member.call("DELETE", "object-store", "/tcup-test/hello.txt", 204)
    member.call("DELETE", "object-store", "/tcup-test", 204)


def test_stop_leaves_nothing_and_a_second_start_is_warm(cloud):
    ports = cloud.site.ports
    assert cloud.stop() == []
    assert processes_under(cloud.root) == []
    assert [name for name, port in ports.items() if port_open(port)] == []

    again = Cloud(cloud.root, SERVICES).start()
    assert again.timings["venvs"] < 10 and again.timings["seed"] < 5  # nothing rebuilt or reseeded
    assert again.site.auth_url == cloud.site.auth_url
    # The member's data and identity survived.
    assert Session(*again.token("member")).call("GET", "image", f"/v2/images?name={IMAGE_NAME}", 200)["images"]
