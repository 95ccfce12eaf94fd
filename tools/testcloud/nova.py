"""Nova 34.0.0 with its fake hypervisor: servers go ACTIVE, nothing boots.

The driver is ``fake.FakeDriverWithoutFakeNodes`` (through ``nova_fake/``,
which makes its snapshots upload an image): it names its one node after
``host`` and keeps its uuid across restarts (plain ``FakeDriver`` makes a new
node uuid at each start and then refuses to start). VIF plugging is not
waited for: no agent would ever report it. MariaDB (api, cell0, cell1) and
RabbitMQ.
"""

from __future__ import annotations

from pathlib import Path

from .common import LOCKS_DIR, VenvSpec, clean_env, http, output, run, wait_for, write_ini
from .profiles import PAGE_SIZE
from .site import Site

NAME = "nova"
VENV = VenvSpec(NAME, "34.0.0", LOCKS_DIR / "nova.txt",
                local_packages=(Path(__file__).resolve().parent / "nova_fake",))
USERS = [NAME]
DATABASES = ["nova_api", "nova_cell0", "nova"]
COMPUTE_HOST = "tcup-compute"
SERVICES = ("nova-conductor", "nova-scheduler", "nova-compute")
PROCESSES = (NAME,) + SERVICES

COMPUTE_LAUNCHER = '''\
"""nova-compute with TCUP's fake driver; written by tools/testcloud/nova.py."""
import sys

# First: importing it chooses nova's threading model, before anything else
# of nova (the driver module) is imported.
from nova.cmd import compute

import tcup_nova_fake  # noqa: E402

tcup_nova_fake.register()
sys.exit(compute.main())
'''


def catalog(site: Site) -> list[tuple[str, str, str]]:
    """(type, name, URL) of each catalog entry this service has."""
    return [("compute", NAME, site.url(NAME, "/v2.1"))]


def _config(site: Site, home: Path) -> dict:
    """nova.conf, shared by the API and the three services."""
    return {
        "DEFAULT": {
            "transport_url": site.transport_url,
            "compute_driver": "tcup_fake.FakeDriver",
            "host": COMPUTE_HOST,
            "my_ip": "127.0.0.1",
            "state_path": site.dir(f"{NAME}/state"),
            "instances_path": site.dir(f"{NAME}/instances"),
            # Nothing plugs VIFs, so nobody would report them plugged.
            "vif_plugging_is_fatal": False,
            "vif_plugging_timeout": 0,
            # One compute host: resize and migrate tests need this.
            "allow_resize_to_same_host": True,
        },
        "api": {"auth_strategy": "keystone", **({"max_limit": PAGE_SIZE} if site.paging else {})},
        "api_database": {"connection": site.database("nova_api")},
        "database": {"connection": site.database("nova")},
        "keystone_authtoken": site.authtoken(NAME),
        "placement": site.service_credentials(NAME),
        "neutron": site.service_credentials(NAME),
        # Neutron lets only a request carrying a service token delete a
        # server's port.
        "service_user": dict(site.service_credentials(NAME), send_service_user_token=True),
        # Cinder's internal endpoint, as services talk (its default is the
        # public one); Glance, Neutron and Placement default to internal.
        "cinder": dict(site.service_credentials(NAME), os_region_name="RegionOne",
                       catalog_info="volumev3::internalURL"),
        "glance": {"region_name": "RegionOne"},
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1},
        "oslo_concurrency": {"lock_path": site.dir(f"{NAME}/locks")},
        "oslo_messaging_notifications": {"driver": "noop"},
        # Tempest creates many servers, volumes and key pairs in one project.
        "quota": {"instances": 100, "cores": 400, "ram": 819200, "key_pairs": 200,
                  "server_groups": 100, "server_group_members": 100},
        **site.behind_proxy(),
    }


def start(site: Site, venv: Path) -> None:
    """Write nova.conf, create the cells once, start API and services."""
    home = site.dir(NAME)
    conf = home / "nova.conf"
    write_ini(conf, _config(site, home))
    site.copy_from_venv(venv, "etc/nova/api-paste.ini", home)
    env = clean_env(OS_NOVA_CONFIG_DIR=str(home))
    if not site.flag(NAME):
        manage = [str(venv / "bin" / "nova-manage"), "--config-file", str(conf)]
        for args in (["api_db", "sync"],
                     ["cell_v2", "map_cell0", "--database_connection",
                      site.database("nova_cell0")],
                     ["cell_v2", "create_cell", "--name", "cell1"],
                     ["db", "sync"]):
            run(manage + args, timeout=600, log=site.log("nova-manage"), cwd=home, env=env)
        site.mark(NAME)
    # Two workers: nova-api waits on Neutron, and Neutron calls it back.
    site.serve_wsgi(NAME, venv, "nova.wsgi.osapi_compute", ["nova-api"], env=env, workers=2)
    launcher = home / "tcup_nova_compute.py"
    launcher.write_text(COMPUTE_LAUNCHER)
    for service in SERVICES:
        program = [str(venv / "bin" / "python"), str(launcher)] if service == "nova-compute" \
            else [str(venv / "bin" / service)]
        site.spawn(service, program + ["--config-file", str(conf)], cwd=home, env=env)


def ready(site: Site) -> bool:
    """True once the API answers its version document."""
    return http("GET", site.url(NAME, "/v2.1"), timeout=10)[0] == 200


def alive(site: Site) -> bool:
    """True while the API and every service run."""
    return all(site.alive(name) for name in PROCESSES)


def map_compute_host(site: Site, venv: Path, timeout: float = 180) -> None:
    """Map the compute host into cell1 once it has registered itself.

    Only needed on a fresh cloud: the mapping lives in the database.
    """
    if site.flag("nova-host-mapped"):
        return
    home = site.dir(NAME)
    manage = [str(venv / "bin" / "nova-manage"), "--config-file", str(home / "nova.conf")]

    def mapped() -> bool:
        run(manage + ["cell_v2", "discover_hosts"], timeout=120, log=site.log("nova-manage"),
            cwd=home, env=clean_env())
        hosts = output(manage + ["cell_v2", "list_hosts"], timeout=120, cwd=home, env=clean_env())
        return COMPUTE_HOST in hosts

    wait_for(mapped, what="nova-compute registering", timeout=timeout,
             log=site.log("nova-compute"), alive=lambda: site.alive("nova-compute"),
             interval=2)
    site.mark("nova-host-mapped")
