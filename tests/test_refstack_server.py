"""The loopback RefStack server (tools/refstack_server.py) behaves like RefStack.

These tests pin the answers TCUP's upload code relies on: status codes, JSON
shapes, signature handling and the guideline test-list format. They run the
real refstack 2.1.0 application (installed into a cached venv on first use).
"""

import json
import os
import socket
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

import refstack_server  # noqa: E402
from conftest import require_module  # noqa: E402

pytestmark = pytest.mark.refstack  # every test here starts the real RefStack

OPENID = "https://openid.example/tcup-tester"


def call(method, url, body=None, headers=None, timeout=30):
    """Send a request; return (status, content type, body text), errors too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def results_doc(names, cpid="cpid-tcup", duration=42):
    """A results upload as refstack-client sends it."""
    return {"cpid": cpid, "duration_seconds": duration,
            "results": [{"name": n, "uuid": str(uuid.uuid4())} for n in names]}


def upload(server, body: bytes, headers=None):
    """POST raw bytes to the server's results endpoint."""
    headers = dict({"Content-Type": "application/json"}, **(headers or {}))
    return call("POST", f"{server.base_url}/v1/results", body, headers)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with refstack_server.RefStackServer(tmp_path_factory.mktemp("refstack")) as running:
        yield running


@pytest.fixture(scope="module")
def signing_key():
    """An RSA key pair: (private key, OpenSSH public key line)."""
    crypto = require_module("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import serialization

    key = crypto.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    return key, public.decode() + " tcup-test"


def sign(key, body: bytes) -> str:
    """Hex RSA PKCS#1 v1.5 SHA-256 signature, as X-Signature carries it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return key.sign(body, padding.PKCS1v15(), hashes.SHA256()).hex()


def test_anonymous_upload_round_trip(server):
    names = [f"tempest.api.identity.v3.test_tokens.TokensV3Test.test_{i}" for i in range(25)]
    status, ctype, text = upload(server, json.dumps(results_doc(names)).encode())
    assert (status, ctype) == (201, "application/json")
    answer = json.loads(text)
    assert set(answer) == {"test_id", "url"}
    assert uuid.UUID(answer["test_id"])
    assert answer["url"] == f"http://127.0.0.1:{server.port}/#/results/{answer['test_id']}"

    status, _, text = call("GET", f"{server.base_url}/v1/results/{answer['test_id']}")
    assert status == 200
    stored = json.loads(text)
    assert sorted(stored["results"]) == sorted(names)
    assert stored["duration_seconds"] == 42
    # Anonymous readers see neither the cpid nor the uuids.
    assert "cpid" not in stored
    assert stored["user_role"] == "user" and stored["meta"] == {}


def test_api_lives_under_the_api_prefix(server):
    assert server.base_url.endswith("/api")
    status, _, _ = call("GET", server.base_url.rsplit("/api", 1)[0] + "/v1/results")
    assert status == 404
    status, _, text = call("GET", f"{server.base_url}/v1/results")
    assert status == 200 and "pagination" in json.loads(text)


@pytest.mark.parametrize("doc, status, title", [
    ({"cpid": "c", "duration_seconds": 1, "results": []}, 400,
     "Uploaded results must contain at least one passing test."),
    ({"cpid": "c", "duration_seconds": 1, "results": [{"name": "t"}], "meta": {}}, 400,
     "Request doesnt correspond to schema"),
    ({"cpid": "c", "duration_seconds": "1", "results": [{"name": "t"}]}, 400,
     "Request doesnt correspond to schema"),
    ({"cpid": "c", "duration_seconds": 1, "results": [{"name": "t.x"}, {"name": "t.x"}]}, 500,
     "Internal Server Error"),
])
def test_rejected_uploads(server, doc, status, title):
    answer = upload(server, json.dumps(doc).encode())
    assert answer[:2] == (status, "application/json")
    assert json.loads(answer[2]) == {"title": title, "code": status}


def test_malformed_uuid_is_accepted(server):
    doc = {"cpid": "c", "duration_seconds": 1, "results": [{"name": "t", "uuid": "not-a-uuid"}]}
    assert upload(server, json.dumps(doc).encode())[0] == 201


def test_signed_upload_belongs_to_the_key_owner(server, signing_key):
    key, public_line = signing_key
    body = json.dumps(results_doc(["tempest.api.compute.test_signed"], cpid="cpid-signed")).encode()
    headers = {"X-Signature": sign(key, body), "X-Public-Key": public_line}

    status, _, text = upload(server, body, headers)
    assert status == 401
    assert "User with specified key not found" in json.loads(text)["detail"]

    server.register_key(public_line, openid=OPENID)
    status, _, text = upload(server, body, headers)
    assert status == 201
    test_id = json.loads(text)["test_id"]

    status, _, text = call("GET", f"{server.base_url}/v1/results/{test_id}")
    assert status == 401

    cookie = server.user_session_cookie(OPENID)
    status, _, text = call("GET", f"{server.base_url}/v1/results/{test_id}",
                           headers={"Cookie": cookie})
    assert status == 200
    stored = json.loads(text)
    assert stored["user_role"] == "owner"
    assert stored["cpid"] == "cpid-signed"
    assert stored["meta"] == {"user": OPENID}
    assert stored["results"] == ["tempest.api.compute.test_signed"]


def test_tampered_signed_upload_is_rejected(server, signing_key):
    key, public_line = signing_key
    body = json.dumps(results_doc(["tempest.api.compute.test_a"], cpid="cpid-1")).encode()
    headers = {"X-Signature": sign(key, body), "X-Public-Key": public_line}
    answer = upload(server, body.replace(b"cpid-1", b"cpid-2"), headers)
    assert answer[0] == 400
    assert json.loads(answer[2]) == {"title": "Signature verification failed", "code": 400}


def test_guideline_listing_and_required_tests(server):
    status, _, text = call("GET", f"{server.base_url}/v1/guidelines")
    assert status == 200
    listing = json.loads(text)
    assert [g["file"] for g in listing["powered"]] == ["2019.11.json", "2020.06.json", "next.json"]
    assert listing["dns"] == [{"name": "2020.06.json", "file": "dns.2020.06.json"}]

    query = "target=platform&type=required&flag=false&alias=false"
    status, ctype, text = call("GET", f"{server.base_url}/v1/guidelines/2020.06/tests?{query}")
    assert (status, ctype) == (200, "text/plain; charset=UTF-8")
    lines = text.split("\n")
    # refstack lists per capability: two object-storage tests sit in two
    # capabilities each, so 273 distinct tests come as 275 lines.
    assert len(lines) == 275 and len(set(lines)) == 273
    assert all(line.startswith("tempest.") and "[id-" in line and line.endswith("]")
               for line in lines)


def test_pause_holds_requests_until_resume(server):
    server.pause()
    try:
        with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(f"{server.base_url}/v1/results", timeout=1)
    finally:
        server.resume()
    assert call("GET", f"{server.base_url}/v1/results")[0] == 200


def test_stop_ends_the_server(tmp_path):
    running = refstack_server.RefStackServer(tmp_path).start()
    pid, port = running.pid, running.port
    running.pause()  # a hung server must stop too
    running.stop()
    running.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
