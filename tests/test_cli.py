"""The command line itself: light start-up, the pyz and the checkout are one
program, the pyz is reproducible, and both name the same image."""

import hashlib
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import ROOT, base_env

HEAVY = ("docker", "requests", "keyring", "yaml", "cryptography", "urllib3")


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_nothing_heavy(flag):
    probe = (
        "import sys\n"
        "from tcup.launcher import cli\n"
        "try:\n"
        f"    cli.main([{flag!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env={**base_env(ROOT), "PYTHONPATH": str(ROOT / "src")},
                          capture_output=True, text=True, timeout=60)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr


def test_the_pyz_and_the_checkout_are_the_same_program(pyz, tmp_path):
    env = base_env(tmp_path)
    from_pyz = subprocess.run([str(pyz), "--help"], env=env, capture_output=True, text=True, timeout=120)
    from_checkout = subprocess.run([sys.executable, "-m", "tcup", "--help"], env=env, capture_output=True, text=True)
    assert from_pyz.returncode == from_checkout.returncode == 0
    assert from_pyz.stdout == from_checkout.stdout
    assert "usage: tcup" in from_pyz.stdout
    with open(pyz, "rb") as file:
        assert file.readline() == b"#!/usr/bin/env python3\n"


def test_two_builds_of_one_commit_are_byte_identical(pyz, tmp_path):
    again = tmp_path / "again.pyz"
    subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "--output", str(again)], check=True,
                   capture_output=True, timeout=600)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(pyz.read_bytes()).hexdigest()


@pytest.mark.engine
def test_the_pyz_reuses_the_checkouts_image(pyz, image, tmp_path):
    """Same build context, same tag: whichever runs second builds nothing."""
    done = subprocess.run([str(pyz), "image"], env=base_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image
    assert "building image" not in done.stderr


def test_results_lists_saved_runs_and_marks_incomplete_ones(tmp_path):
    import json

    complete = tmp_path / "20260101T000000Z-aaaaaa"
    complete.mkdir()
    (complete / "run.json").write_text(json.dumps({"complete": True, "cpid": "c0ffee", "label": "2020.06 platform",
                                                   "verdict": "failed", "passed": 7, "failed": 1, "skipped": 265}))
    (tmp_path / "20260102T000000Z-bbbbbb.incomplete").mkdir()
    done = subprocess.run([sys.executable, "-m", "tcup", "results", "--output", str(tmp_path)], env=base_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert lines[1].split()[:8] == ["20260101T000000Z-aaaaaa", "c0ffee", "2020.06", "platform", "failed", "7", "1", "265"]
    assert lines[1].endswith("not uploaded")
    assert "incomplete" in lines[2]


@pytest.mark.parametrize("argv, suggestion", [
    (["--no-uplaod"], "(did you mean --no-upload?)"),
    (["upload", "RUN", "--forse"], "(did you mean --force?)"),
    (["--regx", "x"], "(did you mean --regex?)"),
])
def test_a_mistyped_option_gets_a_suggestion(argv, suggestion, tmp_path):
    done = subprocess.run([sys.executable, "-m", "tcup", *argv], env=base_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].endswith(suggestion), done.stderr


@pytest.mark.parametrize("argv0, shown", [
    ("./tcup.pyz", "./tcup.pyz"), ("tcup.pyz", "./tcup.pyz"), ("/opt/bin/tcup.pyz", "/opt/bin/tcup.pyz"),
    ("/src/tcup/__main__.py", "-m tcup"), ("/usr/local/bin/tcup", "tcup"),
])
def test_commands_are_printed_back_as_the_user_started_tcup(monkeypatch, argv0, shown):
    from tcup.launcher.upload import refstack as upload
    from tcup.launcher.version import invoked_as

    monkeypatch.setattr(sys, "argv", [argv0])
    assert invoked_as().endswith(shown)
    assert upload.resume_command(Path("/runs/r1"), "https://r.example/api", None).startswith(f"{invoked_as()} upload /runs/r1 ")


def test_plurals_say_one_test():
    import io

    from tcup.launcher.progress import Progress
    from tcup.masking import Mask

    out = io.StringIO()
    Progress(Mask(), out=out).feed(1, b'{"event": "selected", "count": 1, "missing": []}')
    assert out.getvalue() == "tcup: 1 test selected\n"


def test_tcup_results_keeps_its_columns_with_long_labels():
    from tcup.launcher.results.listing import render_runs

    runs = [
        {"name": "20261125T210546Z-2ba21f", "complete": True, "cpid": "c1", "label": "2020.06 platform",
         "verdict": "not compliant", "passed": 7, "failed": 0, "skipped": 266},
        {"name": "20261125T210715Z-6d2fd4", "complete": True, "cpid": "c1",
         "label": "regex tempest.api.identity.v3.test_tokens|test_api_discovery", "verdict": "compliant",
         "passed": 1234, "failed": 0, "skipped": 0, "uploads": [{"url": "https://r.example/#/results/1"}]},
        {"name": "20261125T220000Z-abcdef.incomplete", "complete": False},
    ]
    lines = render_runs(runs).splitlines()
    assert len(lines) == 4
    # Every column starts where its header does.
    for column in ("cpid", "list", "verdict", "upload"):
        start = lines[0].index(column)
        assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines[1:3]), column
    assert lines[2].endswith("https://r.example/#/results/1") and "(incomplete" in lines[3]


def test_results_json_is_one_object_with_each_runs_context(tmp_path):
    import json

    complete = tmp_path / "20260101T000000Z-aaaaaa"
    complete.mkdir()
    (complete / "run.json").write_text(json.dumps({
        "complete": True, "cpid": "c0ffee", "label": "2020.06 platform", "verdict": "failed", "rule": "refstack",
        "passed": 7, "failed": 1, "skipped": 265}))
    (complete / "uploads.json").write_text(json.dumps([{"url": "https://refstack.example/#/results/1"},
                                                       {"url": "https://refstack.example/#/results/2"}]))
    (tmp_path / "20260102T000000Z-bbbbbb.incomplete").mkdir()
    done = subprocess.run([sys.executable, "-m", "tcup", "results", "--json", "--output", str(tmp_path)],
                          env=base_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "" and done.stdout.count("\n") == 1
    assert json.loads(done.stdout) == {"runs": [
        {"name": "20260101T000000Z-aaaaaa", "path": str(complete), "complete": True, "verdict": "failed",
         "rule": "refstack", "label": "2020.06 platform", "cpid": "c0ffee", "passed": 7, "failed": 1, "skipped": 265,
         "upload_url": "https://refstack.example/#/results/2"},
        {"name": "20260102T000000Z-bbbbbb.incomplete", "path": str(tmp_path / "20260102T000000Z-bbbbbb.incomplete"),
         "complete": False, "verdict": None, "rule": None, "label": None, "cpid": None, "passed": None,
         "failed": None, "skipped": None, "upload_url": None},
    ]}
