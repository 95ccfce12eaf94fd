"""MariaDB from Debian (``apt-get install mariadb-server``), as a private
server of the cloud: its own data directory, 127.0.0.1 only, no systemd.

Nova, Neutron and Cinder need it: on sqlite Nova's conductor hits
"database is locked" (servers stay in BUILD), neutron-db-manage cannot ALTER
constraints, and Cinder answers 500 under Tempest's load.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Iterable

from .common import HOST, CloudError, clean_env, port_open, run, wait_for
from .site import Site

NAME = "mariadb"
READY_TIMEOUT = 120


def _binary(name: str) -> str:
    """The path of a MariaDB program, or a CloudError saying what to install."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise CloudError(f"{name} not found: apt-get install mariadb-server")


def _socket(site: Site) -> str:
    """The server's unix socket: root administers it there."""
    return str(site.dir(NAME) / "mysqld.sock")


def start(site: Site) -> None:
    """Initialize the data directory once, then start mariadbd."""
    home = site.dir(NAME)
    datadir = home / "data"
    if not site.flag("mariadb-installed"):
        shutil.rmtree(datadir, ignore_errors=True)
        run([_binary("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}",
             f"--user={getpass.getuser()}", "--auth-root-authentication-method=normal",
             "--skip-test-db"], timeout=300, log=site.log("mariadb-install"), cwd=home,
            env=clean_env())
        site.mark("mariadb-installed")
    site.spawn(NAME, [
        _binary("mariadbd"), "--no-defaults", f"--datadir={datadir}",
        f"--user={getpass.getuser()}", f"--port={site.port(NAME)}", f"--bind-address={HOST}",
        f"--socket={_socket(site)}", f"--pid-file={home / 'mariadbd.pid'}",
        "--skip-name-resolve", "--character-set-server=utf8", "--collation-server=utf8_general_ci",
        # Small and fast rather than durable: the cloud is thrown away.
        "--innodb-buffer-pool-size=64M", "--performance-schema=OFF",
        "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--sync-binlog=0",
        "--max-connections=1000",
    ], cwd=home)


def wait(site: Site) -> None:
    """Wait until MariaDB accepts connections."""
    wait_for(lambda: port_open(site.port(NAME)), what="mariadb", timeout=READY_TIMEOUT,
             log=site.log(NAME), alive=lambda: site.alive(NAME))


def create_databases(site: Site, names: Iterable[str]) -> None:
    """The ``tcup`` user and the databases ``names`` (idempotent)."""
    password = site.password(NAME)
    statements = [f"CREATE USER IF NOT EXISTS 'tcup'@'{HOST}' IDENTIFIED BY '{password}'",
                  f"CREATE USER IF NOT EXISTS 'tcup'@'localhost' IDENTIFIED BY '{password}'"]
    for name in names:
        statements.append(f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8")
        for host in (HOST, "localhost"):
            statements.append(f"GRANT ALL PRIVILEGES ON {name}.* TO 'tcup'@'{host}'")
    run([_binary("mariadb"), "--no-defaults", f"--socket={_socket(site)}", "-uroot",
         "-e", ";\n".join(statements)], timeout=60, log=site.log("mariadb-client"),
        cwd=site.dir(NAME), env=clean_env())


def query(site: Site, sql: str) -> list:
    """Rows of one SELECT, as root on the cloud's own server: the tests'
    view of what Keystone holds when its API cuts a listing short."""
    done = subprocess.run([_binary("mariadb"), "--no-defaults", f"--socket={_socket(site)}", "-uroot",
                           "--batch", "--skip-column-names", "-e", sql],
                          capture_output=True, text=True, timeout=60, env=clean_env(), check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]
