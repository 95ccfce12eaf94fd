"""The ``tls`` profile: every public endpoint behind one HAProxy from Debian
(``apt-get install haproxy``), with a certificate from a private CA made for
this cloud directory, for this machine's host name.

Real clouds look like this: clients reach ``https://NAME:PORT`` and trust the
operator's CA through ``OS_CACERT``, while the services talk to each other
over plain http on their internal endpoints (here ``http://127.0.0.1:PORT``).
HAProxy (as kolla-ansible's clouds have it) streams requests and bodies as
they come: no size limit, no buffering to disk, no temporary files.

The host name is the machine's own (``socket.gethostname()``), which must
resolve to a loopback address, as Debian's /etc/hosts makes it ("127.0.1.1
NAME"): nothing is added to a system file, and a container on the host's
network resolves it as the host does (Docker and Podman copy the host's
/etc/hosts into it). The certificate names it alone, no IP address, so a
client that reaches an endpoint by address fails as it would on a real cloud.

The CA and keys are made with Debian's ``openssl``: these tools run on the
host's python3 with the standard library only.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
from pathlib import Path

from .common import CloudError, clean_env, run, wait_for, write_private
from .site import CA_FILE, TLS_DIR, Site

NAME = "haproxy"
READY_TIMEOUT = 60
CA_DAYS, SERVER_DAYS = 3650, 825
# What Python's strict verification (the default from 3.13) wants to see in
# a CA and a server certificate; clients on older Pythons accept them too.
OPENSSL_CONFIG = """\
# Written by tools/testcloud/tls.py.
[req]
distinguished_name = subject
prompt = no
[subject]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:{host}
"""
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def host_name() -> tuple[str, list[str]]:
    """This machine's name and the loopback addresses it resolves to."""
    name = socket.gethostname().lower()
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)})
    except socket.gaierror as error:
        raise CloudError(f"the tls profile serves on this machine's name, {name}, which does not "
                         f"resolve ({error}); add '127.0.1.1 {name}' to /etc/hosts") from None
    outside = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
    if outside:
        raise CloudError(f"the tls profile serves on this machine's name, {name}, which must resolve "
                         f"to a loopback address only (it resolves to {', '.join(outside)}); add "
                         f"'127.0.1.1 {name}' to /etc/hosts")
    return name, addresses


def _openssl() -> str:
    """The openssl program, or a CloudError saying what to install."""
    found = shutil.which("openssl")
    if not found:
        raise CloudError("openssl not found: apt-get install openssl")
    return found


def make_certificates(site: Site, host: str) -> None:
    """The cloud's CA (once per directory) and a server certificate for
    ``host`` (again whenever the host name changed), in ``DIR/tls``."""
    home = site.dir(TLS_DIR)
    if site.recorded("tls-host") == host and (home / "server.pem").exists():
        return
    config = home / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG.format(host=host))
    openssl = [_openssl()]
    log = site.log("openssl")
    steps = []
    if not (home / CA_FILE).exists():
        steps.append(["req", "-x509", "-config", config, "-extensions", "ca", *EC_KEY,
                      "-keyout", "ca.key", "-out", CA_FILE, "-days", CA_DAYS,
                      "-subj", f"/O=TCUP test cloud/CN=TCUP test cloud CA ({site.root.name})"])
    steps += [
        ["req", "-new", "-config", config, *EC_KEY, "-keyout", "server.key", "-out", "server.csr",
         "-subj", f"/CN={host}"],
        ["x509", "-req", "-in", "server.csr", "-CA", CA_FILE, "-CAkey", "ca.key", "-CAcreateserial",
         "-days", SERVER_DAYS, "-extfile", config, "-extensions", "server", "-out", "server.crt"],
    ]
    for step in steps:
        run(openssl + [str(arg) for arg in step], timeout=60, log=log, cwd=home, env=clean_env())
    for key in ("ca.key", "server.key"):
        (home / key).chmod(0o600)
    # HAProxy wants the certificate and its key in one file.
    write_private(home / "server.pem", (home / "server.crt").read_text() + (home / "server.key").read_text())
    site.mark("tls-host", host)


def frontends(site: Site, services: list[str]) -> dict[str, tuple[int, int]]:
    """{service: (public port, internal port)} of every proxied service."""
    return {name: (site.port(site.public_port_name(name)), site.port(name)) for name in services}


def write_config(site: Site, services: list[str], addresses: list[str]) -> Path:
    """haproxy.cfg: one TLS frontend per service, each on ``addresses``."""
    home = site.dir(TLS_DIR)
    lines = [
        "# Written by tools/testcloud/tls.py; rewritten at each start.",
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 2000",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option forwardfor",
        "    timeout connect 5s",
        "    timeout http-request 60s",
        # Image uploads and slow API calls of a loaded machine.
        "    timeout client 15m",
        "    timeout server 15m",
    ]
    for name, (public, internal) in frontends(site, services).items():
        binds = [f"    bind {_bind_address(address)}:{public} ssl crt {home / 'server.pem'}"
                 for address in addresses]
        lines += [
            f"frontend {name}",
            *binds,
            # The services build the links in their answers (versions,
            # pagination) from this, with oslo.middleware's proxy parsing.
            "    http-request set-header X-Forwarded-Proto https",
            f"    default_backend {name}",
            f"backend {name}",
            f"    server {name} 127.0.0.1:{internal}",
        ]
    path = home / "haproxy.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bind_address(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def start(site: Site, services: list[str]) -> None:
    """Certificates, configuration, then HAProxy in the foreground."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        raise CloudError("haproxy not found: apt-get install haproxy")
    host, addresses = host_name()
    make_certificates(site, host)
    config = write_config(site, services, addresses)
    site.spawn(NAME, [binary, "-db", "-f", str(config)], cwd=site.dir(TLS_DIR))
    ports = [public for public, _ in frontends(site, services).values()]
    wait_for(lambda: all(_listening(addresses[0], port) for port in ports), what=NAME,
             timeout=READY_TIMEOUT, log=site.log(NAME), alive=lambda: site.alive(NAME))


def _listening(address: str, port: int) -> bool:
    """True when something accepts connections at ``address``:``port``."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0
