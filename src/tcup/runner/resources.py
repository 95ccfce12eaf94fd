"""The kinds of resource a Tempest run creates: how TCUP lists each one to
the end and deletes one, through Tempest's own service clients.

A listing follows the API's paging to its last page (Nova's, Cinder's and
Neutron's ``<kind>_links``, Glance's ``next``, Swift's marker, offsets for
Nova's server groups) and says whether it is complete: Keystone truncates
at ``list_limit`` and says so, and a listing that keeps paging past
``MAX_PAGES`` is cut short rather than followed forever.

``KINDS`` is in the order deleting goes: what holds other things first
(servers before their volumes, snapshots before their volume, routers before
their subnets), identities last, since a resource's project is the evidence
for deleting it.
"""

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

MAX_PAGES = 500
Item = Dict[str, Optional[str]]  # id, name, project, user (and what deleting it needs)


@dataclass
class Listing:
    items: List[Item]
    complete: bool
    why: str = ""  # why it is not complete


@dataclass(frozen=True)
class Kind:
    name: str  # as Tempest's record and cleanup name it
    service: str  # the service_available option it needs ("" for Keystone)
    admin: bool  # only an admin lists and removes these
    list: Callable  # (manager, admin) -> Listing
    delete: Callable  # (manager, item) -> None
    removes_with: str  # how a user removes one by hand


def next_query(body: dict, key: str) -> Optional[dict]:
    """The query of the next page, from a paged answer; None on the last page."""
    for link in body.get(f"{key}_links") or []:
        if link.get("rel") == "next" and link.get("href"):
            return dict(parse_qsl(urlsplit(link["href"]).query))
    if isinstance(body.get("next"), str):  # Glance
        return dict(parse_qsl(urlsplit(body["next"]).query))
    return None


def paged(fetch: Callable[[dict], dict], key: str, params: Optional[dict] = None) -> Tuple[list, bool]:
    """Every item of a listing that pages by link; (items, complete)."""
    items, query = [], dict(params or {})
    for _ in range(MAX_PAGES):
        body = fetch(query)
        page = body.get(key) or []
        items += page
        following = next_query(body, key)
        if following is None or not page:
            return items, True
        query = {**(params or {}), **following}
    return items, False


def by_offset(fetch: Callable[[dict], dict], key: str, params: Optional[dict] = None) -> Tuple[list, bool]:
    """Nova's server groups: a page is as long as the cloud's max_limit, and
    only an empty page says there are no more."""
    items: list = []
    for _ in range(MAX_PAGES):
        page = fetch({**(params or {}), "offset": len(items)}).get(key) or []
        if not page:
            return items, True
        items += page
    return items, False


def project_of(item: dict) -> Optional[str]:
    for field in ("project_id", "tenant_id", "os-vol-tenant-attr:tenant_id",
                  "os-extended-snapshot-attributes:project_id", "owner"):
        if item.get(field):
            return item[field]
    return None


def normal(item: dict, **extra) -> Item:
    return {"id": item.get("id"), "name": item.get("name") or "", "project": project_of(item),
            "user": item.get("user_id"), **extra}


def listing(items_and_complete: Tuple[list, bool], **extra) -> Listing:
    items, complete = items_and_complete
    return Listing([normal(item, **{k: item.get(v) for k, v in extra.items()}) for item in items], complete,
                   "" if complete else f"went on past {MAX_PAGES} pages")


def everyone(admin: bool, key: str = "all_tenants") -> dict:
    """An admin's listings cover every project: what dynamic credentials
    made lives in the projects Tempest made for them."""
    return {key: True} if admin else {}


# -- listings ------------------------------------------------------------------

def list_servers(mgr, admin):
    client = mgr.servers_client
    return listing(paged(lambda q: client.list_servers(detail=True, **q), "servers", everyone(admin)))


def list_server_groups(mgr, admin):
    client = mgr.server_groups_client
    return listing(by_offset(lambda q: client.list_server_groups(**q), "server_groups",
                             everyone(admin, "all_projects")))


def list_keypairs(mgr, admin):
    """The caller's own keypairs (Nova lists keypairs per user); a dynamic
    user's are removed by their record, which names the user."""
    pairs = mgr.keypairs_client.list_keypairs()["keypairs"]
    return Listing([{"id": pair["keypair"]["name"], "name": pair["keypair"]["name"], "project": None,
                     "user": pair["keypair"].get("user_id")} for pair in pairs], True)


def list_snapshots(mgr, admin):
    client = mgr.snapshots_client_latest
    return listing(paged(lambda q: client.list_snapshots(detail=True, **q), "snapshots", everyone(admin)))


def list_volumes(mgr, admin):
    client = mgr.volumes_client_latest
    return listing(paged(lambda q: client.list_volumes(detail=True, params=q), "volumes", everyone(admin)))


def list_images(mgr, admin):
    client = mgr.image_client_v2
    return listing(paged(lambda q: client.list_images(params=q), "images"), protected="protected")


def neutron_lister(client_name: str, key: str, **extra):
    def list_kind(mgr, admin):
        method = getattr(getattr(mgr, client_name), f"list_{key}")
        return listing(paged(lambda q: method(**q), key), **extra)
    return list_kind


def list_containers(mgr, admin):
    """The account's containers, page by page (marker: the last name). No
    limit is asked for: Swift refuses one above its own listing limit (412),
    and pages by that limit when none is given."""
    client, names = mgr.account_client, []
    for _ in range(MAX_PAGES):
        params = {"format": "json", **({"marker": names[-1]} if names else {})}
        _, page = client.list_account_containers(params=params)
        if not page:
            return Listing([{"id": name, "name": name, "project": None, "user": None} for name in names], True)
        names += [container["name"] for container in page]
    return Listing([{"id": name, "name": name, "project": None, "user": None} for name in names], False,
                   f"went on past {MAX_PAGES} pages")


def keystone_lister(client_name: str, key: str, params_style: bool = False):
    """Keystone does not page: past its list_limit it truncates, and says so."""
    def list_kind(mgr, admin):
        method = getattr(getattr(mgr, client_name), f"list_{key}")
        body = method(params={}) if params_style else method()
        truncated = bool(body.get("truncated"))
        return Listing([normal(item) for item in body[key]], not truncated,
                       "was cut short by Keystone (its list_limit)" if truncated else "")
    return list_kind


# -- deleting ------------------------------------------------------------------

def delete_keypair(mgr, item):
    """Another user's keypair (a dynamic user's, by its record) needs Nova
    2.10 and the user's id."""
    from tempest.lib.services.compute import base_compute_client

    if not item.get("user"):
        mgr.keypairs_client.delete_keypair(item["id"])
        return
    earlier = base_compute_client.COMPUTE_MICROVERSION
    base_compute_client.COMPUTE_MICROVERSION = "2.10"
    try:
        mgr.keypairs_client.delete_keypair(item["id"], user_id=item["user"])
    finally:
        base_compute_client.COMPUTE_MICROVERSION = earlier


def delete_image(mgr, item):
    """A protected image (Tempest makes some) is unprotected first."""
    client = mgr.image_client_v2
    if item.get("protected"):
        client.update_image(item["id"], [{"replace": "/protected", "value": False}])
    client.delete_image(item["id"])


def delete_router(mgr, item):
    """A router's interfaces go first, or Neutron refuses."""
    for port in mgr.ports_client.list_ports(device_id=item["id"])["ports"]:
        if (port.get("device_owner") or "").startswith("network:router_interface"):
            mgr.routers_client.remove_router_interface(item["id"], port_id=port["id"])
    mgr.routers_client.delete_router(item["id"])


def delete_port(mgr, item):
    """Ports Neutron itself manages (a router's, DHCP's, a floating IP's) go
    with their owner; deleting them directly is refused."""
    if (item.get("device_owner") or "").startswith("network:"):
        return
    mgr.ports_client.delete_port(item["id"])


def delete_container(mgr, item):
    container = item["id"]
    _, objects = mgr.container_client.list_container_objects(container, params={"format": "json"})
    for obj in objects or []:
        mgr.object_client.delete_object(container, obj["name"])
    mgr.container_client.delete_container(container)


def delete_domain(mgr, item):
    """Keystone deletes only a disabled domain."""
    mgr.domains_client.update_domain(item["id"], enabled=False)
    mgr.domains_client.delete_domain(item["id"])


def by_id(client_name: str, method: str):
    def delete(mgr, item):
        getattr(getattr(mgr, client_name), method)(item["id"])
    return delete


KINDS: List[Kind] = [
    Kind("servers", "nova", False, list_servers, by_id("servers_client", "delete_server"),
         "openstack server delete {id}"),
    Kind("server_groups", "nova", False, list_server_groups,
         by_id("server_groups_client", "delete_server_group"), "openstack server group delete {id}"),
    Kind("keypairs", "nova", False, list_keypairs, delete_keypair, "openstack keypair delete {id}"),
    Kind("snapshots", "cinder", False, list_snapshots, by_id("snapshots_client_latest", "delete_snapshot"),
         "openstack volume snapshot delete {id}"),
    Kind("volumes", "cinder", False, list_volumes, by_id("volumes_client_latest", "delete_volume"),
         "openstack volume delete {id}"),
    Kind("images", "glance", False, list_images, delete_image, "openstack image delete {id}"),
    Kind("floatingips", "neutron", False, neutron_lister("floating_ips_client", "floatingips"),
         by_id("floating_ips_client", "delete_floatingip"), "openstack floating ip delete {id}"),
    Kind("routers", "neutron", False, neutron_lister("routers_client", "routers"), delete_router,
         "openstack router delete {id}  (after: openstack router remove subnet)"),
    Kind("ports", "neutron", False, neutron_lister("ports_client", "ports", device_owner="device_owner"),
         delete_port, "openstack port delete {id}"),
    Kind("subnets", "neutron", False, neutron_lister("subnets_client", "subnets"),
         by_id("subnets_client", "delete_subnet"), "openstack subnet delete {id}"),
    Kind("networks", "neutron", False, neutron_lister("networks_client", "networks"),
         by_id("networks_client", "delete_network"), "openstack network delete {id}"),
    Kind("security_groups", "neutron", False, neutron_lister("security_groups_client", "security_groups"),
         by_id("security_groups_client", "delete_security_group"), "openstack security group delete {id}"),
    Kind("subnetpools", "neutron", False, neutron_lister("subnetpools_client", "subnetpools"),
         by_id("subnetpools_client", "delete_subnetpool"), "openstack subnet pool delete {id}"),
    Kind("metering_label_rules", "neutron", True,
         neutron_lister("metering_label_rules_client", "metering_label_rules"),
         by_id("metering_label_rules_client", "delete_metering_label_rule"),
         "openstack network meter rule delete {id}"),
    Kind("metering_labels", "neutron", True, neutron_lister("metering_labels_client", "metering_labels"),
         by_id("metering_labels_client", "delete_metering_label"), "openstack network meter delete {id}"),
    Kind("containers", "swift", False, list_containers, delete_container,
         "openstack container delete --recursive {id}"),
    Kind("users", "", True, keystone_lister("users_v3_client", "users"), by_id("users_v3_client", "delete_user"),
         "openstack user delete {id}"),
    Kind("projects", "", True, keystone_lister("projects_client", "projects", params_style=True),
         by_id("projects_client", "delete_project"), "openstack project delete {id}"),
    Kind("domains", "", True, keystone_lister("domains_client", "domains"), delete_domain,
         "openstack domain set --disable {id} && openstack domain delete {id}"),
    Kind("roles", "", True, keystone_lister("roles_v3_client", "roles"), by_id("roles_v3_client", "delete_role"),
         "openstack role delete {id}"),
    Kind("flavors", "nova", True,
         lambda mgr, admin: listing(paged(lambda q: mgr.flavors_client.list_flavors(**q), "flavors",
                                          {"is_public": "None"})),
         by_id("flavors_client", "delete_flavor"), "openstack flavor delete {id}"),
    Kind("regions", "", True, keystone_lister("regions_client", "regions", params_style=True),
         by_id("regions_client", "delete_region"), "openstack region delete {id}"),
]
BY_NAME = {kind.name: kind for kind in KINDS}


def kinds(admin: bool, available: Dict[str, bool]) -> List[Kind]:
    """The kinds these credentials may have created, on this cloud's services."""
    return [kind for kind in KINDS if (admin or not kind.admin) and (not kind.service or available.get(kind.service))]
