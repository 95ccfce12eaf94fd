"""A member run's workers and accounts: each worker locks an account of its
own, so a member run with fewer accounts than the --concurrency asked runs
with fewer workers, and one line says why; an admin account given in
--accounts is used as a member, and a warning says so.

The unit tests feed Progress the runner's `mode` event and check --accounts
against a small scripted Keystone on 127.0.0.1; the end-to-end tests (engine,
Keystone) run TCUP as a user does."""

import io
import json
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import LoopbackServer, openrc, reply, tcup
from tcup.contract import Cloud, Credentials
from tcup.launcher.cloud.login import member_accounts
from tcup.launcher.errors import BadInput
from tcup.launcher.progress import Progress
from tcup.masking import Mask

ONE_MEMBER = "tcup: running with your own account as a pre-provisioned account (member), concurrency 1"


def shown(asked, **mode) -> list:
    """What Progress prints for the runner's mode event, --concurrency ``asked``."""
    out = io.StringIO()
    Progress(Mask(), out=out, concurrency=asked).feed(1, json.dumps({"event": "mode", **mode}).encode())
    return out.getvalue().splitlines()


def test_a_member_run_with_one_account_says_why_it_runs_one_worker():
    assert shown(4, credentials="preprovisioned", concurrency=1, accounts=1) == [
        ONE_MEMBER,
        "tcup: note: concurrency 1, not 4: a member run needs one account per worker and has only yours; "
        "give more with --accounts FILE"]


def test_with_some_accounts_it_says_how_many_it_has():
    assert shown(4, credentials="preprovisioned", concurrency=2, accounts=2) == [
        "tcup: running with 2 pre-provisioned member accounts (yours and --accounts), concurrency 2",
        "tcup: note: concurrency 2, not 4: a member run needs one account per worker and has 2 (yours and "
        "--accounts); give more with --accounts FILE"]


@pytest.mark.parametrize("asked, mode", [
    (None, dict(credentials="preprovisioned", concurrency=1, accounts=1)),  # nothing asked: nothing to explain
    (1, dict(credentials="preprovisioned", concurrency=1, accounts=1)),
    (2, dict(credentials="preprovisioned", concurrency=2, accounts=3)),
    (4, dict(credentials="dynamic", concurrency=4, accounts=None)),  # an admin's Tempest makes its accounts
])
def test_no_note_when_the_run_has_the_workers_asked(asked, mode):
    lines = shown(asked, **mode)
    assert len(lines) == 1 and lines[0].startswith("tcup: running with ")


class Keystone(LoopbackServer):
    """A scripted Keystone: a token for every password request, with the
    admin role for the user names in ``admins``, the member role for others."""

    def __init__(self, admins):
        self.asked = []
        keystone = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                user = request["auth"]["identity"]["password"]["user"]["name"]
                keystone.asked.append(user)
                role = "admin" if user in admins else "member"
                content = json.dumps({"token": {
                    "user": {"id": f"id-{user}", "name": user, "domain": {"id": "default"}},
                    "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
                    "roles": [{"name": role}, {"name": "reader"}],
                    "catalog": [{"type": "identity", "id": "6d2fb3a4e51d4b0c9c4e0e6b5a1f3c2d",
                                 "endpoints": [{"interface": "public", "url": keystone.url + "/v3"}]}]}}).encode()
                reply(self, 201, content, {"Content-Type": "application/json", "X-Subject-Token": "t"})

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def accounts_file(tmp_path, *users):
    path = tmp_path / "accounts.yaml"
    path.write_text("".join(f"- {{username: {user}, password: pw-{user}, project_name: demo}}\n" for user in users))
    return path


def check_accounts(keystone, path):
    me = Credentials(auth_url=keystone.url + "/v3", username="me", password="pw", project_name="demo",
                     user_domain_name="Default", project_domain_name="Default")
    return member_accounts(path, me, Cloud(cpid="c", admin=False))


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy must not see the local servers


def test_an_admin_account_given_as_a_member_is_warned_about(tmp_path, capsys):
    path = accounts_file(tmp_path, "alice", "root", "bob")
    with Keystone(admins={"root"}) as keystone:
        accounts = check_accounts(keystone, path)
    assert [account.username for account in accounts] == ["alice", "root", "bob"]  # still used, as asked
    assert keystone.asked == ["alice", "root", "bob"]
    assert capsys.readouterr().err.splitlines() == [
        f"tcup: warning: --accounts {path}: account 2 (root) has the admin role, yet a member run uses every "
        "account as a member: tests on it run with admin rights; list member accounts only"]


def test_several_admin_accounts_are_one_line(tmp_path, capsys):
    path = accounts_file(tmp_path, "root", "alice", "admin2")
    with Keystone(admins={"root", "admin2"}) as keystone:
        check_accounts(keystone, path)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"tcup: warning: --accounts {path}: accounts 1 (root), 3 (admin2) have the admin role,")


def test_member_accounts_give_no_warning(tmp_path, capsys):
    with Keystone(admins=set()) as keystone:
        assert len(check_accounts(keystone, accounts_file(tmp_path, "alice", "bob"))) == 2
    assert capsys.readouterr().err == ""


def test_an_admin_running_with_accounts_is_still_refused(tmp_path):
    me = Credentials(auth_url="http://127.0.0.1:9/v3", username="me", password="pw", project_name="demo")
    with pytest.raises(BadInput, match="--accounts is for member runs"):
        member_accounts(accounts_file(tmp_path, "alice"), me, Cloud(cpid="c", admin=True))


# ---------------------------------------------------------------------------
# As a user runs it (engine and Keystone)

TWO_TESTS = r"test_tokens\.TokensV3Test\.test_(create|validate)_token\["


@pytest.mark.engine
@pytest.mark.keystone
def test_a_member_run_asked_for_four_workers_says_why_it_runs_one(image, keystone, tmp_path):
    done = tcup(["--no-upload", "--concurrency", "4", "--regex", TWO_TESTS, "--output", str(tmp_path / "runs")],
                openrc(keystone, "member", tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert lines.count(ONE_MEMBER) == 1
    note = ("tcup: note: concurrency 1, not 4: a member run needs one account per worker and has only yours; "
            "give more with --accounts FILE")
    assert lines.count(note) == 1 and lines.index(note) == lines.index(ONE_MEMBER) + 1


@pytest.mark.keystone
def test_an_admin_in_accounts_is_warned_about_before_anything_starts(keystone, tmp_path):
    """Against the real Keystone; the engine is pointed nowhere, so the run
    stops at the image phase (exit 3), after the accounts were checked."""
    admin = keystone.openrc("admin")
    path = tmp_path / "accounts.yaml"
    path.write_text(json.dumps([{"username": admin["OS_USERNAME"], "password": admin["OS_PASSWORD"],
                                 "project_name": admin["OS_PROJECT_NAME"]}]))
    env = openrc(keystone, "member", tmp_path, DOCKER_HOST="unix:///run/nothing-here.sock")
    done = tcup(["--no-upload", "--regex", TWO_TESTS, "--accounts", str(path)], env, timeout=300)
    assert done.returncode == 3, done.stderr[-3000:]
    warning = (f"tcup: warning: --accounts {path}: account 1 ({admin['OS_USERNAME']}) has the admin role, yet a "
               "member run uses every account as a member: tests on it run with admin rights; list member accounts only")
    assert done.stderr.splitlines().count(warning) == 1
    assert admin["OS_PASSWORD"] not in done.stderr
