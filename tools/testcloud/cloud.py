"""The whole test cloud: start it, seed it, stop it.

``start`` builds (once) and checks each service's venv, starts MariaDB and
RabbitMQ, then Keystone, registers users and the catalog, starts the other
services together, waits until each answers, and on a new directory seeds it
as a public cloud: an image, flavors, an external network, a member's network
and router. A directory keeps its databases, ports and passwords across
``stop``/``start``, so a second start only starts processes.
"""

from __future__ import annotations

import concurrent.futures
import struct
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from . import cinder, glance, keystone, mariadb, neutron, nova, placement, profiles as cloud_profiles, rabbitmq, scs, swift, tls
from .common import (
    CloudError, ensure_venv, expect, http, kill_processes_under, say, trust, wait_for, write_private,
)
from .keystone import IdentityAdmin, issue_token, openrc_text, openrc_variables
from .site import Site

WHO = "testcloud"
# In start order; Nova comes last, as its compute service reports to
# Placement and binds ports in Neutron at once.
SERVICES: dict[str, ModuleType] = {
    "keystone": keystone, "placement": placement, "glance": glance, "neutron": neutron,
    "cinder": cinder, "swift": swift, "nova": nova,
}
NEEDS = {"nova": ("placement", "glance", "neutron")}
READY_TIMEOUT = 300
# (name, bytes): the first is the one to boot; Tempest's image_ref.
IMAGES = [("tcup-raw-disk", 1024 * 1024), ("tcup-raw-disk-alt", 2 * 1024 * 1024)]
IMAGE_NAME = IMAGES[0][0]
TENANT_NETWORK = "private"
# (name, id, RAM MiB, disk GiB, vCPUs): devstack's names, which Tempest
# configurations commonly expect.
FLAVORS = [("m1.nano", "42", 128, 1, 1), ("m1.micro", "84", 192, 1, 1),
           ("m1.small", "2", 512, 5, 1)]
# Loopback addresses on purpose: nothing answers at a fake server's address,
# and whatever tries anyway (Tempest's SSH validation, to a floating IP)
# must reach this machine only, never a network outside.
EXTERNAL_CIDR, EXTERNAL_GATEWAY = "127.24.4.0/24", "127.24.4.1"
TENANT_CIDR = "127.10.0.0/24"
IDENTITIES = {"admin": ("admin", "admin"), "member": (keystone.MEMBER_USER, keystone.MEMBER_PROJECT)}


def with_dependencies(names: Iterable[str]) -> list[str]:
    """``names`` plus Keystone and what they need, in start order."""
    wanted = {"keystone"} | set(names)
    unknown = wanted - set(SERVICES)
    if unknown:
        raise CloudError(f"unknown services {sorted(unknown)}; known: {', '.join(SERVICES)}")
    for name in list(wanted):
        wanted.update(NEEDS.get(name, ()))
    return [name for name in SERVICES if name in wanted]


def ensure_venvs(names: list[str]) -> dict[str, Path]:
    """Each named service's cached venv, those missing built all at once: an
    install waits on downloads and disk more than on a core."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        return dict(zip(names, pool.map(lambda name: ensure_venv(SERVICES[name].VENV, WHO), names)))


class Cloud:
    """The test cloud living in ``root``."""

    def __init__(self, root: Path, services: Iterable[str] = SERVICES, profiles: Iterable[str] = ()) -> None:
        self.site = Site(root)
        self.services = with_dependencies(services)
        self.profiles = cloud_profiles.parse(profiles)
        self.timings: dict[str, float] = {}
        self.venvs: dict[str, Path] = {}

    @property
    def root(self) -> Path:
        """The cloud's state directory."""
        return self.site.root

    # -- start -------------------------------------------------------------

    def start(self) -> Cloud:
        """Start the cloud, or reuse it when it runs already; returns once ready."""
        began = time.monotonic()
        site = self.site.load()
        site.use_profiles(self.profiles)
        self._phase("venvs", self._ensure_venvs)
        if self._reuse_running():
            self.timings["total"] = time.monotonic() - began
            return self
        self.stop(quiet=True)  # whatever an earlier start left running
        for name in self.services:  # choose every port before any is bound
            site.port(name)
            if site.tls:
                site.port(site.public_port_name(name))
        site.check_ports_free()
        try:
            self._phase("backends", self._start_backends)
            self._phase("keystone", self._start_keystone)
            self._phase("services", self._start_services)
            self._phase("seed", self._seed)
            self._write_client_files()
            site.mark("services", self.services)
        except BaseException:
            self.stop(quiet=True)
            raise
        self.timings["total"] = time.monotonic() - began
        return self

    def _reuse_running(self) -> bool:
        """True when this very cloud already runs and answers: then it is
        kept as it is (a second ``start`` is no restart)."""
        site = self.site
        if site.recorded("services") != self.services:
            return False
        names = ["mariadb", "epmd", "rabbitmq"] + ([tls.NAME] if site.tls else [])
        for name in self.services:
            names += SERVICES[name].PROCESSES
        if not all(site.alive(name) for name in names):
            return False
        try:
            for name in self.services:
                wait_for(lambda m=SERVICES[name]: m.ready(site), what=name, timeout=15)
        except CloudError:
            return False  # hung: start again
        self._trust_ca()
        self._write_client_files()
        say(WHO, f"reusing the cloud running in {self.root}")
        return True

    def _phase(self, name: str, step: Any) -> None:
        """Run one step of ``start`` and record how long it took."""
        began = time.monotonic()
        step()
        self.timings[name] = time.monotonic() - began
        say(WHO, f"{name}: {self.timings[name]:.1f} s")

    def _ensure_venvs(self) -> None:
        self.venvs.update(ensure_venvs(self.services))

    def _start_backends(self) -> None:
        """MariaDB and RabbitMQ, and the databases the services need; the
        TLS proxy in front of the services, with the tls profile."""
        site = self.site
        mariadb.start(site)
        rabbitmq.start(site)
        if site.tls:
            tls.start(site, self.services)
            self._trust_ca()
        mariadb.wait(site)
        databases = ["keystone"]
        for name in self.services:
            databases += getattr(SERVICES[name], "DATABASES", [])
        mariadb.create_databases(site, databases)
        rabbitmq.wait(site)

    def _start_keystone(self) -> None:
        """Keystone, then users, roles and the catalog of the chosen services."""
        site = self.site
        keystone.start(site, self.venvs["keystone"])
        wait_for(lambda: keystone.ready(site), what="keystone", timeout=READY_TIMEOUT,
                 log=site.log("keystone"), alive=lambda: site.alive("keystone"))
        catalog, users = [], []
        for name in self.services[1:]:
            catalog += SERVICES[name].catalog(site)
            users += SERVICES[name].USERS
        keystone.register(site, catalog, users)
        self._drop_other_services(catalog)

    def _drop_other_services(self, catalog: list[tuple[str, str, str]]) -> None:
        """Remove from the catalog what an earlier, larger start registered:
        an endpoint that does not answer would fail every client."""
        admin = IdentityAdmin(self.site.auth_url, self.site.password("admin"))
        kept = {kind for kind, _, _ in catalog} | {"identity"}
        known = {kind for name in list(SERVICES)[1:] for kind, _, _ in SERVICES[name].catalog(self.site)}
        # Type by type: Keystone cuts a whole listing short at its
        # list_limit (the paging profile), with no way to the rest.
        for kind in sorted(known - kept):
            for service in admin.call("GET", f"/services?type={kind}", 200)["services"]:
                admin.call("DELETE", f"/services/{service['id']}", 204)

    def _start_services(self) -> None:
        """Start every other service, then wait until each one answers."""
        site = self.site
        others = self.services[1:]
        for name in others:
            SERVICES[name].start(site, self.venvs[name])
        for name in others:
            module = SERVICES[name]
            if hasattr(module, "alive"):  # a service of several processes
                alive = (lambda m=module: m.alive(site))
            else:
                alive = (lambda n=name: site.alive(n))
            wait_for(lambda m=module: m.ready(site), what=name, timeout=READY_TIMEOUT,
                     log=site.log(name), alive=alive)
        if "nova" in others:
            nova.map_compute_host(site, self.venvs["nova"])
            self._wait_compute_ready()
        if "cinder" in others:
            self._wait_volume_ready()

    def _trust_ca(self) -> None:
        """Let this process's REST calls (common.http) reach the public
        endpoints, as a client given the cloud's OS_CACERT does."""
        if self.site.cacert:
            trust(self.site.cacert)

    def token(self, who: str = "member") -> tuple[str, dict[str, Any]]:
        """A token of ``admin`` or ``member``, with its body (catalog, project)."""
        user, project = IDENTITIES[who]
        return issue_token(self.site.auth_url, user, self.site.password(user), project)

    def _wait_compute_ready(self) -> None:
        """Wait until the compute node is up and its inventory in Placement."""
        token, _ = self.token("admin")
        site = self.site

        def up() -> bool:
            services = expect(http("GET", site.url("nova", "/v2.1/os-services"), token=token),
                              200, "nova services")["services"]
            states = {s["binary"]: s["state"] for s in services}
            providers = expect(http("GET", site.url("placement", "/resource_providers"),
                                    token=token), 200, "resource providers")
            return (all(states.get(b) == "up" for b in nova.SERVICES)
                    and bool(providers["resource_providers"]))

        wait_for(up, what="nova-compute", timeout=READY_TIMEOUT, log=site.log("nova-compute"),
                 alive=lambda: nova.alive(site), interval=1)

    def _wait_volume_ready(self) -> None:
        """Wait until the scheduler knows cinder-volume's fake back end."""
        token, body = self.token("admin")
        site = self.site
        url = site.url("cinder", f"/v3/{body['project']['id']}/os-services")
        pools_url = site.url("cinder", f"/v3/{body['project']['id']}/scheduler-stats/get_pools")

        def up() -> bool:
            services = expect(http("GET", url, token=token), 200, "cinder services")["services"]
            states = {s["binary"]: s["state"] for s in services}
            # "up" is a heartbeat only: volumes can be scheduled once the
            # scheduler has the back end's capabilities (its pools).
            pools = expect(http("GET", pools_url, token=token), 200, "cinder pools")["pools"]
            return all(states.get(b) == "up" for b in cinder.SERVICES) and bool(pools)

        wait_for(up, what="cinder-volume", timeout=READY_TIMEOUT, log=site.log("cinder-volume"),
                 alive=lambda: cinder.alive(site), interval=1)

    # -- seed --------------------------------------------------------------

    def _seed(self) -> None:
        """A public cloud's basics; what exists already is left as it is."""
        token, _ = self.token("admin")
        if "glance" in self.services:
            self._seed_images(token)
        if "nova" in self.services:
            self._seed_flavors(token)
        if "neutron" in self.services:
            self._seed_networks(token)

    def seed_images(self) -> list[dict]:
        """Glance's create bodies of the images this cloud's profile seeds,
        each with its ``size`` (the raw disk uploaded)."""
        if "scs" in self.profiles:
            return scs.images()
        return [{"name": name, "size": size} for name, size in IMAGES]

    def seed_flavors(self) -> list[dict]:
        """Nova's create bodies of the flavors this cloud's profile seeds,
        each with its ``extra_specs``."""
        if "scs" in self.profiles:
            return scs.flavors()
        return [{"name": name, "id": flavor_id, "ram": ram, "disk": disk, "vcpus": vcpus, "extra_specs": {}}
                for name, flavor_id, ram, disk, vcpus in FLAVORS]

    def _seed_images(self, token: str) -> None:
        """Small raw disk images, public: two, since Tempest wants two
        distinct images (image_ref, image_ref_alt) for some tests."""
        url = self.site.url("glance", "/v2/images")
        for seed in self.seed_images():
            name, size = seed["name"], seed["size"]
            if expect(http("GET", f"{url}?name={quote(name)}", token=token), 200, "images")["images"]:
                continue
            body = {key: value for key, value in seed.items() if key != "size"}
            image = expect(http("POST", url, token=token, body={
                **body, "disk_format": "raw", "container_format": "bare", "visibility": "public"}),
                201, f"create image {name}")
            expect(http("PUT", f"{url}/{image['id']}/file", token=token, data=raw_disk(size),
                        headers={"Content-Type": "application/octet-stream"}), 204,
                   f"upload image {name}")

    def _seed_flavors(self, token: str) -> None:
        """Public flavors, with their extra specs; a name that exists is left as it is."""
        url = self.site.url("nova", "/v2.1/flavors")
        have = {flavor["name"] for flavor in expect(http("GET", f"{url}?is_public=None", token=token),
                                                    200, "flavors")["flavors"]}
        for seed in self.seed_flavors():
            if seed["name"] in have:
                continue
            body = {key: value for key, value in seed.items() if key != "extra_specs"}
            flavor = expect(http("POST", url, token=token, body={"flavor": {
                **body, "os-flavor-access:is_public": True}}), 200, f"flavor {seed['name']}")["flavor"]
            if seed["extra_specs"]:
                expect(http("POST", f"{url}/{flavor['id']}/os-extra_specs", token=token,
                            body={"extra_specs": seed["extra_specs"]}), 200, f"extra specs of {seed['name']}")

    def _seed_networks(self, token: str) -> None:
        """An external flat network and subnet; the member's network, subnet
        and router to the outside. Each is made unless one of its name exists."""
        site = self.site
        identity = IdentityAdmin(site.auth_url, site.password("admin"))
        member_project = identity.project(keystone.MEMBER_PROJECT)

        def find_or_create(kind: str, body: dict) -> tuple[dict, bool]:
            url = site.url("neutron", f"/v2.0/{kind}s")
            owner = f"&project_id={body['project_id']}" if "project_id" in body else ""
            found = expect(http("GET", f"{url}?name={body['name']}{owner}", token=token), 200,
                           f"{kind}s")[f"{kind}s"]
            if found:
                return found[0], False
            created = expect(http("POST", url, token=token, body={kind: body}), 201,
                             f"create {kind} {body['name']}")
            return created[kind], True

        public, _ = find_or_create("network", {
            "name": "public", "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": neutron.PHYSNET})
        find_or_create("subnet", {
            "name": "public-subnet", "network_id": public["id"], "ip_version": 4,
            "cidr": EXTERNAL_CIDR, "gateway_ip": EXTERNAL_GATEWAY, "enable_dhcp": False})
        private, _ = find_or_create("network", {"name": TENANT_NETWORK,
                                                "project_id": member_project})
        # No DHCP agent runs (and Neutron refuses DHCP on loopback subnets).
        private_subnet, _ = find_or_create("subnet", {
            "name": f"{TENANT_NETWORK}-subnet", "network_id": private["id"], "ip_version": 4,
            "cidr": TENANT_CIDR, "enable_dhcp": False, "project_id": member_project})
        # The other members' projects have a network of the same name, as
        # Tempest's compute.fixed_network_name is one name for every account.
        for project in sorted(set(keystone.EXTRA_MEMBERS.values())):
            project_id = identity.project(project)
            network, _ = find_or_create("network", {"name": TENANT_NETWORK, "project_id": project_id})
            find_or_create("subnet", {
                "name": f"{TENANT_NETWORK}-subnet", "network_id": network["id"], "ip_version": 4,
                "cidr": TENANT_CIDR, "enable_dhcp": False, "project_id": project_id})
        router, new = find_or_create("router", {
            "name": "router1", "project_id": member_project,
            "external_gateway_info": {"network_id": public["id"]}})
        if new:
            url = site.url("neutron", f"/v2.0/routers/{router['id']}/add_router_interface")
            expect(http("PUT", url, token=token, body={"subnet_id": private_subnet["id"]}),
                   200, "router interface")

    # -- client files ------------------------------------------------------

    def openrc(self, who: str = "member") -> dict[str, str]:
        """The ``OS_*`` variables of ``admin`` or ``member``."""
        user, project = IDENTITIES[who]
        return openrc_variables(self.site.public_auth_url, user, self.site.password(user), project,
                                self.site.cacert)

    def _write_client_files(self) -> None:
        """admin-openrc, member-openrc and clouds.yaml (all 0600)."""
        lines = ["# Written by tools/cloud.py: OS_CLOUD=tcup-admin or tcup-member", "clouds:"]
        for who in IDENTITIES:
            variables = self.openrc(who)
            write_private(self.root / f"{who}-openrc", openrc_text(variables))
            lines += [
                f"  tcup-{who}:",
                f"    region_name: {variables['OS_REGION_NAME']}",
                "    identity_api_version: 3",
                *([f"    cacert: '{variables['OS_CACERT']}'"] if "OS_CACERT" in variables else []),
                "    auth:",
                f"      auth_url: '{variables['OS_AUTH_URL']}'",
                f"      username: '{variables['OS_USERNAME']}'",
                f"      password: '{variables['OS_PASSWORD']}'",
                f"      project_name: '{variables['OS_PROJECT_NAME']}'",
                "      user_domain_name: Default",
                "      project_domain_name: Default",
            ]
        write_private(self.root / "clouds.yaml", "\n".join(lines) + "\n")
        # Tempest's accounts.yaml form: the members besides demo, for --accounts.
        accounts = ["# Written by tools/cloud.py: tcup --accounts FILE (members demo2-4, each in a project of its own)"]
        for user, project in keystone.EXTRA_MEMBERS.items():
            accounts += [f"- username: '{user}'", f"  password: '{self.site.password(user)}'",
                         f"  project_name: '{project}'", "  user_domain_name: Default",
                         "  project_domain_name: Default"]
        write_private(self.root / "accounts.yaml", "\n".join(accounts) + "\n")

    # -- stop --------------------------------------------------------------

    def stop(self, quiet: bool = False) -> list[int]:
        """Stop every process of the cloud; the data stays for the next start.

        Services first (in parallel), then RabbitMQ, epmd and MariaDB; then
        anything still running in the directory is killed. Returns the pids
        of such stragglers (none, normally).
        """
        if not self.root.is_dir():
            return []
        backends = ["rabbitmq", "epmd", "mariadb"]
        names = [p.name[:-len(".pid")] for p in (self.root / "run").glob("*.pid")]
        services = [n for n in names if n not in backends]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: self.site.pidfile(n).stop(), services))
        for name in backends:
            self.site.pidfile(name).stop()
        stragglers = kill_processes_under(self.root)
        if stragglers and not quiet:
            say(WHO, f"killed processes left in {self.root}: {stragglers}")
        return stragglers


def raw_disk(size: int = 1024 * 1024) -> bytes:
    """A raw disk image: an MBR with one Linux partition, the rest zeros.

    It boots nothing (the fake hypervisor boots nothing either), but it is a
    well-formed disk that Glance's format inspector accepts as raw.
    """
    sectors = size // 512
    # One partition entry: not bootable, CHS unused, type 0x83, LBA 1 onward.
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 1, sectors - 1)
    mbr = bytearray(512)
    mbr[446:446 + 16] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + bytes(size - 512)
