"""discover-tempest-config, made unable to change the cloud.

Run as ``python -m tcup.runner.discover ARGS`` (same ARGS as
discover-tempest-config). Without --create, python-tempestconf 3.5.4 still
writes to the cloud in three places: it uploads a CirrOS image (downloaded
from the internet) when the catalog has an image service, it creates the
swift operator roles it misses, and it creates a network and grants a role
for the heat plugin. TCUP promises to create nothing, so here:
  * every Tempest REST call other than GET/HEAD (and token requests) is
    refused with a Forbidden, which python-tempestconf already treats as
    "this user may not do that" and carries on;
  * the image step picks an image the cloud already has instead of
    uploading one;
  * the flavors are chosen for that image, among those a member can boot it
    on (python-tempestconf would take the two smallest, which on a cloud
    with SCS-standard flavors have no disk: Nova refuses members those).
It also records what it chose for the tests' servers (images, flavors, why,
and for a member the network, which python-tempestconf leaves unset) in a
JSON file the runner reports from, and stops with one line when a choice the
user named does not exist.
"""

import json
import os
import sys

# The variables that say where the runner wants the choices and a refusal
# (config.py sets them to its CHOICES_FILE and REFUSAL_FILE, in the secret tmpfs).
CHOICES_VARIABLE = "TCUP_CHOICES_FILE"
REFUSAL_VARIABLE = "TCUP_REFUSAL_FILE"
# What the user named (--image, --image-alt, --flavor, --flavor-alt,
# --network), and who the member is.
WANTED = {"image": "TCUP_IMAGE", "image_alt": "TCUP_IMAGE_ALT", "flavor": "TCUP_FLAVOR",
          "flavor_alt": "TCUP_FLAVOR_ALT", "network": "TCUP_NETWORK"}
OPTIONS = {key: "--" + key.replace("_", "-") for key in WANTED}
# The tempest.conf option each server choice fills.
CONF_KEYS = {"image": "image_ref", "image_alt": "image_ref_alt", "flavor": "flavor_ref",
             "flavor_alt": "flavor_ref_alt"}
MEMBER_PROJECT_ID = "TCUP_MEMBER_PROJECT_ID"
SKIP_SERVICES = "TCUP_SKIP_SERVICES"
GIB = 1024 ** 3
# How many of the cloud's resources a refusal lists (an SCS cloud has 15 flavors).
SHOWN = 20

choices = {}


class Refused(Exception):
    """A choice the user named that the cloud does not have: one line for them."""


def resource_name(resource) -> str:
    return resource.get("name") or resource.get("id")


def named(resources, wanted: str, what: str, option: str, describe=resource_name, order=resource_name) -> dict:
    """The one resource whose id or name is wanted; else a refusal that
    shows (by ``describe``, in ``order``) what the cloud has."""
    by_id = [r for r in resources if r.get("id") == wanted]
    by_name = [r for r in resources if r.get("name") == wanted]
    if by_id or len(by_name) == 1:
        return (by_id or by_name)[0]
    if by_name:
        raise Refused(f"{option} {wanted}: {len(by_name)} {what}s have that name; give the id of one of them")
    shown = list(dict.fromkeys(describe(r) for r in sorted(resources, key=order)))
    have = ", ".join(shown[:SHOWN]) + (f" and {len(shown) - SHOWN} more" if len(shown) > SHOWN else "") or "none"
    raise Refused(f"{option} {wanted}: the cloud has no {what} with that name or id that you can use (it has: {have})")


def brief(resource) -> dict:
    return {"id": resource.get("id"), "name": resource.get("name")} if resource else None


# -- which image and flavors the tests' servers can boot (pure) -------------

def size_text(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib and mib % 1024 == 0 else f"{mib} MiB"


def flavor_text(flavor) -> str:
    """A flavor as a user compares them: name, vCPUs, RAM, disk."""
    vcpus, disk = flavor.get("vcpus") or 0, flavor.get("disk") or 0
    return (f"{resource_name(flavor)} ({vcpus} vCPU{'' if vcpus == 1 else 's'}, {size_text(flavor.get('ram') or 0)} RAM, "
            + (f"{disk} GB disk)" if disk else "no disk)"))


def disk_needed(image) -> int:
    """GiB of root disk ``image`` needs: its min_disk, and room for its bytes."""
    data = image.get("virtual_size") or image.get("size") or 0
    return max(image.get("min_disk") or 0, -(-data // GIB))


def fits(flavor, image) -> bool:
    """A member can boot ``image`` on ``flavor``. Nova boots a server from
    an image on a flavor without a disk for admins only (a member gets 403
    "Only volume-backed servers are allowed for flavors with zero disk"),
    and refuses a disk below the image's min_disk or RAM below its min_ram.
    Tests in admin runs boot as dynamic members: the same holds there."""
    disk = flavor.get("disk") or 0
    if image is None:
        return disk > 0
    return disk > 0 and disk >= disk_needed(image) and (flavor.get("ram") or 0) >= (image.get("min_ram") or 0)


def flavor_size(flavor) -> tuple:
    """Smaller first: RAM, then disk, then vCPUs (python-tempestconf's order)."""
    return (flavor.get("ram") or 0, flavor.get("disk") or 0, flavor.get("vcpus") or 0, flavor.get("name") or "")


def image_order(image, flavors, also=None) -> tuple:
    """Better first: one some flavor boots (with ``also``, boots both), a
    CirrOS (made for tests), then the smallest."""
    bootable = any(fits(flavor, image) and (also is None or fits(flavor, also)) for flavor in flavors)
    return (not bootable, "cirros" not in (image.get("name") or "").lower(), image.get("size") or 0,
            image.get("name") or "")


def requirement_text(images) -> str:
    """What a flavor needs to boot each of ``images``, in words."""
    images = [image for image in images if image]
    disk = max([disk_needed(image) for image in images], default=0)
    ram = max([image.get("min_ram") or 0 for image in images], default=0)
    text = (f"a disk >= {disk} GiB" if disk else "a disk") + (f" and RAM >= {size_text(ram)}" if ram else "")
    names = " and ".join(dict.fromkeys(resource_name(image) for image in images))
    return text + (f" (what {names} need{'s' if len(set(map(id, images))) == 1 else ''})" if disk or ram else "")


def choose_servers(images, flavors, wanted, options=OPTIONS) -> dict:
    """The image, alternate image, flavor and alternate flavor of the tests'
    servers: each one the user named (``wanted``: key -> name or id), else
    the image a flavor can boot (a CirrOS, else the smallest), an alternate
    image that a flavor boots along with it, and the smallest flavor that
    boots both, then a distinct next one. A flavor without a disk is used
    only when named. Returns the resources, ``why`` (lines for the plan) and,
    when no flavor can boot the image, ``advice`` (one line: what to do).
    ``options``: how the user named each (key -> option), for what is said."""
    given = {key: named(flavors, wanted[key], "flavor", options[key], flavor_text, flavor_size)
             if key.startswith("flavor") else named(images, wanted[key], "active image", options[key])
             for key in CONF_KEYS if wanted.get(key)}
    # Images are judged by the flavors the user named, if any.
    judges = [given[key] for key in ("flavor", "flavor_alt") if key in given] or flavors
    image = given.get("image") or min(images, key=lambda i: image_order(i, judges), default=None)
    image_alt = given.get("image_alt") or alternate_image(image, images, judges)
    bootable = sorted((f for f in flavors if fits(f, image) and fits(f, image_alt)), key=flavor_size)
    flavor, flavor_alt = pick_flavors(bootable, given.get("flavor"), given.get("flavor_alt"))
    chosen = {"image": image, "image_alt": image_alt, "flavor": flavor, "flavor_alt": flavor_alt}
    chosen["why"] = reasons(chosen, given, flavors, bootable, options)
    if flavor is None and flavors:
        chosen["advice"] = advice([image, image_alt], flavors)
        chosen["why"].append(chosen["advice"])
    return chosen


def alternate_image(image, images, flavors):
    """Another image (some tests rebuild a server onto it) that a flavor
    boots along with ``image``; else ``image`` itself (also when no flavor
    boots ``image``: a second image would not help, only blur the advice)."""
    others = [i for i in images if image is None or i["id"] != image["id"]]
    best = min(others, key=lambda i: image_order(i, flavors, image), default=None)
    if best is None or (flavors and image_order(best, flavors, image)[0]):
        return image
    return best


def pick_flavors(bootable, flavor=None, flavor_alt=None):
    """flavor_ref and flavor_ref_alt among the bootable flavors (smallest
    first), around those the user named: distinct when there are two; the
    alternate not smaller than the first where possible (tests resize to it)."""
    if flavor is None:
        flavor = next((f for f in bootable if flavor_alt is None or f["id"] != flavor_alt["id"]), flavor_alt)
    if flavor_alt is None and flavor is not None:
        others = [f for f in bootable if f["id"] != flavor["id"]]
        flavor_alt = next((f for f in others if flavor_size(f) >= flavor_size(flavor)), None) or \
            (others[0] if others else flavor)
    return flavor, flavor_alt


def reasons(chosen, given, flavors, bootable, options) -> list:
    """Why each choice was made, one line each, and what was passed over."""
    why = []
    for key in ("image", "image_alt", "flavor", "flavor_alt"):
        resource = chosen[key]
        if resource is not None:
            text = flavor_text(resource) if key.startswith("flavor") else resource_name(resource)
            why.append(f"{key} {text}: " + (f"named with {options[key]}" if key in given
                                            else default_reason(key, chosen, flavors)))
    passed = [f for f in flavors if f not in bootable and f not in given.values()]
    without_disk = [f for f in passed if not f.get("disk")]
    if without_disk:
        why.append(f"{plural(len(without_disk), 'flavor')} without a disk passed over (a member cannot boot "
                   "an image on them; name one with --flavor to use it)")
    too_small = [f for f in passed if f.get("disk")]
    if too_small and chosen["image"] is not None:
        why.append(f"{plural(len(too_small), 'flavor')} with a disk too small for "
                   f"{requirement_text([chosen['image'], chosen['image_alt']])} passed over")
    return why


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def default_reason(key, chosen, flavors) -> str:
    """Why discovery chose ``chosen[key]``."""
    image, image_alt = chosen["image"], chosen["image_alt"]
    if key == "image":
        if "cirros" in (image.get("name") or "").lower():
            return "a CirrOS image"
        if flavors and not any(fits(flavor, image) for flavor in flavors):
            return "the smallest image (no flavor can boot any)"
        return "the smallest image a flavor can boot" if flavors else "the smallest image"
    if key == "image_alt":
        return "the next smallest image" if image_alt is not image else "the same: no other image fits a flavor with it"
    if key == "flavor":
        return f"the smallest with {requirement_text([image, image_alt])}"
    if chosen["flavor_alt"] is chosen["flavor"]:
        return "the same: no other flavor can boot the images"
    return "the next one"


def advice(images, flavors) -> str:
    """One line for the user when no flavor can boot the images: what to do."""
    with_disk = sorted((f for f in flavors if f.get("disk")), key=flavor_size)
    needs = requirement_text(images)
    if with_disk:
        shown = ", ".join(flavor_text(f) for f in with_disk[:5])
        return (f"no flavor can boot the tests' image as a member: it takes {needs}, and the flavors with a disk "
                f"are smaller ({shown}); name a smaller image with --image, or a flavor with --flavor")
    return (f"none of the {plural(len(flavors), 'flavor')} your project can use has a disk, and Nova lets only admins "
            "boot a server from an image on such a flavor (a member gets 403 \"Only volume-backed servers are "
            f"allowed\"): ask the cloud's operator for a flavor with {needs}, or name one with --flavor NAME if "
            "your project may boot from a flavor without a disk")


# -- python-tempestconf, patched ---------------------------------------------

def guard_rest_clients() -> None:
    """Refuse writes through any Tempest service client."""
    from tempest.lib import exceptions
    from tempest.lib.common import rest_client
    from tempest.lib.services.identity.v2 import token_client as v2_tokens
    from tempest.lib.services.identity.v3 import token_client as v3_tokens

    read = rest_client.RestClient.raw_request
    token_clients = (v2_tokens.TokenClient, v3_tokens.V3TokenClient)

    def read_only_request(self, url, method, *args, **kwargs):
        if method.upper() in ("GET", "HEAD") or isinstance(self, token_clients):
            return read(self, url, method, *args, **kwargs)
        raise exceptions.Forbidden(f"TCUP creates nothing in the cloud: refused {method.upper()} {url}")

    rest_client.RestClient.raw_request = read_only_request


def every_page(list_page, key: str) -> list:
    """A whole listing, page by page: a cloud may cap a page (Nova's
    max_limit, Glance's 25 by default), and what discovery misses it would
    wrongly call missing."""
    from tcup.runner import resources

    return resources.paged(list_page, key)[0]


# The flavors python-tempestconf's flavor step listed ("flavors") and its
# tempest.conf ("conf"), kept until the image is chosen: which flavors fit
# depends on the image (min_disk, min_ram), and python-tempestconf looks at
# flavors before images.
pending = {}


def user_set(conf, key: str):
    """A compute.* value the user set with --set: it wins over discovery."""
    if ("compute", key) in getattr(conf, "priority_sectionkeys", set()):
        return conf.get("compute", key)
    return None


def settle(conf, images) -> None:
    """Choose the image(s) and flavors together, set them in tempest.conf and
    record them. ``images``: the active images, or None without an image service."""
    flavors = pending.pop("flavors", None)
    pending.clear()
    wanted = {key: os.environ.get(WANTED[key]) or user_set(conf, option) for key, option in CONF_KEYS.items()}
    if images is None:
        wanted.pop("image"), wanted.pop("image_alt")
    options = {key: OPTIONS[key] if os.environ.get(WANTED[key]) else f"--set compute.{option}"
               for key, option in CONF_KEYS.items()}
    chosen = choose_servers(images or [], flavors or [], wanted, options)
    for key, option in CONF_KEYS.items():
        if (key.startswith("image") and images is None) or (key.startswith("flavor") and flavors is None):
            continue
        choices[key] = brief(chosen[key])
        if chosen[key] is not None:
            conf.set("compute", option, chosen[key]["id"])
    choices["why"] = "\n".join(chosen["why"])
    if flavors is not None:  # what `tcup plan -v` lists, to compare with the choice
        choices["flavors"] = [flavor_text(flavor) for flavor in sorted(flavors, key=flavor_size)]
    if chosen.get("advice"):
        choices["advice"] = chosen["advice"]


def choose_images_and_flavors() -> None:
    """Replace the image upload and the flavor choice with TCUP's: the
    cloud's own images (TCUP uploads none), and flavors a member can boot
    them on (see choose_servers)."""
    from config_tempest.constants import LOG
    from config_tempest.flavors import Flavors
    from config_tempest.services.image import ImageService
    from config_tempest.services.services import Services

    def create_tempest_flavors(self):
        pending["flavors"] = every_page(lambda params: self.client.list_flavors(detail=True, **params), "flavors")
        pending["conf"] = self._conf

    def create_tempest_images(self, conf, retry_alt=False):
        images = every_page(lambda params: self.client.list_images(params or None), "images")
        active = [image for image in images if image.get("status") == "active"]
        if not active:
            LOG.warning("The cloud has no active image; TCUP uploads none.")
        settle(conf, active)

    post_configuration = Services.post_configuration

    def settle_then_post_configuration(self):
        if "flavors" in pending:  # no image service: flavors alone
            settle(pending["conf"], None)
        post_configuration(self)

    Flavors.create_tempest_flavors = create_tempest_flavors
    ImageService.create_tempest_images = create_tempest_images
    Services.post_configuration = settle_then_post_configuration


def choose_member_network() -> None:
    """As a member, Tempest boots servers on compute.fixed_network_name, which
    python-tempestconf never sets: the network the user named, else the
    member project's only internal network, else the only shared one. With
    none or several, the runner stops before the run and says so."""
    from config_tempest.services.network import NetworkService

    discover = NetworkService.create_tempest_networks_neutron

    def create_tempest_networks_neutron(self, conf, public_network):
        discover(self, conf, public_network)
        project_id = os.environ.get(MEMBER_PROJECT_ID)
        if not project_id:
            return  # an admin: Tempest makes a network per test class
        networks = [network for network in every_page(lambda params: self.client.list_networks(**params), "networks")
                    if not network.get("router:external")]
        wanted = os.environ.get(WANTED["network"])
        if wanted:
            chosen = [named(networks, wanted, "internal network", "--network")]
        else:
            chosen = [network for network in networks if network.get("project_id") == project_id] or \
                     [network for network in networks if network.get("shared")]
        if len(chosen) == 1:
            conf.set("compute", "fixed_network_name", chosen[0]["name"])
            choices["network"] = brief(chosen[0])
        else:
            choices["network"] = None
            choices["network_candidates"] = sorted(network.get("name") or network["id"] for network in chosen)

    NetworkService.create_tempest_networks_neutron = create_tempest_networks_neutron


def leave_out_services() -> None:
    """Discover as if the catalog lacked the types the user skipped (their
    endpoints do not answer): each is then marked unavailable."""
    from config_tempest.services.services import Services

    skipped = set(filter(None, os.environ.get(SKIP_SERVICES, "").split(",")))
    listed = Services.get_available_services

    def get_available_services(self):
        return [service for service in listed(self) if service.get("type") not in skipped]

    if skipped:
        Services.get_available_services = get_available_services


def write_json(variable: str, data) -> None:
    path = os.environ.get(variable)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)


def load_secret_environment() -> None:
    """The credentials and proxies, from the file the runner wrote for this
    process alone; set after the start, they never show in /proc/PID/environ."""
    import json
    import os

    path = os.environ.pop("TCUP_DISCOVER_ENV", None)
    if path:
        with open(path) as file:
            os.environ.update(json.load(file))
        os.unlink(path)


def main() -> int:
    load_secret_environment()
    guard_rest_clients()
    choose_images_and_flavors()
    choose_member_network()
    leave_out_services()
    from config_tempest.main import main as discover_tempest_config

    sys.argv[0] = "discover-tempest-config"
    try:
        discover_tempest_config()
    except Refused as refusal:
        write_json(REFUSAL_VARIABLE, str(refusal))
        print(f"refused: {refusal}", file=sys.stderr)
        return 2
    write_json(CHOICES_VARIABLE, choices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
