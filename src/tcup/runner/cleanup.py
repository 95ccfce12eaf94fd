"""Leaving the cloud as the run found it.

Tempest's tests delete what they create, unless they are cut short: a
Ctrl-C, a SIGTERM, a crash or a timeout leaves servers, volumes, networks
and, for an admin, the users, projects and domains of dynamic credentials.
So, around every run:

* ``save``, before the tests: what the run's credentials can see of the
  kinds Tempest creates (Tempest's own cleanup services, ``tempest cleanup``'s
  code, in their save-state mode);
* ``clean``, after the tests, however they ended: delete what is new since
  ``save`` *and* is Tempest's, either recorded by Tempest as created in this
  run (``record_resources``: the id of every POST's answer) or named with
  Tempest's resource prefix. Something a colleague created in the same
  project during the run is new but neither, and is left alone. Deleting is
  repeated until nothing is left (a server's ports go when the server has
  gone) or a deadline passes; what is still there is reported, exactly.

Swift is not among Tempest's cleanup services; its containers are handled
here the same way (new, and named with the prefix).

Run as ``python -m tcup.runner.cleanup save|clean`` in the workspace, with
Tempest's environment: a member's account is read from accounts.yaml, an
admin's from tempest.conf (discovery writes it there, in the tmpfs).
"""

import functools
import json
import sys
import time
from pathlib import Path

# Written in the workspace (the process's cwd) and in the secret tmpfs.
STATE_FILE = "tcup-cleanup-state.json"
LEFT_FILE = "tcup-cleanup-left.json"
RECORDED_FILE = "resource_list.json"  # Tempest's record_resources file
DEADLINE = 120  # seconds of deleting before what is left is reported
SAVE_TIMEOUT = 60
PAUSE = 3

# How a user removes what is left, by Tempest's resource kind.
REMOVE_WITH = {
    "servers": "openstack server delete {id}", "keypairs": "openstack keypair delete {id}",
    "server_groups": "openstack server group delete {id}", "floatingips": "openstack floating ip delete {id}",
    "routers": "openstack router delete {id}  (after: openstack router remove subnet/port)",
    "ports": "openstack port delete {id}", "subnets": "openstack subnet delete {id}",
    "networks": "openstack network delete {id}", "security_groups": "openstack security group delete {id}",
    "subnetpools": "openstack subnet pool delete {id}", "snapshots": "openstack volume snapshot delete {id}",
    "volumes": "openstack volume delete --force {id}", "images": "openstack image delete {id}",
    "users": "openstack user delete {id}", "projects": "openstack project delete {id}",
    "domains": "openstack domain set --disable {id} && openstack domain delete {id}",
    "roles": "openstack role delete {id}", "flavors": "openstack flavor delete {id}",
    "regions": "openstack region delete {id}",
    "containers": "openstack container delete --recursive {id}",
    "default_security_groups": "openstack security group delete {id}",
}


class ContainerService:
    """Swift containers, in the same shape as Tempest's cleanup services."""

    def __init__(self, manager, **kwargs):
        self.manager = manager
        self.saved_state_json = kwargs.get("saved_state_json") or {}
        self.data = kwargs.get("data")

    def names(self):
        _, body = self.manager.account_client.list_account_containers(params={"format": "json"})
        return [container["name"] for container in body or []]

    def save_state(self):
        self.data["containers"] = {name: name for name in self.names()}

    def list(self):
        saved = self.saved_state_json.get("containers", {})
        return [{"id": name, "name": name} for name in self.names() if name not in saved]

    def delete_one(self, item):
        container = item["id"]
        _, objects = self.manager.container_client.list_container_objects(container, params={"format": "json"})
        for obj in objects or []:
            self.manager.object_client.delete_object(container, obj["name"])
        self.manager.container_client.delete_container(container)


class DefaultSecurityGroupService:
    """The "default" security groups Neutron makes by itself for a project
    on its first use (Tempest's cleanup never lists them): those of the
    projects dynamic credentials made. Admin runs only."""

    def __init__(self, manager, **kwargs):
        self.client = manager.security_groups_client
        self.saved_state_json = kwargs.get("saved_state_json") or {}
        self.data = kwargs.get("data")

    def groups(self):
        return [group for group in self.client.list_security_groups()["security_groups"] if group["name"] == "default"]

    def save_state(self):
        self.data["default_security_groups"] = {group["id"]: group.get("project_id") for group in self.groups()}

    def list(self):
        saved = self.saved_state_json.get("default_security_groups", {})
        return [group for group in self.groups() if group["id"] not in saved]

    def delete_one(self, item):
        self.client.delete_security_group(item["id"])


# Tempest's cleanup service classes and the kind each saves and filters by
# (the key of its save_state data, also the key record_resources uses).
KINDS = {
    "ServerService": "servers", "KeyPairService": "keypairs", "ServerGroupService": "server_groups",
    "NetworkFloatingIpService": "floatingips", "NetworkRouterService": "routers",
    "NetworkMeteringLabelRuleService": "metering_label_rules", "NetworkMeteringLabelService": "metering_labels",
    "NetworkPortService": "ports", "NetworkSubnetService": "subnets", "NetworkService": "networks",
    "NetworkSecGroupService": "security_groups", "NetworkSubnetPoolsService": "subnetpools",
    "SnapshotService": "snapshots", "VolumeService": "volumes", "ImageService": "images",
    "UserService": "users", "ProjectService": "projects", "DomainService": "domains", "RoleService": "roles",
    "FlavorService": "flavors", "RegionService": "regions", "ContainerService": "containers",
    "DefaultSecurityGroupService": "default_security_groups",
}


@functools.lru_cache(maxsize=None)
def services(admin: bool):
    """Tempest's cleanup service classes for what the run's credentials may
    have created (a member creates no users, projects or flavors), plus Swift."""
    from tempest.cmd import cleanup_service as tempest_cleanup

    if not admin:
        # init_conf looks the admin's network up with admin credentials, which
        # a member run has none of; the network is only used to spare it,
        # and nothing that was there before the run is removed anyway.
        tempest_cleanup._get_network_id = lambda *_: None
    tempest_cleanup.init_conf()
    classes = list(tempest_cleanup.get_resource_cleanup_services())
    if tempest_cleanup.IS_GLANCE:
        classes.append(tempest_cleanup.ImageService)
    if admin:
        classes += [service for service in tempest_cleanup.get_global_cleanup_services()
                    if service is not tempest_cleanup.ImageService]
        if tempest_cleanup.IS_NEUTRON:
            classes.append(DefaultSecurityGroupService)
    from tempest import config

    if config.CONF.service_available.swift:
        classes.append(ContainerService)
    return classes


def managers(admin: bool) -> dict:
    """Tempest's clients for the run's own credentials, by the scope they
    see: the admin sees every project; each member account sees its own
    project (with --accounts, the tests' resources are spread over all of
    them), one account per project."""
    from tempest import clients, config
    from tempest.common import credentials_factory

    if admin:
        return {"admin": see_every_project(clients.Manager(credentials_factory.get_configured_admin_credentials()))}
    import yaml

    found = {}
    for entry in yaml.safe_load(Path(config.CONF.auth.test_accounts_file).read_text()):
        account = {key: value for key, value in entry.items() if key not in ("roles", "resources")}
        scope = account.get("project_id") or f"{account.get('project_domain_name')}/{account.get('project_name')}"
        if scope not in found:
            found[scope] = clients.Manager(credentials_factory.get_credentials(**account))
    return found


def see_every_project(mgr):
    """An admin's lists of servers, volumes and snapshots, across projects.
    Tempest's cleanup services list them without all_tenants, which shows
    only the admin's own project; what a test of dynamic credentials made
    lives in the project Tempest made for it."""
    servers, volumes, snapshots = mgr.servers_client, mgr.volumes_client_latest, mgr.snapshots_client_latest
    list_servers, list_volumes, list_snapshots = servers.list_servers, volumes.list_volumes, snapshots.list_snapshots
    servers.list_servers = lambda detail=False, **params: list_servers(detail, **{"all_tenants": True, **params})
    volumes.list_volumes = lambda detail=False, params=None: list_volumes(detail, {"all_tenants": True, **(params or {})})
    snapshots.list_snapshots = lambda detail=False, **params: list_snapshots(detail, **{"all_tenants": True, **params})
    return mgr


def service_kwargs(**extra) -> dict:
    return {"data": {}, "is_dry_run": False, "saved_state_json": {}, "resource_list_json": {},
            "is_preserve": False, "is_resource_list": False, "is_save_state": False, "prefix": None,
            "got_exceptions": [], **extra}


def save(admin: bool) -> dict:
    """What the credentials can see now: {scope: {kind: {id: name}}}."""
    saved = {}
    for scope, mgr in managers(admin).items():
        state = saved[scope] = {}
        for service_class in services(admin):
            data = {}
            try:
                service_class(mgr, **service_kwargs(data=data, is_save_state=True)).save_state()
            except Exception as error:  # noqa: BLE001 - a kind these credentials may not list
                print(f"cleanup: cannot list {service_class.__name__}: {type(error).__name__}", file=sys.stderr)
            state.update(data)
    return saved


def key_and_name(item: dict, kind: str) -> tuple:
    """How a listed resource is known: its id and name (a keypair, listed
    wrapped and without an id, by its name)."""
    key = item.get("keypair", {}).get("name") if kind == "keypairs" else item.get("id")
    return key, (item.get("keypair") or item).get("name") or ""


def ours(item: dict, kind: str, recorded: dict, prefix: str, projects=None) -> bool:
    """Tempest's: recorded as created by this run, or named with its prefix;
    or the security group Neutron made by itself for a project of Tempest's
    (dynamic credentials' projects get a "default" one on first use).
    ``projects``: the ids of this run's projects, and of every project that
    no longer exists (an item here is new since the run began, so a default
    group whose project is gone was made for a project of this run)."""
    key, name = key_and_name(item, kind)
    if key in recorded.get(kind, {}) or (bool(prefix) and name.startswith(prefix)):
        return True
    owner = item.get("project_id") or item.get("tenant_id")
    if kind != "default_security_groups":
        return False
    return owner in recorded.get("projects", {}) or (projects is not None and projects(owner))


def projects_of_this_run(mgr, state: dict, recorded: dict, prefix: str):
    """A test for a project id: made by this run, or gone (see ``ours``)."""
    projects = mgr.projects_client.list_projects()["projects"]
    existing = {project["id"] for project in projects}
    made = {project["id"] for project in projects
            if project["id"] not in state.get("projects", {}) and ours(project, "projects", recorded, prefix)}
    return lambda project_id: project_id in made or (project_id is not None and project_id not in existing)


def clean(admin: bool, saved: dict, recorded: dict, prefix: str) -> dict:
    """Delete what this run created; returns {"removed": n, "left": [...]}."""
    scopes = managers(admin)
    removed, left = set(), []
    deadline = time.monotonic() + DEADLINE
    while True:
        left = []
        for scope, mgr in scopes.items():
            left += clean_scope(admin, mgr, saved.setdefault(scope, {}), recorded, prefix, removed)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(PAUSE)
        # A delete is asynchronous: count as left only what is still listed next round.
    return {"removed": len(removed - {(entry["kind"], entry["id"]) for entry in left}), "left": left}


def clean_scope(admin: bool, mgr, state: dict, recorded: dict, prefix: str, removed: set) -> list:
    """One round of deleting what this run created in one scope; returns
    what was still there (and was asked to go)."""
    left = []
    ours_or_gone = projects_of_this_run(mgr, state, recorded, prefix) if admin else None
    for service_class in services(admin):
        service = service_class(mgr, **service_kwargs(saved_state_json=state))
        kind = KINDS.get(service_class.__name__, service_class.__name__)
        state.setdefault(kind, {})
        try:
            items = [item for item in service.list() if ours(item, kind, recorded, prefix, ours_or_gone)]
        except Exception as error:  # noqa: BLE001 - listing may be refused; say so once
            print(f"cleanup: cannot list {kind}: {type(error).__name__}", file=sys.stderr)
            continue
        for item in items:
            key, name = key_and_name(item, kind)
            try:
                if hasattr(service, "delete_one"):  # TCUP's own services
                    service.delete_one(item)
                else:
                    # The service's own delete, narrowed to this one item.
                    service.list = lambda item=item: [item]
                    service.delete()
                removed.add((kind, key))
            except Exception:  # noqa: BLE001 - it may go on the next round
                pass
            left.append({"kind": kind, "id": key, "name": name})
    return left


def before(workspace) -> None:
    """In the runner: remember what the cloud holds before the tests."""
    from tcup.runner import process

    from tcup.runner.errors import InfraError
    from tcup.runner.events import log

    try:
        process.run([sys.executable, "-m", "tcup.runner.cleanup", "save"], env=workspace.env,
                    cwd=str(workspace.path), timeout=SAVE_TIMEOUT, what="cleanup (before the tests)")
    except InfraError as error:
        # Not fatal: the cleanup then removes only what Tempest recorded or
        # named as its own, which is what it removes anyway.
        log(f"cannot list the cloud's resources before the tests: {error}")


def after(workspace, results_dir: Path) -> dict:
    """In the runner: remove what the tests left; {"removed": n, "left": [...]},
    also written to the results (an interrupted run's launcher reads it there)."""
    from tcup import contract, private_files
    from tcup.runner import process
    from tcup.runner.errors import InfraError

    left_file = Path(workspace.path) / LEFT_FILE
    try:
        process.run([sys.executable, "-m", "tcup.runner.cleanup", "clean"], env=workspace.env,
                    cwd=str(workspace.path), timeout=DEADLINE + SAVE_TIMEOUT, what="cleanup (after the tests)")
        result = json.loads(left_file.read_text())
    except (InfraError, OSError, ValueError) as error:
        result = {"removed": 0, "left": [], "error": str(error)}
    private_files.write_atomically(results_dir / contract.CLEANUP_FILE, (json.dumps(result, indent=2) + "\n").encode())
    return result


def main(argv) -> int:
    from tempest import config

    action = argv[0]
    admin = config.CONF.auth.use_dynamic_credentials
    if action == "save":
        Path(STATE_FILE).write_text(json.dumps(save(admin)))
        return 0
    state = json.loads(Path(STATE_FILE).read_text()) if Path(STATE_FILE).exists() else {}
    recorded = json.loads(Path(RECORDED_FILE).read_text()) if Path(RECORDED_FILE).exists() else {}
    prefix = config.CONF.resource_name_prefix
    result = clean(admin, state, recorded, prefix)
    for entry in result["left"]:
        entry["remove_with"] = REMOVE_WITH.get(entry["kind"], "").format(id=entry["id"])
    Path(LEFT_FILE).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as error:  # noqa: BLE001 - one line for the runner's log, whatever it was
        print(f"cleanup: {type(error).__name__}: {' '.join(str(error).split())[:300]}", file=sys.stderr)
        sys.exit(1)
