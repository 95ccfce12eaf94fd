"""The test cloud's venvs: each holds exactly its lock's pins (and its local
packages), installed by uv, two built side by side (as the cloud builds
its seven); its scripts run from where the venv ends up. Small locks, real installs from PyPI."""

import concurrent.futures
import json
import subprocess

import pytest

from testcloud import common

LOCKS = {"alpha": "six==1.16.0\n", "beta": "idna==3.7\nsix==1.16.0\n"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tcup-dev"


def installed(venv) -> dict:
    listing = subprocess.run([str(venv / "bin" / "python"), "-c", "import json, importlib.metadata as m; "
                              "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                             capture_output=True, text=True, check=True)
    return json.loads(listing.stdout)


def test_venvs_built_side_by_side_hold_exactly_their_pins(cache, tmp_path):
    assert common.find_uv(), "uv is a dev dependency (make venv)"
    package = tmp_path / "hello_pkg"
    (package / "hello_pkg").mkdir(parents=True)
    (package / "hello_pkg" / "__init__.py").write_text("def main():\n    print('hello from the venv')\n")
    (package / "pyproject.toml").write_text(
        '[project]\nname = "hello-pkg"\nversion = "1.0"\n[project.scripts]\nhello = "hello_pkg:main"\n'
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    specs = []
    for name, pins in LOCKS.items():
        (tmp_path / f"{name}.txt").write_text(pins)
        specs.append(common.VenvSpec(name, "1", tmp_path / f"{name}.txt", (package,) if name == "beta" else ()))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        venvs = list(pool.map(common.ensure_venv, specs))
    assert [venv.parent for venv in venvs] == [cache, cache]
    assert installed(venvs[0]) == {"six": "1.16.0"}
    assert installed(venvs[1]) == {"idna": "3.7", "six": "1.16.0", "hello-pkg": "1.0"}
    # uv did it (its words in the install log), and the script runs from the final place, not the .tmp one.
    assert "Installed 2 packages" in venvs[1].with_name(venvs[1].name + ".install.log").read_text()
    said = subprocess.run([str(venvs[1] / "bin" / "hello")], capture_output=True, text=True, check=True)
    assert said.stdout == "hello from the venv\n"
    assert ".tmp" not in (venvs[1] / "bin" / "hello").read_text()
    # A second call finds them ready and builds nothing.
    stamps = [venv.joinpath(common.VENV_MARKER).stat().st_mtime_ns for venv in venvs]
    assert [common.ensure_venv(spec) for spec in specs] == venvs
    assert [venv.joinpath(common.VENV_MARKER).stat().st_mtime_ns for venv in venvs] == stamps
