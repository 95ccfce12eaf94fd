"""Swift 2.38.3: one replica of everything on a directory, keystone auth.

Proxy, account, container and object servers each run as one process
(``workers = 0``) against ``DIR/swift/node/d1`` (the file system must support
user xattrs). Swift reads ``/etc/swift/swift.conf`` unconditionally; the
servers are started through a small launcher that points Swift at this
cloud's own ``swift.conf`` first. Without ``/dev/log`` they log to stdout.
No replicators, updaters, expirer or container sync run.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from .common import LOCKS_DIR, VenvSpec, clean_env, http, port_open, run, write_ini
from .profiles import PAGE_SIZE
from .site import Site

NAME = "swift"
VENV = VenvSpec(NAME, "2.38.3", LOCKS_DIR / "swift.txt")
USERS = [NAME]
STORAGE = ("account", "container", "object")
DEVICE = "d1"
PROCESSES = (NAME,) + tuple(f"swift-{kind}" for kind in STORAGE)
MIDDLEWARE = (
    "catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl "
    "formpost authtoken keystoneauth staticweb copy container-quotas account-quotas slo "
    "dlo versioned_writes symlink proxy-logging proxy-server"
)

LAUNCHER = '''\
"""Run a Swift server with this directory's swift.conf; written by tools/testcloud/swift.py."""
import importlib
import os
import sys

from swift.common import constraints, storage_policy, utils

utils.set_swift_dir(os.path.dirname(os.path.abspath(__file__)))
storage_policy.reload_storage_policies()
constraints.reload_constraints()  # the listing limits of [swift-constraints]
module = sys.argv.pop(1)
sys.exit(importlib.import_module(module).main())
'''


def catalog(site: Site) -> list[tuple[str, str, str]]:
    """(type, name, URL) of each catalog entry this service has."""
    return [("object-store", NAME, site.url(NAME, "/v1/AUTH_%(project_id)s"))]


def _filters(site: Site) -> dict[str, dict]:
    """The proxy's middleware sections, by paste filter name."""
    egg = {name: {"use": f"egg:swift#{name.replace('-', '_')}"}
           for name in MIDDLEWARE.split() if name not in ("authtoken", "proxy-server")}
    egg["authtoken"] = dict(site.authtoken(NAME),
                            **{"paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
                               # keystoneauth decides, so tempurl and
                               # public containers still work.
                               "delay_auth_decision": True})
    egg["keystoneauth"].update({"operator_roles": "admin, member",
                                "reseller_admin_role": "ResellerAdmin"})
    egg["versioned_writes"]["allow_versioned_writes"] = True
    egg["versioned_writes"]["allow_object_versioning"] = True
    return {f"filter:{name}": options for name, options in egg.items()}


def _write_configs(site: Site, home: Path) -> None:
    """swift.conf and the four servers' configs."""
    if not (home / "swift.conf").exists():  # the hash suffix must never change
        # A directory keeps its profiles, so the listing limits are known now.
        paging = {"swift-constraints": {"container_listing_limit": PAGE_SIZE,
                                        "account_listing_limit": PAGE_SIZE}} if site.paging else {}
        write_ini(home / "swift.conf", {
            "swift-hash": {"swift_hash_path_suffix": secrets.token_hex(8),
                           "swift_hash_path_prefix": secrets.token_hex(8)},
            "storage-policy:0": {"name": "Policy-0", "default": "yes"},
            **paging,
        })
    node = site.dir(f"{NAME}/node/{DEVICE}").parent
    for kind in STORAGE:
        server = f"{kind}-server"
        write_ini(home / f"{server}.conf", {
            "DEFAULT": {"bind_ip": "127.0.0.1", "bind_port": site.port(f"swift-{kind}"),
                        "devices": node, "mount_check": False, "workers": 0,
                        "swift_dir": home, "log_name": server},
            "pipeline:main": {"pipeline": server},
            f"app:{server}": {"use": f"egg:swift#{kind}"},
        })
    write_ini(home / "proxy-server.conf", {
        "DEFAULT": {"bind_ip": "127.0.0.1", "bind_port": site.port(NAME), "workers": 0,
                    "swift_dir": home, "log_name": "proxy-server"},
        "pipeline:main": {"pipeline": MIDDLEWARE},
        "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": True},
        **_filters(site),
    })


def _build_rings(site: Site, venv: Path, home: Path) -> None:
    """One ring per server kind, one device, one replica."""
    builder = str(venv / "bin" / "swift-ring-builder")
    for kind in STORAGE:
        ring = str(home / f"{kind}.builder")
        for args in (["create", "10", "1", "1"],
                     ["add", f"r1z1-127.0.0.1:{site.port(f'swift-{kind}')}/{DEVICE}", "100"],
                     ["rebalance"]):
            run([builder, ring] + args, timeout=60, log=site.log("swift-ring-builder"),
                cwd=home, env=clean_env())


def start(site: Site, venv: Path) -> None:
    """Write the configs, build the rings once, start the four servers."""
    home = site.dir(NAME)
    _write_configs(site, home)
    (home / "tcup_swift_server.py").write_text(LAUNCHER)
    if not site.flag(NAME):
        _build_rings(site, venv, home)
        site.mark(NAME)
    python = str(venv / "bin" / "python")
    for kind, module in (("account", "swift.account.server"),
                         ("container", "swift.container.server"),
                         ("object", "swift.obj.server"),
                         ("proxy", "swift.proxy.server")):
        name = NAME if kind == "proxy" else f"swift-{kind}"
        site.spawn(name, [python, str(home / "tcup_swift_server.py"), module,
                          str(home / f"{kind}-server.conf"), "--verbose"],
                   cwd=home, env=clean_env())


def ready(site: Site) -> bool:
    """True once the storage servers listen and the proxy is healthy."""
    return (all(port_open(site.port(f"swift-{kind}")) for kind in STORAGE)
            and http("GET", site.url(NAME, "/healthcheck"), timeout=10)[0] == 200)


def alive(site: Site) -> bool:
    """True while all four servers run."""
    return all(site.alive(name) for name in PROCESSES)
