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


def test_image_context(benchmark):
    """Naming the image hashes its build context on every run."""
    sys.path.insert(0, str(ROOT / "src"))
    from tcup.launcher.engine.image import Image

    image = benchmark(Image)
    benchmark.extra_info["tag"] = image.tag


def tcup_image(*flags):
    import os

    env = dict(os.environ, TCUP_CA_CERT=os.environ.get("TCUP_CA_CERT") or os.environ.get("PIP_CERT", ""))
    done = subprocess.run([sys.executable, "-m", "tcup", "image", *flags], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def test_image_cold_build_and_size(benchmark):
    """`tcup image --rebuild`: no cached layer, Debian's and PyPI's files
    fetched anew; then what the image adds to its base, which is what a
    user's engine stores and pulls nothing for."""
    import docker

    tag = benchmark.pedantic(tcup_image, args=("--rebuild",), rounds=1, iterations=1)
    images = docker.from_env().images
    size, base = images.get(tag).attrs["Size"], images.get("debian:bookworm-slim").attrs["Size"]
    benchmark.extra_info.update(image_bytes=size, base_bytes=base, own_bytes=size - base)


def test_image_cached_resolve(benchmark):
    """`tcup image` with the image on hand: context hash, engine, lookup."""
    tcup_image()
    benchmark.pedantic(tcup_image, rounds=5, iterations=1)
