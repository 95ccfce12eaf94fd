"""TCUP on a cloud whose every public endpoint is behind TLS, with the
operator's private CA, as real clouds are (test-cloud profile ``tls``: one
HAProxy in front of Keystone and every service, a certificate for this
machine's host name, docs/TEST-CLOUD.md).

With OS_CACERT (or clouds.yaml's ``cacert``) naming that CA, a plan and a
member run work, and every service's traffic went through the proxy, so
every Tempest client in the container trusted the CA and resolved the host
name. Without it, one line names the endpoint whose certificate is not
trusted and OS_CACERT, before any container starts.

Marker ``cloud``; the cloud is conftest's ``operator_cloud`` (profiles
scs, tls and paging together), through tcup.pyz.
"""

import re
import socket
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import openrc, only_run, tcup
from test_cloud_runs import per_service

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

from testcloud.keystone import public_endpoints  # noqa: E402

pytestmark = pytest.mark.cloud

# A few tests of each service that uploads, boots or stores over its
# endpoint; none depends on a listing's length (the cloud pages, too).
SUBSET = (r"^tempest\.api\.(identity\.v3\.test_tokens\.TokensV3Test\.test_(create|validate)_token"
          r"|image\.v2\.test_images\.BasicOperationsImagesTest\.test_register_upload_get_image_file"
          r"|object_storage\.test_object_services\.ObjectTest\.test_(create|get)_object\["
          r"|volume\.test_volumes_get\.VolumesGetTest\.test_volume_create_get_update_delete\["
          r"|network\.test_networks\.NetworksTest\.test_create_update_delete_network_subnet"
          r"|compute\.servers\.test_create_server\.ServersTestJSON\.test_verify_server_details)")
SUBSET_PASSED = {"compute": 1, "identity": 2, "image": 1, "network": 1, "object_storage": 2, "volume": 1}
HINT = "set OS_CACERT to your cloud's CA bundle (a PEM file)"


def endpoints(cloud) -> dict:
    """The member's public endpoints by service type."""
    return public_endpoints(cloud.token("member")[1])


def peer_certificate(host: str, port: int, context: ssl.SSLContext, name: str) -> dict:
    """The certificate served at host:port, verified for ``name``."""
    with socket.create_connection((host, port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname=name) as tls:
            return tls.getpeercert()


def test_every_public_endpoint_is_https_on_the_host_name_with_the_private_ca(operator_cloud):
    host = socket.gethostname().lower()
    cacert = operator_cloud.root / "tls" / "ca.pem"
    urls = endpoints(operator_cloud)
    assert {"identity", "compute", "image", "network", "volumev3", "object-store"} <= set(urls)
    assert {(urlsplit(url).scheme, urlsplit(url).hostname) for url in urls.values()} == {("https", host)}
    # The clients' files name the CA, as a real cloud's do.
    for who in ("admin", "member"):
        variables = operator_cloud.openrc(who)
        assert variables["OS_CACERT"] == str(cacert) and variables["OS_AUTH_URL"] == urls["identity"]
    assert (operator_cloud.root / "clouds.yaml").read_text().count(f"cacert: '{cacert}'") == 2
    port = urlsplit(urls["compute"]).port
    trusting = ssl.create_default_context(cafile=str(cacert))
    assert peer_certificate(host, port, trusting, host)["subjectAltName"] == (("DNS", host),)
    # A name, not an address: reached by its address, the certificate does not fit.
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        peer_certificate(host, port, trusting, "127.0.0.1")
    # And only the cloud's own CA vouches for it.
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        peer_certificate(host, port, ssl.create_default_context(), host)


def test_plan_with_clouds_yaml_naming_the_ca(operator_cloud, pyz, tmp_path):
    env = openrc(operator_cloud, "member", tmp_path)
    for name in [key for key in env if key.startswith("OS_")]:
        del env[name]
    env.update(OS_CLOUD="tcup-member", OS_CLIENT_CONFIG_FILE=str(operator_cloud.root / "clouds.yaml"))
    done = tcup(["plan", "--guideline", "scs-0128"], env, pyz_path=pyz)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "services in the catalog: keystone, cinder, glance, neutron, nova, placement, swift" in done.stderr
    assert "nothing was run" in done.stderr


def haproxy_frontends(log: Path, offset: int) -> set:
    """The proxy's frontends (one per service) that served a request since offset."""
    with open(log, "rb") as file:
        file.seek(offset)
        text = file.read().decode(errors="replace")
    return set(re.findall(r"\] (\w+)~ \S+ \S+ \d{3} ", text))


def test_member_run_over_tls_passes_and_every_client_trusts_the_ca(operator_cloud, pyz, tmp_path, watch):
    log = operator_cloud.root / "log" / "haproxy.log"
    offset = log.stat().st_size
    env = openrc(operator_cloud, "member", tmp_path)
    done = tcup(["--regex", SUBSET, "--accounts", str(operator_cloud.root / "accounts.yaml"), "--no-upload",
                 "--output", str(tmp_path / "runs")], env, pyz_path=pyz, timeout=3600)
    counts = per_service(only_run(tmp_path / "runs"))
    assert counts == {service: {"passed": passed, "failed": 0, "skipped": 0}
                      for service, passed in SUBSET_PASSED.items()}, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-2000:]
    # Every service was reached over TLS through the proxy: discovery,
    # Tempest's clients (uploads included) and the cleanup trusted the CA
    # and resolved the host name inside the container.
    assert {"keystone", "nova", "glance", "neutron", "cinder", "swift"} <= haproxy_frontends(log, offset)


def test_without_the_ca_keystone_is_named_before_any_container(operator_cloud, pyz, tmp_path, watch):
    env = openrc(operator_cloud, "member", tmp_path, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    del env["OS_CACERT"]
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs")], env, pyz_path=pyz)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"tcup: error: the certificate of {env['OS_AUTH_URL']} (identity) is not trusted "
                                   f"(unable to get local issuer certificate); {HINT}")
    assert not (tmp_path / "runs").exists() and list((tmp_path / "tmp").iterdir()) == []


def test_without_the_ca_the_services_endpoints_are_named_before_any_container(operator_cloud, pyz, tmp_path, watch):
    """Keystone reached over plain http (its internal URL), the catalog's
    public endpoints over TLS: the preflight names them, not "down"."""
    env = openrc(operator_cloud, "member", tmp_path, OS_AUTH_URL=operator_cloud.site.auth_url)
    del env["OS_CACERT"]
    done = tcup(["plan"], env, pyz_path=pyz)
    assert done.returncode == 2, done.stderr
    urls = endpoints(operator_cloud)
    services = sorted(set(urls) - {"identity"})
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(urls[services[0]]))
    assert done.stderr.strip() == (f"tcup: error: the certificate of {origin} ({services[0]}) is not trusted "
                                   f"(unable to get local issuer certificate), nor are those of "
                                   f"{', '.join(services[1:])}; {HINT}")
