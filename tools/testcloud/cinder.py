"""Cinder 29.0.0 with ``cinder.tests.fake_driver.FakeLoggingVolumeDriver``
(through ``cinder_fake/``, which makes its image copies no-ops): volumes,
snapshots and attachments exist in the API and the database only; no byte is
stored. Backups do not work (os-brick wants sudo). MariaDB (sqlite locks
under Tempest) and RabbitMQ.
"""

from __future__ import annotations

from pathlib import Path

from .common import LOCKS_DIR, VenvSpec, clean_env, http, run, write_ini
from .profiles import PAGE_SIZE
from .site import Site

NAME = "cinder"
VENV = VenvSpec(NAME, "29.0.0", LOCKS_DIR / "cinder.txt",
                local_packages=(Path(__file__).resolve().parent / "cinder_fake",))
USERS = [NAME]
DATABASES = [NAME]
SERVICES = ("cinder-scheduler", "cinder-volume")
PROCESSES = (NAME,) + SERVICES
BACKEND = "fake"


def catalog(site: Site) -> list[tuple[str, str, str]]:
    """(type, name, URL) of each catalog entry this service has."""
    url = site.url(NAME, "/v3/%(project_id)s")
    return [("volumev3", "cinderv3", url), ("block-storage", NAME, url)]


def start(site: Site, venv: Path) -> None:
    """Write cinder.conf, create the schema once, start API and services."""
    home = site.dir(NAME)
    conf = home / "cinder.conf"
    filters = site.copy_from_venv(venv, "etc/cinder/resource_filters.json", home)
    write_ini(conf, {
        "DEFAULT": {
            "transport_url": site.transport_url,
            "auth_strategy": "keystone",
            "host": "tcup-volume",
            "my_ip": "127.0.0.1",
            "state_path": site.dir(f"{NAME}/state"),
            "enabled_backends": BACKEND,
            # Its default is under /etc/cinder: without it, name filters
            # on volume lists are silently ignored.
            "resource_query_filters_file": filters,
            "api_paste_config": home / "api-paste.ini",
            # The volume service reports its capabilities this often (60 s
            # by default); until the scheduler has them, creations fail.
            "periodic_interval": 10,
            "quota_volumes": 100, "quota_snapshots": 100, "quota_gigabytes": 10000,
            # Glance's internal endpoint, as services talk (default: public).
            "glance_catalog_info": "image:glance:internalURL",
            **({"osapi_max_limit": PAGE_SIZE} if site.paging else {}),
        },
        BACKEND: {
            "volume_driver": "tcup_cinder_fake.FakeVolumeDriver",
            "volume_backend_name": BACKEND,
        },
        "database": {"connection": site.database(NAME)},
        "keystone_authtoken": site.authtoken(NAME),
        "nova": dict(site.service_credentials(NAME), interface="internal"),
        "service_user": dict(site.service_credentials(NAME), send_service_user_token=True),
        # Reading an image's format (volume from image) needs privsep; no
        # sudo here: start its helper directly (so this needs root).
        "cinder_sys_admin": {"helper_command": f"{venv / 'bin' / 'privsep-helper'} "
                                               f"--config-file {conf}"},
        "oslo_concurrency": {"lock_path": site.dir(f"{NAME}/locks")},
        "oslo_messaging_notifications": {"driver": "noop"},
        **site.behind_proxy(),
    })
    site.copy_from_venv(venv, "etc/cinder/api-paste.ini", home)
    env = clean_env()
    if not site.flag(NAME):
        run([str(venv / "bin" / "cinder-manage"), "--config-file", str(conf), "db", "sync"],
            timeout=600, log=site.log("cinder-manage"), cwd=home, env=env)
        site.mark(NAME)
    site.serve_wsgi(NAME, venv, "cinder.wsgi.api", ["cinder-api", "--config-file", str(conf)],
                    env=env)
    for service in SERVICES:
        site.spawn(service, [str(venv / "bin" / service), "--config-file", str(conf)],
                   cwd=home, env=env)


def ready(site: Site) -> bool:
    """True once the API answers its version list."""
    return http("GET", site.url(NAME), timeout=10)[0] in (200, 300)


def alive(site: Site) -> bool:
    """True while the API and both services run."""
    return all(site.alive(name) for name in PROCESSES)
