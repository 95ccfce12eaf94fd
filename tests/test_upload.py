"""Uploading saved results: the body, its checks, the target URL, signing keys, retries, repeats.

The server here is a small scripted ``http.server`` on 127.0.0.1 that answers
what each test needs (201, 503, 400, a hang); the real RefStack server is met
in test_upload_refstack.py.
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from conftest import _unavailable, require_module  # noqa: E402
from tcup.launcher.upload import signing
from tcup.launcher.upload import refstack as upload  # noqa: E402
from tcup.launcher.upload import body as upload_body  # noqa: E402
from tcup.launcher.upload.signing import SigningError  # noqa: E402
from tcup.launcher.upload.refstack import Retry, UploadError  # noqa: E402

try:
    import bcrypt  # noqa: F401  (cryptography needs it for encrypted OpenSSH keys)

    HAVE_BCRYPT = True
except ImportError:
    HAVE_BCRYPT = False

# The exit codes as README documents them, not as the code names them.
EXIT_BAD_INPUT, EXIT_UPLOAD_FAILED = 2, 4

# Small bounds: every failing test ends in seconds.
FAST = Retry(tries=3, initial=0.05, max_total=10.0, request_timeout=2.0)
PASSPHRASE = "correct horse 42"
# What a careless refstack.json might carry besides the results: none of it may leave.
PRIVATE = {
    "user": "alice@example.com",
    "username": "alice",
    "project_name": "secret-project",
    "user_domain_name": "corp-domain",
    "region_name": "region-north-7",
    "auth_url": "https://keystone.internal.example:5000/v3",
}


# ---------------------------------------------------------------------------
# Helpers: results on disk, a scripted server, keys


def passed_tests(count: int) -> list:
    """``count`` passed tests as the runner writes them, with fixed-format uuids."""
    return [
        {"name": f"tempest.api.compute.servers.test_servers.ServersTest.test_{i}", "uuid": str(uuid.uuid4())}
        for i in range(count)
    ]


def make_run(parent: Path, tests=None, **extra) -> Path:
    """A run directory as the launcher saves it: 0700, files 0600, refstack.json and run.json."""
    run = parent / "run-20260101T000000Z"
    run.mkdir(mode=0o700)
    doc = {"cpid": "6d2fb3a4e51d4b0c9c4e0e6b5a1f3c2d", "duration_seconds": 321, "results": tests or passed_tests(3)}
    doc.update(extra)
    for name, content in (
        ("refstack.json", doc),
        ("run.json", {"tcup_version": "0.1.0", "label": "2020.06 platform", "complete": True}),
        ("summary.txt", "3 passed\n"),
    ):
        path = run / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        path.chmod(0o600)
    return run


def snapshot(directory: Path) -> dict:
    """Every file's name, mode and bytes: to prove a failed upload changed nothing."""
    return {p.name: (stat.S_IMODE(p.stat().st_mode), p.read_bytes()) for p in sorted(directory.iterdir())}


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering each POST with the next scripted answer.

    An answer is (status, headers, body) or "hang" (hold the request until the
    server stops). The last answer repeats. Every request is kept for asserts.
    A GET of a path in ``lists`` answers RefStack's list of results; any
    other GET, 404.
    """

    def __init__(self, *answers, lists=()):
        self.answers = list(answers)
        self.requests = []  # (path, headers dict, body bytes)
        self.lists, self.gets = set(lists), []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                server.requests.append((self.path, dict(self.headers), body))
                index = min(len(server.requests), len(server.answers)) - 1
                answer = server.answers[index]
                if answer == "hang":
                    server.release.wait(30)  # bounded: the fixture releases it at teardown
                    return
                status, headers, content = answer
                content = content if isinstance(content, bytes) else json.dumps(content).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.gets.append(self.path)
                found = self.path in server.lists
                content = json.dumps({"data": [], "pagination": {}} if found else {"title": "Not Found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def created(test_id="0c6b1e1e-8d5a-4a57-9d26-2f7c1c1b4a10"):
    """RefStack's 201 answer."""
    answer = {"test_id": test_id, "url": f"https://refstack.example/#/results/{test_id}"}
    return 201, {"Content-Type": "application/json"}, answer


def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_key(path: Path, key, fmt: str, passphrase: str = None) -> Path:
    """``key`` written as ssh-keygen or openssl would: fmt is "pem" (traditional), "pkcs8" or "openssh"."""
    from cryptography.hazmat.primitives import serialization as s

    formats = {"pem": s.PrivateFormat.TraditionalOpenSSL, "pkcs8": s.PrivateFormat.PKCS8, "openssh": s.PrivateFormat.OpenSSH}
    encryption = s.BestAvailableEncryption(passphrase.encode()) if passphrase else s.NoEncryption()
    path.write_bytes(key.private_bytes(s.Encoding.PEM, formats[fmt], encryption))
    path.chmod(0o600)
    return path


def verify(line: str, signature_hex: str, data: bytes) -> None:
    """Check a signature the way RefStack does: with the key parsed from the OpenSSH public line."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    public = serialization.load_ssh_public_key(line.encode())
    public.verify(bytes.fromhex(signature_hex), data, padding.PKCS1v15(), hashes.SHA256())


class Asked:
    """A passphrase callback that counts how often it is asked."""

    def __init__(self, answer=PASSPHRASE):
        self.answer, self.calls = answer, 0

    def __call__(self):
        self.calls += 1
        return self.answer


# ---------------------------------------------------------------------------
# Where to upload


def test_url_precedence_is_flag_then_environment_then_default():
    env = {"REFSTACK_URL": "https://refstack.internal.example/api/"}
    assert upload.upload_url("http://127.0.0.1:8000/api", env) == "http://127.0.0.1:8000/api"
    assert upload.upload_url(None, env) == "https://refstack.internal.example/api"
    assert upload.upload_url(None, {}) == upload.DEFAULT_URL == "https://refstack.openstack.org/api"
    assert upload.upload_url(None, {"REFSTACK_URL": ""}) == upload.DEFAULT_URL


@pytest.mark.parametrize(
    "bad", ["ftp://refstack.example/api", "refstack.example/api", "http://", "https:///api", "", "http://h:99999/api",
            "http://user:pw@refstack.example/api"]
)
def test_a_bad_url_is_one_line_naming_its_source(bad):
    with pytest.raises(UploadError) as caught:
        upload.upload_url(bad, {})
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--upload-url")
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "user:pw@" not in message  # a password in the URL is not echoed


def test_a_bad_environment_url_names_the_variable():
    with pytest.raises(UploadError, match="^REFSTACK_URL 'file:///etc/passwd' is not an http"):
        upload.upload_url(None, {"REFSTACK_URL": "file:///etc/passwd"})


# ---------------------------------------------------------------------------
# The body: only anonymous fields, checked before sending


def test_the_body_holds_only_cpid_duration_and_test_names_and_uuids():
    tests = passed_tests(4)
    for test in tests:
        test.update(status="success", user="alice", project_id="p-123")
    doc = {"cpid": "c1", "duration_seconds": 10, "results": tests, **PRIVATE, "meta": {"region": "region-north-7"}}

    body = upload_body.request_body(doc)
    sent = upload_body.encode(body).decode()

    assert set(body) == {"cpid", "duration_seconds", "results"}
    assert [set(t) for t in body["results"]] == [{"name", "uuid"}] * 4
    assert [t["name"] for t in body["results"]] == [t["name"] for t in tests]
    for word in list(PRIVATE.values()) + ["p-123", "alice", "success"]:
        assert word not in sent


def test_valid_results_have_no_problems():
    assert upload_body.problems({"cpid": "c", "duration_seconds": 0, "results": passed_tests(2)}) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"cpid": ""}, "cpid is missing or empty"),
        ({"cpid": None}, "cpid is missing or empty"),
        ({"duration_seconds": -1}, "duration_seconds must be a whole number >= 0, not -1"),
        ({"duration_seconds": 1.5}, "duration_seconds must be a whole number >= 0, not 1.5"),
        ({"duration_seconds": "12"}, "duration_seconds must be a whole number >= 0, not '12'"),
        ({"duration_seconds": True}, "duration_seconds must be a whole number >= 0, not True"),
        ({"results": []}, "there are no passed tests to upload"),
        ({"results": {"a": 1}}, "results is missing or not a list"),
    ],
)
def test_each_problem_of_the_run_is_named(change, expected):
    doc = {"cpid": "c", "duration_seconds": 5, "results": passed_tests(2), **change}
    assert upload_body.problems(doc) == [expected]


def test_bad_uuids_and_duplicate_names_are_each_named_once():
    tests = passed_tests(3)
    tests[0]["uuid"] = "not-a-uuid"
    tests[1]["uuid"] = tests[1]["uuid"].replace("-", "")  # Python parses it; RefStack's format is hyphenated
    del tests[2]["uuid"]
    tests += [dict(tests[0], uuid=str(uuid.uuid4())), dict(tests[0], uuid=str(uuid.uuid4()))]

    found = upload_body.problems({"cpid": "c", "duration_seconds": 5, "results": tests})

    assert len(found) == 4, found
    assert found[0] == f"test {tests[0]['name']} has uuid 'not-a-uuid', which is not a UUID"
    assert "which is not a UUID" in found[1] and "None, which is not a UUID" in found[2]
    assert found[3] == f"test {tests[0]['name']} is listed 3 times"


def test_the_upload_error_lists_problems_on_one_line_and_counts_the_rest():
    tests = passed_tests(8)
    for test in tests:
        test["uuid"] = "x"
    with pytest.raises(UploadError) as caught:
        upload_body.request_body({"cpid": "", "duration_seconds": 1, "results": tests})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("these results cannot be uploaded: cpid is missing or empty; ")
    assert message.endswith("; and 4 more")
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_invalid_results_are_not_sent(tmp_path):
    run = make_run(tmp_path, tests=[{"name": "t", "uuid": "nope"}])
    with ScriptedServer(created()) as server, pytest.raises(UploadError, match="not a UUID"):
        upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    assert server.requests == []
    assert not (run / "uploads.json").exists()


# ---------------------------------------------------------------------------
# A successful upload and its record


def test_an_anonymous_upload_sends_the_body_and_records_the_result_url(tmp_path):
    run = make_run(tmp_path, **PRIVATE)
    said = []
    with ScriptedServer(created()) as server:
        url = upload.upload(run, server.base_url + "/", retry=FAST, log=said.append)

    assert url == "https://refstack.example/#/results/0c6b1e1e-8d5a-4a57-9d26-2f7c1c1b4a10"
    assert len(server.requests) == 1
    path, headers, body = server.requests[0]
    assert path == "/api/v1/results"
    assert "X-Signature" not in headers and "X-Public-Key" not in headers
    sent = json.loads(body)
    stored = json.loads((run / "refstack.json").read_text())
    assert set(sent) == {"cpid", "duration_seconds", "results"}
    assert sent["results"] == [{"name": t["name"], "uuid": t["uuid"]} for t in stored["results"]]
    assert said == ["uploading 3 passed tests to " + server.base_url]

    record = json.loads((run / "uploads.json").read_text())
    assert stat.S_IMODE((run / "uploads.json").stat().st_mode) == 0o600
    assert len(record) == 1
    assert record[0]["server"] == server.base_url
    assert record[0]["url"] == url and record[0]["test_id"] == "0c6b1e1e-8d5a-4a57-9d26-2f7c1c1b4a10"
    assert record[0]["signed"] is False
    assert record[0]["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert record[0]["uploaded_at"].endswith("+00:00")
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


def test_a_bare_json_file_gets_its_record_beside_it(tmp_path):
    results = tmp_path / "my-results.json"
    results.write_text(json.dumps({"cpid": "c", "duration_seconds": 1, "results": passed_tests(1)}))
    with ScriptedServer(created()) as server:
        upload.upload(results, server.base_url, retry=FAST, log=lambda m: None)
    record = json.loads((tmp_path / "my-results.json.uploads.json").read_text())
    assert len(record) == 1 and record[0]["server"] == server.base_url


def test_a_run_marked_incomplete_is_not_uploaded(tmp_path):
    run = make_run(tmp_path)
    (run / "run.json").write_text(json.dumps({"complete": False}))
    with ScriptedServer(created()) as server, pytest.raises(UploadError, match="marked incomplete"):
        upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    assert server.requests == []


@pytest.mark.parametrize("how", ["named .incomplete", "without run.json"])
def test_an_incomplete_run_directory_is_not_uploaded_unless_forced(tmp_path, how):
    run = make_run(tmp_path)
    (run / "run.json").unlink()  # the launcher writes it last, when it marks the run complete
    if how == "named .incomplete":
        run = run.rename(run.with_name(run.name + ".incomplete"))
    with ScriptedServer(created()) as server:
        with pytest.raises(UploadError, match=r"is an incomplete run \(no readable run\.json\); its results are "
                                              r"partial \(--force uploads them anyway\)$") as caught:
            upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
        assert caught.value.exit_code == EXIT_BAD_INPUT and server.requests == []
        said = []
        upload.upload(run, server.base_url, force=True, retry=FAST, log=said.append)
    assert len(server.requests) == 1 and said[0].startswith(f"warning: {run} is an incomplete run")


def test_tcup_upload_refuses_an_incomplete_run_in_one_line(tmp_path):
    run = make_run(tmp_path)
    (run / "run.json").unlink()
    run = run.rename(run.with_name(run.name + ".incomplete"))
    done = subprocess.run([sys.executable, "-m", "tcup", "upload", str(run), "--upload-url", "http://127.0.0.1:9/api"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, stdin=subprocess.DEVNULL)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert done.stderr.startswith(f"tcup: error: {run} is an incomplete run") and done.stderr.count("\n") == 1


def tcup_cli(args, tmp_path, **kwargs) -> subprocess.CompletedProcess:
    """`python -m tcup ARGS` from the checkout, with a results root of this test's own."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("REFSTACK_URL", None)
    return subprocess.run([sys.executable, "-m", "tcup", *args], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL, **kwargs)


@pytest.mark.parametrize("given", ["name", "directory", "refstack.json"])
def test_tcup_upload_takes_a_run_by_name_directory_or_file(tmp_path, given):
    root = tmp_path / "runs"
    root.mkdir()
    run = make_run(root)
    elsewhere = tmp_path / "elsewhere"  # the name is not a path from here
    elsewhere.mkdir()
    named = {"name": run.name, "directory": str(run), "refstack.json": str(run / "refstack.json")}[given]
    with ScriptedServer(created()) as server:
        done = tcup_cli(["upload", named, "--output", str(root), "--upload-url", server.base_url], tmp_path,
                        cwd=elsewhere)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "tcup: uploaded: https://refstack.example/#/results/0c6b1e1e-8d5a-4a57-9d26-2f7c1c1b4a10\n"
        (request,) = server.requests
    assert json.loads(request[2])["results"] == json.loads((run / "refstack.json").read_text())["results"]
    (record,) = json.loads((run / "uploads.json").read_text())
    assert record["server"] == server.base_url


def test_tcup_upload_of_an_unknown_name_is_one_line(tmp_path):
    root = tmp_path / "runs"
    make_run(root.parent).rename(root.parent / "not-under-root")  # a run, but not where --output points
    root.mkdir()
    with ScriptedServer(created()) as server:
        done = tcup_cli(["upload", "run-20260101T000000Z", "--output", str(root), "--upload-url", server.base_url],
                        tmp_path, cwd=root)
    assert done.returncode == EXIT_BAD_INPUT and done.stdout == "" and server.requests == []
    assert done.stderr == (f"tcup: error: run-20260101T000000Z is not a run directory or the name of a saved run "
                           f"under {root}: it does not exist; see `tcup results`\n")
    missing = tmp_path / "gone" / "refstack.json"  # a path keeps its own words
    done = tcup_cli(["upload", str(missing), "--upload-url", "http://127.0.0.1:9/api"], tmp_path)
    assert (done.returncode, done.stderr) == (EXIT_BAD_INPUT, f"tcup: error: {missing} does not exist; give a run "
                                              "directory (see `tcup results`) or a RefStack JSON file\n")


def test_every_signing_key_problem_is_bad_input(tmp_path):
    """A key file that is not there (upload and pubkey alike), and a key the server does not know: exit 2."""
    run = make_run(tmp_path)
    missing = tmp_path / "nonexistent"
    said = f"tcup: error: key file {missing} does not exist; give the path of your RSA private key\n"
    unknown = (401, {"Content-Type": "application/json"},
               {"title": "Unauthorized", "detail": "User with specified key not found."})
    key_path = write_key(tmp_path / "id_rsa", rsa_key(), "pem")
    with ScriptedServer(unknown) as server:
        for args in (["upload", str(run), "--upload-url", server.base_url, "--sign-key", str(missing)],
                     ["pubkey", "--sign-key", str(missing)]):
            done = tcup_cli(args, tmp_path)
            assert (done.returncode, done.stderr, done.stdout) == (EXIT_BAD_INPUT, said, ""), args
        assert server.requests == []
        done = tcup_cli(["upload", str(run), "--upload-url", server.base_url, "--sign-key", str(key_path)], tmp_path)
        assert len(server.requests) == 1
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    refused = done.stderr.splitlines()[-1]
    assert refused.startswith(f"tcup: error: {server.base_url} refused the results: HTTP 401: Unauthorized: User "
                              "with specified key not found.; after fixing that: ")
    assert refused.endswith(f"upload {run} --upload-url {server.base_url} --sign-key {key_path}")
    assert not (run / "uploads.json").exists()


def test_what_the_server_says_is_shown_without_terminal_control(tmp_path):
    run = make_run(tmp_path)
    hostile = {"title": "Bad Request", "detail": "\x1b]0;owned\x07\x1b[2J\x1b[1;1Hnope\r\u202e"}
    with ScriptedServer((400, {"Content-Type": "application/json"}, hostile)) as server:
        with pytest.raises(UploadError) as caught:
            upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    message = str(caught.value)
    assert "HTTP 400: Bad Request: nope;" in message
    assert not any(char in message for char in "\x1b\x07\r\u202e")
    url = upload.result_url({"test_id": "x", "url": "https://r.example/\x1b[8mhidden\x1b[0m"}, "https://r.example/api")
    assert url == "https://r.example/hidden"


def test_a_missing_run_is_one_line(tmp_path):
    with pytest.raises(UploadError, match="does not exist") as caught:
        upload.upload(tmp_path / "nowhere", "http://127.0.0.1:9/api", log=lambda m: None)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    with pytest.raises(UploadError, match="has no refstack.json"):
        upload.upload(tmp_path, "http://127.0.0.1:9/api", log=lambda m: None)


# ---------------------------------------------------------------------------
# Uploading the same run twice


def test_a_repeat_upload_is_refused_without_a_terminal_and_without_force(tmp_path):
    run = make_run(tmp_path)
    with ScriptedServer(created()) as server:
        first = upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
        before = snapshot(run)
        with pytest.raises(UploadError) as caught:
            upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
        assert len(server.requests) == 1
    message = str(caught.value)
    assert "already uploaded" in message and first in message and "--force" in message
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert snapshot(run) == before


def test_a_repeat_upload_asks_and_respects_the_answer(tmp_path):
    run = make_run(tmp_path)
    questions = []
    with ScriptedServer(created("11111111-1111-4111-8111-111111111111"), created()) as server:
        first = upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
        again = upload.upload(run, server.base_url, retry=FAST, log=lambda m: None,
                              confirm=lambda q: questions.append(q) or False)
        assert again == first and len(server.requests) == 1
        second = upload.upload(run, server.base_url, retry=FAST, log=lambda m: None, confirm=lambda q: True)
        assert len(server.requests) == 2
    assert len(questions) == 1 and first in questions[0] and questions[0].endswith("Upload it again?")
    assert second != first
    assert [e["url"] for e in json.loads((run / "uploads.json").read_text())] == [first, second]


def test_force_uploads_again_and_another_server_is_not_a_repeat(tmp_path):
    run = make_run(tmp_path)
    with ScriptedServer(created()) as one, ScriptedServer(created()) as two:
        upload.upload(run, one.base_url, retry=FAST, log=lambda m: None)
        upload.upload(run, two.base_url, retry=FAST, log=lambda m: None)  # no question: another server
        upload.upload(run, one.base_url, retry=FAST, log=lambda m: None, force=True)
        assert (len(one.requests), len(two.requests)) == (2, 1)
    assert len(json.loads((run / "uploads.json").read_text())) == 3


# ---------------------------------------------------------------------------
# Retries: bounded in tries and time; only for failures that may pass


def test_503_is_retried_until_the_server_answers_201(tmp_path):
    run = make_run(tmp_path)
    said = []
    unavailable = (503, {"Content-Type": "text/html"}, b"<html><body><h1>503 Service Unavailable</h1></body></html>")
    with ScriptedServer(unavailable, unavailable, created()) as server:
        url = upload.upload(run, server.base_url, retry=Retry(tries=5, initial=0.05, max_total=10), log=said.append)
        assert len(server.requests) == 3
    assert url.endswith("/#/results/0c6b1e1e-8d5a-4a57-9d26-2f7c1c1b4a10")
    retries = [m for m in said if m.startswith("upload try")]
    assert len(retries) == 2
    assert retries[0].startswith("upload try 1 of 5 failed: HTTP 503: 503 Service Unavailable; trying again in")
    # Every try sent the same bytes.
    assert len({body for _, _, body in server.requests}) == 1


def test_a_server_that_keeps_failing_is_tried_a_bounded_number_of_times(tmp_path):
    run = make_run(tmp_path)
    before = snapshot(run)
    failing = (500, {"Content-Type": "application/json"}, {"title": "Internal Server Error", "code": 500})
    with ScriptedServer(failing) as server, pytest.raises(UploadError) as caught:
        upload.upload(run, server.base_url, retry=Retry(tries=4, initial=0.05, max_total=10), log=lambda m: None)
    assert len(server.requests) == 4
    error = caught.value
    assert error.exit_code == EXIT_UPLOAD_FAILED
    assert str(error).startswith(f"upload to {server.base_url} failed after 4 tries: HTTP 500: Internal Server Error;")
    assert error.resume == f"tcup upload {run} --upload-url {server.base_url}"
    assert str(error).endswith(error.resume) and "\n" not in str(error)
    assert snapshot(run) == before


def test_the_time_bound_stops_retries_before_the_try_bound(tmp_path):
    run = make_run(tmp_path)
    said = []
    with ScriptedServer((502, {}, b"bad gateway")) as server, pytest.raises(UploadError, match="limit"):
        upload.upload(run, server.base_url, retry=Retry(tries=1000, initial=0.2, max_total=1.5), log=said.append)
    # Waits of ~0.1-0.2, 0.2-0.4, 0.4-0.8 s fit in 1.5 s; the next does not.
    # A loaded machine only makes fewer tries fit: counted, not timed.
    assert 1 <= len(server.requests) <= 5
    assert len([m for m in said if m.startswith("upload try")]) == len(server.requests) - 1


def test_400_is_final_and_shows_the_servers_message(tmp_path):
    run = make_run(tmp_path)
    refused = (400, {"Content-Type": "application/json"},
               {"code": 400, "title": "Bad Request", "detail": "Request doesnt\ncorrespond to schema"})
    with ScriptedServer(refused) as server, pytest.raises(UploadError) as caught:
        upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    assert len(server.requests) == 1
    assert str(caught.value).startswith(
        f"{server.base_url} refused the results: HTTP 400: Bad Request: Request doesnt correspond to schema; "
    )
    assert caught.value.resume in str(caught.value)
    # The server will not take these results as sent: bad input, as README's table says.
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_an_html_error_page_is_trimmed_to_one_line(tmp_path):
    run = make_run(tmp_path)
    page = b"<html>\n<head><title>403 Forbidden</title></head>\n<body>" + b"nope " * 200 + b"</body></html>"
    with ScriptedServer((403, {"Content-Type": "text/html"}, page)) as server, pytest.raises(UploadError) as caught:
        upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    message = str(caught.value)
    assert "HTTP 403: 403 Forbidden nope nope" in message and "..." in message and "\n" not in message
    assert len(message) < 600


def test_429_with_retry_after_is_honoured(tmp_path):
    run = make_run(tmp_path)
    busy = (429, {"Retry-After": "1"}, {"title": "Too Many Requests"})
    started = time.monotonic()
    with ScriptedServer(busy, created()) as server:
        upload.upload(run, server.base_url, retry=Retry(tries=3, initial=0.01, max_total=10), log=lambda m: None)
        assert len(server.requests) == 2
    assert time.monotonic() - started >= 1.0  # it waited as asked, not the 0.01 s backoff


def test_a_retry_after_beyond_the_bound_stops_at_once(tmp_path):
    run = make_run(tmp_path)
    busy = (503, {"Retry-After": "3600"}, {"title": "Service Unavailable", "detail": "maintenance"})
    with ScriptedServer(busy) as server, pytest.raises(UploadError) as caught:
        upload.upload(run, server.base_url, retry=Retry(tries=5, initial=0.01, max_total=30), log=lambda m: None)
    assert len(server.requests) == 1
    assert ("failed after 1 try: HTTP 503: Service Unavailable: maintenance "
            "(the server asked to wait 3600s, past the 30s limit)") in str(caught.value)


def test_a_hanging_server_times_out_each_try(tmp_path):
    run = make_run(tmp_path)
    with ScriptedServer("hang") as server:
        with pytest.raises(UploadError, match=r"failed after 2 tries: no answer within 0\.5s") as caught:
            upload.upload(run, server.base_url, retry=Retry(tries=2, initial=0.05, max_total=10, request_timeout=0.5),
                          log=lambda m: None)
        # Each try gave up on its own: both reached the server, neither got an answer.
        assert len(server.requests) == 2
    assert "(2 tries without an answer may still be stored there)" in str(caught.value)


def test_a_closed_port_is_retried_and_named(tmp_path):
    run = make_run(tmp_path)
    with ScriptedServer(created()) as server:
        base = server.base_url  # then closed: nothing listens there any more
    said = []
    with pytest.raises(UploadError) as caught:
        upload.upload(run, base, retry=Retry(tries=3, initial=0.05, max_total=10), log=said.append)
    assert "failed after 3 tries: cannot reach the server (Connection refused)" in str(caught.value)
    assert len([m for m in said if m.startswith("upload try")]) == 2


def test_a_redirect_is_not_followed(tmp_path):
    run = make_run(tmp_path)
    moved = (301, {"Location": "https://refstack.example/api/v1/results"}, b"")
    with ScriptedServer(moved) as server, pytest.raises(UploadError, match="redirects to https://refstack.example") \
            as caught:
        upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    assert len(server.requests) == 1
    assert caught.value.exit_code == EXIT_BAD_INPUT  # --upload-url must change


def caught_error(run, *answers, lists=()) -> UploadError:
    with ScriptedServer(*answers, lists=lists) as server, pytest.raises(UploadError) as caught:
        upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
    return caught.value


NOT_FOUND = (404, {"Content-Type": "application/json"}, {"title": "Not Found"})


def test_a_wrong_api_path_names_the_one_the_server_answers(tmp_path):
    """--upload-url http://HOST/api on a server that serves /v1 at its root."""
    run = make_run(tmp_path)
    with ScriptedServer(NOT_FOUND, created(), lists={"/v1/results"}) as server:
        root = server.base_url[:-len("/api")]
        with pytest.raises(UploadError) as caught:
            upload.upload(run, server.base_url, retry=FAST, log=lambda m: None)
        resume = f"tcup upload {run} --upload-url {root}"
        assert str(caught.value) == (f"{server.base_url} refused the results: HTTP 404: Not Found; the server has no "
                                     f"/v1/results under {server.base_url}, but {root}/v1/results answers: {resume}")
        assert (caught.value.exit_code, caught.value.resume) == (EXIT_BAD_INPUT, resume)
        # It looked at the URL given, then the one above it; the POST went once, never to the other.
        assert server.gets == ["/api/v1/results", "/v1/results"]
        assert [path for path, _, _ in server.requests] == ["/api/v1/results"]
        # What it said works.
        upload.upload(run, root, retry=FAST, log=lambda m: None)
        assert [path for path, _, _ in server.requests] == ["/api/v1/results", "/v1/results"]


def test_a_server_with_no_api_nearby_says_where_it_looked(tmp_path):
    run = make_run(tmp_path)
    with ScriptedServer(NOT_FOUND) as server:
        base = server.base_url.replace("/api", "/refstack")
        with pytest.raises(UploadError) as caught:
            upload.upload(run, base, retry=FAST, log=lambda m: None)
        root = base[:-len("/refstack")]
        assert str(caught.value) == (
            f"{base} refused the results: HTTP 404: Not Found; the server has no /v1/results under {base} (nor under "
            f"{root}, {base}/api, {root}/api); give --upload-url the base URL of RefStack's API, usually "
            "https://HOST/api as in https://refstack.openstack.org/api")
        assert caught.value.exit_code == EXIT_BAD_INPUT and len(server.requests) == 1
        assert server.gets == ["/refstack/v1/results", "/v1/results", "/refstack/api/v1/results", "/api/v1/results"]


def test_a_404_where_the_api_is_keeps_the_servers_words(tmp_path):
    """The URL's own /v1/results answers: the 404 was about something else, no path is suggested."""
    run = make_run(tmp_path)
    error = caught_error(run, NOT_FOUND, lists={"/api/v1/results"})
    assert str(error).endswith(f"refused the results: HTTP 404: Not Found; after fixing that: {error.resume}")
    assert error.exit_code == EXIT_BAD_INPUT and "--upload-url http://127.0.0.1:" in error.resume


def test_retry_after_dates_and_the_backoff_doubling():
    assert upload.retry_after("7") == 7.0
    assert upload.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert upload.retry_after("soon") is None and upload.retry_after(None) is None
    waits = [Retry(initial=1.0).backoff(n) for n in (1, 2, 3, 4)]
    for n, wait in enumerate(waits):
        assert 2**n / 2 <= wait <= 2**n


# ---------------------------------------------------------------------------
# Signing keys


@pytest.mark.parametrize("fmt", ["pem", "pkcs8", "openssh"])
def test_an_unencrypted_key_signs_without_asking(tmp_path, fmt):
    key = rsa_key()
    path = write_key(tmp_path / "id_rsa", key, fmt)
    asked = Asked()
    loaded = signing.load_key(path, asked)
    assert asked.calls == 0
    line = signing.public_key_line(loaded)
    assert line.startswith("ssh-rsa AAAA") and line.endswith(" tcup") and len(line.split()) == 3
    verify(line, signing.sign(loaded, b"the body"), b"the body")


@pytest.mark.parametrize("fmt", ["pem", "pkcs8", "openssh"])
def test_an_encrypted_key_asks_for_the_passphrase_once(tmp_path, fmt):
    if fmt == "openssh":
        require_module("bcrypt")  # cryptography decrypts OpenSSH keys with it
    key = rsa_key()
    path = write_key(tmp_path / "id_rsa", key, fmt, PASSPHRASE)
    asked = Asked()
    loaded = signing.load_key(path, asked)
    assert asked.calls == 1
    assert loaded.private_numbers() == key.private_numbers()


@pytest.mark.parametrize("fmt", ["pem", "pkcs8", "openssh"])
def test_a_wrong_passphrase_is_one_line_and_not_echoed(tmp_path, fmt):
    if fmt == "openssh":
        require_module("bcrypt")
    path = write_key(tmp_path / "id_rsa", rsa_key(), fmt, PASSPHRASE)
    with pytest.raises(SigningError) as caught:
        signing.load_key(path, Asked("wrong guess 99"))
    assert str(caught.value) == f"wrong passphrase for key {path}"


def test_an_encrypted_key_without_a_terminal_or_passphrase_is_refused(tmp_path):
    path = write_key(tmp_path / "id_rsa", rsa_key(), "pem", PASSPHRASE)
    with pytest.raises(SigningError, match="is encrypted and no passphrase can be asked"):
        signing.load_key(path, None)
    with pytest.raises(SigningError, match="is encrypted and no passphrase was given"):
        signing.load_key(path, Asked(""))


def test_an_encrypted_openssh_key_without_bcrypt_says_what_to_install(tmp_path):
    """cryptography needs bcrypt for these keys; without it the user learns how to get on."""
    path = tmp_path / "id_rsa"
    if shutil.which("ssh-keygen"):  # what users have: ssh-keygen's default format, encrypted
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", PASSPHRASE, "-f", str(path)],
                       check=True, timeout=60, stdin=subprocess.DEVNULL)
    elif HAVE_BCRYPT:
        write_key(path, rsa_key(), "openssh", PASSPHRASE)
    else:
        _unavailable("neither ssh-keygen nor bcrypt to write an encrypted OpenSSH key")
    script = (
        "import sys; sys.modules['bcrypt'] = None; sys.path.insert(0, sys.argv[1])\n"
        "from tcup.launcher.upload import signing\n"
        "try:\n    signing.load_key(sys.argv[2], lambda: 'x')\n"
        "except signing.SigningError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(REPO / "src"), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert "needs the Python package bcrypt (pip install bcrypt)" in done.stdout, done.stderr
    assert f"ssh-keygen -p -m PEM -f {path}" in done.stdout


def test_key_files_that_cannot_sign_are_each_named(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519

    garbage = tmp_path / "garbage"
    garbage.write_text("hello\n")
    public = tmp_path / "id_rsa.pub"
    public.write_text(signing.public_key_line(rsa_key()) + "\n")
    cases = {
        tmp_path / "missing": "does not exist",
        tmp_path: "cannot read key file",  # a directory: unreadable as a key
        garbage: "is not a PEM or OpenSSH private key",
        public: "is a public key; --sign-key needs the private key",
        write_key(tmp_path / "dsa", dsa.generate_private_key(2048), "pem"): "is a DSA key; RefStack verifies RSA",
        write_key(tmp_path / "ec", ec.generate_private_key(ec.SECP256R1()), "openssh"): "is an EC key; RefStack verifies RSA",
        write_key(tmp_path / "ed", ed25519.Ed25519PrivateKey.generate(), "openssh"): "is an Ed25519 key",
    }
    for path, expected in cases.items():
        with pytest.raises(SigningError) as caught:
            signing.load_key(path, None)
        assert expected in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_registration_is_the_public_line_and_a_signature_over_the_word_signature():
    key = rsa_key()
    line, signature = signing.registration(key)
    assert line == signing.public_key_line(key)
    verify(line, signature, b"signature")
    assert len(signature) == 512  # 2048-bit key: 256 bytes, hex


def test_a_signed_upload_signs_the_exact_bytes_sent_and_never_shows_the_passphrase(tmp_path):
    run = make_run(tmp_path)
    key_path = write_key(tmp_path / "id_rsa", rsa_key(), "pem", PASSPHRASE)
    said = []
    with ScriptedServer(created()) as server:
        upload.upload(run, server.base_url, sign_key=key_path, passphrase=Asked(), retry=FAST, log=said.append)
    _, headers, body = server.requests[0]
    verify(headers["X-Public-Key"], headers["X-Signature"], body)
    assert headers["X-Public-Key"].startswith("ssh-rsa ")
    record = (run / "uploads.json").read_text()
    assert json.loads(record)[0]["signed"] is True
    assert all(PASSPHRASE not in message for message in said) and PASSPHRASE not in record


def test_a_key_problem_stops_the_upload_before_the_network(tmp_path):
    run = make_run(tmp_path)
    key_path = write_key(tmp_path / "id_rsa", rsa_key(), "pem", PASSPHRASE)
    with ScriptedServer(created()) as server, pytest.raises(SigningError) as caught:
        upload.upload(run, server.base_url, sign_key=key_path, passphrase=Asked("nope"), retry=FAST, log=lambda m: None)
    assert str(caught.value) == f"wrong passphrase for key {key_path}"
    assert server.requests == []
    assert not (run / "uploads.json").exists()


def test_a_failed_signed_upload_names_the_key_in_the_resume_command(tmp_path):
    run = make_run(tmp_path)
    key_path = write_key(tmp_path / "id_rsa", rsa_key(), "pem")
    with ScriptedServer((503, {}, b"down")) as server, pytest.raises(UploadError) as caught:
        upload.upload(run, server.base_url, sign_key=key_path, retry=Retry(tries=1), log=lambda m: None)
    assert caught.value.resume == f"tcup upload {run} --upload-url {server.base_url} --sign-key {key_path}"


# ---------------------------------------------------------------------------
# Start-up cost


def test_importing_the_upload_module_loads_neither_requests_nor_cryptography():
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import tcup.launcher.upload.refstack, tcup.launcher.upload.signing\n"
        "print(sorted(m for m in ('requests', 'cryptography', 'urllib3') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(REPO / "src")], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.stdout.strip() == "[]", done.stderr
