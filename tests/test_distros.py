"""One tcup.pyz on the Linuxes its users have: Debian 11 (Python 3.9,
glibc 2.31), 12 (3.11, 2.36), 13 (3.13, 2.41) and unstable (3.14, 2.43), each
running the pyz with its own python3 against the host's Docker engine, as a
user on such a machine would; and Debian 12 on 64-bit ARM (aarch64, through
qemu-user-static), which runs everything but a container. The images come
from `.ci/distros.sh`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONTAINER_LABEL, LAUNCHER_IMPORT_PROBE, ROOT

pytestmark = [pytest.mark.engine, pytest.mark.keystone, pytest.mark.distros]

# Each image's python3 and machine.
DISTROS = {"11": ("3.9", "x86_64"), "12": ("3.11", "x86_64"), "13": ("3.13", "x86_64"), "sid": ("3.14", "x86_64"),
           "12-arm64": ("3.11", "aarch64")}
# Emulated machines are slow: they run what differs by machine (the compiled
# parts the pyz picks), not the engine-side paths every machine shares.
NATIVE = sorted(release for release, (_, machine) in DISTROS.items() if machine == os.uname().machine)
ENGINE_SOCKET = "/var/run/docker.sock"


class Distro:
    """A throw-away machine of one Debian release, sharing the host's engine
    socket, network and one work directory (at the same path, so the run
    directories TCUP bind-mounts into its own container exist for the engine).
    The pyz unpacks once per release (``unpacked``, shiv's root, shared by the
    module's tests, with the bytecode its first imports write), as on a user's
    machine: under emulation that is most of a start's time."""

    def __init__(self, client, release: str, work: Path, pyz: Path, unpacked: Path):
        self.client = client
        self.image = f"tcup-ci/debian:{release}"
        self.work = work
        self.pyz = pyz
        self.unpacked = unpacked

    def run(self, command, env=None, user="0:0"):
        """(exit code, stdout, stderr) of a command in a new container of this distro."""
        container = self.client.containers.create(
            self.image, command, user=user, network_mode="host", working_dir=str(self.work),
            environment={"HOME": str(self.work / "home"), "LANG": "C.UTF-8", "SHIV_ROOT": str(self.unpacked),
                         **(env or {})},
            volumes={str(self.work): {"bind": str(self.work), "mode": "rw"},
                     str(self.unpacked): {"bind": str(self.unpacked), "mode": "rw"},
                     str(self.pyz): {"bind": "/usr/local/bin/tcup.pyz", "mode": "ro"},
                     ENGINE_SOCKET: {"bind": ENGINE_SOCKET, "mode": "rw"}},
        )
        try:
            container.start()
            code = container.wait(timeout=900)["StatusCode"]
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        return code, out, err

    def tcup(self, *args, env=None):
        # The distro's own python3, as `./tcup.pyz` would pick it by its shebang.
        return self.run(["python3", "/usr/local/bin/tcup.pyz", *args], env=env)


@pytest.fixture(scope="module")
def distro_images(engine):
    missing = [release for release in DISTROS if not engine.images.list(name=f"tcup-ci/debian:{release}")]
    # The kernel forgets qemu's registration at a reboot; the script makes it again.
    if missing or not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        done = subprocess.run(["bash", str(ROOT / ".ci" / "distros.sh")], capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stdout + done.stderr
    return DISTROS


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    """Where each release's python3 unpacks the pyz, kept for the module."""
    return tmp_path_factory.mktemp("shiv")


def _distro(request, engine, pyz, tmp_path, unpacked):
    (tmp_path / "home").mkdir()
    os.chmod(tmp_path, 0o755)
    (unpacked / request.param).mkdir(exist_ok=True)
    return Distro(engine, request.param, tmp_path, pyz, unpacked / request.param)


@pytest.fixture(params=sorted(DISTROS), ids=lambda r: f"debian{r}")
def distro(request, distro_images, engine, pyz, tmp_path, unpacked):
    return _distro(request, engine, pyz, tmp_path, unpacked)


@pytest.fixture(params=NATIVE, ids=lambda r: f"debian{r}")
def native_distro(request, distro_images, engine, pyz, tmp_path, unpacked):
    return _distro(request, engine, pyz, tmp_path, unpacked)


def clean(*outputs):
    for text in outputs:
        assert "Traceback" not in text, text
        assert "Exception ignored" not in text, text


def test_the_distros_python_and_machine_are_the_ones_in_the_matrix(distro):
    code, out, err = distro.run(["python3", "-c", "import os, sys, platform; print('%d.%d' % sys.version_info[:2], "
                                 "platform.libc_ver()[1], os.uname().machine)"])
    assert code == 0, err
    python, glibc, machine = out.split()
    assert (python, machine) == DISTROS[distro.image.rsplit(":", 1)[1]]
    assert tuple(map(int, glibc.split("."))) >= (2, 17)


def test_version_help_and_signing(distro):
    code, out, err = distro.tcup("--version")
    assert code == 0 and out.startswith("tcup ") and "(image tcup:" in out, out + err
    code, out, err = distro.tcup("--help")
    assert code == 0 and "usage: tcup" in out, err
    clean(out, err)
    # Keys as users have them: ssh-keygen's OpenSSH form, and the PEM form.
    keys = distro.work / "keys"
    code, _, err = distro.run(["bash", "-c", f"mkdir -p {keys} && ssh-keygen -q -t rsa -b 2048 -N '' -f {keys}/id_rsa"
                               f" && cp {keys}/id_rsa {keys}/pem && ssh-keygen -q -p -m PEM -N '' -f {keys}/pem"])
    assert code == 0, err
    public = (keys / "id_rsa.pub").read_text().split()[1]
    for key in ("id_rsa", "pem"):
        code, out, err = distro.tcup("pubkey", "--sign-key", str(keys / key))
        clean(out, err)
        assert code == 0, err
        assert public in out and "self-signature" in out
        signature = out.strip().splitlines()[-1]
        assert len(signature) == 512 and int(signature, 16)  # hex RSA-2048 signature


def test_every_compiled_part_and_the_guidelines(distro):
    """The launcher's imports with this distro's Python on this machine
    (cffi's part, cryptography's abi3 part, the keyring's Secret Service
    library), then what a user sees first: the guideline list, and --keyring
    reaching the keyring (no desktop session here, so no backend answers)."""
    (distro.work / "probe.py").write_text(LAUNCHER_IMPORT_PROBE)
    code, out, err = distro.run(["python3", "/usr/local/bin/tcup.pyz", str(distro.work / "probe.py")],
                                env={"SHIV_INTERPRETER": "1"})
    assert code == 0 and "IMPORTED" in out, err[-3000:]
    code, out, err = distro.tcup("guidelines")
    clean(out, err)
    assert code == 0 and "2020.06 platform (default)" in out and "scs-0128 iaas" in out, out + err
    no_password = {"OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_USERNAME": "u", "OS_PROJECT_NAME": "p"}
    code, out, err = distro.tcup("--keyring", "--no-upload", env=no_password)
    clean(out, err)
    assert code == 2 and err == ("tcup: error: the OS keyring could not be read (NoKeyringError); "
                                 "drop --keyring or set up a keyring backend\n"), err


def test_bad_input_gets_the_same_one_line_as_on_the_host(native_distro, tmp_path):
    distro = native_distro
    bad = {"OS_AUTH_URL": "keystone:5000", "OS_USERNAME": "u", "OS_PASSWORD": "x", "OS_PROJECT_NAME": "p"}
    code, out, err = distro.tcup("--no-upload", env=bad)
    host = subprocess.run([sys.executable, str(distro.pyz), "--no-upload"], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), **bad}, timeout=120)
    assert code == host.returncode == 2
    assert err == host.stderr and len(err.strip().splitlines()) == 1, err
    code, out, err = distro.tcup("--regex", "(unclosed", "--no-upload", env=bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--regex" in err, err


def test_a_real_run_writes_results_and_leaves_no_container(native_distro, keystone, image, engine):
    distro = native_distro
    env = dict(keystone.openrc("member"), XDG_DATA_HOME=str(distro.work / "data"))
    before = {c["Id"] for c in engine.api.containers(all=True, filters={"label": CONTAINER_LABEL})}
    code, out, err = distro.tcup("--no-upload", "--regex", r"test_tokens\.TokensV3Test\.test_(create|validate)_token\[",
                                 env=env)
    clean(out, err)
    assert code == 0, err[-2000:]
    assert "Passed: 2  Failed: 0  Skipped: 0" in out, out
    # Hints name the program as the user started it.
    assert "upload later with: /usr/local/bin/tcup.pyz upload " in out, out
    runs = list((distro.work / "data" / "tcup" / "runs").iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".incomplete"), runs
    assert {"refstack.json", "tests.json", "summary.txt", "run.json"} <= {p.name for p in runs[0].iterdir()}
    # This run's containers are those mounting its work directory (others may run beside it).
    left = [c["Id"] for c in engine.api.containers(all=True, filters={"label": CONTAINER_LABEL})
            if c["Id"] not in before and any(m.get("Source", "").startswith(str(distro.work)) for m in c.get("Mounts", []))]
    assert not left, left
