#!/usr/bin/env python3
"""A real RefStack API server on loopback, for TCUP's upload tests.

It installs PyPI ``refstack`` (pinned in ``tools/testcloud/locks/refstack.txt``)
into a venv of its own, cached under ``${XDG_CACHE_HOME:-~/.cache}/tcup-dev/``
by the helper every local server shares (``tools/testcloud/common.py``),
and serves refstack's own pecan application on 127.0.0.1 with a sqlite
database, so uploads meet the server's real validation, signature checks and
storage. Guideline endpoints are served offline: refstack fetches guideline
files over HTTP, so a small HTTP server here plays the interop repository
(listing JSON plus raw files) from ``tests/data/interop/``.

The API is mounted under ``/api`` like https://refstack.openstack.org/api, so
``base_url`` is ``http://127.0.0.1:PORT/api`` and uploads go to
``{base_url}/v1/results``; a client that drops the prefix gets a 404 here as
it would there.

Standard library only: pytest fixtures import this module from the host
python. Everything that needs refstack runs in the venv's interpreter, from
small scripts written into the server's work directory.

Manual use: ``python3 tools/refstack_server.py serve --dir DIR [--port N]``.
"""

import argparse
import base64
import contextlib
import datetime
import hashlib
import http.server
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from testcloud import common

REFSTACK_VERSION = "2.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INTEROP_DIR = REPO_ROOT / "tests" / "data" / "interop"
# Where the public server mounts the API; kept so tests exercise the same
# URL joining a user's base URL needs.
API_PREFIX = "/api"
# refstack's beaker session cookie name (app.py: 'session.key').
SESSION_COOKIE = "refstack"
# The opendev (gitea) API layout refstack's defaults point at; the guideline
# server answers the same paths so the config reads like the real one.
GUIDELINE_REPO_PATH = "/api/v1/repos/openinfra/interop"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# Bounds one request to the single-threaded API server: a client that opens
# a connection and sends nothing must not wedge it for the next test.
REQUEST_TIMEOUT = 30


# --------------------------------------------------------------------------
# The venv

VENV = common.VenvSpec("refstack", REFSTACK_VERSION, common.LOCKS_DIR / "refstack.txt")


def ensure_venv() -> Path:
    """Return the refstack venv, installing it first if it is missing."""
    return common.ensure_venv(VENV, "refstack_server")


# --------------------------------------------------------------------------
# Scripts written into the work directory and run by the venv's python

WSGI_MODULE = '''\
"""WSGI module of the RefStack API, as refstack/api/app.wsgi builds it.

Written by tools/refstack_server.py. Importing it builds ``application``
(the config comes from REFSTACK_OSLO_CONFIG); running it serves that
application with wsgiref: ``python refstack_wsgi.py PORT PORT_FILE``.
"""
import os
import sys
import threading
import time
import wsgiref.simple_server

from oslo_config import cfg
from refstack.api import app as refstack_app
from refstack.api import config as refstack_config

PREFIX = os.environ.get("TCUP_REFSTACK_PREFIX", "/api")
REQUEST_TIMEOUT = int(os.environ.get("TCUP_REFSTACK_REQUEST_TIMEOUT", "30"))


def mount(app, prefix):
    """Serve ``app`` under ``prefix`` only, as the public server does."""
    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix):] or "/"
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not under " + prefix.encode() + b"\\n"]
    return mounted


application = mount(refstack_app.setup_app(refstack_config), PREFIX)


def exit_with_parent(parent_pid):
    """End this server when the process that started it is gone.

    A test run killed without cleanup must not leave the server behind.
    """
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1)
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


class Handler(wsgiref.simple_server.WSGIRequestHandler):
    """Request handler with a bounded read time."""

    timeout = REQUEST_TIMEOUT


def main():
    """Bind, publish the port, then serve until killed."""
    port, port_file = int(sys.argv[1]), sys.argv[2]
    if os.environ.get("TCUP_REFSTACK_PARENT_PID"):
        exit_with_parent(int(os.environ["TCUP_REFSTACK_PARENT_PID"]))
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", port, application, handler_class=Handler)
    port = server.server_port
    # The result URL refstack hands back is built from ui_url; with port 0
    # it is only known now.
    cfg.CONF.set_override("ui_url", "http://127.0.0.1:%d/" % port)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(str(port))
    os.rename(tmp, port_file)
    sys.stderr.write("refstack API on http://127.0.0.1:%d%s\\n" % (port, PREFIX))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
'''

INITDB_SCRIPT = '''\
"""Create refstack's tables on sqlite and stamp alembic head.

Written by tools/refstack_server.py; run as ``python refstack_initdb.py CONF``.
refstack's alembic migrations are MySQL-only (latin1_swedish_ci collation,
information_schema queries), so the tables come from its models instead.
"""
import sys

from oslo_config import cfg
from refstack.db import api as db_api_options  # noqa: registers [DEFAULT] db opts
from refstack.db import migration
from refstack.db.sqlalchemy import api as db_api
from refstack.db.sqlalchemy import models

cfg.CONF([], project="refstack", default_config_files=[sys.argv[1]])
for table in models.BASE.metadata.tables.values():
    for column in table.columns:
        # sqlite has no MySQL collations; results.name asks for one.
        if getattr(column.type, "collation", None):
            column.type.collation = None
    for index in table.indexes:
        # The model makes pubkeys.openid unique, the migration that built the
        # public server's table does not: a user there may hold several keys.
        if index.name == "ix_pubkeys_openid":
            index.unique = False
models.BASE.metadata.create_all(db_api.get_engine())
migration.stamp("head")
'''

SESSION_SCRIPT = '''\
"""Save a beaker session of a logged-in user, as refstack's login does.

Written by tools/refstack_server.py; run as
``python refstack_session.py DB_URL OPENID`` and prints the session id.
"""
import sys

from beaker.session import Session

session = Session({}, type="ext:database", url=sys.argv[1], key="refstack",
                  timeout=604800)
session["user_openid"] = sys.argv[2]
session.save()
print(session.id)
'''

CONFIG_TEMPLATE = """\
[DEFAULT]
# Overridden with the real port once the server has bound it.
ui_url = http://127.0.0.1/
debug = {debug}
use_stderr = true

[api]
app_dev_mode = false
enable_anonymous_upload = true
opendev_api_capabilities_url = {guidelines}/contents/guidelines
additional_capability_urls = {guidelines}/contents/add-ons/guidelines
opendev_raw_base_url = {guidelines}/raw/

[database]
connection = sqlite:///{db}
"""


# --------------------------------------------------------------------------
# The guideline server (plays the interop repository)


def _guideline_listing(interop_dir: Path, subdir: str) -> List[Dict]:
    """Build the repository contents listing refstack reads for ``subdir``.

    refstack keeps entries whose ``type`` is ``file`` and whose ``name``
    matches ``YYYY.MM.json`` or ``next.json``; an entry whose ``path``
    contains ``add-ons`` counts as an add-on.
    """
    repo_dir = "guidelines" if subdir == "" else "add-ons/guidelines"
    entries = []
    for path in sorted((interop_dir / subdir).glob("*")):
        if path.is_file():
            entries.append({"name": path.name, "path": f"{repo_dir}/{path.name}",
                            "type": "file", "size": path.stat().st_size})
    return entries


def _guideline_routes(interop_dir: Path) -> Dict[str, Path]:
    """Map each raw-file URL path to its file under ``interop_dir``."""
    routes = {}
    for repo_dir, subdir in (("guidelines", ""), ("add-ons/guidelines", "add-ons")):
        for path in (interop_dir / subdir).glob("*.json"):
            routes[f"{GUIDELINE_REPO_PATH}/raw/{repo_dir}/{path.name}"] = path
    return routes


class GuidelineServer:
    """An HTTP server thread answering refstack's guideline fetches offline."""

    def __init__(self, interop_dir: Path):
        self.interop_dir = interop_dir
        self.requests: List[str] = []  # paths asked for, for tests to inspect
        self._httpd: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """Base URL of the played repository (the gitea API root of it)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{GUIDELINE_REPO_PATH}"

    def start(self) -> "GuidelineServer":
        """Bind a free loopback port and serve from a daemon thread."""
        listings = {
            f"{GUIDELINE_REPO_PATH}/contents/guidelines":
                _guideline_listing(self.interop_dir, ""),
            f"{GUIDELINE_REPO_PATH}/contents/add-ons/guidelines":
                _guideline_listing(self.interop_dir, "add-ons"),
        }
        routes = _guideline_routes(self.interop_dir)
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            """Serves the listings and raw files; everything else is 404."""

            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                seen.append(path)
                if path in listings:
                    self._send(200, "application/json",
                               json.dumps(listings[path]).encode())
                elif path in routes:
                    self._send(200, "text/plain; charset=utf-8",
                               routes[path].read_bytes())
                else:
                    self._send(404, "application/json", b'{"message": "Not Found"}')

            def _send(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass  # the API server's log already shows what asked

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="tcup-guideline-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=STOP_TIMEOUT)
            self._httpd = None


# --------------------------------------------------------------------------
# The API server


class RefStackServer:
    """refstack's API on 127.0.0.1 with a sqlite database in ``workdir``."""

    def __init__(self, workdir: Path, *, port: Optional[int] = None,
                 interop_dir: Path = DEFAULT_INTEROP_DIR, debug: bool = False):
        self.workdir = Path(workdir)
        self.requested_port = port or 0
        self.interop_dir = Path(interop_dir)
        self.debug = debug
        self.port: Optional[int] = None
        self.guidelines = GuidelineServer(self.interop_dir)
        self._process: Optional[subprocess.Popen] = None
        self._log_handle = None
        self._venv: Optional[Path] = None

    # Paths in the work directory
    @property
    def db_path(self) -> Path:
        """The sqlite database refstack stores results, users and keys in."""
        return self.workdir / "refstack.db"

    @property
    def config_path(self) -> Path:
        """refstack's oslo config (REFSTACK_OSLO_CONFIG of the server)."""
        return self.workdir / "refstack.conf"

    @property
    def log_path(self) -> Path:
        """The API server's stdout/stderr: request lines, tracebacks."""
        return self.workdir / "refstack-api.log"

    @property
    def base_url(self) -> str:
        """What a user gives TCUP: uploads go to ``{base_url}/v1/results``.

        Still answers after ``stop()`` (same port), so a test can aim a
        client at a server that has gone away.
        """
        if self.port is None:
            raise RuntimeError("RefStack server not started")
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def pid(self) -> int:
        """Process id of the API server (also its process group id)."""
        if self._process is None:
            raise RuntimeError("RefStack server not started")
        return self._process.pid

    @property
    def python(self) -> Path:
        """The venv interpreter the server's scripts run with."""
        if self._venv is None:
            self._venv = ensure_venv()
        return self._venv / "bin" / "python"

    @property
    def running(self) -> bool:
        """Tell whether the API server process is alive (paused counts)."""
        return self._process is not None and self._process.poll() is None

    # Life cycle
    def start(self) -> "RefStackServer":
        """Install (if needed), create the db, start both servers, wait ready."""
        if self._process is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        python = self.python
        try:
            self.guidelines.start()
            self._write_files()
            self._init_db(python)
            self._spawn(python)
            self._wait_ready(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill the API server's process group and stop the guideline server.

        Idempotent. SIGCONT follows SIGTERM so a paused server ends too.
        """
        process, self._process = self._process, None
        if process is not None:
            common.terminate_group(process.pid, process, timeout=STOP_TIMEOUT)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        self.guidelines.stop()

    def pause(self) -> None:
        """Freeze the API server (SIGSTOP): connections open, nothing answers."""
        common.kill_group(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused API server go on (SIGCONT)."""
        common.kill_group(self.pid, signal.SIGCONT)

    def __enter__(self) -> "RefStackServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # Users
    def register_key(self, public_key_line: str, *,
                     openid: str = "https://openid.example/tcup-tester",
                     fullname: str = "TCUP Tester",
                     email: str = "tester@example.invalid") -> None:
        """Store a user and an OpenSSH public key for signed uploads.

        Writes the rows refstack's own ``user_save``/``store_pubkey`` write
        after a login and a key upload in the web UI: ``pubkeys.pubkey`` is
        the base64 body of the key line, ``md5_hash`` the MD5 of its decoded
        bytes (what an upload's ``X-Public-Key`` is looked up by).
        """
        parts = public_key_line.strip().split(None, 2)
        if len(parts) < 2:
            raise ValueError("expected an OpenSSH public key line: 'ssh-rsa AAAA... [comment]'")
        key_format, body = parts[0], parts[1]
        comment = parts[2] if len(parts) > 2 else ""
        md5_hash = hashlib.md5(base64.b64decode(body)).hexdigest()
        now = _db_timestamp()
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as db, db:
            known = db.execute("SELECT 1 FROM user WHERE openid = ?", (openid,)).fetchone()
            if known:
                db.execute("UPDATE user SET fullname = ?, email = ?, updated_at = ? "
                           "WHERE openid = ?", (fullname, email, now, openid))
            else:
                db.execute("INSERT INTO user (openid, email, fullname, created_at, deleted) "
                           "VALUES (?, ?, ?, ?, 0)", (openid, email, fullname, now))
            db.execute("INSERT INTO pubkeys (id, openid, format, pubkey, comment, md5_hash, "
                       "created_at, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                       (str(uuid.uuid4()), openid, key_format, body, comment, md5_hash, now))

    def user_session_cookie(self, openid: str = "https://openid.example/tcup-tester") -> str:
        """Return a ``Cookie`` header value logging ``openid`` in.

        refstack keeps web sessions in beaker's database store (table
        ``beaker_cache``) under an unsigned cookie named ``refstack``; this
        saves such a session with beaker itself, as the OpenID login would.
        The user must exist (``register_key``) for refstack to accept it.
        """
        script = self.workdir / "refstack_session.py"
        script.write_text(SESSION_SCRIPT)
        done = subprocess.run(
            [str(self.python), str(script), f"sqlite:///{self.db_path}", openid],
            capture_output=True, text=True, timeout=60, check=True)
        return f"{SESSION_COOKIE}={done.stdout.strip()}"

    # Internals
    def _write_files(self) -> None:
        """Write the oslo config and the scripts the venv python runs."""
        self.config_path.write_text(CONFIG_TEMPLATE.format(
            debug="true" if self.debug else "false",
            guidelines=self.guidelines.url, db=self.db_path))
        (self.workdir / "refstack_wsgi.py").write_text(WSGI_MODULE)
        (self.workdir / "refstack_initdb.py").write_text(INITDB_SCRIPT)

    def _child_env(self) -> Dict[str, str]:
        """Environment of the venv processes: config path, no proxy for loopback."""
        env = dict(os.environ)
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(name, None)
        env.update({
            "REFSTACK_OSLO_CONFIG": str(self.config_path),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "TCUP_REFSTACK_PREFIX": API_PREFIX,
            "TCUP_REFSTACK_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TCUP_REFSTACK_PARENT_PID": str(os.getpid()),
        })
        return env

    def _init_db(self, python: Path) -> None:
        """Create the schema once; a work dir reused keeps its results.

        The empty schema is cached beside the venv and copied, which saves
        refstack's import time (about 1.5 s) on every later start.
        """
        if self.db_path.exists():
            return
        script_digest = hashlib.sha256(INITDB_SCRIPT.encode()).hexdigest()[:12]
        template = python.parent.parent / f"empty-schema-{script_digest}.db"
        if not template.exists():
            self._run_initdb(python)
            scratch = template.with_name(f"{template.name}.{os.getpid()}.tmp")
            shutil.copyfile(self.db_path, scratch)
            os.replace(scratch, template)  # atomic: a racing start sees all or nothing
            return
        shutil.copyfile(template, self.db_path)

    def _run_initdb(self, python: Path) -> None:
        """Run the schema script against this work dir's database."""
        done = subprocess.run(
            [str(python), str(self.workdir / "refstack_initdb.py"), str(self.config_path)],
            cwd=self.workdir, env=self._child_env(), capture_output=True, text=True,
            timeout=120)
        if done.returncode != 0:
            self.db_path.unlink(missing_ok=True)
            raise RuntimeError(f"creating the refstack database failed:\n{done.stderr[-3000:]}")

    def _spawn(self, python: Path) -> None:
        """Start the WSGI server in its own session (so its group can be killed)."""
        port_file = self.workdir / "refstack-api.port"
        port_file.unlink(missing_ok=True)
        self.port = None
        self._log_handle = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [str(python), str(self.workdir / "refstack_wsgi.py"),
             str(self.requested_port), str(port_file)],
            cwd=self.workdir, env=self._child_env(), stdin=subprocess.DEVNULL,
            stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the server has bound its port and answers a listing."""
        port_file = self.workdir / "refstack-api.port"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"refstack API server exited with {self._process.returncode}:\n"
                                   f"{self._log_tail()}")
            if self.port is None and port_file.exists():
                self.port = int(port_file.read_text())
            if self.port is not None and self._answers():
                return
            time.sleep(0.1)
        raise TimeoutError(f"refstack API server not ready after {timeout:.0f}s:\n"
                           f"{self._log_tail()}")

    def _answers(self) -> bool:
        """Tell whether ``GET {base_url}/v1/results`` answers 200."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/v1/results", timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self, size: int = 3000) -> str:
        """Last part of the API server's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"


def _db_timestamp() -> str:
    """A naive UTC timestamp as SQLAlchemy stores DateTime on sqlite."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f")


# --------------------------------------------------------------------------
# CLI


def _interrupt(signum, frame) -> None:
    """Turn SIGTERM into the KeyboardInterrupt the serve loop handles."""
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    """Run a server in the foreground until Ctrl-C (or SIGTERM)."""
    started = time.monotonic()
    server = RefStackServer(Path(args.dir), port=args.port, debug=args.debug)
    # SIGTERM takes the same way out as Ctrl-C, so the child group is killed.
    signal.signal(signal.SIGTERM, _interrupt)
    with server:
        print(f"RefStack API: {server.base_url}  (POST {server.base_url}/v1/results)")
        print(f"  pid {server.pid}, log {server.log_path}, db {server.db_path}")
        print(f"  guidelines served from {server.guidelines.url}")
        print(f"  ready in {time.monotonic() - started:.1f}s; Ctrl-C stops it")
        sys.stdout.flush()
        try:
            while server.running:
                time.sleep(0.5)
            print(f"API server exited; see {server.log_path}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("stopping")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: ``serve`` runs a server, ``venv`` only installs it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a RefStack API server in the foreground")
    serve.add_argument("--dir", required=True, help="work directory (config, sqlite db, log)")
    serve.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    serve.add_argument("--debug", action="store_true", help="debug logging in the server log")
    sub.add_parser("venv", help="install the refstack venv and print its path")
    args = parser.parse_args(argv)
    if args.command == "venv":
        print(ensure_venv())
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
