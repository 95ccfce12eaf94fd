"""The test cloud's ``paging`` profile holds: each service answers a listing
without a limit with one small page (testcloud.profiles.PAGE_SIZE) and a way
to the next, so whoever lists (Tempest, TCUP's discovery and cleanup) must
follow the pages to see the whole; Keystone, which has no pages, cuts its
listings short at list_limit and says so ("truncated": true).

A member makes PAGE_SIZE + 2 resources of a kind, lists them page by page,
and removes them again. Marker ``cloud``; the cloud is conftest's
``operator_cloud`` (profiles scs, tls and paging together).
"""

import sys
import time
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from testcloud.common import http  # noqa: E402
from testcloud.keystone import KEYSTONE_LIST_LIMIT, public_endpoints  # noqa: E402
from testcloud.profiles import PAGE_SIZE  # noqa: E402

pytestmark = pytest.mark.cloud

MADE = PAGE_SIZE + 2
# Nova pages key pairs from this microversion on.
KEYPAIR_PAGES = {"OpenStack-API-Version": "compute 2.35"}


class Session:
    """One identity's REST calls to the public endpoints."""

    def __init__(self, cloud, who):
        self.token, body = cloud.token(who)
        self.endpoints = public_endpoints(body)

    def call(self, method, url, wanted, **kwargs):
        status, _, payload = http(method, url, token=self.token, **kwargs)
        assert status in (wanted if isinstance(wanted, tuple) else (wanted,)), \
            f"{method} {url}: HTTP {status}: {payload!r:.400}"
        return payload

    def url(self, service, path):
        return self.endpoints[service] + path

    def pages(self, service, path, key, headers=None):
        """Every page of a listing, following its next links (Nova, Cinder,
        Neutron: ``<key>_links``; Glance: ``next``)."""
        url, found = self.url(service, path), []
        while url:
            body = self.call("GET", url, 200, headers=headers)
            found.append(body[key])
            url = next_link(self.endpoints[service], body, key)
        return found


def next_link(endpoint, body, key):
    if body.get("next"):  # Glance: a path on its endpoint
        return urljoin(endpoint, body["next"])
    return next((link["href"] for link in body.get(f"{key}_links", []) if link["rel"] == "next"), None)


def check_pages(pages, made, field="name"):
    """The first page is full, none is larger, and following them finds all."""
    assert len(pages[0]) == PAGE_SIZE and len(pages) >= 2, [len(p) for p in pages]
    assert all(len(page) <= PAGE_SIZE for page in pages), [len(p) for p in pages]
    seen = [item[field] for page in pages for item in page]
    assert set(made) <= set(seen) and len(seen) == len(set(seen)), (made, seen)


@pytest.fixture
def member(operator_cloud):
    return Session(operator_cloud, "member")


def names(kind):
    return [f"tcup-paging-{kind}-{n}" for n in range(MADE)]


def test_neutron_pages_networks(member):
    made = {}
    try:
        for name in names("network"):
            made[name] = member.call("POST", member.url("network", "/v2.0/networks"), 201,
                                     body={"network": {"name": name}})["network"]["id"]
        check_pages(member.pages("network", "/v2.0/networks", "networks"), made)
    finally:
        for network_id in made.values():
            member.call("DELETE", member.url("network", f"/v2.0/networks/{network_id}"), 204)


def test_nova_pages_key_pairs(member):
    made = []
    try:
        for name in names("keypair"):
            member.call("POST", member.url("compute", "/os-keypairs"), (200, 201), headers=KEYPAIR_PAGES,
                        body={"keypair": {"name": name}})
            made.append(name)
        pages = member.pages("compute", "/os-keypairs", "keypairs", headers=KEYPAIR_PAGES)
        check_pages([[pair["keypair"] for pair in page] for page in pages], made)
    finally:
        for name in made:
            member.call("DELETE", member.url("compute", f"/os-keypairs/{name}"), (202, 204))


def test_cinder_pages_volumes(member):
    made = {}
    try:
        for name in names("volume"):
            made[name] = member.call("POST", member.url("volumev3", "/volumes"), 202,
                                     body={"volume": {"name": name, "size": 1}})["volume"]["id"]
        check_pages(member.pages("volumev3", "/volumes", "volumes"), made)
    finally:
        for volume_id in made.values():
            delete_volume(member, volume_id)


def delete_volume(member, volume_id, timeout=120):
    """Delete a volume once it has left "creating", and wait until it is gone."""
    url = member.url("volumev3", f"/volumes/{volume_id}")
    deadline = time.monotonic() + timeout
    while member.call("GET", url, 200)["volume"]["status"] == "creating" and time.monotonic() < deadline:
        time.sleep(0.5)
    member.call("DELETE", url, 202)
    while http("GET", url, token=member.token)[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.5)


def test_glance_pages_images(member):
    made = {}
    try:
        for name in names("image"):
            made[name] = member.call("POST", member.url("image", "/v2/images"), 201, body={
                "name": name, "disk_format": "raw", "container_format": "bare"})["id"]
        check_pages(member.pages("image", "/v2/images", "images"), made)
    finally:
        for image_id in made.values():
            member.call("DELETE", member.url("image", f"/v2/images/{image_id}"), 204)


def test_swift_pages_containers_and_objects(member):
    account = member.url("object-store", "")
    info = member.call("GET", urljoin(account, "/info"), 200)["swift"]
    assert (info["account_listing_limit"], info["container_listing_limit"]) == (PAGE_SIZE, PAGE_SIZE)
    containers = names("container")
    try:
        for name in containers:
            member.call("PUT", f"{account}/{name}", (201, 202))
            member.call("PUT", f"{account}/{containers[0]}/{name}", 201, data=b"x")
        for listing in (account, f"{account}/{containers[0]}"):
            check_pages(swift_pages(member, listing), containers)
    finally:
        for name in containers:
            http("DELETE", f"{account}/{containers[0]}/{name}", token=member.token)
        for name in reversed(containers):
            member.call("DELETE", f"{account}/{name}", (204, 404))


def swift_pages(member, url):
    """Every page of a Swift listing: Swift pages by marker, with no link."""
    pages, marker = [], ""
    while True:
        page = member.call("GET", f"{url}?format=json&marker={quote(marker)}", (200, 204)) or []
        if not page:
            return pages
        pages.append(page)
        marker = page[-1]["name"]


def test_keystone_cuts_listings_short(operator_cloud):
    admin = Session(operator_cloud, "admin")
    users = admin.url("identity", "/users")
    made = []
    try:
        # More users than one listing holds, whatever the cloud had before.
        for n in range(KEYSTONE_LIST_LIMIT + 1):
            made.append(admin.call("POST", users, 201, body={"user": {
                "name": f"tcup-paging-user-{n}", "domain_id": "default"}})["user"]["id"])
        body = admin.call("GET", users, 200)
        assert len(body["users"]) == KEYSTONE_LIST_LIMIT and body["truncated"] is True
        # Filters still find any one of them: what a client must use instead.
        found = admin.call("GET", f"{users}?name=tcup-paging-user-{KEYSTONE_LIST_LIMIT}", 200)
        assert [user["id"] for user in found["users"]] == [made[-1]] and not found.get("truncated")
    finally:
        for user_id in made:
            admin.call("DELETE", f"{users}/{user_id}", 204)
