"""Uploads against the real RefStack server (refstack 2.1.0 on 127.0.0.1, tools/refstack_server.py).

The story: a user's run directory goes to RefStack and the server stores
exactly the passed tests' names; a signed upload lands in the key owner's
account; a body that does not match its signature is turned away; and when
the server is down, broken, stalled or refusing, the run directory stays as
it was, the tries stop within their bounds, and ``upload()`` again finishes
the job once the server is well.
"""

import contextlib
import json
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
for path in (REPO / "src", REPO / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from refstack_server import RefStackServer  # noqa: E402
from tcup.launcher.upload import signing
from tcup.launcher.upload import refstack as upload  # noqa: E402
EXIT_UPLOAD_FAILED = 4  # as README documents it
from tcup.launcher.upload.refstack import Retry, UploadError  # noqa: E402

pytestmark = pytest.mark.refstack

# Small bounds so every failing case ends in seconds.
QUICK = Retry(tries=3, initial=0.1, max_total=15.0, request_timeout=5.0)
OPENID = "https://openid.example/tcup-tester"
# Things a refstack.json must never carry to the server, planted to prove it.
PRIVATE = {
    "username": "alice-private-user",
    "project_name": "alice-private-project",
    "user_domain_name": "alice-private-domain",
    "region_name": "alice-private-region",
    "auth_url": "https://keystone.alice-private.example:5000/v3",
}


# ---------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def refstack(tmp_path_factory):
    """One RefStack server for the tests that do not break it."""
    with RefStackServer(tmp_path_factory.mktemp("refstack")) as server:
        yield server


@pytest.fixture
def own_refstack(tmp_path):
    """A RefStack server of this test's own, to stop, pause or damage."""
    server = RefStackServer(tmp_path / "refstack").start()
    try:
        yield server
    finally:
        server.stop()


def make_run(parent: Path, count: int = 12) -> Path:
    """A saved run directory (0700, files 0600) whose refstack.json also holds private fields."""
    run = parent / f"run-{uuid.uuid4().hex[:8]}"
    run.mkdir(mode=0o700)
    tests = [
        {"name": f"tempest.api.identity.v3.test_tokens.TokensV3Test.test_{i:03d}", "uuid": str(uuid.uuid4())}
        for i in range(count)
    ]
    files = {
        "refstack.json": {"cpid": uuid.uuid4().hex, "duration_seconds": 1234, "results": tests, **PRIVATE},
        "run.json": {"tcup_version": "0.1.0", "label": "2020.06 platform", "complete": True},
    }
    for name, doc in files.items():
        (run / name).write_text(json.dumps(doc))
        (run / name).chmod(0o600)
    return run


def names_in(run: Path) -> list:
    return [t["name"] for t in json.loads((run / "refstack.json").read_text())["results"]]


def snapshot(directory: Path) -> dict:
    """Each file's bytes: a failed upload must leave them all as they were."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def recorded(run: Path) -> list:
    return json.loads((run / "uploads.json").read_text())


def get_result(server: RefStackServer, test_id: str, cookie: str = None):
    """GET {base}/v1/results/<id>, as anyone or as the logged-in user."""
    import requests

    headers = {"Cookie": cookie} if cookie else {}
    return requests.get(f"{server.base_url}/v1/results/{test_id}", headers=headers, timeout=10)


def stored_runs(server: RefStackServer, cpid: str) -> int:
    """How many test runs the server's database holds for ``cpid``."""
    with contextlib.closing(sqlite3.connect(server.db_path, timeout=10)) as db:
        return db.execute("SELECT count(*) FROM test WHERE cpid = ?", (cpid,)).fetchone()[0]


def posts_logged(server: RefStackServer, at_least: int = 0) -> int:
    """POSTs to /v1/results the server has answered, from its request log.

    The server logs a request after sending its answer, so the count may lag
    the client by a moment: wait (bounded) until it reaches ``at_least``,
    then a little longer so that an extra request would show too.
    """
    deadline = time.monotonic() + 10
    count = 0
    while time.monotonic() < deadline:
        count = server.log_path.read_text(errors="replace").count('"POST /api/v1/results ')
        if count >= at_least:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return server.log_path.read_text(errors="replace").count('"POST /api/v1/results ')


def write_rsa_key(path: Path, passphrase: str = None):
    """A fresh RSA key saved as ssh-keygen -m PEM would; returns the key."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = s.BestAvailableEncryption(passphrase.encode()) if passphrase else s.NoEncryption()
    path.write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, encryption))
    path.chmod(0o600)
    return key


class Said(list):
    """The log callback: keeps every line, for counting retries."""

    def __call__(self, message: str) -> None:
        self.append(message)

    def retries(self) -> int:
        return sum(1 for m in self if m.startswith("upload try "))


# ---------------------------------------------------------------------------
# Uploads that succeed


def test_an_anonymous_upload_stores_exactly_the_passed_tests(refstack, tmp_path):
    run = make_run(tmp_path, count=40)
    said = Said()

    url = upload.upload(run, refstack.base_url, retry=QUICK, log=said)

    entry = recorded(run)[0]
    assert url == entry["url"] and url.endswith(f"/#/results/{entry['test_id']}")
    answer = get_result(refstack, entry["test_id"])
    assert answer.status_code == 200
    stored = answer.json()
    assert sorted(stored["results"]) == sorted(names_in(run)) and len(stored["results"]) == 40
    assert stored["duration_seconds"] == 1234
    assert said == [f"uploading 40 passed tests to {refstack.base_url}"]
    # Nothing private reached the server's database, in any table.
    with contextlib.closing(sqlite3.connect(refstack.db_path, timeout=10)) as db:
        dump = "\n".join(db.iterdump())
    assert entry["test_id"] in dump
    for value in PRIVATE.values():
        assert value not in dump


def test_a_signed_upload_lands_in_the_key_owners_account(refstack, tmp_path):
    run = make_run(tmp_path)
    key_path = tmp_path / "id_rsa"
    key = write_rsa_key(key_path, passphrase="s3cret passphrase")
    line, self_signature = signing.registration(key)
    refstack.register_key(line)

    url = upload.upload(run, refstack.base_url, sign_key=key_path, passphrase=lambda: "s3cret passphrase",
                        retry=QUICK, log=Said())

    entry = recorded(run)[0]
    assert entry["signed"] is True and entry["url"] == url
    # A signed run is private to its owner: anonymous readers are turned away.
    anonymous = get_result(refstack, entry["test_id"])
    assert anonymous.status_code == 401
    owner = get_result(refstack, entry["test_id"], cookie=refstack.user_session_cookie(OPENID))
    assert owner.status_code == 200
    assert owner.json()["meta"]["user"] == OPENID
    assert sorted(owner.json()["results"]) == sorted(names_in(run))


def test_a_body_that_does_not_match_its_signature_is_rejected_clearly(refstack, tmp_path):
    key_path = tmp_path / "id_rsa"
    refstack.register_key(signing.public_key_line(write_rsa_key(key_path)))
    signed_doc = json.loads((make_run(tmp_path) / "refstack.json").read_text())
    signed = upload.encode(upload.request_body(signed_doc))
    tampered = signed.replace(b'"duration_seconds":1234', b'"duration_seconds":1')
    headers = upload.request_headers(signed, key_path, None)  # signature over other bytes than sent
    before = posts_logged(refstack)

    with pytest.raises(UploadError) as caught:
        upload.send(refstack.base_url, tampered, headers, QUICK, Said(), resume="tcup upload RUN")

    assert "refused the results: HTTP 400: Signature verification failed" in str(caught.value)
    assert posts_logged(refstack, before + 1) - before == 1  # a 400 is final: no retry
    assert stored_runs(refstack, signed_doc["cpid"]) == 0


# ---------------------------------------------------------------------------
# Faults: the run directory is kept, tries are bounded, upload() again resumes


def test_a_stopped_server_fails_within_bounds_and_the_upload_resumes_when_it_is_back(own_refstack, tmp_path):
    run = make_run(tmp_path)
    before = snapshot(run)
    base, port, workdir = own_refstack.base_url, own_refstack.port, own_refstack.workdir
    own_refstack.stop()
    said = Said()

    with pytest.raises(UploadError) as caught:
        upload.upload(run, base, retry=QUICK, log=said)

    error = caught.value
    assert "failed after 3 tries: cannot reach the server (Connection refused)" in str(error)
    assert error.exit_code == EXIT_UPLOAD_FAILED
    assert error.resume == f"tcup upload {run} --upload-url {base}" and str(error).endswith(error.resume)
    # Bounded by its tries (counted, not timed: a loaded machine is slow, not wrong).
    assert said.retries() == 2
    assert snapshot(run) == before

    # The same server (same port, same database) comes back; the same call resumes.
    with RefStackServer(workdir, port=port) as back:
        url = upload.upload(run, base, retry=QUICK, log=Said())
        test_id = recorded(run)[0]["test_id"]
        assert sorted(get_result(back, test_id).json()["results"]) == sorted(names_in(run))
    assert url.endswith(test_id)


def test_a_server_answering_500_is_retried_a_bounded_number_of_times(own_refstack, tmp_path):
    """A real 500: the server's results table is renamed away, so storing fails inside refstack.

    (Duplicate test names would also make refstack 2.1.0 answer 500, but our
    own checks never let such a body out.)
    """
    run = make_run(tmp_path)
    before = snapshot(run)
    cpid = json.loads((run / "refstack.json").read_text())["cpid"]
    with contextlib.closing(sqlite3.connect(own_refstack.db_path, timeout=10)) as db:
        db.execute("ALTER TABLE results RENAME TO results_away")
        db.commit()
        posts = posts_logged(own_refstack)
        said = Said()

        with pytest.raises(UploadError) as caught:
            upload.upload(run, own_refstack.base_url, retry=QUICK, log=said)

        assert "failed after 3 tries: HTTP 500: Internal Server Error; the results are kept" in str(caught.value)
        assert posts_logged(own_refstack, posts + 3) - posts == 3 and said.retries() == 2
        assert snapshot(run) == before
        assert stored_runs(own_refstack, cpid) == 0  # refstack rolled each try back

        db.execute("ALTER TABLE results_away RENAME TO results")
        db.commit()
    upload.upload(run, own_refstack.base_url, retry=QUICK, log=Said())
    assert stored_runs(own_refstack, cpid) == 1
    test_id = recorded(run)[0]["test_id"]
    assert sorted(get_result(own_refstack, test_id).json()["results"]) == sorted(names_in(run))


def test_a_hanging_server_times_out_each_try_and_the_upload_resumes(own_refstack, tmp_path):
    run = make_run(tmp_path)
    before = snapshot(run)
    cpid = json.loads((run / "refstack.json").read_text())["cpid"]
    hanging = Retry(tries=2, initial=0.1, max_total=15.0, request_timeout=1.0)
    said = Said()
    own_refstack.pause()
    try:
        with pytest.raises(UploadError) as caught:
            upload.upload(run, own_refstack.base_url, retry=hanging, log=said)
    finally:
        own_refstack.resume()

    message = str(caught.value)
    assert "failed after 2 tries: no answer within 1s (2 tries without an answer may still be stored there)" in message
    assert said.retries() == 1  # each try timed out on its own; the two are all there were
    assert snapshot(run) == before

    # What the warning is about: a stalled refstack, once it goes on, stores
    # the requests it had already received although nobody waits for them.
    deadline = time.monotonic() + 20
    while stored_runs(own_refstack, cpid) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored_runs(own_refstack, cpid) == 2

    url = upload.upload(run, own_refstack.base_url, retry=QUICK, log=Said())
    test_id = recorded(run)[0]["test_id"]
    assert url.endswith(test_id) and len(recorded(run)) == 1
    assert sorted(get_result(own_refstack, test_id).json()["results"]) == sorted(names_in(run))


def test_a_refusal_is_final_and_the_upload_resumes_once_the_key_is_registered(own_refstack, tmp_path):
    """A 4xx from the real server: a signed upload with a key it does not know (401)."""
    run = make_run(tmp_path)
    before = snapshot(run)
    key_path = tmp_path / "id_rsa"
    key = write_rsa_key(key_path)
    posts = posts_logged(own_refstack)

    with pytest.raises(UploadError) as caught:
        upload.upload(run, own_refstack.base_url, sign_key=key_path, retry=QUICK, log=Said())

    message = str(caught.value)
    assert message.startswith(f"{own_refstack.base_url} refused the results: HTTP 401: Unauthorized: "
                              "User with specified key not found.")
    assert message.endswith(f"tcup upload {run} --upload-url {own_refstack.base_url} --sign-key {key_path}")
    assert "\n" not in message
    assert posts_logged(own_refstack, posts + 1) - posts == 1  # not retried
    assert snapshot(run) == before

    own_refstack.register_key(signing.public_key_line(key))
    upload.upload(run, own_refstack.base_url, sign_key=key_path, retry=QUICK, log=Said())
    assert recorded(run)[0]["signed"] is True
