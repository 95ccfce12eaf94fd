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
}


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
    from tempest import config

    if config.CONF.service_available.swift:
        classes.append(ContainerService)
    return classes


def manager(admin: bool):
    """Tempest's clients for the run's own credentials."""
    from tempest import clients, config
    from tempest.common import credentials_factory

    if admin:
        return clients.Manager(credentials_factory.get_configured_admin_credentials())
    import yaml

    account = dict(yaml.safe_load(Path(config.CONF.auth.test_accounts_file).read_text())[0])
    account.pop("roles", None)
    return clients.Manager(credentials_factory.get_credentials(**account))


def service_kwargs(**extra) -> dict:
    return {"data": {}, "is_dry_run": False, "saved_state_json": {}, "resource_list_json": {},
            "is_preserve": False, "is_resource_list": False, "is_save_state": False, "prefix": None,
            "got_exceptions": [], **extra}


def save(admin: bool) -> dict:
    """What the credentials can see now, by kind: {kind: {id: name}}."""
    mgr = manager(admin)
    state = {}
    for service_class in services(admin):
        data = {}
        try:
            service_class(mgr, **service_kwargs(data=data, is_save_state=True)).save_state()
        except Exception as error:  # noqa: BLE001 - a kind these credentials may not list
            print(f"cleanup: cannot list {service_class.__name__}: {type(error).__name__}", file=sys.stderr)
        state.update(data)
    return state


def ours(item: dict, kind: str, recorded: dict, prefix: str) -> bool:
    """Tempest's: recorded as created by this run, or named with its prefix;
    or the security group Neutron made by itself for a project Tempest made
    (dynamic credentials' projects get a "default" one on first use)."""
    key = item.get("keypair", {}).get("name") if kind == "keypairs" else item.get("id")
    name = (item.get("keypair") or item).get("name") or ""
    if key in recorded.get(kind, {}) or (bool(prefix) and name.startswith(prefix)):
        return True
    owner = item.get("project_id") or item.get("tenant_id")
    return kind == "security_groups" and name == "default" and owner in recorded.get("projects", {})


def clean(admin: bool, state: dict, recorded: dict, prefix: str) -> dict:
    """Delete what this run created; returns {"removed": n, "left": [...]}."""
    mgr = manager(admin)
    removed, left = set(), []
    deadline = time.monotonic() + DEADLINE
    while True:
        left = []
        for service_class in services(admin):
            service = service_class(mgr, **service_kwargs(saved_state_json=state))
            kind = KINDS.get(service_class.__name__, service_class.__name__)
            state.setdefault(kind, {})
            try:
                items = [item for item in service.list() if ours(item, kind, recorded, prefix)]
            except Exception as error:  # noqa: BLE001 - listing may be refused; say so once
                print(f"cleanup: cannot list {kind}: {type(error).__name__}", file=sys.stderr)
                continue
            for item in items:
                key = item.get("keypair", {}).get("name") if kind == "keypairs" else item.get("id")
                try:
                    if isinstance(service, ContainerService):
                        service.delete_one(item)
                    else:
                        # The service's own delete, narrowed to this one item.
                        service.list = lambda item=item: [item]
                        service.delete()
                    removed.add((kind, key))
                except Exception:  # noqa: BLE001 - it may go on the next round
                    pass
                left.append({"kind": kind, "id": key, "name": (item.get("keypair") or item).get("name") or ""})
        if not left or time.monotonic() > deadline:
            break
        time.sleep(PAUSE)
        # A delete is asynchronous: count as left only what is still listed next round.
    return {"removed": len(removed - {(entry["kind"], entry["id"]) for entry in left}), "left": left}


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
