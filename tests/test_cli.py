"""The command line itself: light start-up, the pyz and the checkout are one
program, the pyz is reproducible, and both name the same image."""

import hashlib
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
                                                   "passed": 7, "failed": 1, "skipped": 265}))
    (tmp_path / "20260102T000000Z-bbbbbb.incomplete").mkdir()
    done = subprocess.run([sys.executable, "-m", "tcup", "results", "--output", str(tmp_path)], env=base_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert lines[1].split()[:7] == ["20260101T000000Z-aaaaaa", "c0ffee", "2020.06", "platform", "7", "1", "265"]
    assert lines[1].endswith("not uploaded")
    assert "incomplete" in lines[2]
