"""One cloud's state directory: its ports, passwords, logs and processes.

Layout of ``DIR``::

    state.json          ports and generated passwords (0600), kept across
                        stop/start so the catalog in Keystone stays right
    <service>/          each service's config, data and working directory
    log/<name>.log      one log per process
    run/<name>.pid      one pidfile per process ("PID START_TIME")
    tls/                the tls profile's CA, certificate and HAProxy config
    admin-openrc, member-openrc, clouds.yaml

Every process carries ``TCUP_TESTCLOUD=DIR`` in its environment, so stopping
can sweep up anything that left its process group.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .common import (
    CLOUD_MARKER, HOST, REGION, CloudError, Pidfile, clean_env, free_port, port_in_use, spawn,
    write_private,
)

STATE_FILE = "state.json"
# The tls profile's files (testcloud.tls): DIR/tls/ca.pem is OS_CACERT.
TLS_DIR, CA_FILE = "tls", "ca.pem"
SERVICE_PROJECT = "service"

# Passes a gunicorn worker the argv the service's own parser expects: nova,
# neutron and cinder parse sys.argv when the app is built, and would reject
# gunicorn's flags.
WSGI_SHIM = '''\
"""gunicorn entry point for {module}; written by tools/testcloud."""
import sys

sys.argv = {argv!r}

from {module} import application  # noqa: E402,F401
{after}'''


class Site:
    """The cloud living in ``root``: where things go and how they start."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._state: dict[str, Any] = {"ports": {}, "passwords": {}}
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles this directory was made with (testcloud.profiles)."""
        return tuple(self._state.get("profiles", ()))

    def use_profiles(self, profiles: tuple[str, ...]) -> None:
        """Record the profiles of a new directory; an existing one keeps its own."""
        if "profiles" not in self._state and not self._state.get("done"):
            self._state["profiles"] = list(profiles)
            self.save()
        elif self.profiles != tuple(profiles):
            shown = ",".join(self.profiles) or "none"
            raise CloudError(f"{self.root} was made with profiles {shown}; start it with "
                             f"--profile {shown}, or use --fresh or another --dir")

    # -- state -------------------------------------------------------------

    def load(self) -> Site:
        """Read ``state.json`` if an earlier start wrote one."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / STATE_FILE
        if path.exists():
            self._state = json.loads(path.read_text())
        return self

    def save(self) -> None:
        """Write ``state.json`` (it holds passwords, so 0600)."""
        write_private(self.root / STATE_FILE, json.dumps(self._state, indent=1, sort_keys=True))

    def port(self, name: str) -> int:
        """The port of ``name``: chosen once, then kept for this directory."""
        ports = self._state["ports"]
        if name not in ports:
            taken = set(ports.values())
            port = free_port()
            while port in taken:
                port = free_port()
            ports[name] = port
            self.save()
        return ports[name]

    def check_ports_free(self) -> None:
        """Fail early, naming it, when a port this cloud needs is taken."""
        busy = {name: port for name, port in self._state["ports"].items() if port_in_use(port)}
        if busy:
            raise CloudError(f"ports already in use on {HOST}: {busy}; stop whatever holds "
                             f"them, or start in a new --dir")

    def password(self, name: str) -> str:
        """A generated password for ``name``, kept for this directory."""
        passwords = self._state["passwords"]
        if name not in passwords:
            passwords[name] = secrets.token_urlsafe(12)
            self.save()
        return passwords[name]

    @property
    def ports(self) -> dict[str, int]:
        """Every port chosen so far, by name."""
        return dict(self._state["ports"])

    def recorded(self, name: str) -> Any:
        """What ``mark(name, value)`` recorded, or None."""
        return self._state.get("done", {}).get(name)

    def flag(self, name: str) -> bool:
        """True once ``mark(name)`` was called for this directory."""
        return bool(self.recorded(name))

    def mark(self, name: str, value: Any = True) -> None:
        """Remember that a one-time step (a db sync, the seed) is done."""
        self._state.setdefault("done", {})[name] = value
        self.save()

    # -- places --------------------------------------------------------------

    def dir(self, name: str) -> Path:
        """``DIR/name``, created."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, name: str) -> Path:
        """The log file of process ``name``."""
        return self.dir("log") / f"{name}.log"

    def pidfile(self, name: str) -> Pidfile:
        """The pidfile of process ``name``."""
        return Pidfile(self.dir("run") / f"{name}.pid")

    def url(self, name: str, path: str = "") -> str:
        """``http://127.0.0.1:PORT`` of ``name``, plus ``path``."""
        return f"http://{HOST}:{self.port(name)}{path}"

    @property
    def auth_url(self) -> str:
        """Keystone's v3 endpoint, as the services reach it."""
        return self.url("keystone", "/v3")

    # -- what clients see (the public endpoints) -----------------------------

    @property
    def tls(self) -> bool:
        """True when the public endpoints are behind TLS (profile tls)."""
        return "tls" in self.profiles

    @property
    def paging(self) -> bool:
        """True when listings come in small pages (profile paging)."""
        return "paging" in self.profiles

    @staticmethod
    def public_port_name(name: str) -> str:
        """The name under which the TLS proxy's port for ``name`` is kept."""
        return f"{name}-tls"

    def public_url(self, url: str) -> str:
        """What clients use for a service's internal ``url``
        (``http://127.0.0.1:PORT/...``): with the tls profile, the proxy's
        ``https://HOST:PORT/...`` for it; else ``url`` itself."""
        if not self.tls:
            return url
        host = self.recorded("tls-host")
        if not host:
            raise CloudError("the tls profile's certificate is not made yet")
        parts = urlsplit(url)
        name = next(n for n, port in self.ports.items() if port == parts.port)
        return urlunsplit(("https", f"{host}:{self.port(self.public_port_name(name))}", parts.path,
                           parts.query, ""))

    @property
    def public_auth_url(self) -> str:
        """Keystone's v3 endpoint, as clients reach it (OS_AUTH_URL)."""
        return self.public_url(self.auth_url)

    @property
    def cacert(self) -> Path | None:
        """The CA file clients need (OS_CACERT) with the tls profile, else None."""
        return self.root / TLS_DIR / CA_FILE if self.tls else None

    def behind_proxy(self) -> dict[str, dict[str, Any]]:
        """The oslo.config section a service behind the TLS proxy needs: it
        then builds the links in its answers (version documents, pagination)
        from the proxy's X-Forwarded-Proto, https, not from its own http."""
        return {"oslo_middleware": {"enable_proxy_headers_parsing": True}} if self.tls else {}

    # -- shared back ends ----------------------------------------------------

    def database(self, name: str) -> str:
        """The SQLAlchemy URL of MariaDB database ``name``."""
        return (f"mysql+pymysql://tcup:{self.password('mariadb')}@{HOST}:"
                f"{self.port('mariadb')}/{name}?charset=utf8")

    @property
    def transport_url(self) -> str:
        """oslo.messaging's URL of the RabbitMQ broker."""
        return f"rabbit://tcup:{self.password('rabbitmq')}@{HOST}:{self.port('rabbitmq')}/"

    def service_credentials(self, user: str) -> dict[str, str]:
        """keystoneauth password options of service user ``user``."""
        return {
            "auth_type": "password",
            "auth_url": self.auth_url,
            "username": user,
            "password": self.password(user),
            "project_name": SERVICE_PROJECT,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "region_name": REGION,
        }

    def authtoken(self, user: str) -> dict[str, str]:
        """A ``[keystone_authtoken]`` section validating tokens as ``user``."""
        # Tokens are cached in each worker (there is no memcached): one
        # Keystone round trip per token, not per request.
        # www_authenticate_uri is what a 401 tells clients: the public URL.
        return dict(self.service_credentials(user), www_authenticate_uri=self.public_auth_url,
                    token_cache_time="300")

    # -- processes -----------------------------------------------------------

    def spawn(self, name: str, argv: list[str], *, cwd: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start process ``name`` in its own session, logged and recorded."""
        self.pidfile(name).stop()  # a leftover of a crashed run
        env = dict(env if env is not None else clean_env())
        env[CLOUD_MARKER] = str(self.root)
        process = spawn(argv, pidfile=self.pidfile(name).path, log=self.log(name), cwd=cwd,
                        env=env)
        self.processes[name] = process
        return process

    def alive(self, name: str) -> bool:
        """True while process ``name`` runs."""
        process = self.processes.get(name)
        if process is not None:
            return process.poll() is None
        return self.pidfile(name).live_pid() is not None

    def serve_wsgi(self, name: str, venv: Path, module: str, argv: list[str], *,
                   env: dict[str, str] | None = None, workers: int = 1,
                   threads: int = 1, after: str = "") -> subprocess.Popen:
        """Serve ``module:application`` with gunicorn on ``port(name)``.

        ``argv`` is what the application's own config parser sees; ``after``
        is code the shim runs once the application is built.
        """
        workdir = self.dir(name)
        shim = f"tcup_{name.replace('-', '_')}_wsgi"
        (workdir / f"{shim}.py").write_text(WSGI_SHIM.format(module=module, argv=argv,
                                                             after=after))
        cmd = [
            str(venv / "bin" / "python"), "-m", "gunicorn",
            "--bind", f"{HOST}:{self.port(name)}",
            "--workers", str(workers), "--threads", str(threads),
            "--timeout", "300", "--graceful-timeout", "5",
            # Its default control socket is one fixed path under ~: two
            # clouds would fight over it.
            "--no-control-socket",
            "--chdir", str(workdir), "--pythonpath", str(workdir),
            "--access-logfile", "-", "--error-logfile", "-",
            f"{shim}:application",
        ]
        return self.spawn(name, cmd, cwd=workdir, env=env)

    def copy_from_venv(self, venv: Path, relative: str, into: Path) -> Path:
        """Copy a file a wheel installed under the venv (``etc/...``) into ``into``."""
        source = venv / relative
        if not source.exists():
            raise CloudError(f"{source} is missing from the venv")
        target = into / source.name
        shutil.copyfile(source, target)
        return target
