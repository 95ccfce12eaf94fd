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
    uploading one.
It also records what it chose for the tests' servers (image, flavor and, for
a member, the network, which python-tempestconf leaves unset) in a JSON file
the runner reports from, and stops with one line when a choice the user
named does not exist.
"""

import json
import os
import sys

# Where the runner wants the choices and a refusal (paths in the secret tmpfs).
CHOICES_FILE = "TCUP_CHOICES_FILE"
REFUSAL_FILE = "TCUP_REFUSAL_FILE"
# What the user named (--image, --flavor, --network), and who the member is.
WANTED = {"image": "TCUP_IMAGE", "flavor": "TCUP_FLAVOR", "network": "TCUP_NETWORK"}
MEMBER_PROJECT_ID = "TCUP_MEMBER_PROJECT_ID"
SKIP_SERVICES = "TCUP_SKIP_SERVICES"

choices = {}


class Refused(Exception):
    """A choice the user named that the cloud does not have: one line for them."""


def named(resources, wanted: str, what: str, option: str) -> dict:
    """The one resource whose id or name is wanted."""
    by_id = [r for r in resources if r.get("id") == wanted]
    by_name = [r for r in resources if r.get("name") == wanted]
    if by_id or len(by_name) == 1:
        return (by_id or by_name)[0]
    if by_name:
        raise Refused(f"{option} {wanted}: {len(by_name)} {what}s have that name; give the id of one of them")
    have = ", ".join(sorted({r.get("name") or r.get("id") for r in resources})[:10]) or "none"
    raise Refused(f"{option} {wanted}: the cloud has no {what} with that name or id that you can use (it has: {have})")


def brief(resource) -> dict:
    return {"id": resource.get("id"), "name": resource.get("name")} if resource else None


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


def use_existing_images() -> None:
    """Replace the image upload with a choice among the cloud's images."""
    from config_tempest.constants import LOG
    from config_tempest.services.image import ImageService

    def choose_images(self, conf, retry_alt=False):
        """compute.image_ref(_alt): the image the user named, else a CirrOS,
        else the smallest active image; the alternate is another one if the
        cloud has two (some tests need distinct images)."""
        images = [image for image in self.client.list_images()["images"] if image.get("status") == "active"]
        wanted = os.environ.get(WANTED["image"])
        if wanted:
            first = named(images, wanted, "active image", "--image")
        elif images:
            first = min(images, key=lambda image: ("cirros" not in (image.get("name") or "").lower(),
                                                   image.get("size") or 0, image.get("name") or ""))
        else:
            LOG.warning("The cloud has no active image; TCUP uploads none.")
            choices["image"] = choices["image_alt"] = None
            return
        others = sorted((image for image in images if image["id"] != first["id"]),
                        key=lambda image: (image.get("size") or 0, image.get("name") or ""))
        alt = others[0] if others else first
        conf.set("compute", "image_ref", first["id"])
        conf.set("compute", "image_ref_alt", alt["id"])
        choices["image"], choices["image_alt"] = brief(first), brief(alt)
        LOG.info("Using existing image %s (no upload)", first["id"])

    ImageService.create_tempest_images = choose_images


def choose_flavors() -> None:
    """The flavor the user named, else python-tempestconf's choice (m1.nano
    and m1.micro, else the two smallest); recorded either way."""
    from config_tempest.flavors import Flavors

    discover = Flavors.create_tempest_flavors

    def create_tempest_flavors(self):
        wanted = os.environ.get(WANTED["flavor"])
        if wanted:
            self._conf.set("compute", "flavor_ref", named(self.flavor_list, wanted, "flavor", "--flavor")["id"])
        if not self.flavor_list:
            choices["flavor"] = choices["flavor_alt"] = None
            return
        if len(self.flavor_list) == 1:
            # Tempest needs two; with one, both point at it.
            for key in ("flavor_ref", "flavor_ref_alt"):
                if not self._conf.has_option("compute", key):
                    self._conf.set("compute", key, self.flavor_list[0]["id"])
        discover(self)
        by_id = {flavor["id"]: flavor for flavor in self.flavor_list}
        choices["flavor"] = brief(by_id.get(self._conf.get("compute", "flavor_ref")))
        choices["flavor_alt"] = brief(by_id.get(self._conf.get("compute", "flavor_ref_alt")))

    Flavors.create_tempest_flavors = create_tempest_flavors


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
        networks = [network for network in self.client.list_networks()["networks"]
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
    use_existing_images()
    choose_flavors()
    choose_member_network()
    leave_out_services()
    from config_tempest.main import main as discover_tempest_config

    sys.argv[0] = "discover-tempest-config"
    try:
        discover_tempest_config()
    except Refused as refusal:
        write_json(REFUSAL_FILE, str(refusal))
        print(f"refused: {refusal}", file=sys.stderr)
        return 2
    write_json(CHOICES_FILE, choices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
