"""Neutron 29.0.0: ML2 with the agentless ``tcup_bind_all`` driver, and the
L3 router plugin. No agent runs: ports bind at once and are ACTIVE, routers
and floating IPs exist in the API only (floating IPs stay DOWN, no traffic
flows). Tenant networks are ``local``; the external network is ``flat``.

Neutron 29 ships no ``neutron-server`` script: gunicorn serves
``neutron.wsgi.api``. MariaDB (neutron-db-manage cannot ALTER constraints on
sqlite) and RabbitMQ.
"""

from __future__ import annotations

from pathlib import Path

from .common import LOCKS_DIR, VenvSpec, clean_env, http, run, write_ini
from .profiles import PAGE_SIZE
from .site import Site

NAME = "neutron"
VENV = VenvSpec(NAME, "29.0.0", LOCKS_DIR / "neutron.txt",
                local_packages=(Path(__file__).resolve().parent / "ml2_bind_all",))
USERS = [NAME]
PROCESSES = (NAME,)
DATABASES = [NAME]
PHYSNET = "public"
# Port.port_forwardings is a backref that exists only once SQLAlchemy has
# configured its mappers, which it does lazily: a new worker's first port
# query can come first and fail (HTTP 500, AttributeError). So do it now.
CONFIGURE_MAPPERS = """
from sqlalchemy import orm  # noqa: E402

orm.configure_mappers()
"""


def catalog(site: Site) -> list[tuple[str, str, str]]:
    """(type, name, URL) of each catalog entry this service has."""
    return [("network", NAME, site.url(NAME))]


def start(site: Site, venv: Path) -> None:
    """Write neutron.conf and ml2_conf.ini, migrate once, serve the API."""
    home = site.dir(NAME)
    write_ini(home / "neutron.conf", {
        "DEFAULT": {
            "core_plugin": "ml2",
            # port_forwarding too: without it, listing ports with some filters
            # fails on a model attribute only that plugin adds (HTTP 500).
            "service_plugins": "router,port_forwarding",
            "transport_url": site.transport_url,
            "auth_strategy": "keystone",
            "state_path": site.dir(f"{NAME}/state"),
            "notify_nova_on_port_status_changes": True,
            "notify_nova_on_port_data_changes": True,
            # No DHCP agent will ever take a network.
            "dhcp_agent_notification": False,
            **({"pagination_max_limit": PAGE_SIZE} if site.paging else {}),
        },
        "database": {"connection": site.database(NAME)},
        "keystone_authtoken": site.authtoken(NAME),
        # Port events to Nova over its internal endpoint, as services talk.
        "nova": dict(site.service_credentials(NAME), endpoint_type="internal"),
        "oslo_concurrency": {"lock_path": site.dir(f"{NAME}/locks")},
        "oslo_messaging_notifications": {"driver": "noop"},
        # Tempest creates many networks, ports and groups in one project.
        "quotas": {"quota_network": 100, "quota_subnet": 100, "quota_port": 500,
                   "quota_router": 50, "quota_floatingip": 50,
                   "quota_security_group": 100, "quota_security_group_rule": 1000},
        **site.behind_proxy(),
    })
    write_ini(home / "ml2_conf.ini", {
        "ml2": {"type_drivers": "local,flat", "tenant_network_types": "local",
                "mechanism_drivers": "tcup_bind_all", "extension_drivers": "port_security"},
        "ml2_type_flat": {"flat_networks": PHYSNET},
        "securitygroup": {"firewall_driver": "noop"},
    })
    site.copy_from_venv(venv, "etc/neutron/api-paste.ini", home)
    env = clean_env(OS_NEUTRON_CONFIG_DIR=str(home),
                    OS_NEUTRON_CONFIG_FILES="neutron.conf;ml2_conf.ini")
    if not site.flag(NAME):
        run([str(venv / "bin" / "neutron-db-manage"), "--config-file",
             str(home / "neutron.conf"), "--config-file", str(home / "ml2_conf.ini"),
             "upgrade", "heads"], timeout=900, log=site.log("neutron-db-manage"), cwd=home,
            env=env)
        site.mark(NAME)
    # Two workers: Nova's API and compute both wait on it.
    site.serve_wsgi(NAME, venv, "neutron.wsgi.api", ["neutron-api"], env=env, workers=2,
                    after=CONFIGURE_MAPPERS)


def ready(site: Site) -> bool:
    """True once the API answers its version list."""
    return http("GET", site.url(NAME), timeout=10)[0] == 200
