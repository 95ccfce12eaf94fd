#!/usr/bin/env python3
"""Build dist/tcup.pyz: the launcher, its pinned dependencies and the image's
build context, packed by shiv into one executable file.

This script makes the artifact; nothing in it runs inside the artifact.
Two builds of one commit are byte-identical: the dependencies are pinned
with hashes, file times come from the commit (SOURCE_DATE_EPOCH), and files
that would record this machine (pip's direct_url.json, scripts with a
shebang to this Python) are left out.

    python3 build_zipapp.py [--output dist/tcup.pyz]
"""

import argparse
import concurrent.futures
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "tcup"
REQUIREMENTS = HERE / "launcher-requirements.txt"
ENTRY_POINT = "tcup.launcher.entry:main"
# The shebang users' systems resolve: any Python 3 on PATH.
INTERPRETER = "/usr/bin/env python3"
# The Pythons and machines the pyz carries compiled extensions for: one owner,
# the launcher's entry module, which refuses older Pythons and names these.
sys.path.insert(0, str(HERE / "src"))
from tcup.launcher.entry import MACHINE_DIR, MACHINES, PYTHONS  # noqa: E402

# manylinux2014 is glibc 2.17: RHEL/Rocky 8 and 9, Debian 9 on, Ubuntu 18.04 on.
WHEEL_PLATFORM = "{machine}-manylinux2014"


def install_dependencies(site: Path, work: Path) -> None:
    """The pinned, hash-checked launcher dependencies, for every supported
    Python on every supported machine.

    One set of versions (locked for the oldest Python) serves all of them;
    only compiled extensions differ. Most carry the Python and the machine in
    their file names (``_cffi_backend.cpython-39-aarch64-linux-gnu.so``), so
    each lies beside the others and each interpreter imports its own. Those
    that do not (abi3: cryptography's ``_rust.abi3.so``) would be loaded on
    any machine, so their packages go to a directory per machine, which the
    launcher puts on sys.path at start (tcup.launcher.entry).
    """
    installs = [(machine, python, work / f"{machine}-py{python}") for machine in MACHINES for python in PYTHONS]
    # All installs at once (they wait on downloads); merged in one fixed order, so the pyz is too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(installs)) as pool:
        list(pool.map(lambda each: install(*each), installs))
    for machine, _, target in installs:
        merge(target, site, site / MACHINE_DIR / machine, untagged_files(target, machine))
    # Nothing that names this machine or this Python goes into the artifact.
    for scripts in [site / "bin", *(site / MACHINE_DIR).glob("*/bin")]:
        shutil.rmtree(scripts, ignore_errors=True)
    for stray in site.rglob("*.dist-info/direct_url.json"):
        stray.unlink()
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache)
    # Speedups with a pure-Python twin that the package falls back to by itself,
    # 4 MB packed for six Pythons on two machines: PyYAML's C loader (a
    # clouds.yaml reads as well without it) and charset_normalizer's compiled
    # detector (requests asks it only to guess an answer's undeclared encoding).
    for speedup in [*site.glob("yaml/_yaml.*.so"), *site.glob("charset_normalizer/*.cpython-*.so")]:
        speedup.unlink()


def install(machine: str, python: str, target: Path) -> None:
    """The lock's wheels for one Python on one machine, into ``target``."""
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--no-deps", "--require-hashes",
         "--only-binary", ":all:", "--python-version", python, "--python-platform", WHEEL_PLATFORM.format(machine=machine),
         "--target", str(target), "-r", str(REQUIREMENTS)],
        check=True,
    )


def untagged_files(source: Path, machine: str) -> set:
    """The files (relative to ``source``) of every distribution with a compiled
    extension whose name does not say it is for ``machine``, by each one's RECORD."""
    chosen = set()
    for record in source.glob("*.dist-info/RECORD"):
        with open(record, newline="") as file:
            files = [Path(row[0]) for row in csv.reader(file) if row]
        if any(f.suffix == ".so" and not f.name.endswith(f"-{machine}-linux-gnu.so") for f in files):
            chosen.update(files)
    return chosen


def merge(source: Path, site: Path, machine_site: Path, untagged: set) -> None:
    """Add one Python's install to the shared tree (``untagged`` files to this
    machine's own): its tagged extensions are new files; what both have stays
    the first's. Python sources both have must be the same, or the versions
    were not one set. An abi3 extension built for the oldest Python runs on
    the newer ones, so the first one is kept."""
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(source)
        destination = (machine_site if relative in untagged else site) / relative
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        elif path.suffix == ".py" and destination.read_bytes() != path.read_bytes():
            raise SystemExit(f"build_zipapp: {relative} differs between Pythons; lock one version for all (make lock)")


def copy_package(site: Path) -> None:
    """tcup itself; its image/ (a link to the repository's image/ directory)
    is copied as files, so the pyz holds the build context as package data."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "VERSION")
    shutil.copytree(PACKAGE, site / "tcup", ignore=ignore)
    # The pyz has no git to ask: stamp the version this checkout's git gives.
    (site / "tcup" / "launcher" / "VERSION").write_text(release_version() + "\n")


def release_version() -> str:
    from tcup.launcher.version import from_git

    import tcup

    return from_git(HERE) or tcup.__version__


def source_date_epoch() -> str:
    """The commit's time, so a rebuild of the same commit is identical."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        return subprocess.run(["git", "-C", str(HERE), "log", "-1", "--format=%ct"],
                              check=True, capture_output=True, text=True).stdout.strip() or "315532800"
    except (OSError, subprocess.CalledProcessError):
        return "315532800"  # 1980-01-01, the earliest time a zip file can hold


def pack(site: Path, output: Path) -> None:
    """shiv: the site-packages tree, the entry point and the bootstrap."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    env = dict(os.environ, SOURCE_DATE_EPOCH=source_date_epoch())
    subprocess.run(
        [sys.executable, "-m", "shiv", "--site-packages", str(site), "--entry-point", ENTRY_POINT,
         "--python", INTERPRETER, "--reproducible", "--compressed", "--output-file", str(tmp)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    os.replace(tmp, output)  # a half-written pyz never takes the real one's place


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "dist" / "tcup.pyz")
    parser.add_argument("--release", action="store_true",
                        help="also write the pyz's .sha256 (for `sha256sum -c`) and release notes beside it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tcup-pyz-") as tmp:
        site = Path(tmp) / "site-packages"
        install_dependencies(site, Path(tmp))
        copy_package(site)
        pack(site, args.output)
    print(f"built {args.output} ({args.output.stat().st_size // 1024} KiB)")
    if args.release:
        write_release_files(args.output)
    return 0


def write_release_files(pyz: Path) -> None:
    """``tcup.pyz.sha256`` in sha256sum's format, and the release notes:
    the version, the image it drives, where it runs, what changed."""
    digest = hashlib.sha256(pyz.read_bytes()).hexdigest()
    checksum = pyz.with_name(pyz.name + ".sha256")
    checksum.write_text(f"{digest}  {pyz.name}\n")
    described = subprocess.run([sys.executable, str(pyz), "--version"], check=True, capture_output=True, text=True)
    changes = subprocess.run(["git", "-C", str(HERE), "log", "--format=- %s", "-n", "30"] + previous_tag(),
                             capture_output=True, text=True).stdout
    notes = pyz.with_name("RELEASE-NOTES.md")
    notes.write_text(
        f"# {described.stdout.strip()}\n\n"
        f"- Runs on CPython {PYTHONS[0]} to {PYTHONS[-1]}, {' and '.join(MACHINES)} Linux with glibc 2.17 or newer, "
        "with Docker or Podman.\n"
        f"- sha256 `{digest}`; check a download with `sha256sum -c {checksum.name}`.\n\n"
        f"## Changes\n\n{changes}"
    )
    print(f"wrote {checksum} and {notes}")


def previous_tag() -> list:
    """The log range since the last release tag, or [] when there is none."""
    tag = subprocess.run(["git", "-C", str(HERE), "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*"],
                         capture_output=True, text=True).stdout.strip()
    return [f"{tag}..HEAD"] if tag else []


if __name__ == "__main__":
    sys.exit(main())
