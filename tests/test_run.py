"""End to end: a user sources an openrc and runs TCUP against a real Keystone;
Tempest runs in a real container, the results land on disk, the container
dissolves, and the password is nowhere to be found."""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ADMIN_CANARY, MEMBER_CANARY, as_a_terminal_starts_it, only_run, openrc, tcup

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

# The seven identity tests of the 2020.06 platform guideline: the ones a
# Keystone-only cloud can pass.
IDENTITY_2020_06 = 7
GUIDELINE_2020_06 = 273
# Tempest's v3 tokens, api-discovery, catalog and projects tests.
IDENTITY_SUBSET = r"^tempest\.api\.identity\.v3\.(test_tokens|test_api_discovery|test_catalog|test_projects)\."


def subunit_statuses(path: Path) -> dict:
    """Final status per test id, read from the subunit v2 stream with python-subunit."""
    import subunit
    import testtools

    statuses = {}

    class Collect(testtools.StreamResult):
        def status(self, test_id=None, test_status=None, **_):
            if test_id and test_status in ("success", "fail", "skip", "xfail", "uxsuccess"):
                statuses[test_id] = test_status

    with path.open("rb") as stream:
        subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(Collect())
    return statuses


def strip_attrs(test_id: str) -> str:
    return re.sub(r"\[.*\]$", "", test_id)


def assert_no_canary(*texts, where=""):
    for text in texts:
        for canary in (ADMIN_CANARY, MEMBER_CANARY):
            assert canary not in text, f"a password leaked into {where}"


def all_files_text(directory: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in directory.rglob("*") if p.is_file())


def test_member_runs_the_interop_guideline_through_the_pyz(pyz, image, keystone, watch, tmp_path, engine):
    """The default run: 2020.06 platform, a member account, no upload."""
    output = tmp_path / "runs"
    done = tcup(["--no-upload", "--output", str(output)], openrc(keystone, "member", tmp_path), pyz_path=pyz)
    # A Keystone-only cloud skips most of the list: not compliant, which is not a pass.
    assert done.returncode == 5, done.stderr[-2000:]
    run = only_run(output)
    meta = json.loads((run / "run.json").read_text())
    assert (meta["passed"], meta["failed"], meta["skipped"]) == (IDENTITY_2020_06, 0, GUIDELINE_2020_06 - IDENTITY_2020_06)
    assert (meta["verdict"], meta["rule"], meta["missing"]) == ("not compliant", "refstack", 0)
    # By the guideline's own rule, RefStack's, a skipped test is not a pass; the verdict says why they skipped.
    skipped = GUIDELINE_2020_06 - IDENTITY_2020_06
    assert (f"Verdict: NOT COMPLIANT by RefStack's rule (every required test passes; a skipped test fails its "
            f"capability): none failed, but {skipped} tests skipped: ") in done.stdout
    assert sum(entry["count"] for entry in meta["skip_reasons"]) == skipped
    assert meta["credentials"] == "preprovisioned" and meta["concurrency"] == 1
    assert (meta["guideline"], meta["target"]) == ("2020.06", "platform")

    # RefStack JSON: the passed tests only, names without attributes, uuids from id-.
    refstack = json.loads((run / "refstack.json").read_text())
    assert set(refstack) == {"cpid", "duration_seconds", "results"}
    catalog = keystone.token("member")[1]["catalog"]
    assert refstack["cpid"] == next(s["id"] for s in catalog if s["type"] == "identity")
    names = {r["name"] for r in refstack["results"]}
    assert len(refstack["results"]) == IDENTITY_2020_06 == len(names)
    assert all(n.startswith("tempest.api.identity.") and "[" not in n for n in names)
    # ... and exactly the passed set of the subunit stream.
    statuses = subunit_statuses(run / "tempest.subunit")
    assert {strip_attrs(t) for t, s in statuses.items() if s == "success"} == names
    uuids = {re.search(r"id-([0-9a-f-]{36})", t).group(1) for t, s in statuses.items() if s == "success"}
    assert uuids == {r["uuid"] for r in refstack["results"]}

    # Compliance report: every capability of the guideline, identity ones passing.
    report = json.loads((run / "compliance.json").read_text())
    assert report["totals"]["tests"] == GUIDELINE_2020_06
    assert report["totals"]["passed"] == IDENTITY_2020_06
    assert all(c["status"] == "pass" for n, c in report["capabilities"].items() if n.startswith("identity-"))
    assert "Compliance with 2020.06 platform" in done.stdout
    # summary.txt holds what the terminal showed: compliance table and verdict too.
    summary = (run / "summary.txt").read_text()
    assert "Compliance with 2020.06 platform" in summary and "Verdict: NOT COMPLIANT" in summary
    assert summary.strip() in done.stdout
    assert f"Results saved in {run}" in done.stdout

    # Nothing secret or identifying anywhere TCUP wrote or showed.
    saved = all_files_text(run)
    assert_no_canary(saved, done.stdout, done.stderr, where="the run directory or output")
    # The member's user and project are both named "demo"; the auth URL is loopback.
    host = keystone.auth_url.split("//")[1].split("/")[0]
    assert keystone.auth_url not in saved and host not in saved
    assert not re.search(r"\bdemo\b", saved)
    assert watch.seen, "the run's container was never seen"
    for record in watch.seen.values():
        assert_no_canary(record.get("inspect", ""), record.get("logs", ""), where="docker inspect / container logs")
        # tempest.conf and accounts.yaml live on the tmpfs only, never in the container's layer.
        assert not [p for p in record.get("diff", []) if "tempest" in p or "accounts" in p or p.startswith("/tmp/")]
    assert any("diff" in record for record in watch.seen.values())
    # Least privilege, as the engine ran it.
    host = next(json.loads(r["inspect"]) for r in watch.seen.values() if "inspect" in r)["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and not host["Privileged"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True and host["PidsLimit"] == 512
    assert set(host["Tmpfs"]) == {"/tmp"} and host["AutoRemove"] is True
    history = json.dumps(engine.api.history(image)) + json.dumps(engine.api.inspect_image(image))
    assert_no_canary(history, where="the image")
    # Owner-only permissions.
    assert oct(run.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in run.iterdir()} == {"0o600"}


def test_admin_runs_identity_tests_with_python_m_tcup(image, keystone, watch, tmp_path):
    """The checkout runs the same program; admin credentials use dynamic credentials."""
    output = tmp_path / "runs"
    env = openrc(keystone, "admin", tmp_path)
    done = tcup(["--no-upload", "--output", str(output), "--regex", IDENTITY_SUBSET, "--concurrency", "2"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    run = only_run(output)
    meta = json.loads((run / "run.json").read_text())
    statuses = subunit_statuses(run / "tempest.subunit")
    assert meta["credentials"] == "dynamic" and meta["concurrency"] == 2
    assert meta["passed"] == 10 and meta["failed"] == 0
    assert len([s for s in statuses.values() if s == "success"]) == 10
    assert all(re.match(IDENTITY_SUBSET, t) for t in statuses)
    refstack = json.loads((run / "refstack.json").read_text())
    assert sorted(r["name"] for r in refstack["results"]) == sorted(strip_attrs(t) for t, s in statuses.items() if s == "success")
    assert_no_canary(all_files_text(run), done.stdout, done.stderr, where="the admin run")


def test_test_list_is_matched_by_id_not_name(image, keystone, watch, tmp_path):
    """A RefStack test list whose names are stale still selects by idempotent id."""
    test_list = tmp_path / "list.txt"
    test_list.write_text(
        "tempest.api.identity.v3.test_tokens.OldName.test_renamed_long_ago[id-6f8e4436-fc96-4282-8122-e41df57197a9]\n"
        "tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token[id-a9512ac3-3909-48a4-b395-11f438e16260,smoke]\n"
    )
    output = tmp_path / "runs"
    done = tcup(["--no-upload", "--output", str(output), "--test-list", str(test_list)], openrc(keystone, "member", tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    refstack = json.loads((only_run(output) / "refstack.json").read_text())
    assert sorted(r["name"] for r in refstack["results"]) == [
        "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
        "tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token",
    ]


def _start(args, env, tmp_path):
    command = [sys.executable, "-m", "tcup", "--no-upload", "--output", str(tmp_path / "runs")] + args
    # A shell starts background jobs with SIGINT ignored, and children keep
    # that; a user's terminal does not, so neither does this launcher.
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=as_a_terminal_starts_it)


def _wait_for(process, pattern, timeout=300):
    """Read the launcher's stderr until a line matches; return what was read."""
    seen = []
    deadline = time.time() + timeout
    for line in process.stderr:
        seen.append(line)
        if re.search(pattern, line):
            return seen
        if time.time() > deadline:
            break
    raise AssertionError(f"never saw {pattern!r}: {''.join(seen)[-2000:]}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT],
                         ids=lambda s: signal.Signals(s).name)
def test_interrupting_the_launcher_removes_the_container(image, keystone, watch, tmp_path, signum):
    env = openrc(keystone, "admin", tmp_path)
    process = _start(["--regex", r"^tempest\.api\.identity"], env, tmp_path)
    try:
        _wait_for(process, r"running \d+ tests")
        assert watch.tcup_containers(), "no container was running"
        process.send_signal(signum)
        # A guard against a hang, not a speed bound: stopping the container
        # (10 s grace) waited on a loaded engine for over a minute once.
        process.wait(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "interrupted" in process.stderr.read()
    # What was written so far is kept, plainly marked incomplete.
    assert all(p.name.endswith(".incomplete") for p in (tmp_path / "runs").iterdir())


def test_a_killed_launcher_leaves_no_container(image, keystone, watch, tmp_path):
    """SIGKILL gives the launcher no chance to clean up: the runner notices
    its stdin close and ends, and the engine removes the container."""
    env = openrc(keystone, "admin", tmp_path)
    process = _start(["--regex", r"^tempest\.api\.identity"], env, tmp_path)
    try:
        _wait_for(process, r"running \d+ tests")
        assert watch.tcup_containers() - watch.before, "no container was running"
        process.kill()
        process.wait(timeout=60)
        deadline = time.time() + 15
        while time.time() < deadline and watch.tcup_containers() - watch.before:
            time.sleep(0.5)
        assert not watch.tcup_containers() - watch.before, "the container outlived the killed launcher by 15 s"
    finally:
        process.kill()
    assert all(p.name.endswith(".incomplete") for p in (tmp_path / "runs").iterdir())


def test_runner_crash_is_an_infrastructure_error_and_the_container_goes(image, keystone, watch, engine, tmp_path):
    env = openrc(keystone, "admin", tmp_path)
    process = _start(["--regex", r"^tempest\.api\.identity"], env, tmp_path)
    try:
        _wait_for(process, r"running \d+ tests")
        (container_id,) = watch.tcup_containers() - watch.before
        container = engine.containers.get(container_id)
        kill_runner = ("import os, signal\n"
                       "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
                       "    if b'tcup.runner' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
                       "        os.kill(int(pid), signal.SIGKILL)\n")
        container.exec_run(["python3", "-c", kill_runner], user=f"{os.getuid()}:{os.getgid()}")
        process.wait(timeout=120)
        stderr = process.stderr.read()
    finally:
        process.kill()
    assert process.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert "runner ended without results" in stderr


def test_test_failures_exit_1_keep_results_and_remove_the_container(image, watch, tmp_path):
    """A cloud that goes away mid-run makes real Tempest failures."""
    from keystone_cloud import KeystoneCloud

    cloud = KeystoneCloud(tmp_path / "cloud", admin_password=ADMIN_CANARY, member_password=MEMBER_CANARY).start()
    try:
        process = _start(["--regex", r"^tempest\.api\.identity\.v3", "--concurrency", "1"], openrc(cloud, "admin", tmp_path), tmp_path)
        try:
            _wait_for(process, r"\] passed tempest")
            cloud.stop()
            process.wait(timeout=900)
            stdout = process.stdout.read()
        finally:
            process.kill()
    finally:
        cloud.stop()
    assert process.returncode == 1, stdout[-2000:]
    run = only_run(tmp_path / "runs")
    meta = json.loads((run / "run.json").read_text())
    assert meta["passed"] >= 1 and meta["failed"] >= 1
    tests = json.loads((run / "tests.json").read_text())["tests"]
    assert sum(t["status"] == "fail" for t in tests) == meta["failed"]
    assert all(t["reason"] for t in tests if t["status"] == "fail")
    assert_no_canary(all_files_text(run), stdout, where="a failed run")


def test_debug_opens_a_shell_with_tempest_configured(image, keystone, watch, tmp_path):
    """--debug: the user's directory at /workspace, tempest.conf ready, no tests."""
    import pty

    workdir = tmp_path / "mine"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine\n")
    env = openrc(keystone, "member", tmp_path)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(workdir)
        os.execve(sys.executable, [sys.executable, "-m", "tcup", "--debug"], env)
    screen = b""

    def read_until(pattern, timeout=180):
        nonlocal screen
        deadline = time.time() + timeout
        while not re.search(pattern, screen) and time.time() < deadline:
            if not select.select([fd], [], [], max(0.0, deadline - time.time()))[0]:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        return re.search(pattern, screen) is not None

    status = None
    try:
        assert read_until(rb"Start the tests by hand"), screen.decode(errors="replace")[-2000:]
        # Type at the shell's prompt, as a person would.
        assert read_until(rb"[$#] $", timeout=60), screen.decode(errors="replace")[-2000:]
        os.write(fd, b"ls /workspace; grep -c '^\\[auth\\]' $TEMPEST_CONFIG_DIR/tempest.conf && echo CONF-$((20+3)); exit\n")
        read_until(rb"CONF-23")
        read_until(rb"\x00", timeout=30)  # drain until the shell and container are gone
        deadline = time.time() + 60
        while time.time() < deadline:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
            time.sleep(0.5)
    finally:
        if status is None:  # a hung session must fail the test, not hang the suite
            os.kill(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = screen.decode(errors="replace")
    assert "notes.txt" in text and "CONF-23" in text
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert_no_canary(text, where="the debug session")
