"""What the cloud tests share: REST views of the test cloud (the admin's view
of everything, a member's session), and running TCUP as a user does."""

import json
import re
import subprocess
import time
from pathlib import Path

from conftest import base_env
from testcloud import mariadb
from testcloud.common import http
from testcloud.keystone import public_endpoints

BUILD_TIMEOUT = 120


class Admin:
    """The admin's view of the whole cloud, by REST: what exists, by kind."""

    def __init__(self, cloud):
        self.site = cloud.site
        self.token, body = cloud.token("admin")
        self.endpoints = public_endpoints(body)
        self.member_token, member_body = cloud.token("member")
        self.member_project = member_body["project"]["id"]
        self.member_swift = public_endpoints(member_body)["object-store"]

    def delete(self, kind, key, timeout=180):
        """Remove one resource by hand, as a user would, and wait until it is gone."""
        service, path = {"servers": ("compute", "/servers/"), "server_groups": ("compute", "/os-server-groups/"),
                         "volumes": ("volumev3", "/volumes/"), "snapshots": ("volumev3", "/snapshots/"),
                         "networks": ("network", "/v2.0/networks/"), "subnets": ("network", "/v2.0/subnets/"),
                         "ports": ("network", "/v2.0/ports/"), "routers": ("network", "/v2.0/routers/"),
                         "security_groups": ("network", "/v2.0/security-groups/"),
                         "images": ("image", "/v2/images/"), "projects": ("identity", "/projects/"),
                         "users": ("identity", "/users/")}[kind]
        http("DELETE", self.endpoints[service] + path + key, token=self.token)
        deadline = time.monotonic() + timeout
        while http("GET", self.endpoints[service] + path + key, token=self.token)[0] != 404:
            assert time.monotonic() < deadline, f"{kind} {key} is still there"
            time.sleep(1)

    def get(self, service, path, token=None):
        status, _, body = http("GET", self.endpoints[service] + path, token=token or self.token)
        assert status == 200, f"GET {service}{path}: HTTP {status}"
        return body

    def every(self, service, path, key, token=None) -> list:
        """Every item of a listing, following its pages (Nova's, Cinder's and
        Neutron's ``<key>_links``, Glance's ``next``) as the paging profile
        makes them; Keystone cannot page: a listing it cuts short is read
        from its database instead."""
        url, items = self.endpoints[service] + path, []
        for _ in range(1000):
            status, _, body = http("GET", url, token=token or self.token)
            assert status == 200, f"GET {url}: HTTP {status}"
            if body.get("truncated"):
                return self.keystone_rows(key)
            items += body[key]
            following = [link["href"] for link in body.get(f"{key}_links") or [] if link.get("rel") == "next"]
            if body.get("next"):  # Glance: a path from the endpoint's root
                root = self.endpoints[service].split("/v2")[0]
                following = [root + body["next"]]
            if not following or not body[key]:
                return items
            url = following[0]
        raise AssertionError(f"{service}{path}: more than 1000 pages")

    def keystone_rows(self, key) -> list:
        """Keystone's users, projects, domains or roles from its database:
        its API cannot page and filters only after cutting a listing short,
        so on the paging profile the database is the whole view."""
        sql = {
            "users": "SELECT u.id, COALESCE(l.name, n.name, '') FROM keystone.user u "
                     "LEFT JOIN keystone.local_user l ON l.user_id = u.id "
                     "LEFT JOIN keystone.nonlocal_user n ON n.user_id = u.id",
            "projects": "SELECT id, name FROM keystone.project WHERE is_domain = 0",
            "domains": "SELECT id, name FROM keystone.project WHERE is_domain = 1 AND id <> '<<keystone.domain.root>>'",
            "roles": "SELECT id, name FROM keystone.role",
        }[key]
        return [{"id": row[0], "name": row[1]} for row in mariadb.query(self.site, sql)]

    def resources(self) -> set:
        """(kind, id, name) of everything a run may create, in every project."""
        found = set()
        lists = [
            ("servers", "compute", "/servers/detail?all_tenants=1", "servers"),
            ("server_groups", "compute", "/os-server-groups?all_projects=1", "server_groups"),
            ("networks", "network", "/v2.0/networks", "networks"),
            ("subnets", "network", "/v2.0/subnets", "subnets"),
            ("ports", "network", "/v2.0/ports", "ports"),
            ("routers", "network", "/v2.0/routers", "routers"),
            ("security_groups", "network", "/v2.0/security-groups", "security_groups"),
            ("floatingips", "network", "/v2.0/floatingips", "floatingips"),
            ("subnetpools", "network", "/v2.0/subnetpools", "subnetpools"),
            ("volumes", "volumev3", "/volumes/detail?all_tenants=1", "volumes"),
            ("snapshots", "volumev3", "/snapshots/detail?all_tenants=1", "snapshots"),
            ("images", "image", "/v2/images", "images"),
            ("users", "identity", "/users", "users"),
            ("projects", "identity", "/projects", "projects"),
            ("domains", "identity", "/domains", "domains"),
            ("roles", "identity", "/roles", "roles"),
            ("flavors", "compute", "/flavors?is_public=None", "flavors"),
        ]
        for kind, service, path, key in lists:
            for item in self.every(service, path, key):
                found.add((kind, item["id"], item.get("name") or ""))
        for user in self.every("identity", "/users", "users"):
            for pair in self.get("compute", f"/os-keypairs?user_id={user['id']}")["keypairs"]:
                found.add(("keypairs", user["id"], pair["keypair"]["name"]))
        return found | self.containers()

    def containers(self) -> set:
        """The member's Swift containers, page by page (Swift pages by marker)."""
        found, marker = set(), ""
        while True:
            status, _, page = http("GET", f"{self.member_swift}?format=json&marker={marker}", token=self.member_token)
            assert status in (200, 204)
            if not page:
                return found
            found |= {("containers", c["name"], c["name"]) for c in page}
            marker = page[-1]["name"]


def env_for(cloud, who, tmp_path, **extra):
    env = base_env(tmp_path)
    env.update(cloud.openrc(who))
    env.update(extra)
    return env


def run_pyz(pyz, args, env, timeout=3600):
    return subprocess.run([str(pyz)] + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def per_service(run_dir: Path) -> dict:
    """{service: {"passed", "failed", "skipped"}} from the run's tests.json."""
    counts = {}
    for test in json.loads((run_dir / "tests.json").read_text())["tests"]:
        parts = test["name"].split(".")
        service = parts[2] if parts[1] == "api" else parts[1]
        status = {"success": "passed", "fail": "failed", "skip": "skipped"}[test["status"]]
        counts.setdefault(service, {"passed": 0, "failed": 0, "skipped": 0})[status] += 1
    return counts


def record(name, run_dir: Path, counts: dict) -> None:
    """The figures, for docs/TEST-CLOUD.md and the issue's note (pytest -s shows them)."""
    meta = json.loads((run_dir / "run.json").read_text())
    print(f"\n{name}: {json.dumps(counts, sort_keys=True)} duration {meta.get('duration_seconds')} s, "
          f"concurrency {meta.get('concurrency')}, verdict {meta.get('verdict')}")


class Session:
    """A user's REST session: token and public endpoints by service type."""

    def __init__(self, token: str, body: dict):
        self.token = token
        self.project_id = body["project"]["id"]
        self.user_id = body["user"]["id"]
        self.endpoints = public_endpoints(body)

    def call(self, method, service, path, wanted, **kwargs):
        status, _, payload = http(method, self.endpoints[service] + path, token=self.token, **kwargs)
        wanted = wanted if isinstance(wanted, tuple) else (wanted,)
        assert status in wanted, f"{method} {service}{path}: HTTP {status}: {payload!r:.500}"
        return payload

    def wait(self, service, path, field, until, timeout=BUILD_TIMEOUT):
        """Poll a resource until its ``field`` leaves the transient states;
        returns the resource (None once it is gone, 404)."""
        deadline = time.monotonic() + timeout
        while True:
            status, _, payload = http("GET", self.endpoints[service] + path, token=self.token)
            if status == 404:
                return None
            resource = next(iter(payload.values()))
            if resource[field] not in until or time.monotonic() > deadline:
                return resource
            time.sleep(0.5)


def wait_for_line(process, pattern, timeout=900) -> list:
    """Read the launcher's stderr until a line matches; returns the lines."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r}: {''.join(lines)[-2000:]}")


def four_accounts(cloud) -> list:
    """A member's run with the cloud's four accounts at four workers, as make demo runs."""
    return ["--accounts", str(cloud.root / "accounts.yaml"), "--concurrency", "4"]


def settle_unproven(admin, before: set, run_dir: Path, err: str, theirs: frozenset = frozenset()) -> None:
    """After an interrupted run: what is in the cloud that was not before
    (but for ``theirs``, other people's) is exactly what cleanup.json calls
    unproven (a create request the interrupt cut off before its answer may
    have made something with no recorded id: shown with its command, never
    removed); the user removes those by hand, and then the cloud is as it was."""
    unproven = json.loads((run_dir / "cleanup.json").read_text())["unproven"]
    extra = admin.resources() - before - set(theirs)
    assert {(kind, key) for kind, key, _ in extra} == {(entry["kind"], entry["id"]) for entry in unproven}, \
        (sorted(extra), unproven)
    for entry in unproven:
        assert entry["remove_with"] in err, err[-3000:]
        admin.delete(entry["kind"], entry["id"])
    assert admin.resources() - before == set(theirs)
