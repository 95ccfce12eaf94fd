"""No secret gets out in any spelling, cut or reshaped, on either side of the
container; masking never breaks the events; what the cloud says reaches the
terminal without its control sequences.

The runner's mask (secrets and identifiers) and the launcher's (secrets) are
the same ``tcup.masking.Mask``; each spelling is checked on both.
"""

import base64
import html
import io
import json
import os
import sys
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape, quoteattr

import pytest

from tcup import contract
from tcup.contract import Cloud, Credentials, Selection, Settings
from tcup.masking import Mask
from tcup.launcher import errors, progress
from tcup.runner import events, process, redact
from tcup.runner.errors import InfraError

AUTH_URL = "https://keystone.example.net:5000/v3"
# Spaces, both quotes, a backslash, a control character and non-ASCII letters.
CANARY = "c4n4ry \"q' \\b\x07 \u00e9t\u00e9 Ω-pw"


def credentials(**overrides) -> Credentials:
    values = dict(auth_url=AUTH_URL, username="alice.cloudy", password=CANARY, project_name="acme-prod",
                  user_domain_name="Default", project_domain_name="Default")
    values.update(overrides)
    return Credentials(**values)


@pytest.fixture(params=["runner", "launcher"])
def mask(request) -> Mask:
    """The runner's and the launcher's mask for the same credentials."""
    if request.param == "runner":
        return redact.for_credentials(credentials())
    return progress.secret_mask(credentials())


@pytest.fixture
def runner_mask():
    """Sets the runner's mask for a test, and puts the empty one back."""
    def use(**overrides):
        events.use_mask(redact.for_credentials(credentials(**overrides)))
    yield use
    events.use_mask(Mask())


# --- every spelling ---------------------------------------------------------------

BODY = {"auth": {"identity": {"password": {"user": {"name": "alice.cloudy", "password": CANARY}}}}}
SPELLED = {
    # Tempest's "Details: {...}" and tracebacks quote Python reprs.
    "str repr": (repr({"password": CANARY}), repr(CANARY)[1:-1]),
    "bytes repr": (repr(CANARY.encode()), repr(CANARY.encode())[2:-1]),
    "JSON": (json.dumps(BODY), json.dumps(CANARY)[1:-1]),
    "JSON, not ASCII": (json.dumps(BODY, ensure_ascii=False), json.dumps(CANARY, ensure_ascii=False)[1:-1]),
    "JSON in JSON": (json.dumps({"body": json.dumps(BODY)}), json.dumps(json.dumps(CANARY))[1:-1]),
    "JSON in a repr": (repr({"body": json.dumps(BODY)}), repr(json.dumps(CANARY))[1:-1]),
    "percent": (f"GET /x?password={quote(CANARY, safe='')}", quote(CANARY, safe="")),
    "percent, lower-case hex": (f"p={quote(CANARY, safe='').lower()}", quote(CANARY, safe="").lower()),
    "quote_plus": (f"user=alice&password={quote_plus(CANARY)}", quote_plus(CANARY)),
    "XML text": (f"<password>{escape(CANARY)}</password>", escape(CANARY)),
    "XML attribute": (f"<user password={quoteattr(CANARY)}/>", quoteattr(CANARY)[1:-1]),
    "HTML": (f"<p>{html.escape(CANARY)}</p>", html.escape(CANARY)),
}


@pytest.mark.parametrize("spelling", sorted(SPELLED))
def test_every_spelling_of_a_secret_is_masked(mask, spelling):
    text, spelled = SPELLED[spelling]
    assert spelled in text  # the sample does hold the secret in that spelling
    masked = mask.text(text)
    assert spelled not in masked and CANARY not in masked and "***" in masked


def leaks_in_base64(text: str, secret: bytes) -> bool:
    """Whether any base64 run of text, decoded at any alignment, holds six
    consecutive bytes of secret."""
    import re

    for run in re.findall(r"[A-Za-z0-9+/_=-]{8,}", text):
        for start in range(4):
            piece = run[start:]
            piece = piece[:len(piece) // 4 * 4]
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    data = decode(piece)
                except ValueError:
                    continue
                if any(secret[i:i + 6] in data for i in range(len(secret) - 5)):
                    return True
    return False


@pytest.mark.parametrize("user", ["ab", "abc", "abcd"])  # the secret at each of base64's three alignments
def test_a_secret_in_base64_is_masked_wherever_it_starts(mask, user):
    basic = base64.b64encode(f"{user}:{CANARY}".encode()).decode()
    text = f"Authorization: Basic {basic}\ntoken {base64.urlsafe_b64encode(CANARY.encode()).decode()}"
    assert leaks_in_base64(text, CANARY.encode())
    assert not leaks_in_base64(mask.text(text), CANARY.encode())


# Its base64 holds both "+" and "/" ("fn5+Pz8/..."), which the URL-safe alphabet writes "-" and "_".
PLUS_SLASH = "~~~???pw~~~???"


@pytest.mark.parametrize("prefix", ["", "a", "ab"])  # each of base64's three alignments
def test_a_secret_is_masked_in_url_safe_base64_too(prefix):
    standard = base64.b64encode((prefix + PLUS_SLASH).encode()).decode()
    url_safe = base64.urlsafe_b64encode((prefix + PLUS_SLASH).encode()).decode()
    assert "+" in standard and "/" in standard and url_safe != standard
    for mask in (redact.for_credentials(credentials(password=PLUS_SLASH)),
                 progress.secret_mask(credentials(password=PLUS_SLASH))):
        for encoded, text in ((standard, f"Authorization: Basic {standard}"), (url_safe, f"?token={url_safe}&x=1")):
            masked = mask.text(text)
            # What a cut at base64's alignment leaves (a character or three at each edge) is no piece of it.
            assert not any(encoded[i:i + 8] in masked for i in range(len(encoded) - 7)), masked


def test_masking_twice_changes_nothing():
    # "e" is in every label; the labels must survive a second pass.
    mask = redact.for_credentials(credentials(password="e"))
    once = mask.text(f"alice.cloudy at {AUTH_URL}/auth: e")
    assert once == "<username> at <auth-url>/auth: ***" and mask.text(once) == once


# --- mask first, then cut or reshape ---------------------------------------------

def test_the_launcher_masks_what_is_left_of_a_secret_someone_cut():
    """An older runner (or any cutter) ending a message mid-password."""
    secret = "S3cr3t-Passw0rd-XYZ"
    seen = progress.Progress(progress.secret_mask(credentials(password=secret)), out=io.StringIO())
    cut = f"discover failed: KeyError: {'E' * 40}{secret}"[:-11]
    assert cut.endswith("S3cr3t-P")
    seen.feed(1, contract.event("error", kind="infra", message=cut).encode())
    seen.feed(2, b"Passw0rd-XYZ' at line 2")  # and the rest, on the next line
    code, message = seen.failure(3)
    assert code == 3 and "S3cr3t" not in message and message.endswith("EEEE***")
    assert seen.log_tail == ["***' at line 2"]


def test_a_failed_commands_message_is_masked_before_it_is_cut(runner_mask, tmp_path, capsys):
    secret = "S3cr3t-Passw0rd-XYZ"
    runner_mask(password=secret)
    what = "discover-tempest-config"
    # Long enough for the message cut to fall inside the password.
    padding = process.MESSAGE_CHARS - len(f"{what} failed (exit 1): KeyError: ") - 8
    script = f"import sys; sys.stderr.write('KeyError: ' + 'E' * {padding} + {secret!r} + '\\n'); sys.exit(1)"
    with pytest.raises(InfraError) as caught:
        process.run([sys.executable, "-c", script], env=dict(os.environ), cwd=str(tmp_path), timeout=60, what=what)
    message = str(caught.value)
    assert "S3cr" not in message and "***" in message and len(message) <= process.MESSAGE_CHARS
    assert "S3cr" not in capsys.readouterr().err


@pytest.mark.parametrize("secret", ["hunter2 ", "tab\tpass"])
def test_a_logged_line_is_masked_before_it_is_stripped(runner_mask, capsys, secret):
    runner_mask(password=secret)
    tail = []
    process.log_lines(io.BytesIO(f"password: {secret}\n".encode()), tail, "tempest").join(5)
    assert tail == ["password: ***"]
    assert capsys.readouterr().err == "tempest: password: ***\n"


@pytest.mark.parametrize("secret", ["correct horse  battery staple", "tab\tpass"])
def test_an_error_is_masked_before_it_is_put_on_one_line(runner_mask, capsys, secret):
    from tcup.runner.__main__ import report

    runner_mask(password=secret)
    assert report(InfraError(f"login as alice.cloudy with {secret} refused\n  (HTTP 401)")) == 3
    out, err = capsys.readouterr()
    event = contract.parse_event(out.splitlines()[-1])
    assert event["message"] == "login as <username> with *** refused (HTTP 401)"
    assert "horse" not in out + err and "pass" not in out + err


# --- the events survive any password -----------------------------------------------

def run_events(secret: str):
    """The lines a runner with this password prints for a small run: one
    test passes, one fails quoting the password."""
    out = io.StringIO()
    events.use_mask(redact.for_credentials(credentials(password=secret)))
    stdout, sys.stdout = sys.stdout, out
    try:
        events.emit("selected", count=2, missing=[])
        events.emit("mode", credentials="preprovisioned", concurrency=1)
        for name, status in (("tempest.api.a.T.test_a", "success"), ("tempest.api.b.T.test_b", "fail")):
            events.emit("test", name=name, uuid="6f8e4436-fc96-4282-8122-e41df57197a9", status="inprogress", reason=None)
            reason = f"Unauthorized: password {secret} refused" if status == "fail" else None
            events.emit("test", name=name, uuid="6f8e4436-fc96-4282-8122-e41df57197a9", status=status, reason=reason)
        events.emit("done", passed=1, failed=1, skipped=0, admin_skipped=0, duration_seconds=10)
    finally:
        sys.stdout = stdout
        events.use_mask(Mask())
    return out.getvalue().splitlines()


@pytest.mark.parametrize("secret", ["done", "0", "e", "fail", "event", "test", "1"])
def test_a_short_or_common_password_breaks_no_event(secret):
    lines = run_events(secret)
    # The runner masks the reason, never a status, a name or the JSON.
    sent = [contract.parse_event(line) for line in lines]
    assert all(sent) and [e["status"] for e in sent if e["event"] == "test"][-1] == "fail"
    seen = progress.Progress(progress.secret_mask(credentials(password=secret)), out=io.StringIO())
    for line in lines:
        seen.feed(1, line.encode())
    assert seen.failure(1) is None and seen.error is None
    assert seen.done["passed"] == 1 and seen.done["failed"] == 1 and seen.counts == {"running": 0, "passed": 1, "failed": 1, "skipped": 0}
    assert seen.mode == {"event": "mode", "credentials": "preprovisioned", "concurrency": 1}


def test_the_launcher_masks_the_text_fields_of_an_event_the_runner_did_not():
    """Defence in depth: a reason that reached the launcher unmasked."""
    seen = progress.Progress(progress.secret_mask(credentials(password="done")), out=io.StringIO())
    seen.feed(1, contract.event("error", kind="infra", message="bad password done").encode())
    assert seen.failure(None) == (3, "bad password ***")


def test_every_text_of_every_event_is_masked_however_deep():
    """The choices and the cleanup name the cloud's things: network names
    with the user's or project's name in them, project ids, hosts in the
    commands that remove what is left. A kind, a status or a test's name
    stays whole, even when the password is the same word."""
    project_id = "8f1e0c6a9b5d4e2f8a7c6b5d4e3f2a1b"
    cloud = Cloud(cpid="c", admin=False, project_id=project_id, hosts=["neutron.example.org"])
    settings = Settings(credentials(password="network"), cloud, Selection(label="x", regex="."))
    out = io.StringIO()
    events.use_mask(redact.for_settings(settings))
    stdout, sys.stdout = sys.stdout, out
    try:
        events.emit("choices", image=None, network={"id": project_id, "name": "acme-prod-net"})
        events.emit("cleanup", removed=[{"kind": "network", "id": project_id, "name": "alice.cloudy-net",
                                         "project": project_id}],
                    left=[{"kind": "network", "id": "n1", "name": "tempest-net", "project": project_id,
                           "remove_with": f"openstack --os-project-id {project_id} network delete n1"}],
                    notes=["https://Neutron.Example.ORG:9696 answered 503 for alice.cloudy"])
        events.emit("test", name="tempest.api.network.test_networks.NetworksTest.test_network", uuid=None,
                    status="fail", reason="password network refused")
    finally:
        sys.stdout = stdout
        events.use_mask(Mask())
    choices, cleanup, test = (json.loads(line) for line in out.getvalue().splitlines())
    assert choices["network"] == {"id": "<project-id>", "name": "<project>-net"}
    assert cleanup["removed"] == [{"kind": "network", "id": "<project-id>", "name": "<username>-net",
                                   "project": "<project-id>"}]
    assert cleanup["left"][0]["remove_with"] == "openstack --os-project-id <project-id> *** delete n1"
    assert cleanup["left"][0]["kind"] == "network"
    assert cleanup["notes"] == ["https://<cloud-host>:9696 answered 503 for <username>"]
    assert (test["name"], test["status"], test["reason"]) == (
        "tempest.api.network.test_networks.NetworksTest.test_network", "fail", "password *** refused")
    # The launcher masks what the runner let through, as deep.
    seen = progress.Progress(progress.secret_mask(credentials(password="s3cr3t-pw")), out=io.StringIO())
    seen.feed(1, contract.event("cleanup", removed=0, left=[{"kind": "server", "id": "s1", "name": "x",
                                                             "remove_with": "nova delete s3cr3t-pw"}],
                                notes=["s3cr3t-pw"]).encode())
    assert seen.cleanup == {"removed": 0, "left": [{"kind": "server", "id": "s1", "name": "x",
                                                    "remove_with": "nova delete ***"}], "notes": ["***"]}


# --- identifiers the user did not give ----------------------------------------------

def test_ids_and_hosts_from_keystone_are_masked_in_any_case():
    """Only OS_PROJECT_NAME was set: the ids come from the token, the hosts
    from the catalog; host names are matched in any case."""
    project_id, user_id = "8f1e0c6a9b5d4e2f8a7c6b5d4e3f2a1b", "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
    cloud = Cloud(cpid="c", admin=False, user_id=user_id, project_id=project_id, domain_ids=["default", "d0ma1n42"],
                  hosts=["swift.example.net", "nova.example.org", "keystone.example.net"])
    settings = Settings(credentials(), cloud, Selection(label="x", regex="."),
                        proxy={"https_proxy": "http://proxyuser:pr0xy-pw@proxy.example:3128"})
    # What crosses to the runner carries them.
    mask = redact.for_settings(Settings.from_line(settings.to_line()))
    text = (f"GET https://SWIFT.Example.NET:8080/v1/AUTH_{project_id}/c as user {user_id} in domain d0ma1n42\n"
            "POST https://Nova.Example.ORG/v2.1/servers\n"
            "HTTPS://KEYSTONE.EXAMPLE.NET:5000/v3/auth/tokens via http://proxyuser:pr0xy-pw@proxy.example:3128")
    masked = mask.text(text)
    for needle in (project_id, user_id, "d0ma1n42", "swift.example.net", "nova.example.org", "keystone.example.net",
                   "pr0xy-pw", "proxyuser"):
        assert needle not in masked.lower()
    assert "AUTH_<project-id>" in masked and "https://<cloud-host>:8080/" in masked
    assert "<auth-url>/auth/tokens" in masked


# --- what reaches the terminal -------------------------------------------------------

ATTACK = "\x1b]0;owned\x07\x1b[2J\x1b[1;1Hall tests passed\r\u202e"


def test_what_the_cloud_says_is_printed_without_control_sequences(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    seen = progress.Progress(Mask(), out=terminal)
    seen.feed(1, contract.event("selected", count=1, missing=[]).encode())
    seen.feed(1, contract.event("test", name="tempest.api.T.test_x", uuid=None, status="fail",
                                reason=f"Conflict: {ATTACK}").encode())
    seen.feed(1, contract.event("phase", name="run", message=f"running {ATTACK}").encode())
    (tmp_path / contract.SUMMARY_FILE).write_text(f"Failures:\n  x: {ATTACK}\n")
    from tcup.launcher.results.finish import closing_text

    printed = terminal.getvalue().replace("\r\x1b[K", "") + closing_text(tmp_path)
    assert "\x1b" not in printed and "\u202e" not in printed and "\x07" not in printed
    assert "Conflict: ]0;owned" not in printed and "all tests passed" in printed
    assert "\x1b" not in str(errors.TcupError(f"server said: {ATTACK}"))
