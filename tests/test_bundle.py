"""The support bundle, from a real run whose user, project and password are
canaries: every file of the extracted bundle is searched for each of them in
every spelling ``tcup.masking`` knows, and for the user's and project's ids
and Keystone's address; and the bundle holds what support needs."""

import configparser
import json
import secrets
import tarfile
from pathlib import Path

import pytest

from conftest import base_env, only_run, tcup
from tcup.masking import spellings

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

REGEX = r"^tempest\.api\.identity\.v3\.test_tokens\.TokensV3Test\.test_(create|validate)_token\["


@pytest.fixture
def canary_member(keystone):
    """An admin of their own project, whose user name, project name and password are canaries."""
    from testcloud.keystone import IdentityAdmin

    token = secrets.token_hex(6)
    names = {"user": f"canary-user-{token}", "project": f"canary-project-{token}",
             "password": f"canary pw \"{token}\" é"}
    admin = IdentityAdmin(keystone.auth_url, keystone.admin_password)
    project_id = admin.project(names["project"], "TCUP bundle canary")
    # An admin: discovery then writes the user's names into tempest.conf
    # ([auth] admin_*), which is what the sanitised copy must hide.
    user_id = admin.user(names["user"], names["password"], project_id, ("admin",))
    yield {**names, "user_id": user_id, "project_id": project_id}
    admin.call("DELETE", f"/users/{user_id}", 204)
    admin.call("DELETE", f"/projects/{project_id}", 204)


def extract(bundle: Path, into: Path) -> Path:
    with tarfile.open(bundle) as tar:
        members = tar.getmembers()
        assert all(m.isfile() and not m.name.startswith("/") and ".." not in m.name for m in members)
        tar.extractall(into, filter="data")
    (top,) = list(into.iterdir())
    return top


def test_a_bundle_holds_what_support_needs_and_no_canary(image, keystone, canary_member, watch, tmp_path):
    env = base_env(tmp_path)
    env.update(keystone.openrc("admin"))
    env.update(OS_USERNAME=canary_member["user"], OS_PASSWORD=canary_member["password"],
               OS_PROJECT_NAME=canary_member["project"])
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs"), "--regex", REGEX], env)
    assert done.returncode == 0, done.stderr[-2000:]
    run = only_run(tmp_path / "runs")

    bundle = tmp_path / "ticket.tar.gz"
    made = tcup(["bundle", str(run), "--file", str(bundle)], env, cwd=tmp_path)
    assert made.returncode == 0 and made.stdout == f"{bundle}\n" and made.stderr == "", made.stderr
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    top = extract(bundle, tmp_path / "extracted")
    assert top.name == f"tcup-bundle-{run.name}"

    # The runner's results, whole, as the run directory holds them (the runner masked them).
    for name in ("tests.json", "junit.xml", "summary.txt", "tempest.subunit"):
        assert (top / "results" / name).read_bytes() == (run / name).read_bytes(), name
    # The launcher's records sanitised: the facts, not the cloud's names, ids or paths.
    meta, bundled = (json.loads(path.read_text()) for path in (run / "run.json", top / "results" / "run.json"))
    assert {key: bundled[key] for key in ("verdict", "passed", "label", "complete")} == \
        {key: meta[key] for key in ("verdict", "passed", "label", "complete")}
    assert bundled["cpid"] == "<cpid>" and json.loads((top / "results" / "refstack.json").read_text())["cpid"] == "<cpid>"
    assert {value for choice in bundled["choices"].values() if choice for value in choice.values()} <= {"<id>", "<name>"}
    report = (top / "results" / "report.html").read_text()
    assert run.name in report and str(run) not in report and meta["cpid"] not in report
    # tempest.conf, every secret and identifier a placeholder.
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(top / "tempest.sanitised.conf")
    text = (top / "tempest.sanitised.conf").read_text()
    assert conf.get("identity", "uri_v3") == "<auth-url>", text
    assert conf.get("auth", "admin_username") == "<name>" and conf.get("auth", "admin_password") == "<secret>"
    assert conf.get("auth", "admin_project_name") == "<name>"
    named = {(section, key): value for section in conf.sections() for key, value in conf.items(section)
             if key.endswith(("username", "password", "project_name", "project_id"))}
    assert named and all(value in ("<name>", "<secret>", "<id>") for value in named.values()), text
    assert conf.get("service_available", "nova") == "False" and conf.get("identity-feature-enabled", "api_v3") == "True"
    # The catalog's services and versions, and what ran.
    services = json.loads((top / "services.json").read_text())["services"]
    assert services["keystone"] == {"available": True, "type": "identity", "api_versions": ["v3"]}
    assert services["nova"]["available"] is False and services["nova"]["type"] == "compute"
    versions = json.loads((top / "versions.json").read_text())
    meta = json.loads((run / "run.json").read_text())
    assert versions["tcup_run"] == meta["tcup_version"] and versions["tcup_bundle"]
    assert versions["tempest"].split(".")[0] == "47" and versions["python_tempestconf"]
    assert versions["image"] and versions["image"].startswith("tcup:") and "bookworm" in versions["image_os"]
    assert "tempest.sanitised.conf" in (top / "README.txt").read_text()

    # No canary, in any spelling, anywhere in the bundle: nor the cloud's
    # id, the image's id discovery chose, or where the run is kept.
    host = keystone.auth_url.split("//")[1].split("/")[0]
    needles = {name: spellings(value) for name, value in canary_member.items()}
    needles["auth url"] = spellings(keystone.auth_url) | spellings(host)
    needles["cpid"] = spellings(meta["cpid"])
    needles["run directory"] = spellings(str(run.parent))  # where the runs are kept: the user's home
    needles["choices"] = {form for choice in meta["choices"].values()
                          if choice and len(str(choice.get("id") or "")) >= 8 for form in spellings(choice["id"])}
    files = [p for p in top.rglob("*") if p.is_file()]
    assert len(files) >= 11
    found = [f"{name} in {path.relative_to(top)}" for path in files for name, forms in needles.items()
             if any(form.encode() in path.read_bytes() for form in forms)]
    assert found == []
    for where in (made.stdout, made.stderr):
        assert not any(form in where for forms in needles.values() for form in forms)


def test_a_bundle_of_a_run_from_before_it_says_what_it_lacks(tmp_path):
    """A run saved by a TCUP without the sanitised tempest.conf still bundles:
    results and versions, and a note instead of the services."""
    run = tmp_path / "20260101T000000Z-abcdef"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"complete": True, "tcup_version": "0.0.1", "verdict": "compliant"}))
    (run / "tests.json").write_text(json.dumps({"tests": [
        {"name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
         "uuid": "6f8e4436-fc96-4282-8122-e41df57197a9", "status": "success", "reason": None}], "missing": []}))
    (run / "summary.txt").write_text("TCUP run: x\nTempest 46.1.0, dynamic credentials (admin), concurrency 1\n")
    (run / "secret-link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text("not the run's")
    done = tcup(["bundle", str(run)], base_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / f"tcup-bundle-{run.name}.tar.gz"
    assert done.stdout == f"{bundle}\n"
    top = extract(bundle, tmp_path / "out")
    assert sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file()) == [
        "README.txt", "results/report.html", "results/run.json", "results/summary.txt", "results/tests.json",
        "services.json", "versions.json"]
    assert json.loads((top / "services.json").read_text())["services"] is None
    versions = json.loads((top / "versions.json").read_text())
    assert versions["tempest"] == "46.1.0" and versions["tcup_run"] == "0.0.1"
    assert ("COMPLIANT by the strict rule (every selected test passes): all 1 selected test passed"
            in (top / "results" / "report.html").read_text())
    # A second bundle to the same file is refused, not overwritten.
    again = tcup(["bundle", str(run)], base_env(tmp_path), cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.startswith("tcup: error: ") and "exists" in again.stderr
