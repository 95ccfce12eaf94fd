#!/usr/bin/env python3
"""A real, local OpenStack Identity service (Keystone) for the tests and the demo.

Keystone comes from PyPI (pinned in ``keystone-requirements.txt`` beside this
file) and is installed once into a cached venv under
``${XDG_CACHE_HOME:-~/.cache}/tcup-dev/keystone-<version>/``. Each cloud lives
in its own work directory: sqlite database, fernet keys, config, logs. It is
served by gunicorn with ONE worker (sqlite locks with two, and Tempest then sees
HTTP 500s) on 127.0.0.1, in its own process group so that stopping it leaves
nothing behind. Containers use host networking, so the loopback catalog works
from inside them too.

Two identities exist once started:
  * admin: user ``admin`` in project ``admin`` (domain Default), role admin;
  * member: user ``demo`` in project ``demo`` (domain Default), roles member
    and reader only.

Standard library only: pytest fixtures import it via ``sys.path``, and
``make demo`` / ``.ci/run`` run it as a script::

    python3 tools/keystone_cloud.py start --dir DIR [--port N]
        [--admin-password P] [--member-password P]
    python3 tools/keystone_cloud.py stop --dir DIR

``start`` serves in the background, writes ``DIR/admin-openrc``,
``DIR/member-openrc`` and ``DIR/keystone.pid``, prints the auth URL and
returns; on a DIR whose server already runs it reuses that server.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TOOLS_DIR = Path(__file__).resolve().parent
REQUIREMENTS_FILE = TOOLS_DIR / "keystone-requirements.txt"
# Copied into the venv last: its presence proves the install finished, and its
# content tells whether the venv matches the current pins.
VENV_MARKER = "tcup-requirements.txt"

HOST = "127.0.0.1"
REGION = "RegionOne"
DOMAIN = "Default"
ADMIN_USER = ADMIN_PROJECT = "admin"
MEMBER_USER = MEMBER_PROJECT = "demo"
MEMBER_ROLES = ("member", "reader")
IDENTITIES = ("admin", "member")

# Every wait is bounded; these are generous for a loaded 2-core machine.
INSTALL_TIMEOUT = 900
SETUP_TIMEOUT = 300
READY_TIMEOUT = 120
STOP_TIMEOUT = 15
HTTP_TIMEOUT = 30

# Files inside a cloud's work directory.
CONF_FILE = "keystone.conf"
DB_FILE = "keystone.db"
LOG_FILE = "keystone.log"
MANAGE_LOG_FILE = "keystone-manage.log"
PID_FILE = "keystone.pid"
STATE_FILE = "keystone-state.json"
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
"""gunicorn entry point for Keystone; written by tools/keystone_cloud.py."""
import sys

sys.argv = sys.argv[:1]  # keystone's config parser must not see gunicorn's flags

from keystone.wsgi.api import application  # noqa: E402,F401
'''

# Importing keystone costs ~3 s of CPU; keystone-manage would pay it once per
# command. This runner pays it once and runs each command in a forked child, so
# every command still starts from the fresh config state keystone-manage has.
SETUP_SCRIPT_SOURCE = '''\
"""Run keystone-manage commands, importing keystone once; written by tools/keystone_cloud.py."""
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


class KeystoneError(RuntimeError):
    """The local Keystone could not be installed, set up, started or reused."""


# ---------------------------------------------------------------------------
# The venv
# ---------------------------------------------------------------------------


def keystone_version() -> str:
    """The Keystone release pinned in the requirements file."""
    match = re.search(r"^keystone==(\S+)", REQUIREMENTS_FILE.read_text(), re.M)
    if not match:
        raise KeystoneError(f"{REQUIREMENTS_FILE} pins no keystone==VERSION")
    return match.group(1)


def cache_root() -> Path:
    """Where developer tools of this project keep their caches."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tcup-dev"


def venv_path() -> Path:
    """The cached venv for the pinned Keystone release."""
    return cache_root() / f"keystone-{keystone_version()}"


def _pins(requirements: str) -> list[str]:
    """The requirement lines that matter, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.splitlines())
    return [line for line in lines if line]


def _venv_is_complete(venv: Path, requirements: str) -> bool:
    """True when ``venv`` finished installing exactly these requirements."""
    marker = venv / VENV_MARKER
    python = venv / "bin" / "python"
    return (
        marker.is_file()
        and _pins(marker.read_text()) == _pins(requirements)
        # A venv outlives nothing: it breaks when its base Python goes away.
        and python.exists()
        and Path(os.path.realpath(python)).exists()
    )


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting at most ``timeout`` s."""
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KeystoneError(f"timed out waiting for lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _relocate_scripts(bin_dir: Path, old: Path, new: Path) -> None:
    """Point the venv's scripts (shebangs, activate) at its final location.

    Nothing here runs them (we always go through ``bin/python``), but a
    developer poking at the venv should find a working ``keystone-manage``.
    """
    old_bytes, new_bytes = str(old).encode(), str(new).encode()
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        content = script.read_bytes()
        if old_bytes in content:
            script.write_bytes(content.replace(old_bytes, new_bytes))


def _tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_venv() -> Path:
    """Install the pinned Keystone into the cached venv unless it is there.

    The venv is built in a ``.tmp`` sibling and renamed when complete, so a
    killed install never leaves a half venv; a lock keeps two installs (say
    pytest and ``make demo``) from racing.
    """
    requirements = REQUIREMENTS_FILE.read_text()
    venv = venv_path()
    if _venv_is_complete(venv, requirements):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(venv.parent / f"{venv.name}.lock", INSTALL_TIMEOUT):
        if _venv_is_complete(venv, requirements):
            return venv  # another process installed it while we waited
        _say(f"installing Keystone into {venv} (once; about a minute)")
        tmp = venv.with_name(venv.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        log = venv.with_name(venv.name + ".install.log")
        with open(log, "wb") as out:
            for cmd in (
                [sys.executable, "-m", "venv", "--prompt", venv.name, str(tmp)],
                [str(tmp / "bin" / "python"), "-m", "pip", "install",
                 "--no-input", "--disable-pip-version-check",
                 "-r", str(REQUIREMENTS_FILE)],
            ):
                # In the caller's process group, unlike the server: a Ctrl-C
                # or a killed test run must stop pip too.
                try:
                    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT,
                                   check=True)
                except (subprocess.SubprocessError, OSError) as exc:
                    raise KeystoneError(f"installing Keystone failed: {exc}\n"
                                        f"{_tail(log)}") from None
        _relocate_scripts(tmp / "bin", tmp, venv)
        (tmp / VENV_MARKER).write_text(requirements)
        shutil.rmtree(venv, ignore_errors=True)  # an outdated or broken one
        os.rename(tmp, venv)
    return venv


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def _say(message: str) -> None:
    """Progress for a person; stderr, so stdout stays the auth URL alone."""
    print(f"keystone_cloud: {message}", file=sys.stderr, flush=True)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for keystone processes.

    Any inherited ``OS_*`` variable goes: keystone-manage bootstrap lets
    ``OS_BOOTSTRAP_*`` override its flags, and a developer's openrc must not
    leak into the cloud under test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(extra)
    return env


def _run_group(cmd: list[str], *, timeout: float, **popen: Any) -> None:
    """Run ``cmd`` in its own process group; on timeout kill the whole group."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True, **popen,
    )
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise KeystoneError(f"timed out after {timeout} s: {cmd[:4]}") from None
    except BaseException:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if code:
        raise KeystoneError(f"exit status {code}: {' '.join(cmd[:6])}")


def _kill_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces; fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[2])


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group ``pgid`` exists."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[1] == pgid and stat[0] != "Z":
                return True
    return False


def _free_port() -> int:
    """A TCP port on the loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    """True when something already holds ``port`` on the loopback."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


# ---------------------------------------------------------------------------
# HTTP (urllib: requests is not there for the host's python3)
# ---------------------------------------------------------------------------

# Loopback traffic must never go through a proxy named in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method: str, url: str, *, body: Any = None, token: str | None = None,
          timeout: float = HTTP_TIMEOUT) -> tuple[int, Any, Any]:
    """One JSON request; returns (status, headers, decoded body or None)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["X-Auth-Token"] = token
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, resp_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, raw = exc.code, exc.headers, exc.read()
    payload = json.loads(raw) if raw.strip() else None
    return status, resp_headers, payload


def issue_token(auth_url: str, username: str, password: str, project: str,
                domain: str = DOMAIN) -> tuple[str, dict[str, Any]]:
    """A project-scoped password token: (X-Subject-Token, token body)."""
    status, headers, payload = _http("POST", f"{auth_url}/auth/tokens", body={
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": domain}}},
        }
    })
    if status != 201:
        raise KeystoneError(f"token for {username!r}: HTTP {status}: {payload}")
    return headers["X-Subject-Token"], payload["token"]


def _expect(status: int, payload: Any, wanted: int, what: str) -> Any:
    """Check a REST answer's status; return its body."""
    if status != wanted:
        raise KeystoneError(f"{what}: HTTP {status} (wanted {wanted}): {payload}")
    return payload


# ---------------------------------------------------------------------------
# The cloud
# ---------------------------------------------------------------------------


class KeystoneCloud:
    """One local Keystone, its state in ``workdir``; a context manager."""

    def __init__(self, workdir: Path, *, port: int | None = None,
                 admin_password: str = "admin-secret",
                 member_password: str = "demo-secret") -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.admin_password = admin_password
        self.member_password = member_password
        self.timings: dict[str, float] = {}  # seconds per start phase
        self._process: subprocess.Popen | None = None

    # -- public API --------------------------------------------------------

    @property
    def auth_url(self) -> str:
        """``http://127.0.0.1:PORT/v3``; known once a port is chosen."""
        if self.port is None:
            raise KeystoneError("no port yet: call start() first")
        return f"http://{HOST}:{self.port}/v3"

    def start(self) -> KeystoneCloud:
        """Serve Keystone, set up fresh, or reuse the one running in workdir."""
        began = time.monotonic()
        venv = ensure_venv()
        self.timings["venv"] = time.monotonic() - began
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._reuse_running_server():
            self.timings["total"] = time.monotonic() - began
            return self
        self._stop_recorded_server()  # a hung or half-started leftover
        self._choose_port()
        self._reset_state()
        self._write_config()
        phase = time.monotonic()
        self._set_up(venv)
        self.timings["setup"] = time.monotonic() - phase
        phase = time.monotonic()
        self._serve(venv)
        try:
            self._wait_until_ready()
            self.timings["serve"] = time.monotonic() - phase
            phase = time.monotonic()
            self._create_member()
            self.timings["member"] = time.monotonic() - phase
            self._write_run_files()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop the server's whole process group and wait for it; idempotent."""
        if self._process is not None:
            self._terminate_group(self._process.pid, self._process)
            self._process = None
        else:
            self._stop_recorded_server()
        for name in (PID_FILE, STATE_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / name).unlink()

    def openrc(self, who: str = "member") -> dict[str, str]:
        """The ``OS_*`` variables a person would source for ``who``."""
        if who not in IDENTITIES:
            raise ValueError(f"who must be one of {IDENTITIES}, not {who!r}")
        user, password, project = self._identity(who)
        return {
            "OS_AUTH_URL": self.auth_url,
            "OS_USERNAME": user,
            "OS_PASSWORD": password,
            "OS_PROJECT_NAME": project,
            "OS_USER_DOMAIN_NAME": DOMAIN,
            "OS_PROJECT_DOMAIN_NAME": DOMAIN,
            "OS_REGION_NAME": REGION,
            "OS_IDENTITY_API_VERSION": "3",
            "OS_INTERFACE": "public",
        }

    def token(self, who: str = "member") -> tuple[str, dict[str, Any]]:
        """A fresh project-scoped token for ``who``: (id, token body)."""
        user, password, project = self._identity(who)
        return issue_token(self.auth_url, user, password, project)

    @property
    def pid(self) -> int | None:
        """The server's process id (its process group id too), if known."""
        if self._process is not None:
            return self._process.pid
        return self._recorded_pid()

    def __enter__(self) -> KeystoneCloud:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- identities --------------------------------------------------------

    def _identity(self, who: str) -> tuple[str, str, str]:
        """(user, password, project) of ``admin`` or ``member``."""
        if who == "admin":
            return ADMIN_USER, self.admin_password, ADMIN_PROJECT
        if who == "member":
            return MEMBER_USER, self.member_password, MEMBER_PROJECT
        raise ValueError(f"who must be one of {IDENTITIES}, not {who!r}")

    def _create_member(self) -> None:
        """Create project and user ``demo`` with roles member and reader."""
        admin_token, _ = self.token("admin")
        base = self.auth_url

        def call(method: str, path: str, wanted: int, body: Any = None) -> Any:
            status, _, payload = _http(method, base + path, body=body, token=admin_token)
            return _expect(status, payload, wanted, f"{method} {path}")

        project = call("POST", "/projects", 201, {"project": {
            "name": MEMBER_PROJECT, "domain_id": "default",
            "description": "TCUP test project"}})["project"]
        user = call("POST", "/users", 201, {"user": {
            "name": MEMBER_USER, "domain_id": "default",
            "password": self.member_password,
            "default_project_id": project["id"]}})["user"]
        for role_name in MEMBER_ROLES:
            roles = call("GET", f"/roles?name={role_name}", 200)["roles"]
            if len(roles) != 1:
                raise KeystoneError(f"bootstrap left {len(roles)} roles named {role_name}")
            call("PUT", f"/projects/{project['id']}/users/{user['id']}"
                        f"/roles/{roles[0]['id']}", 204)

    # -- set up ------------------------------------------------------------

    def _choose_port(self) -> None:
        """Take a free port, or check that the requested one is free."""
        if self.port is None:
            self.port = _free_port()
        elif _port_in_use(self.port):
            raise KeystoneError(f"port {self.port} on {HOST} is already in use")

    def _reset_state(self) -> None:
        """Remove what an earlier run left: database, keys, logs, run files."""
        for name in (DB_FILE, f"{DB_FILE}-journal", LOG_FILE, MANAGE_LOG_FILE,
                     PID_FILE, STATE_FILE, "admin-openrc", "member-openrc"):
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / name).unlink()
        for name in KEY_DIRS.values():
            shutil.rmtree(self.workdir / name, ignore_errors=True)

    def _write_config(self) -> None:
        """keystone.conf: everything inside workdir, nothing under /etc."""
        sections = {
            "database": {"connection": f"sqlite:///{self.workdir / DB_FILE}"},
            "token": {"provider": "fernet"},
            # bcrypt's minimum cost: this cloud guards nothing, and each
            # password check then takes a millisecond, not a quarter second.
            "identity": {"password_hash_rounds": "4"},
        }
        for section, dirname in KEY_DIRS.items():
            sections[section] = {"key_repository": str(self.workdir / dirname)}
        lines = ["# Written by tools/keystone_cloud.py; rewritten at each start."]
        for section, options in sections.items():
            lines.append(f"\n[{section}]")
            lines += [f"{key} = {value}" for key, value in options.items()]
        (self.workdir / CONF_FILE).write_text("\n".join(lines) + "\n")
        (self.workdir / f"{WSGI_MODULE}.py").write_text(WSGI_SHIM_SOURCE)
        (self.workdir / SETUP_SCRIPT).write_text(SETUP_SCRIPT_SOURCE)

    def _set_up(self, venv: Path) -> None:
        """db_sync, fernet and credential keys, bootstrap of admin and catalog."""
        manage = ["keystone-manage", "--config-file", str(self.workdir / CONF_FILE)]
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
                "--bootstrap-admin-url", self.auth_url,
                "--bootstrap-internal-url", self.auth_url,
                "--bootstrap-public-url", self.auth_url,
            ],
        ]
        # The password goes by environment, never on a command line.
        env = _clean_env(OS_BOOTSTRAP_PASSWORD=self.admin_password)
        log = self.workdir / MANAGE_LOG_FILE
        with open(log, "wb") as out:
            try:
                _run_group([str(venv / "bin" / "python"), SETUP_SCRIPT, json.dumps(commands)],
                           timeout=SETUP_TIMEOUT, stdout=out, cwd=self.workdir, env=env)
            except KeystoneError as exc:
                raise KeystoneError(f"keystone-manage: {exc}\n{_tail(log)}") from None

    # -- serving -----------------------------------------------------------

    def _serve(self, venv: Path) -> None:
        """Start gunicorn, one sync worker, in a new process group."""
        cmd = [
            str(venv / "bin" / "python"), "-m", "gunicorn",
            "--bind", f"{HOST}:{self.port}",
            "--workers", "1", "--worker-class", "sync",
            "--timeout", "120", "--graceful-timeout", "5",
            # Its default control socket is one fixed path under ~: two clouds
            # would fight over it.
            "--no-control-socket",
            "--chdir", str(self.workdir), "--pythonpath", str(self.workdir),
            "--access-logfile", "-", "--error-logfile", "-",
            f"{WSGI_MODULE}:application",
        ]
        env = _clean_env(OS_KEYSTONE_CONFIG_FILES=str(self.workdir / CONF_FILE))
        with open(self.workdir / LOG_FILE, "ab") as log:
            self._process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=env, start_new_session=True,
            )

    def _wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until GET /v3 answers 200, or fail with the log's tail."""
        deadline = time.monotonic() + timeout
        pid = self.pid
        while True:
            if not self._server_alive(pid):
                raise KeystoneError(
                    f"keystone exited while starting:\n{_tail(self.workdir / LOG_FILE)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KeystoneError(
                    f"keystone did not answer within {timeout} s:\n"
                    f"{_tail(self.workdir / LOG_FILE)}")
            # gunicorn listens before its worker has loaded keystone, so one
            # request may wait seconds in the backlog: that is fine.
            with contextlib.suppress(OSError):
                status, _, _ = _http("GET", self.auth_url, timeout=min(remaining, 10))
                if status == 200:
                    return
            time.sleep(0.2)

    def _server_alive(self, pid: int | None) -> bool:
        """True while the server process runs (and is not a zombie)."""
        if self._process is not None:
            return self._process.poll() is None
        return pid is not None and self._is_our_server(pid)

    def _write_run_files(self) -> None:
        """keystone.pid, the state file, and the two openrc files (0600)."""
        (self.workdir / PID_FILE).write_text(f"{self.pid}\n")
        (self.workdir / STATE_FILE).write_text(json.dumps(
            {"pid": self.pid, "port": self.port, "auth_url": self.auth_url}) + "\n")
        for who in IDENTITIES:
            path = self.workdir / f"{who}-openrc"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # an older file may have had looser bits
            with os.fdopen(fd, "w") as out:
                for key, value in self.openrc(who).items():
                    out.write(f"export {key}={shlex.quote(value)}\n")

    # -- a server started earlier (e.g. by the CLI) ------------------------

    def _recorded_pid(self) -> int | None:
        """The pid in workdir/keystone.pid, if any."""
        try:
            return int((self.workdir / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def _recorded_port(self) -> int | None:
        """The port in workdir's state file, if any."""
        try:
            return int(json.loads((self.workdir / STATE_FILE).read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _is_our_server(self, pid: int) -> bool:
        """True when ``pid`` is a live gunicorn serving this workdir.

        Checked on the command line, so a recycled pid is never killed.
        """
        stat = _proc_stat(pid)
        if stat is None or stat[0] == "Z":
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"gunicorn" in argv and str(self.workdir).encode() in argv

    def _reuse_running_server(self) -> bool:
        """Adopt the server already serving workdir, if one answers."""
        pid, port = self._recorded_pid(), self._recorded_port()
        if pid is None or port is None or not self._is_our_server(pid):
            return False
        if self.port is not None and self.port != port:
            raise KeystoneError(
                f"a keystone already runs in {self.workdir} on port {port}, "
                f"not {self.port}: stop it first")
        self.port = port
        try:
            self._wait_until_ready(timeout=15)
        except KeystoneError:
            return False  # hung: start() replaces it
        for who in IDENTITIES:
            try:
                self.token(who)
            except KeystoneError as exc:
                raise KeystoneError(
                    f"the keystone running in {self.workdir} refuses the {who} "
                    f"password given ({exc}): stop it first") from None
        self._write_run_files()
        return True

    def _stop_recorded_server(self) -> None:
        """Stop the server named by workdir/keystone.pid, if it is ours."""
        pid = self._recorded_pid()
        if pid is not None and self._is_our_server(pid):
            self._terminate_group(pid, None)

    def _terminate_group(self, pgid: int, process: subprocess.Popen | None) -> None:
        """SIGTERM the group, SIGKILL it after STOP_TIMEOUT, wait until gone."""
        _kill_group(pgid, signal.SIGTERM)
        for sig in (signal.SIGKILL, None):
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                if process is not None:
                    process.poll()  # reap our child so it is not a zombie
                if not _group_alive(pgid):
                    if process is not None:
                        process.wait(timeout=STOP_TIMEOUT)
                    return
                time.sleep(0.1)
            if sig is None:
                raise KeystoneError(f"process group {pgid} survived SIGKILL")
            _kill_group(pgid, sig)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``start`` / ``stop`` a detached Keystone in ``--dir``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="serve Keystone in the background")
    start.add_argument("--dir", required=True, type=Path, help="work directory")
    start.add_argument("--port", type=int, help="default: a free port")
    start.add_argument("--admin-password", default="admin-secret")
    start.add_argument("--member-password", default="demo-secret")
    stop = commands.add_parser("stop", help="stop the Keystone serving --dir")
    stop.add_argument("--dir", required=True, type=Path, help="work directory")
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            cloud = KeystoneCloud(args.dir, port=args.port,
                                  admin_password=args.admin_password,
                                  member_password=args.member_password).start()
            spent = ", ".join(f"{k} {v:.1f} s" for k, v in cloud.timings.items())
            _say(f"pid {cloud.pid}; {spent}; openrc files in {cloud.workdir}")
            print(cloud.auth_url)
        else:
            KeystoneCloud(args.dir).stop()
    except KeystoneError as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
