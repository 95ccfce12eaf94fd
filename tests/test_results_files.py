"""Result files: owner-only from their first byte, on both sides; never
written or chmod-ed through a link; under a root no one else controls; and a
large attachment reaches the subunit file masked, whole, in packets subunit
can carry.

python-subunit and testtools come with the dev dependencies (they are in
the image too); the tests that need them say so.
"""

import io
import os
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import needs, require_module
from tcup import contract
from tcup.contract import Credentials
from tcup.launcher.results import runs as launcher_results
from tcup.launcher.errors import BadInput
from tcup.runner import redact, result_files, run, selection
from tcup.testids import split_test_id

PASSWORD = "canary-results-pw"
EXIT_BAD_INPUT = 2  # as README documents it
TEST_ID = ("tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token"
           "[id-6f8e4436-fc96-4282-8122-e41df57197a9]")
# A subunit v2 packet holds at most 4 MiB; these attachments are more, even masked.
PACKET = 4 * 1024 * 1024
BIG = 6 * 1024 * 1024


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextmanager
def umask(value: int):
    """The usual umask, whatever the test runner's is: 0644 files unless asked otherwise."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mask():
    return redact.for_credentials(Credentials(auth_url="https://keystone.example.net:5000/v3", username="alice",
                                              password=PASSWORD, project_name="acme-prod"))


# --- the runner's files --------------------------------------------------------------

def test_the_runners_result_files_are_owner_only(tmp_path):
    test = selection.Test(TEST_ID, *split_test_id(TEST_ID))
    report = result_files.Report(outcomes=[run.Outcome(test, "success", None)], missing=[], cpid="c", label="l",
                            credentials="preprovisioned", concurrency=1, duration_seconds=1.0, tempest_version="47")
    with umask(0o022):
        result_files.write_all(tmp_path, report)
    written = sorted(tmp_path.iterdir())
    assert [p.name for p in written] == sorted([contract.REFSTACK_FILE, contract.TESTS_FILE, contract.JUNIT_FILE,
                                                contract.SUMMARY_FILE])
    assert {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}


def big_log() -> bytes:
    """About 6 MiB of log lines, each holding the password."""
    line = f"2026-01-01 00:00:00.000 1 DEBUG tempest.lib.common.rest_client POST password={PASSWORD}\n".encode()
    return line * (BIG // len(line) + 1)


class Recorder:
    def __init__(self):
        self.calls = []

    def startTestRun(self):  # noqa: N802 (testtools' protocol)
        pass

    def stopTestRun(self):  # noqa: N802
        pass

    def status(self, **kwargs):
        self.calls.append(kwargs)


def test_a_large_attachment_is_rewritten_masked_in_packets_subunit_can_carry():
    subunit = require_module("subunit")

    data = big_log()
    out = io.BytesIO()
    stream = run.RedactingStream(subunit.StreamResultToBytes(out), mask())
    stream.startTestRun()
    stream.status(test_id=TEST_ID, test_status="inprogress")
    for start in range(0, len(data), 65536):  # as Tempest sends it: in pieces
        stream.status(test_id=TEST_ID, file_name="pythonlogging", file_bytes=data[start:start + 65536],
                      mime_type="text/plain; charset=utf8", eof=False)
    stream.status(test_id=TEST_ID, test_status="success", file_name="pythonlogging", file_bytes=b"", eof=True)
    stream.stopTestRun()

    read = Recorder()
    subunit.ByteStreamToStreamResult(io.BytesIO(out.getvalue())).run(read)
    pieces = [c for c in read.calls if c.get("file_name") == "pythonlogging"]
    assert b"".join(bytes(c["file_bytes"]) for c in pieces) == mask().bytes(data)
    assert len(mask().bytes(data)) > PACKET and PASSWORD.encode() not in out.getvalue()
    # The test's end and the file's end come once, with the last piece.
    assert [c["test_status"] for c in read.calls if c.get("test_status")] == ["inprogress", "success"]
    assert [c["eof"] for c in pieces] == [False] * (len(pieces) - 1) + [True]


FAKE_TEMPEST = """\
#!{python}
# `tempest run --subunit`, as far as the runner can tell: one test, a log of
# 6 MiB holding the password, and a note of the stream file's mode mid-run.
import os, sys, time
from datetime import datetime, timezone
import subunit

stream_file, note = {stream_file!r}, {note!r}
out = subunit.StreamResultToBytes(sys.stdout.buffer)
now = datetime.now(timezone.utc)
out.status(test_id={test_id!r}, test_status="inprogress", timestamp=now)
sys.stdout.flush()
deadline = time.monotonic() + 30
while not os.path.exists(stream_file) and time.monotonic() < deadline:
    time.sleep(0.05)
with open(note, "w") as file:
    file.write(oct(os.stat(stream_file).st_mode & 0o777))
data = {data!r} * {copies}
for start in range(0, len(data), 65536):
    out.status(test_id={test_id!r}, file_name="pythonlogging", file_bytes=data[start:start + 65536],
               mime_type="text/plain; charset=utf8", eof=False)
out.status(test_id={test_id!r}, file_name="pythonlogging", file_bytes=b"", eof=True)
out.status(test_id={test_id!r}, test_status="success", timestamp=now)
"""


def test_a_run_writes_its_stream_owner_only_from_the_start_and_survives_a_large_attachment(tmp_path):
    require_module("subunit")
    require_module("testtools")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stream_file, note = tmp_path / "results" / "tempest.subunit.partial", tmp_path / "mode-during-run"
    stream_file.parent.mkdir()
    line = f"{'-' * 100} POST password={PASSWORD}\n".encode()
    (bin_dir / "tempest").write_text(FAKE_TEMPEST.format(
        python=sys.executable, stream_file=str(stream_file), note=str(note), test_id=TEST_ID, data=line,
        copies=BIG // len(line) + 1))
    (bin_dir / "tempest").chmod(0o755)
    workspace = SimpleNamespace(env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, path=tmp_path)
    test = selection.Test(TEST_ID, *split_test_id(TEST_ID))
    seen = []

    with umask(0o022):
        outcome = run.run_tests(workspace, [test], tmp_path / "load-list", 1, stream_file, mask(),
                                lambda test, status, reason: seen.append(status))

    assert [o.status for o in outcome.outcomes] == ["success"] and seen == ["inprogress", "success"]
    assert note.read_text() == "0o600" and mode(stream_file) == 0o600
    written = stream_file.read_bytes()
    assert len(written) > PACKET and PASSWORD.encode() not in written


# --- the launcher's files ------------------------------------------------------------

def test_a_write_never_follows_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    victim.chmod(0o644)
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    # Where the writer puts its temporary file, and the file itself.
    (run_dir / ".run.json.tmp").symlink_to(victim)
    (run_dir / "run.json").symlink_to(victim)
    launcher_results.write_json(run_dir / "run.json", {"complete": True})
    assert victim.read_text() == "precious" and mode(victim) == 0o644
    assert not (run_dir / "run.json").is_symlink() and mode(run_dir / "run.json") == 0o600


def test_completing_a_run_chmods_no_file_through_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("someone's")
    victim.chmod(0o644)
    run_dir = launcher_results.Run.create(tmp_path / "runs")
    (run_dir.incomplete / "summary.txt").write_text("ok")
    (run_dir.incomplete / "summary.txt").chmod(0o644)
    (run_dir.incomplete / "junit.xml").symlink_to(victim)  # planted by the container, say
    path = run_dir.complete({"passed": 1})
    assert mode(victim) == 0o644
    assert mode(path / "summary.txt") == 0o600 and mode(path / "run.json") == 0o600


def test_an_output_root_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(BadInput) as caught:
        launcher_results.Run.create(shared)
    assert str(caught.value) == (f"results directory {shared} is writable by other users; "
                                 f"run `chmod go-w {shared}` or choose another with --output DIR")
    assert caught.value.exit_code == EXIT_BAD_INPUT and list(shared.iterdir()) == []


def test_an_output_root_another_user_owns_is_refused(tmp_path):
    needs(os.geteuid() == 0, "this test gives a directory to another user, which needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(BadInput, match=f"^results directory {theirs} belongs to another user; "):
        launcher_results.Run.create(theirs)
    assert list(theirs.iterdir()) == []


def test_a_fresh_output_root_is_made_private(tmp_path):
    with umask(0o002):
        run_dir = launcher_results.Run.create(tmp_path / "new" / "runs")
    assert mode(tmp_path / "new" / "runs") == 0o700 and mode(run_dir.incomplete) == 0o700
