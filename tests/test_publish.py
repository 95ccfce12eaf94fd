"""End to end, issue #3's story: a real run is saved, uploaded to a real
RefStack server, read back unchanged; a failed upload keeps the results and
the printed resume command finishes the job; signing works from the CLI."""

import json
import re
import sqlite3

import pytest

from conftest import ADMIN_CANARY, MEMBER_CANARY, only_run, openrc, tcup
from test_run import strip_attrs, subunit_statuses

pytestmark = [pytest.mark.engine, pytest.mark.keystone, pytest.mark.refstack]


@pytest.fixture(scope="module")
def refstack(tmp_path_factory):
    from refstack_server import RefStackServer

    with RefStackServer(tmp_path_factory.mktemp("refstack")) as server:
        yield server


def get_json(url, **headers):
    import requests

    answer = requests.get(url, headers=headers, timeout=30)
    return answer.status_code, (answer.json() if answer.headers.get("content-type", "").startswith("application/json") else answer.text)


def server_dump(server) -> str:
    with sqlite3.connect(server.db_path) as db:
        return "\n".join(db.iterdump())


def test_a_real_run_is_uploaded_and_reads_back_unchanged(image, keystone, refstack, watch, tmp_path):
    output = tmp_path / "runs"
    done = tcup(["--output", str(output), "--upload-url", refstack.base_url,
                 "--set", "compute-feature-enabled.resize=true"], openrc(keystone, "member", tmp_path))
    assert done.returncode == 5, done.stderr[-2000:]  # uploaded; not compliant: most of the list skipped
    run = only_run(output)
    # Saved before the upload, recorded after it.
    uploads = json.loads((run / "uploads.json").read_text())
    assert len(uploads) == 1 and uploads[0]["server"] == refstack.base_url and not uploads[0]["signed"]
    assert f"uploaded: {uploads[0]['url']}" in done.stdout

    status, stored = get_json(f"{refstack.base_url}/v1/results/{uploads[0]['test_id']}")
    assert status == 200
    passed = {strip_attrs(t) for t, s in subunit_statuses(run / "tempest.subunit").items() if s == "success"}
    assert len(passed) == 7
    assert sorted(stored["results"]) == sorted(passed)

    # Anonymous: nothing naming the user, project or cloud reached the server.
    dump = server_dump(refstack)
    for private in (MEMBER_CANARY, ADMIN_CANARY, keystone.auth_url, keystone.auth_url.split("//")[1].split("/")[0]):
        assert private not in dump
    assert not re.search(r"\bdemo\b", dump)

    listing = tcup(["results", "--output", str(output)], openrc(keystone, "member", tmp_path))
    assert listing.returncode == 0
    (line,) = [l for l in listing.stdout.splitlines() if l.startswith(run.name)]
    assert "2020.06 platform" in line and uploads[0]["url"] in line
    assert re.search(r"\s7\s+0\s+266\s", line), line

    # The results say what produced them: each --set, the rule, TCUP's image, where they went.
    image = json.loads((run / "run.json").read_text())["image"]
    assert image.startswith("tcup:")
    ran_with = ["Settings (--set): compute-feature-enabled.resize=true",
                "Verdict rule: refstack: every required test passes; a skipped test fails its capability",
                f"TCUP image: {image}", f"Uploaded to RefStack: {uploads[0]['url']}"]
    summary = (run / "summary.txt").read_text().splitlines()
    assert [line for line in summary if line in ran_with] == ran_with
    page = (run / "report.html").read_text()
    assert uploads[0]["url"] in page and "compute-feature-enabled.resize=true" in page and image in page
    one = tcup(["results", run.name, "--output", str(output)], openrc(keystone, "member", tmp_path))
    assert one.returncode == 0 and one.stdout.splitlines()[-4:] == ran_with
    assert "Verdict: not compliant (7 passed, 0 failed, 266 skipped of 273 selected)" in one.stdout
    as_json = json.loads(tcup(["results", run.name, "--json", "--output", str(output)],
                              openrc(keystone, "member", tmp_path)).stdout)
    assert as_json["ran_with"] == {"settings": "compute-feature-enabled.resize=true", "tcup_image": image,
                                   "rule": "refstack: every required test passes; a skipped test fails its capability",
                                   "upload_url": uploads[0]["url"]}


def test_a_failed_upload_keeps_the_results_and_the_resume_command_works(image, keystone, refstack, watch, tmp_path):
    dead_url = "http://127.0.0.1:9/api"  # the discard port: refused at once
    output = tmp_path / "runs"
    env = openrc(keystone, "member", tmp_path)
    done = tcup(["--output", str(output), "--upload-url", dead_url, "--upload-retries", "2", "--upload-timeout", "10",
                 "--regex", r"test_tokens"], env)
    assert done.returncode == 4, done.stderr[-2000:]
    run = only_run(output)
    assert {p.name for p in run.iterdir()} >= {"tempest.subunit", "refstack.json", "run.json", "summary.txt", "junit.xml"}
    assert not (run / "uploads.json").exists()
    resume = re.search(r"(tcup upload \S+ --upload-url \S+)", done.stderr).group(1)
    assert str(run) in resume

    # The user runs the printed command against the server that works.
    argv = resume.split()[1:]
    argv[argv.index("--upload-url") + 1] = refstack.base_url
    again = tcup(argv, env)
    assert again.returncode == 0, again.stderr
    uploads = json.loads((run / "uploads.json").read_text())
    status, stored = get_json(f"{refstack.base_url}/v1/results/{uploads[0]['test_id']}")
    assert status == 200 and len(stored["results"]) == 3

    # The same run to the same server again: refused without a terminal to ask.
    twice = tcup(argv, env)
    assert twice.returncode == 2 and "already uploaded" in twice.stderr
    assert len(json.loads((run / "uploads.json").read_text())) == 1


def test_signed_upload_from_the_cli(image, keystone, refstack, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = tmp_path / "id_rsa"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    env = openrc(keystone, "member", tmp_path)
    shown = tcup(["pubkey", "--sign-key", str(key_path)], env)
    assert shown.returncode == 0, shown.stderr
    public_line = next(l for l in shown.stdout.splitlines() if l.startswith("ssh-rsa "))
    signature = shown.stdout.strip().splitlines()[-1]
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key.public_key().verify(bytes.fromhex(signature), b"signature", padding.PKCS1v15(), hashes.SHA256())
    refstack.register_key(public_line)

    output = tmp_path / "runs"
    done = tcup(["--output", str(output), "--upload-url", refstack.base_url, "--sign-key", str(key_path),
                 "--regex", r"test_tokens"], env)
    assert done.returncode == 5, done.stderr[-2000:]  # uploaded; the admin token tests skip for a member
    uploads = json.loads((only_run(output) / "uploads.json").read_text())
    assert uploads[0]["signed"] is True
    result_url = f"{refstack.base_url}/v1/results/{uploads[0]['test_id']}"
    assert get_json(result_url)[0] == 401  # hidden from anonymous readers
    status, stored = get_json(result_url, Cookie=refstack.user_session_cookie())
    assert status == 200 and stored["user_role"] == "owner" and len(stored["results"]) == 3


def test_a_refstack_servers_test_list_selects_the_tests(image, keystone, refstack, watch, tmp_path):
    """--guideline {base}/v1/guidelines/<version>/tests: the server's own list."""
    output = tmp_path / "runs"
    url = f"{refstack.base_url}/v1/guidelines/2020.06/tests?target=platform"
    done = tcup(["--no-upload", "--output", str(output), "--guideline", url, "--regex", r"\.identity\."],
                openrc(keystone, "member", tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((only_run(output) / "run.json").read_text())
    assert (run["passed"], run["failed"], run["skipped"]) == (7, 0, 0)
    assert "7 tests selected" in done.stderr
