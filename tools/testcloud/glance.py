"""Glance 33.0.0 with the file store: images are files under ``DIR/glance``.

sqlite is enough for it (one gunicorn worker). Notifications go nowhere.
"""

from __future__ import annotations

from pathlib import Path

from .common import LOCKS_DIR, VenvSpec, clean_env, http, run, write_ini
from .profiles import PAGE_SIZE
from .site import Site

NAME = "glance"
VENV = VenvSpec(NAME, "33.0.0", LOCKS_DIR / "glance.txt")
USERS = [NAME]
PROCESSES = (NAME,)


def catalog(site: Site) -> list[tuple[str, str, str]]:
    """(type, name, URL) of each catalog entry this service has."""
    return [("image", NAME, site.url(NAME))]


def start(site: Site, venv: Path) -> None:
    """Write glance-api.conf, create the schema once, serve the API."""
    home = site.dir(NAME)
    stores = {name: site.dir(f"{NAME}/{name}") for name in ("images", "staging", "tasks")}
    paging = {"limit_param_default": PAGE_SIZE, "api_limit_max": PAGE_SIZE} if site.paging else {}
    write_ini(home / "glance-api.conf", {
        "DEFAULT": {"enabled_backends": "file:file", **paging},
        "database": {"connection": f"sqlite:///{home / 'glance.db'}"},
        "glance_store": {"default_backend": "file"},
        "file": {"filesystem_store_datadir": stores["images"]},
        "os_glance_staging_store": {"filesystem_store_datadir": stores["staging"]},
        "os_glance_tasks_store": {"filesystem_store_datadir": stores["tasks"]},
        "keystone_authtoken": site.authtoken(NAME),
        "paste_deploy": {"flavor": "keystone"},
        "oslo_concurrency": {"lock_path": site.dir(f"{NAME}/locks")},
        "oslo_messaging_notifications": {"driver": "noop"},
        **site.behind_proxy(),
    })
    site.copy_from_venv(venv, "etc/glance/glance-api-paste.ini", home)
    env = clean_env(OS_GLANCE_CONFIG_DIR=str(home))
    if not site.flag(NAME):
        run([str(venv / "bin" / "glance-manage"), "--config-file", str(home / "glance-api.conf"),
             "db_sync"], timeout=300, log=site.log("glance-manage"), cwd=home, env=env)
        site.mark(NAME)
    site.serve_wsgi(NAME, venv, "glance.wsgi.api", ["glance-api"], env=env)


def ready(site: Site) -> bool:
    """True once the API answers its version list (300 Multiple Choices)."""
    return http("GET", site.url(NAME), timeout=10)[0] in (200, 300)
