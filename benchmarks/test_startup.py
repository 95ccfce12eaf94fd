"""Start-up and size, measured (never asserted on time): `make bench`."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "tcup.pyz"


def run(*command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def test_checkout_version(benchmark):
    benchmark(run, sys.executable, "-m", "tcup", "--version")


def test_checkout_help(benchmark):
    benchmark(run, sys.executable, "-m", "tcup", "--help")


def test_pyz_version(benchmark):
    run(str(PYZ), "--version")  # the first start unpacks into ~/.shiv
    benchmark(run, str(PYZ), "--version")


def test_pyz_size(benchmark):
    benchmark.extra_info["pyz_bytes"] = PYZ.stat().st_size
    benchmark(PYZ.stat)
