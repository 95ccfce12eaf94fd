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


def test_image_context_and_size(benchmark):
    """Naming the image hashes its build context on every run; the image's
    size is what a user's engine stores."""
    import os

    import docker

    sys.path.insert(0, str(ROOT / "src"))
    from tcup.launcher.image import Image

    ca = os.environ.get("TCUP_CA_CERT") or None
    image = benchmark(Image, ca)
    try:
        benchmark.extra_info["image_bytes"] = docker.from_env().images.get(image.tag).attrs["Size"]
    except docker.errors.DockerException:
        benchmark.extra_info["image_bytes"] = None  # not built yet: `make image`
    benchmark.extra_info["context_bytes"] = len(image.context)
