"""RabbitMQ from Debian (``apt-get install rabbitmq-server``), as a private
broker of the cloud: its own node, data and epmd, 127.0.0.1 only.

Erlang's port mapper (epmd) would otherwise start as a daemon on all
interfaces and outlive the cloud; here it runs in the foreground, on a port
of its own, as one of the cloud's processes.
"""

from __future__ import annotations

import os
import shutil

from .common import HOST, CloudError, clean_env, port_open, wait_for
from .site import Site

NAME = "rabbitmq"
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
READY_TIMEOUT = 180


def _env(site: Site) -> dict[str, str]:
    """Everything the broker needs to know, none of it from /etc/rabbitmq."""
    home = site.dir(NAME)
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq-env.conf").write_text("# empty: settings come from the environment\n")
    (home / "rabbitmq.conf").write_text("\n".join([
        f"listeners.tcp.default = {HOST}:{site.port(NAME)}",
        "disk_free_limit.absolute = 50MB",
        "log.console = true",
        "log.file = false",
        "",
    ]))
    return clean_env(
        HOME=str(home),  # its .erlang.cookie
        RABBITMQ_CONF_ENV_FILE=str(home / "rabbitmq-env.conf"),
        RABBITMQ_CONFIG_FILE=str(home / "rabbitmq.conf"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(home / "enabled_plugins"),
        RABBITMQ_MNESIA_BASE=str(home / "mnesia"),
        RABBITMQ_LOG_BASE=str(home / "log"),
        RABBITMQ_NODENAME="tcup@localhost",
        RABBITMQ_NODE_IP_ADDRESS=HOST,
        RABBITMQ_NODE_PORT=str(site.port(NAME)),
        RABBITMQ_DIST_PORT=str(site.port("rabbitmq-dist")),
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        # The first boot creates this user (instead of guest).
        RABBITMQ_DEFAULT_USER="tcup",
        RABBITMQ_DEFAULT_PASS=site.password(NAME),
        ERL_EPMD_PORT=str(site.port("epmd")),
        ERL_EPMD_ADDRESS=HOST,
    )


def start(site: Site) -> None:
    """Start epmd, then the broker."""
    epmd = shutil.which("epmd")
    if not epmd or not os.path.exists(SERVER):
        raise CloudError("rabbitmq-server not found: apt-get install rabbitmq-server")
    env = _env(site)
    home = site.dir(NAME)
    site.spawn("epmd", [epmd, "-port", str(site.port("epmd")), "-address", HOST], cwd=home,
               env=env)
    wait_for(lambda: port_open(site.port("epmd")), what="epmd", timeout=30,
             log=site.log("epmd"), alive=lambda: site.alive("epmd"))
    site.spawn(NAME, [SERVER], cwd=home, env=env)


def wait(site: Site) -> None:
    """Wait until the broker accepts AMQP connections."""
    wait_for(lambda: port_open(site.port(NAME)), what="rabbitmq", timeout=READY_TIMEOUT,
             log=site.log(NAME), alive=lambda: site.alive(NAME))
