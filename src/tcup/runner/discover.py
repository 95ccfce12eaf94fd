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
"""

import sys


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
        """Set compute.image_ref(_alt) to active images: the configured one
        if still there, else a CirrOS, else the smallest."""
        wanted = conf.get("compute", "image_ref") if conf.has_option("compute", "image_ref") else None
        images = [image for image in self.client.list_images()["images"] if image.get("status") == "active"]
        if not images:
            LOG.warning("The cloud has no active image; TCUP uploads none, so tests that boot servers will fail.")
            return
        images.sort(key=lambda image: (image.get("id") != wanted,
                                       "cirros" not in (image.get("name") or "").lower(),
                                       image.get("size") or 0))
        conf.set("compute", "image_ref", images[0]["id"])
        conf.set("compute", "image_ref_alt", images[min(1, len(images) - 1)]["id"])
        LOG.info("Using existing image %s (no upload)", images[0]["id"])

    ImageService.create_tempest_images = choose_images


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
    from config_tempest.main import main as discover_tempest_config

    sys.argv[0] = "discover-tempest-config"
    discover_tempest_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
