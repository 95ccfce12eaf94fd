"""Placement 16.0.0: the resource inventory Nova schedules against.

sqlite is enough for it (one gunicorn worker, so no lock contention).
"""

from __future__ import annotations

from pathlib import Path

from .common import LOCKS_DIR, VenvSpec, clean_env, http, run, write_ini
from .site import Site

NAME = "placement"
VENV = VenvSpec(NAME, "16.0.0", LOCKS_DIR / "placement.txt")
USERS = [NAME]
PROCESSES = (NAME,)


def catalog(site: Site) -> list[tuple[str, str, str]]:
    """(type, name, URL) of each catalog entry this service has."""
    return [("placement", NAME, site.url(NAME))]


def start(site: Site, venv: Path) -> None:
    """Write placement.conf, create the schema once, serve the API."""
    home = site.dir(NAME)
    write_ini(home / "placement.conf", {
        "placement_database": {"connection": f"sqlite:///{home / 'placement.db'}"},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": site.authtoken(NAME),
        **site.behind_proxy(),
    })
    env = clean_env(OS_PLACEMENT_CONFIG_DIR=str(home))
    if not site.flag(NAME):
        run([str(venv / "bin" / "placement-manage"), "--config-file",
             str(home / "placement.conf"), "db", "sync"],
            timeout=300, log=site.log("placement-manage"), cwd=home, env=env)
        site.mark(NAME)
    site.serve_wsgi(NAME, venv, "placement.wsgi.api", ["placement-api"], env=env)


def ready(site: Site) -> bool:
    """True once the API answers its version document."""
    return http("GET", site.url(NAME), timeout=10)[0] == 200
