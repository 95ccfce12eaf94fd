"""Keystone: the local Identity service, how it is set up, served and
administered, and the full cloud's Keystone (``start``, ``ready``,
``register``, for ``cloud``). Keystone alone, for the tests and
``tools/keystone_cloud.py``, is ``keystone_standalone.KeystoneCloud``.

Keystone comes from PyPI, pinned by ``locks/keystone.txt``, in a cached venv
(see ``common``). It is served by gunicorn on 127.0.0.1 through a small WSGI
shim, and set up with keystone-manage commands run by a script that imports
keystone once. The full cloud gives Keystone a MariaDB database.

Two identities exist once started:
  * admin: user ``admin`` in project ``admin`` (domain Default), role admin;
  * member: user ``demo`` in project ``demo`` (domain Default), roles member
    and reader only.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
from pathlib import Path
from typing import Any

from .common import HOST, LOCKS_DIR, REGION, CloudError, VenvSpec, clean_env, expect, http, run, write_ini
from .site import Site

VENV = VenvSpec("keystone", "30.0.0", LOCKS_DIR / "keystone.txt")

DOMAIN = "Default"
ADMIN_USER = ADMIN_PROJECT = "admin"
MEMBER_USER = MEMBER_PROJECT = "demo"
MEMBER_ROLES = ("member", "reader")
# More members, for parallel runs (`tcup --accounts DIR/accounts.yaml`): user ->
# project, each in a project of its own. Tempest's alternate-user tests need an
# account outside the primary's project, and parallel workers that share a
# project see each other's volumes in list tests (pagination counts change).
EXTRA_MEMBERS = {"demo2": "demo2", "demo3": "demo3", "demo4": "demo4"}

# Every wait is bounded; generous for a loaded 2-core machine.
SETUP_TIMEOUT = 300

# Files inside Keystone's work directory.
CONF_FILE = "keystone.conf"
MANAGE_LOG_FILE = "keystone-manage.log"
WSGI_MODULE = "tcup_keystone_wsgi"
SETUP_SCRIPT = "tcup_keystone_setup.py"
KEY_DIRS = {
    "fernet_tokens": "fernet-keys",
    "fernet_receipts": "fernet-receipts",
    "credential": "credential-keys",
}

# keystone parses sys.argv with oslo.config when the app is built, and would
# reject gunicorn's own flags; so the app is imported through this shim.
WSGI_SHIM_SOURCE = '''\
"""gunicorn entry point for Keystone; written by tools/testcloud/keystone.py."""
import sys

sys.argv = sys.argv[:1]  # keystone's config parser must not see gunicorn's flags

# sqlite enforces foreign keys only when each connection asks (MariaDB always
# does). Without them, deleting a user leaves its application credentials'
# role rows behind, sqlite reuses the credential's row id, and the next
# application credential made anywhere gets HTTP 409.
from keystone.common.sql import core  # noqa: E402

core.enable_sqlite_foreign_key()

from keystone.wsgi.api import application  # noqa: E402,F401
'''

# Importing keystone costs ~3 s of CPU; keystone-manage would pay it once per
# command. This runner pays it once and runs each command in a forked child, so
# every command still starts from the fresh config state keystone-manage has.
SETUP_SCRIPT_SOURCE = '''\
"""Run keystone-manage commands, importing keystone once; written by tools/testcloud/keystone.py."""
import json
import os
import sys
import traceback

from keystone.cmd import cli


def exit_code(exc):
    """The process exit status a SystemExit stands for."""
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def run(argv):
    """Run one keystone-manage command line in a child; return its exit status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            cli.main(argv=argv)
            code = 0
        except SystemExit as exc:
            code = exit_code(exc)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


for argv in json.loads(sys.argv[1]):
    print("+ " + " ".join(argv), flush=True)
    code = run(argv)
    if code:
        print("keystone-manage failed with status %d" % code, flush=True)
        sys.exit(code)
'''


class KeystoneError(CloudError):
    """The local Keystone could not be installed, set up, started or reused."""


# ---------------------------------------------------------------------------
# Set up, serve and administer (for KeystoneCloud and the full cloud)
# ---------------------------------------------------------------------------


def write_files(workdir: Path, database: str,
                more: dict[str, dict[str, Any]] | None = None) -> None:
    """keystone.conf (with ``more`` sections), the WSGI shim and the set-up
    script, in ``workdir``."""
    sections: dict[str, dict[str, Any]] = {
        **(more or {}),
        "database": {"connection": database},
        "token": {"provider": "fernet"},
        # bcrypt's minimum cost: this cloud guards nothing, and each
        # password check then takes a millisecond, not a quarter second.
        "identity": {"password_hash_rounds": "4"},
    }
    for section, dirname in KEY_DIRS.items():
        sections[section] = {"key_repository": str(workdir / dirname)}
    write_ini(workdir / CONF_FILE, sections)
    (workdir / f"{WSGI_MODULE}.py").write_text(WSGI_SHIM_SOURCE)
    (workdir / SETUP_SCRIPT).write_text(SETUP_SCRIPT_SOURCE)


def set_up(venv: Path, workdir: Path, auth_url: str, admin_password: str) -> None:
    """db_sync, fernet and credential keys, bootstrap of admin and catalog.

    Each step is idempotent, so a work directory set up before is fine.
    """
    manage = ["keystone-manage", "--config-file", str(workdir / CONF_FILE)]
    owner = [
        "--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
        "--keystone-group", grp.getgrgid(os.getgid()).gr_name,
    ]
    commands = [
        manage + ["db_sync"],
        manage + ["fernet_setup"] + owner,
        manage + ["credential_setup"] + owner,
        manage + [
            "bootstrap",
            "--bootstrap-username", ADMIN_USER,
            "--bootstrap-project-name", ADMIN_PROJECT,
            "--bootstrap-role-name", "admin",
            "--bootstrap-service-name", "keystone",
            "--bootstrap-region-id", REGION,
            "--bootstrap-admin-url", auth_url,
            "--bootstrap-internal-url", auth_url,
            "--bootstrap-public-url", auth_url,
        ],
    ]
    # The password goes by environment, never on a command line.
    env = clean_env(OS_BOOTSTRAP_PASSWORD=admin_password)
    try:
        run([str(venv / "bin" / "python"), SETUP_SCRIPT, json.dumps(commands)],
            timeout=SETUP_TIMEOUT, log=workdir / MANAGE_LOG_FILE, append=False,
            cwd=workdir, env=env)
    except CloudError as exc:
        raise KeystoneError(f"keystone-manage: {exc}") from None


def serve_argv(venv: Path, workdir: Path, port: int, workers: int) -> list[str]:
    """gunicorn serving Keystone from ``workdir`` on 127.0.0.1:``port``."""
    return [
        str(venv / "bin" / "python"), "-m", "gunicorn",
        "--bind", f"{HOST}:{port}",
        "--workers", str(workers), "--worker-class", "sync",
        "--timeout", "120", "--graceful-timeout", "5",
        # Its default control socket is one fixed path under ~: two clouds
        # would fight over it.
        "--no-control-socket",
        "--chdir", str(workdir), "--pythonpath", str(workdir),
        "--access-logfile", "-", "--error-logfile", "-",
        f"{WSGI_MODULE}:application",
    ]


def serve_env(workdir: Path) -> dict[str, str]:
    """The environment gunicorn serves Keystone with."""
    return clean_env(OS_KEYSTONE_CONFIG_FILES=str(workdir / CONF_FILE))


def issue_token(auth_url: str, username: str, password: str, project: str,
                domain: str = DOMAIN) -> tuple[str, dict[str, Any]]:
    """A project-scoped password token: (X-Subject-Token, token body)."""
    status, headers, payload = http("POST", f"{auth_url}/auth/tokens", body={
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": domain}}},
        }
    })
    if status != 201:
        raise KeystoneError(f"token for {username!r}: HTTP {status}: {payload}")
    return headers["X-Subject-Token"], payload["token"]


def public_endpoints(token: dict[str, Any]) -> dict[str, str]:
    """A token body's public endpoint URL by service type."""
    return {service["type"]: next(e["url"] for e in service["endpoints"] if e["interface"] == "public")
            for service in token["catalog"]}


def openrc_text(variables: dict[str, str]) -> str:
    """An openrc file's lines exporting ``variables``, shell-quoted."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in variables.items())


def openrc_variables(auth_url: str, user: str, password: str, project: str,
                     cacert: Path | None = None) -> dict[str, str]:
    """The ``OS_*`` variables a person would source for an identity;
    ``cacert`` is the CA of a cloud behind TLS (OS_CACERT)."""
    variables = {
        "OS_AUTH_URL": auth_url,
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": DOMAIN,
        "OS_PROJECT_DOMAIN_NAME": DOMAIN,
        "OS_REGION_NAME": REGION,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_INTERFACE": "public",
    }
    if cacert:
        variables["OS_CACERT"] = str(cacert)
    return variables


class IdentityAdmin:
    """Keystone's REST API as the admin: find-or-create, so it can rerun."""

    def __init__(self, auth_url: str, password: str) -> None:
        self.auth_url = auth_url
        self.token, _ = issue_token(auth_url, ADMIN_USER, password, ADMIN_PROJECT)

    def call(self, method: str, path: str, wanted: Any, body: Any = None) -> Any:
        """One admin request to Keystone; returns the decoded body."""
        return expect(http(method, self.auth_url + path, body=body, token=self.token),
                      wanted, f"{method} {path}")

    def _find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The one ``kind`` (users, projects, roles, services) named ``name``."""
        field = "type" if kind == "services" else "name"
        found = self.call("GET", f"/{kind}?{field}={name}", 200)[kind]
        return found[0] if found else None

    def role(self, name: str) -> str:
        """The id of role ``name``, created if missing."""
        found = self._find("roles", name)
        if found:
            return found["id"]
        return self.call("POST", "/roles", 201, {"role": {"name": name}})["role"]["id"]

    def project(self, name: str, description: str = "") -> str:
        """The id of project ``name`` (domain Default), created if missing."""
        found = self._find("projects", name)
        if found:
            return found["id"]
        return self.call("POST", "/projects", 201, {"project": {
            "name": name, "domain_id": "default", "description": description}})["project"]["id"]

    def user(self, name: str, password: str, project_id: str, roles: tuple[str, ...]) -> str:
        """User ``name`` with ``password`` and ``roles`` on ``project_id``."""
        found = self._find("users", name)
        body = {"name": name, "domain_id": "default", "password": password,
                "default_project_id": project_id}
        if found:
            user_id = found["id"]
            self.call("PATCH", f"/users/{user_id}", 200, {"user": body})
        else:
            user_id = self.call("POST", "/users", 201, {"user": body})["user"]["id"]
        for role in roles:
            self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.role(role)}", 204)
        return user_id

    def service(self, kind: str, name: str, url: str, public_url: str | None = None) -> None:
        """Service ``kind`` with its internal and admin endpoints at ``url``
        and its public one at ``public_url`` (default: ``url``), updated."""
        found = self._find("services", kind)
        service_id = found["id"] if found else self.call("POST", "/services", 201, {
            "service": {"type": kind, "name": name}})["service"]["id"]
        endpoints = self.call("GET", f"/endpoints?service_id={service_id}", 200)["endpoints"]
        have = {e["interface"]: e for e in endpoints}
        wanted = {"public": public_url or url, "internal": url, "admin": url}
        for interface, address in wanted.items():
            endpoint = {"service_id": service_id, "interface": interface, "url": address,
                        "region_id": REGION}
            if interface not in have:
                self.call("POST", "/endpoints", 201, {"endpoint": endpoint})
            elif have[interface]["url"] != address:
                self.call("PATCH", f"/endpoints/{have[interface]['id']}", 200,
                          {"endpoint": {"url": address}})


# ---------------------------------------------------------------------------
# Keystone in the full cloud (tools/testcloud/cloud.py)
# ---------------------------------------------------------------------------

NAME = "keystone"
PROCESSES = (NAME,)
# The paging profile's Keystone list_limit. Not PAGE_SIZE: Keystone cannot
# page, and at 5 an admin run broke. python-tempestconf takes an admin's
# services from GET /v3/services (cut short: Glance and Placement went
# "unavailable", no image was chosen), and Tempest's dynamic credentials look
# roles up in GET /v3/roles. 10 holds this cloud's 8 services, 6 roles and 6
# projects, and still cuts its 11 users short.
KEYSTONE_LIST_LIMIT = 10


def start(site: Site, venv: Path) -> None:
    """Set Keystone up on MariaDB (first start only) and serve it."""
    workdir = site.dir(NAME)
    # Keystone has no pages: a listing past list_limit is cut short and
    # says "truncated": true.
    paging = {"DEFAULT": {"list_limit": KEYSTONE_LIST_LIMIT}} if site.paging else {}
    write_files(workdir, site.database(NAME), {**paging, **site.behind_proxy()})
    if not site.flag(NAME):
        set_up(venv, workdir, site.auth_url, site.password("admin"))
        site.mark(NAME)
    # Two workers: every service validates its users' tokens here.
    site.spawn(NAME, serve_argv(venv, workdir, site.port(NAME), workers=2), cwd=workdir,
               env=serve_env(workdir))


def ready(site: Site) -> bool:
    """True once Keystone answers GET /v3."""
    return http("GET", site.auth_url, timeout=10)[0] == 200


def register(site: Site, catalog: list[tuple[str, str, str]], users: list[str]) -> None:
    """The member, the service project and users, and the catalog.

    ``catalog`` holds (service type, name, URL); ``users`` the service users,
    each given admin and service roles in project ``service``.
    """
    admin = IdentityAdmin(site.auth_url, site.password("admin"))
    member_project = admin.project(MEMBER_PROJECT, "TCUP test project")
    admin.user(MEMBER_USER, site.password(MEMBER_USER), member_project, MEMBER_ROLES)
    for user, project in EXTRA_MEMBERS.items():
        admin.user(user, site.password(user), admin.project(project, "TCUP test project for parallel runs"),
                   MEMBER_ROLES)
    # Swift's reseller admin role (swift.py): Tempest's account-quota tests
    # give it to a user of theirs, and a cloud with Swift has it.
    admin.role("ResellerAdmin")
    service_project = admin.project("service", "OpenStack services")
    for user in users:
        # Both roles: keystonemiddleware 13 requires a service token to carry
        # them (service_token_roles_required).
        admin.user(user, site.password(user), service_project, ("admin", "service"))
    # Keystone's own entry as bootstrap made it, but for clients' public URL.
    for kind, name, url in [("identity", NAME, site.auth_url), *catalog]:
        admin.service(kind, name, url, site.public_url(url))
