"""The local Keystone the other tests and the demo use: a real server.

One module-wide cloud serves the token tests, and its teardown checks that
stop() leaves no process and no open port; the CLI test starts its own, as
``make demo`` does, and checks that it is reused and then fully stopped.
"""

import json
import os
import shlex
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import keystone_cloud  # noqa: E402
from keystone_cloud import KeystoneCloud  # noqa: E402

pytestmark = pytest.mark.keystone

ADMIN_PASSWORD = "adm 'quoted' $secret"  # openrc quoting must survive this
MEMBER_PASSWORD = "member-pw"
# Loopback only: never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def password_token(auth_url, user, password, project):
    """POST /v3/auth/tokens as a client would; returns (status, token id, body)."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
    }}
    request = urllib.request.Request(
        f"{auth_url}/auth/tokens", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            return (response.status, response.headers["X-Subject-Token"],
                    json.load(response)["token"])
    except urllib.error.HTTPError as exc:
        return exc.code, None, None


def get(auth_url, path, token):
    """GET with a token; returns (status, decoded body or None)."""
    request = urllib.request.Request(f"{auth_url}{path}", headers={"X-Auth-Token": token})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None


def port_open(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid):
    """True while any non-zombie process of group ``pgid`` exists."""
    return keystone_cloud._group_alive(pgid)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """One started cloud for the module; its teardown checks stop() leaves nothing."""
    workdir = tmp_path_factory.mktemp("keystone")
    with KeystoneCloud(workdir, admin_password=ADMIN_PASSWORD,
                       member_password=MEMBER_PASSWORD) as cloud:
        port, pid = cloud.port, cloud.pid
        assert port_open(port)
        yield cloud
    assert not port_open(port)
    assert not group_alive(pid)
    assert not (workdir / "keystone.pid").exists()
    cloud.stop()  # idempotent


def test_admin_token_has_admin_role_and_catalog(cloud):
    env = cloud.openrc("admin")
    status, _, token = password_token(env["OS_AUTH_URL"], env["OS_USERNAME"],
                                      env["OS_PASSWORD"], env["OS_PROJECT_NAME"])
    assert status == 201
    assert token["user"]["name"] == "admin"
    assert token["project"]["name"] == "admin"
    assert "admin" in {role["name"] for role in token["roles"]}
    services = token["catalog"]
    assert [s["type"] for s in services] == ["identity"]
    endpoints = {(e["interface"], e["url"], e["region_id"]) for e in services[0]["endpoints"]}
    assert endpoints == {(i, cloud.auth_url, "RegionOne")
                         for i in ("public", "internal", "admin")}


def test_member_token_has_member_and_reader_only(cloud):
    env = cloud.openrc("member")
    status, token_id, token = password_token(env["OS_AUTH_URL"], env["OS_USERNAME"],
                                             env["OS_PASSWORD"], env["OS_PROJECT_NAME"])
    assert status == 201
    assert token["user"]["name"] == "demo"
    assert token["project"]["name"] == "demo"
    assert sorted(role["name"] for role in token["roles"]) == ["member", "reader"]
    # What a member may and may not do with it.
    status, catalog = get(cloud.auth_url, "/auth/catalog", token_id)
    assert status == 200 and len(catalog["catalog"]) == 1
    assert get(cloud.auth_url, "/users", token_id)[0] == 403


def test_wrong_password_is_refused(cloud):
    status, _, _ = password_token(cloud.auth_url, "demo", "not-the-password", "demo")
    assert status == 401


def send(auth_url, method, path, token, body=None):
    """One JSON request with a token; returns (status, decoded body or None)."""
    request = urllib.request.Request(
        f"{auth_url}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_a_deleted_users_application_credentials_leave_nothing_behind(cloud):
    """Tempest and the leaks matrix make a user, give it an application
    credential and delete the user. Each following application credential
    must still be made (sqlite without foreign keys kept the old role rows
    and answered 409 from the second one on)."""
    admin = cloud.openrc("admin")
    _, admin_token, _ = password_token(cloud.auth_url, "admin", admin["OS_PASSWORD"], "admin")
    project = get(cloud.auth_url, "/projects?name=demo", admin_token)[1]["projects"][0]["id"]
    role = get(cloud.auth_url, "/roles?name=member", admin_token)[1]["roles"][0]["id"]
    made = []
    for round_ in range(3):
        name = f"appcred-{round_}"
        user = {"name": name, "domain_id": "default", "password": "pw", "default_project_id": project}
        status, body = send(cloud.auth_url, "POST", "/users", admin_token, {"user": user})
        assert status == 201
        user_id = body["user"]["id"]
        assert send(cloud.auth_url, "PUT", f"/projects/{project}/users/{user_id}/roles/{role}", admin_token)[0] == 204
        _, token, _ = password_token(cloud.auth_url, name, "pw", "demo")
        status, body = send(cloud.auth_url, "POST", f"/users/{user_id}/application_credentials", token,
                            {"application_credential": {"name": "ci"}})
        made.append(status)
        assert send(cloud.auth_url, "DELETE", f"/users/{user_id}", admin_token)[0] == 204
    assert made == [201, 201, 201]


def test_openrc_files_quote_and_protect_secrets(cloud):
    for who in ("admin", "member"):
        path = cloud.workdir / f"{who}-openrc"
        assert path.stat().st_mode & 0o777 == 0o600
        # Let a real shell read it back.
        out = subprocess.run(
            ["bash", "-c", f". {shlex.quote(str(path))} && env -0"],
            capture_output=True, check=True, env={"PATH": os.environ["PATH"]}).stdout
        exported = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
        expected = cloud.openrc(who)
        assert len(expected) == 9
        assert {k: exported.get(k) for k in expected} == expected
    assert cloud.openrc("admin")["OS_PASSWORD"] == ADMIN_PASSWORD
    with pytest.raises(ValueError):
        cloud.openrc("root")


def test_cli_start_reuse_stop(tmp_path):
    script = [sys.executable, str(TOOLS / "keystone_cloud.py")]
    workdir = tmp_path / "cli"

    def cli(*args):
        return subprocess.run(script + list(args) + ["--dir", str(workdir)],
                              capture_output=True, text=True, timeout=600)

    started = cli("start")
    assert started.returncode == 0, started.stderr
    auth_url = started.stdout.strip()
    pid = int((workdir / "keystone.pid").read_text())
    try:
        port = int(auth_url.rsplit(":", 1)[1].split("/")[0])
        assert auth_url == f"http://127.0.0.1:{port}/v3"
        assert f"export OS_AUTH_URL={auth_url}\n" in (workdir / "member-openrc").read_text()
        # A second start finds the server running and reuses it.
        again = cli("start")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == auth_url
        assert int((workdir / "keystone.pid").read_text()) == pid
        # ...but not with other credentials, nor on another port.
        assert cli("start", "--member-password", "other").returncode == 1
        assert password_token(auth_url, "demo", "demo-secret", "demo")[0] == 201
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not port_open(port)
    assert not group_alive(pid)
    assert cli("stop").returncode == 0  # idempotent
