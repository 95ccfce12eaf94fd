"""How users get TCUP: the README's checkout install, lock files that name
no machine, the release files, and a clear refusal of a Python too old."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LAUNCHER_IMPORT_PROBE, ROOT, base_env, needs

MACHINE_LINES = re.compile(r"^\s*(--extra-index-url|--index-url|-i\s|--find-links|-f\s)", re.M)
PYENV = Path.home() / ".pyenv" / "versions"


def tracked(pattern: str):
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", pattern], capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.split() if (ROOT / name).exists()]


def test_no_committed_requirements_file_names_a_package_source():
    files = tracked("*requirements*.txt") + tracked("tools/testcloud/locks/*.txt")
    assert ROOT / "launcher-requirements.txt" in files and ROOT / "image" / "requirements.txt" in files
    for path in files:
        found = MACHINE_LINES.findall(path.read_text())
        assert not found, f"{path.relative_to(ROOT)} names package sources of one machine: {found}"


def test_the_launcher_lock_is_one_set_for_every_python():
    # One version per package: the pyz has one site-packages for all Pythons.
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==", (ROOT / "launcher-requirements.txt").read_text(), re.M)
    assert len(pins) == len(set(pins)) and "cryptography" in pins
    assert ";" not in "".join(re.findall(r"^[A-Za-z].*$", (ROOT / "launcher-requirements.txt").read_text(), re.M))


def readme_block(readme: Path, after: str) -> str:
    text = readme.read_text()
    start = text.index(after)
    return re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)


def test_the_readme_checkout_install_works_as_written(tmp_path):
    """The README's commands, copied as they stand, in a fresh clone."""
    clone = tmp_path / "tcup"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    commands = readme_block(clone / "README.md", "From a checkout")
    env = base_env(tmp_path)
    done = subprocess.run(["bash", "-euc", commands], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "usage: tcup" in done.stdout
    assert "cannot be installed when requiring hashes" not in done.stderr
    # The install leaves nothing beside the code (setup.cfg puts its metadata at the top).
    left = subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "src"], cwd=clone,
                          capture_output=True, text=True, check=True).stdout
    assert [line for line in left.splitlines() if "__pycache__" not in line] == [], left


def pythons(older: bool):
    found = sorted(PYENV.glob("3.*/bin/python3")) if PYENV.is_dir() else []
    chosen = [p for p in found if (tuple(map(int, p.parts[-3].split(".")[:2])) < (3, 9)) == older]
    return chosen or [None]  # the test then says what is missing (and fails in CI)


@pytest.mark.parametrize("python", pythons(older=True), ids=lambda p: p and p.parts[-3])
def test_an_older_python_gets_one_line(pyz, python):
    needs(python is not None, f"no Python older than 3.9 under {PYENV}")
    done = subprocess.run([str(python), str(pyz), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("tcup: error: this is Python ") and "3.9.2 or newer" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("python", pythons(older=False), ids=lambda p: p and p.parts[-3])
def test_every_supported_python_imports_the_whole_launcher(pyz, python, tmp_path):
    """Beyond --version: the modules a run, an upload and signing load,
    with the compiled extensions this Python needs (cffi, cryptography)."""
    needs(python is not None, f"no Python 3.9 or newer under {PYENV}")
    (tmp_path / "probe.py").write_text(LAUNCHER_IMPORT_PROBE)
    # SHIV_INTERPRETER runs a script with the pyz's site-packages instead of its entry point.
    env = dict(base_env(tmp_path), SHIV_INTERPRETER="1", SHIV_ROOT=str(tmp_path / "shiv"))
    done = subprocess.run([str(python), str(pyz), str(tmp_path / "probe.py")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert "IMPORTED" in done.stdout, done.stderr[-3000:]
    assert "Exception ignored" not in done.stderr


def test_release_files(tmp_path):
    output = tmp_path / "dist" / "tcup.pyz"
    done = subprocess.run([sys.executable, str(ROOT / "build_zipapp.py"), "--release", "--output", str(output)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert (output.parent / "tcup.pyz.sha256").read_text() == f"{digest}  tcup.pyz\n"
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "tcup.pyz.sha256"], cwd=output.parent, capture_output=True, text=True)
        assert check.returncode == 0 and "tcup.pyz: OK" in check.stdout
    notes = (output.parent / "RELEASE-NOTES.md").read_text()
    version = subprocess.run([sys.executable, str(output), "--version"], capture_output=True, text=True).stdout.strip()
    assert notes.startswith(f"# {version}\n") and digest in notes
    checkout = subprocess.run([sys.executable, "-m", "tcup", "--version"], capture_output=True, text=True,
                              env=base_env(tmp_path)).stdout.strip()
    # The pyz and the checkout of one commit: one version, one image.
    assert version == checkout and re.fullmatch(r"tcup \S+ \(image tcup:[0-9a-f]{16}\)", version), (version, checkout)


def test_a_python_the_pyz_lacks_a_compiled_part_for_gets_one_line(pyz, tmp_path):
    """As a Python newer than the pyz was built for meets it: the main job's
    packages are pure Python, but signing and the keyring need cffi's compiled
    part for this very Python. Here that part is taken out of the extracted pyz."""
    env = dict(base_env(tmp_path), SHIV_ROOT=str(tmp_path / "shiv"), OS_AUTH_URL="http://127.0.0.1:5000/v3",
               OS_USERNAME="u", OS_PROJECT_NAME="p")
    python = [sys.executable, "-S", str(pyz)]
    assert subprocess.run([*python, "--version"], env=env, capture_output=True).returncode == 0
    tag = "cpython-%d%d-%s" % (*sys.version_info[:2], os.uname().machine)
    parts = list((tmp_path / "shiv").glob(f"*/site-packages/_cffi_backend.{tag}*.so"))
    assert len(parts) == 1, parts
    parts[0].unlink()
    key = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)], check=True)
    for args, feature in ((["pubkey", "--sign-key", str(key)], "signing (--sign-key)"),
                          (["--keyring", "--no-upload"], "the OS keyring (--keyring)")):
        done = subprocess.run([*python, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            f"tcup: error: {feature} needs _cffi_backend, a compiled part tcup.pyz carries for CPython 3.9.2 to 3.14 "
            f"on x86_64 and aarch64 Linux; this is Python {sys.version_info[0]}.{sys.version_info[1]} on "
            f"{os.uname().machine}: run tcup.pyz with one of those (e.g. python3.14 tcup.pyz)\n"), done.stderr


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_images_lock_has_wheels_for_every_machine(machine, tmp_path):
    """TCUP builds its image for the engine's own architecture, from wheels
    only (--only-binary): every locked package needs a wheel, with its hash,
    for each machine the pyz runs on. Resolved against PyPI; nothing installed."""
    done = subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--dry-run", "--no-deps", "--require-hashes",
         "--only-binary", ":all:", "--python-version", "3.11", "--python-platform", f"{machine}-manylinux_2_36",
         "--target", str(tmp_path / "site"), "-r", str(ROOT / "image" / "requirements.txt")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    locked = len(re.findall(r"^[A-Za-z0-9_.-]+==", (ROOT / "image" / "requirements.txt").read_text(), re.M))
    assert done.stderr.count("\n + ") == locked > 50, done.stderr[-3000:]
