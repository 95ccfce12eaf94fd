"""TCUP's cleanup in a cloud that others work in, through tcup.pyz.

Other teams work beside a run: a colleague in the run's own project and
another member in a project of their own create servers, volumes, networks
and Swift containers named as Tempest names things (``tempest-colleague-...``)
while TCUP's tests run, and the user had ``tempest...`` resources of their
own before. All of these survive every run, finished or interrupted, while
the run's own resources are gone afterwards: the admin's view of the whole
cloud after a run is exactly the view before it plus what the others made.
Two runs with the same account overlap, and neither removes the other's
resources. A run whose container is killed (no cleanup at all) leaves its
record, and `tcup cleanup RUN` removes by it.

Marker ``cloud``. The interrupted admin run is on the operator-shaped cloud
(small listing limits, TLS, SCS flavors: conftest's ``operator_cloud``).
"""

import json
import re
import secrets
import signal
import subprocess
import time

import pytest

from cloud_views import Admin, Session, env_for, per_service, settle_unproven, wait_for_line
from conftest import CONTAINER_LABEL, base_env, only_run
from testcloud.common import http
from testcloud.keystone import EXTRA_MEMBERS, IdentityAdmin, issue_token

pytestmark = pytest.mark.cloud

SERVERS_AND_SNAPSHOTS = (r"^tempest\.api\.(compute\.servers\.test_(create_server|delete_server|list_server_filters)"
                         r"|volume\.test_volumes_snapshots)")
GONE_TIMEOUT = 180


class Colleague(Session):
    """Someone else at work in the same cloud, naming things as Tempest does."""

    def __init__(self, token, body):
        super().__init__(token, body)
        self.made = []  # (kind, service, path, id, name)

    def bootable(self):
        """An image and the smallest flavor a member may boot it on (one with a disk)."""
        images = self.call("GET", "image", "/v2/images?status=active&visibility=public", 200)["images"]
        image = min(images, key=lambda i: (i.get("min_disk") or 0, i.get("size") or 0))
        # Nova filters by size itself: on a cloud that pages by 5, the flavors
        # with a disk need not be on the first page of all 15.
        disk, ram = max(1, image.get("min_disk") or 0), image.get("min_ram") or 0
        flavors = self.call("GET", "compute", f"/flavors/detail?minDisk={disk}&minRam={ram}", 200)["flavors"]
        return image["id"], min(flavors, key=lambda f: (f["disk"], f["ram"], f["vcpus"]))["id"]

    def make(self, tag: str) -> None:
        """A server, a volume, a network and a Swift container."""
        name = f"tempest-colleague-{tag}-{secrets.token_hex(3)}"
        image, flavor = self.bootable()
        network = self.call("GET", "network", f"/v2.0/networks?project_id={self.project_id}&name=private", 200)
        server = self.call("POST", "compute", "/servers", 202, body={"server": {
            "name": name, "imageRef": image, "flavorRef": flavor,
            "networks": [{"uuid": network["networks"][0]["id"]}]}})["server"]
        self.made.append(("servers", "compute", f"/servers/{server['id']}", server["id"], name))
        self.volume(name)
        self.network(name)
        self.call("PUT", "object-store", f"/{name}", (201, 202))
        self.made.append(("containers", "object-store", f"/{name}", name, name))
        self.wait("compute", f"/servers/{server['id']}", "status", ("BUILD",))

    def volume(self, name: str) -> None:
        volume = self.call("POST", "volumev3", "/volumes", 202, body={"volume": {"size": 1, "name": name}})["volume"]
        self.made.append(("volumes", "volumev3", f"/volumes/{volume['id']}", volume["id"], name))
        self.wait("volumev3", f"/volumes/{volume['id']}", "status", ("creating",))

    def network(self, name: str) -> None:
        network = self.call("POST", "network", "/v2.0/networks", 201, body={"network": {"name": name}})["network"]
        self.made.append(("networks", "network", f"/v2.0/networks/{network['id']}", network["id"], name))

    def still_there(self) -> set:
        """(kind, id) of what this colleague made that exists now."""
        return {(kind, key) for kind, service, path, key, _ in self.made
                if http("HEAD" if kind == "containers" else "GET", self.endpoints[service] + path,
                        token=self.token)[0] != 404}

    def everything(self) -> set:
        return {(kind, key) for kind, _, _, key, _ in self.made}

    def remove_all(self) -> None:
        for kind, service, path, _, _ in self.made:
            http("DELETE", self.endpoints[service] + path, token=self.token)
        deadline = time.monotonic() + GONE_TIMEOUT
        while self.still_there() and time.monotonic() < deadline:
            time.sleep(1)
        assert not self.still_there(), f"could not remove {self.still_there()}"


@pytest.fixture
def others():
    """Factory: in a cloud, a colleague in the run's project (a user of its
    own, made for the test) and another member in a project of their own.
    What they made, and the colleague, are removed afterwards."""
    made = []

    def start(cloud):
        identity = IdentityAdmin(cloud.site.auth_url, cloud.site.password("admin"))
        name, password = f"colleague-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        user = identity.user(name, password, identity.project("demo"), ("member", "reader"))
        made.append(lambda: identity.call("DELETE", f"/users/{user}", 204))
        beside = Colleague(*issue_token(cloud.site.auth_url, name, password, "demo"))
        other_user, other_project = next(iter(EXTRA_MEMBERS.items()))
        apart = Colleague(*issue_token(cloud.site.auth_url, other_user, cloud.site.password(other_user),
                                       other_project))
        made.extend([beside.remove_all, apart.remove_all])
        return beside, apart

    yield start
    for undo in reversed(made):
        undo()


@pytest.fixture
def users_own():
    """Factory: the member's own resources from before the run, named as
    Tempest would name them (and one only almost): a volume and a network."""
    made = []

    def start(cloud):
        mine = Colleague(*cloud.token("member"))
        made.append(mine)
        mine.volume("tempestuous-db")
        mine.network("tempest-precious")
        return mine

    yield start
    for mine in made:
        mine.remove_all()


def what_they_made(admin, *colleagues) -> set:
    """The colleagues' resources in the admin's view (containers: those in
    the member's account, which the view holds), with their servers' ports."""
    found = {(kind, key, name) for colleague in colleagues for kind, _, _, key, name in colleague.made
             if kind != "containers" or colleague.project_id == admin.member_project}
    for kind, key, _ in list(found):
        if kind == "servers":
            found |= {("ports", port["id"], port.get("name") or "")
                      for port in admin.get("network", f"/v2.0/ports?device_id={key}")["ports"]}
    return found


def start_run(pyz, env, output, *args):
    return subprocess.Popen([str(pyz), "--guideline", "scs-0128", "--no-upload", "--output", str(output), *args],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(process, timeout=1800):
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()


def removed_ids(run_dir) -> set:
    return {entry["id"] for entry in json.loads((run_dir / "cleanup.json").read_text())["removed"]}


def test_a_member_run_removes_its_own_and_leaves_a_colleagues_and_the_users_resources(
        cloud, pyz, tmp_path, others, users_own, watch):
    admin = Admin(cloud)
    users_own(cloud)
    beside, apart = others(cloud)
    before = admin.resources()
    # The user's own second network needs naming the tests' one.
    process = start_run(pyz, env_for(cloud, "member", tmp_path), tmp_path / "runs", "--regex", SERVERS_AND_SNAPSHOTS,
                        "--network", "private")
    wait_for_line(process, r"\[2/\d+\] ")
    beside.make("member-run")
    apart.make("member-run")
    _, err = finish(process)
    run_dir = only_run(tmp_path / "runs")
    assert sum(c["failed"] for c in per_service(run_dir).values()) == 0, err[-3000:]
    theirs = what_they_made(admin, beside, apart)
    after = admin.resources()
    assert after - before == theirs  # the run's own are gone; the others' are all there
    assert before - after == set()  # tempestuous-db and tempest-precious too
    assert beside.still_there() == beside.everything() and apart.still_there() == apart.everything()
    assert removed_ids(run_dir).isdisjoint({key for _, key, _ in theirs})
    assert "tempest-colleague" not in (run_dir / "cleanup.json").read_text()


def test_an_interrupted_admin_run_on_an_operators_cloud_leaves_other_teams_resources(
        operator_cloud, pyz, tmp_path, others, watch):
    """Ctrl-C mid-run, as an admin (who sees every project), on a cloud whose
    listings page by a few items."""
    admin = Admin(operator_cloud)
    beside, apart = others(operator_cloud)
    before = admin.resources()
    process = start_run(pyz, env_for(operator_cloud, "admin", tmp_path), tmp_path / "runs",
                        "--regex", r"^tempest\.api\.(compute\.servers|volume)", "--concurrency", "2")
    wait_for_line(process, r"\[2/\d+\] ")
    beside.make("admin-run")
    apart.make("admin-run")
    wait_for_line(process, r"\[12/\d+\] ")
    process.send_signal(signal.SIGINT)
    _, err = finish(process, timeout=400)
    assert process.returncode == 130, err[-3000:]
    removed = re.search(r"tcup: removed (\d+) resources? the tests left in the cloud: (.*)", err)
    assert removed, err[-3000:]
    assert "could not be removed" not in err
    theirs = what_they_made(admin, beside, apart)
    settle_unproven(admin, before, only_run(tmp_path / "runs"), err, frozenset(theirs))
    assert beside.still_there() == beside.everything() and apart.still_there() == apart.everything()
    cleaned = json.loads((only_run(tmp_path / "runs") / "cleanup.json").read_text())
    assert len(cleaned["removed"]) == int(removed.group(1))
    assert {entry["why"] for entry in cleaned["removed"]} <= {"recorded", "in a project this run made"}


def test_two_runs_with_the_same_account_overlap_and_neither_removes_the_others_resources(cloud, pyz, tmp_path, watch):
    admin = Admin(cloud)
    before = admin.resources()
    env = env_for(cloud, "member", tmp_path)
    # Not the volume list tests: they assert that a page of the project's
    # volumes holds only their own, which another run's volumes upset.
    first = start_run(pyz, env, tmp_path / "first", "--regex", r"^tempest\.api\.volume\.(?!test_volumes_list)")
    wait_for_line(first, r"\[3/\d+\] ")
    second = start_run(pyz, env, tmp_path / "second", "--regex", r"^tempest\.api\.volume\.test_volumes_snapshots")
    _, second_err = finish(second)
    _, first_err = finish(first)
    first_run, second_run = only_run(tmp_path / "first"), only_run(tmp_path / "second")
    for run_dir, err in ((first_run, first_err), (second_run, second_err)):
        counts = per_service(run_dir)
        assert counts["volume"]["failed"] == 0, err[-3000:]
    recorded = {run: {json.loads(line).get("id") for line in (run / "resources.jsonl").read_text().splitlines()}
                for run in (first_run, second_run)}
    assert removed_ids(second_run).isdisjoint(recorded[first_run])
    assert removed_ids(first_run).isdisjoint(recorded[second_run])
    assert admin.resources() == before


def test_tcup_cleanup_removes_what_a_killed_run_recorded(cloud, pyz, tmp_path, engine, watch):
    admin = Admin(cloud)
    before = admin.resources()
    env = env_for(cloud, "member", tmp_path)
    process = start_run(pyz, env, tmp_path / "runs", "--regex", SERVERS_AND_SNAPSHOTS)
    # While this class runs, the servers its setUpClass made exist.
    wait_for_line(process, r"\] passed .*ListServerFiltersTestJSON")
    # SIGKILL to the container: no runner is left to clean up.
    ours = [c["Id"] for c in engine.api.containers(filters={"label": CONTAINER_LABEL})
            if any(str(tmp_path) in mount.get("Source", "") for mount in c.get("Mounts") or [])]
    assert len(ours) == 1, ours
    engine.api.kill(ours[0])
    finish(process, timeout=300)
    run_dir = only_run(tmp_path / "runs")
    assert run_dir.name.endswith(".incomplete")
    left = admin.resources() - before
    assert left, "the killed run left nothing to clean up"

    def cleanup(*args, who="member"):
        return subprocess.run([str(pyz), "cleanup", run_dir.name, "--output", str(tmp_path / "runs"), *args],
                              env=env_for(cloud, who, tmp_path), capture_output=True, text=True, timeout=900,
                              stdin=subprocess.DEVNULL)

    shown = cleanup("--dry-run")
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert re.search(r"would remove \d+ resources? the run made: .*server", shown.stderr + shown.stdout)
    assert admin.resources() - before == left  # a dry run removes nothing

    refused = cleanup(who="admin")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "ran with member credentials, and what it made is theirs to remove; these are admin credentials: "
        "source the credentials it ran with")

    done = cleanup()
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"tcup: removed \d+ resources? the tests left in the cloud: \d+ server", done.stderr)
    # A server whose create request the kill cut off may exist with no
    # recorded id: shown with its command, never removed. The user removes it.
    settle_unproven(admin, before, run_dir, done.stderr)
    again = cleanup()
    assert again.returncode == 0 and "is in the cloud any more; nothing to remove" in again.stdout


def test_tcup_cleanup_of_a_run_that_recorded_nothing_needs_no_cloud(pyz, tmp_path):
    run_dir = tmp_path / "runs" / "20260101T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    done = subprocess.run([str(pyz), "cleanup", str(run_dir)], env=base_env(tmp_path), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0
    assert done.stdout.strip() == "tcup: 20260101T000000Z-abcdef recorded no resource in the cloud; nothing to remove"
