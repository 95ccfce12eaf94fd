"""Keystone alone (``KeystoneCloud``): one local Identity service for the
tests and ``tools/keystone_cloud.py``, set up and served as ``keystone``
does it, with everything in its work directory: a sqlite database and ONE
worker (sqlite locks with two, and Tempest then sees HTTP 500s). A server
started earlier in the same directory (e.g. by the command line) is reused.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from .common import (
    HOST, ensure_venv, free_port, http, port_in_use, proc_stat, tail, terminate_group, write_private,
)
from .keystone import (
    ADMIN_PROJECT, ADMIN_USER, KEY_DIRS, MANAGE_LOG_FILE, MEMBER_PROJECT, MEMBER_ROLES, MEMBER_USER, VENV,
    IdentityAdmin, KeystoneError, issue_token, openrc_text, openrc_variables, serve_argv, serve_env, set_up,
    write_files,
)

WHO = "keystone_cloud"
IDENTITIES = ("admin", "member")

# Every wait is bounded; these are generous for a loaded 2-core machine.
READY_TIMEOUT = 120
STOP_TIMEOUT = 15

# Files inside the work directory, beside those ``keystone`` writes.
DB_FILE = "keystone.db"
LOG_FILE = "keystone.log"
PID_FILE = "keystone.pid"
STATE_FILE = "keystone-state.json"


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
        venv = ensure_venv(VENV, WHO)
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
        return openrc_variables(self.auth_url, *self._identity(who))

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
        admin = IdentityAdmin(self.auth_url, self.admin_password)
        project = admin.project(MEMBER_PROJECT, "TCUP test project")
        admin.user(MEMBER_USER, self.member_password, project, MEMBER_ROLES)

    # -- set up ------------------------------------------------------------

    def _choose_port(self) -> None:
        """Take a free port, or check that the requested one is free."""
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
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
        """keystone.conf and the scripts: everything inside workdir."""
        write_files(self.workdir, f"sqlite:///{self.workdir / DB_FILE}")

    def _set_up(self, venv: Path) -> None:
        """db_sync, fernet and credential keys, bootstrap of admin and catalog."""
        set_up(venv, self.workdir, self.auth_url, self.admin_password)

    def _serve(self, venv: Path) -> None:
        """Start gunicorn, one sync worker (sqlite), in a new process group."""
        with open(self.workdir / LOG_FILE, "ab") as log:
            self._process = subprocess.Popen(
                serve_argv(venv, self.workdir, self.port, workers=1),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=serve_env(self.workdir), start_new_session=True,
            )

    def _wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until GET /v3 answers 200, or fail with the log's tail."""
        deadline = time.monotonic() + timeout
        pid = self.pid
        while True:
            if not self._server_alive(pid):
                raise KeystoneError(
                    f"keystone exited while starting:\n{tail(self.workdir / LOG_FILE)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KeystoneError(
                    f"keystone did not answer within {timeout} s:\n"
                    f"{tail(self.workdir / LOG_FILE)}")
            # gunicorn listens before its worker has loaded keystone, so one
            # request may wait seconds in the backlog: that is fine.
            with contextlib.suppress(OSError):
                status, _, _ = http("GET", self.auth_url, timeout=min(remaining, 10))
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
            write_private(self.workdir / f"{who}-openrc", openrc_text(self.openrc(who)))

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
        stat = proc_stat(pid)
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
        terminate_group(pgid, process, timeout=STOP_TIMEOUT)
