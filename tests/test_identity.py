"""The Keystone check, against a small scripted Keystone on 127.0.0.1: it
learns the ids and hosts the runner must mask, and never sends the password
after a redirect. (The real Keystone is met in the end-to-end tests.)"""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import LoopbackServer, reply
from tcup.contract import Credentials
from tcup.launcher.cloud import identity
from tcup.launcher.errors import BadInput

EXIT_BAD_INPUT = 2  # as README documents it

PASSWORD = "canary-keystone-pw"
PROJECT_ID = "8f1e0c6a9b5d4e2f8a7c6b5d4e3f2a1b"
USER_ID = "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"


class Scripted(LoopbackServer):
    """An HTTP server answering every POST with one (status, headers, body),
    keeping each request body."""

    def __init__(self, status, headers=None, body=b""):
        self.bodies = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                server.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                reply(self, status, body if isinstance(body, bytes) else json.dumps(body).encode(), headers)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy must not see the local servers


def member(auth_url: str) -> Credentials:
    """As an openrc with OS_PROJECT_NAME only: no ids."""
    return Credentials(auth_url=auth_url, username="alice", password=PASSWORD, project_name="acme-prod",
                       user_domain_name="Default", project_domain_name="Default")


def token(swift_host: str) -> dict:
    return {"token": {
        "user": {"id": USER_ID, "name": "alice", "domain": {"id": "default", "name": "Default"}},
        "project": {"id": PROJECT_ID, "name": "acme-prod", "domain": {"id": "d0ma1n42", "name": "Corp"}},
        "roles": [{"name": "member"}, {"name": "reader"}],
        "catalog": [
            {"type": "identity", "id": "6d2fb3a4e51d4b0c9c4e0e6b5a1f3c2d",
             "endpoints": [{"interface": "public", "url": "http://127.0.0.1:5000/v3"}]},
            {"type": "object-store", "id": "x",
             "endpoints": [{"interface": "public", "url": f"https://{swift_host}:8080/v1/AUTH_{PROJECT_ID}"},
                           {"interface": "internal", "url": "http://Swift-Internal.corp:8080/v1"}]},
        ],
    }}


def test_the_keystone_check_learns_the_ids_and_hosts_to_mask():
    with Scripted(201, {"Content-Type": "application/json"}, token("Swift.Example.NET")) as keystone:
        cloud = identity.check(member(keystone.url + "/v3"))
    assert (cloud.cpid, cloud.admin) == ("6d2fb3a4e51d4b0c9c4e0e6b5a1f3c2d", False)
    assert (cloud.user_id, cloud.project_id) == (USER_ID, PROJECT_ID)
    assert cloud.domain_ids == ["d0ma1n42", "default"]
    assert cloud.hosts == ["127.0.0.1", "swift-internal.corp", "swift.example.net"]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_never_gets_the_password(status):
    with Scripted(201, {}, token("elsewhere")) as elsewhere:
        with Scripted(status, {"Location": elsewhere.url + "/v3/auth/tokens"}) as keystone:
            with pytest.raises(BadInput) as caught:
                identity.check(member(keystone.url + "/v3"))
        assert len(keystone.bodies) == 1 and PASSWORD.encode() in keystone.bodies[0]
        assert elsewhere.bodies == []
    message = str(caught.value)
    assert f"redirects (HTTP {status} to {elsewhere.url}/v3/auth/tokens)" in message and "OS_AUTH_URL" in message
    assert caught.value.exit_code == EXIT_BAD_INPUT and "\n" not in message and PASSWORD not in message


VERIFY_FAILED = ("HTTPSConnectionPool(host='cloud.example', port=5000): Max retries exceeded with url: /v3 (Caused by "
                 "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                 "{} (_ssl.c:1006)')))")


@pytest.mark.parametrize("reason, cacert, expected", [
    ("unable to get local issuer certificate", None,
     "the certificate of https://cloud.example:5000 (compute) is not trusted (unable to get local issuer "
     "certificate); set OS_CACERT to your cloud's CA bundle (a PEM file)"),
    ("self-signed certificate in certificate chain", "-----BEGIN CERTIFICATE-----",
     "the certificate of https://cloud.example:5000 (compute) is not trusted (self-signed certificate in certificate "
     "chain); the CA in OS_CACERT did not sign it: set OS_CACERT to your cloud's CA bundle (a PEM file)"),
    ("Hostname mismatch, certificate is not valid for 'cloud.example'.", "-----BEGIN CERTIFICATE-----",
     "the certificate of https://cloud.example:5000 (compute) is not trusted (Hostname mismatch, certificate is not "
     "valid for 'cloud.example'); reach it by a name its certificate names (no CA file can fix this)"),
])
def test_a_certificate_the_user_does_not_trust_is_named_with_what_to_do(reason, cacert, expected):
    found = identity.untrusted(Exception(VERIFY_FAILED.format(reason)))
    error = identity.tls_failure("https://cloud.example:5000", "compute", found,
                                 Credentials(auth_url="https://cloud.example:5000/v3", cacert=cacert))
    assert isinstance(error, BadInput) and error.exit_code == EXIT_BAD_INPUT
    assert str(error) == expected


def test_only_a_certificate_verification_failure_is_a_trust_problem():
    assert identity.untrusted(Exception("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")) is None
    assert identity.untrusted(OSError("[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] handshake failure")) is None


def test_with_several_untrusted_endpoints_the_others_are_named_too():
    error = identity.tls_failure("https://cloud.example:8774", "compute", "unable to get local issuer certificate",
                                 Credentials(auth_url="https://cloud.example:5000/v3"), also=["image", "network"])
    assert "(unable to get local issuer certificate), nor are those of image, network; set OS_CACERT" in str(error)
