"""Writes the stored runs in this directory, with TCUP's own writers (the
runner's result files, the launcher's save) and python-subunit for the
streams: small, real run directories that the results/ tests read in
milliseconds, without an engine. Run it again only when a file's form
changes, and commit what it writes:

    .venv/bin/python tests/data/runs/make_runs.py

a-complete    five tests: 3 passed (one of them, default_domain, b lacks), 1 failed, 1 skipped.
              Its run.json, settings.json and cleanup.json hold what an older
              TCUP let through unmasked (CANARIES: a network's name, a project
              id, a host, --set values, a full path), for the bundle's tests.
b-later       the same cloud a day later: one test newly failing, one newly
              passing, one newly skipped, one only in b.
c-interrupted an interrupted run (NAME.incomplete): the stream says one test
              passed, one failed, one was skipped, one was running, one never
              began; no tests.json, no run.json.
"""

import datetime
import io
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "src"))

from tcup import contract  # noqa: E402
from tcup.launcher.guideline import TestList  # noqa: E402

# What must never reach a bundle: in the files of a-complete as an older TCUP wrote them.
CANARIES = {"network": "canary-net-7f3a", "project_id": "5c0ffee5c0ffee5c0ffee5c0ffee5c0f",
            "host": "keystone.canary-cloud.example", "set_value": "https://canary-proxy.example:8443/v3",
            "home": "/home/canary-user/runs", "image_id": "0badc0de-0000-4000-8000-00000000cafe"}
CPID = "9f1e2d3c4b5a69788796a5b4c3d2e1f0"
STARTED = datetime.datetime(2026, 1, 5, 9, 0, 0, tzinfo=datetime.timezone.utc).timestamp()

T = {  # short name -> (name, uuid, capability)
    "create_token": ("tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
                     "6f8e4436-fc96-4282-8122-e41df57197a9", "identity-v3-tokens-create"),
    "validate_token": ("tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token",
                       "a9512ac3-3909-48a4-b395-11f438e16260", "identity-v3-tokens-create"),
    "app_credential": ("tempest.api.identity.v3.test_application_credentials.ApplicationCredentialsV3Test."
                       "test_create_application_credential", "8080c75c-eddc-4786-941a-c2da7039ae61",
                       "identity-v3-application-credentials"),
    "list_servers": ("tempest.api.compute.servers.test_list_servers_negative.ListServersNegativeTestJSON."
                     "test_list_servers_by_non_existing_image", "fcdf192d-0f74-4d89-911f-1ec002b822c4",
                     "compute-servers-list"),
    "list_images": ("tempest.api.image.v2.test_images.ListUserImagesTest.test_list_no_params",
                    "1e341d7a-90a9-494c-b143-2cdf2aeb6aee", "images-v2-list"),
    "default_domain": ("tempest.api.identity.v3.test_domains.DefaultDomainTestJSON.test_default_domain_exists",
                       "17a5de24-e6a0-4e4a-a9ee-d85b6e5612b5", "identity-v3-domains"),
}
SKIP_REASON = "Application credentials are not enabled in this cloud"


def failure(test: str) -> str:
    return f"testtools.matchers._impl.MismatchError: 401 != 201 ({test})"


def test_list(names) -> TestList:
    tests = [{"name": T[n][0], "uuid": T[n][1], "capability": T[n][2], "capabilities": [T[n][2]]} for n in names]
    return TestList(label="2026.01 platform", guideline="2026.01", target="platform", tests=tests,
                    source=f"{CANARIES['home']}/guideline-2026.01.json")


def stream(results, running=(), listed=None) -> bytes:
    """A subunit v2 stream as stestr writes it: every test listed first
    (exists), then each begins (inprogress) and ends, a second apart."""
    import io

    from subunit.v2 import StreamResultToBytes

    def when(second):
        return datetime.datetime.fromtimestamp(STARTED + second, datetime.timezone.utc)

    out = io.BytesIO()
    writer = StreamResultToBytes(out)
    ids = {n: f"{T[n][0]}[id-{T[n][1]}]" for n in T}
    for name in listed or [n for n, _ in results]:
        writer.status(test_id=ids[name], test_status="exists", timestamp=when(0))
    second = 1
    for name, status in results:
        writer.status(test_id=ids[name], test_status="inprogress", timestamp=when(second), route_code="0")
        second += 2 if name != "list_images" else 7
        writer.status(test_id=ids[name], test_status=status, timestamp=when(second), route_code="0")
    for name in running:
        writer.status(test_id=ids[name], test_status="inprogress", timestamp=when(second + 1), route_code="0")
    return out.getvalue()


def runner_files(path: Path, results, label: str) -> None:
    """What the runner writes at the end of a run: its real writers."""
    from tcup.runner import result_files as writer
    from tcup.runner.run import Outcome
    from tcup.runner.selection import Test

    outcomes = [Outcome(Test(f"{T[n][0]}[id-{T[n][1]}]", T[n][0], T[n][1]), status,
                        failure(n) if status == "fail" else SKIP_REASON if status == "skip" else None,
                        detail=("Traceback (most recent call last):\n  ...\n" + failure(n)) if status == "fail" else "",
                        duration=2.0 if n != "list_images" else 7.0) for n, status in results]
    report = writer.Report(outcomes=outcomes, missing=[], cpid=CPID, label=label, credentials="preprovisioned",
                           concurrency=1, duration_seconds=12.0, tempest_version="47.0.0")
    writer.write_all(path, report)
    (path / contract.SUBUNIT_FILE).write_bytes(stream(results))


def complete_run(path: Path, results, canaries: bool) -> None:
    """A finished run: the runner's files, then the launcher's save() fed the
    runner's events, as a real run feeds them."""
    from tcup.launcher.progress import Progress
    from tcup.launcher.results import finish, rerun, runs, verdict
    from tcup.launcher.results.runs import Run
    from tcup.masking import Mask

    names = [n for n, _ in results]
    listed = test_list(names)
    selection = listed.selection()
    choices = contract.Choices(network=CANARIES["network"] if canaries else None,
                               tempest_options={"identity.uri_v3": CANARIES["set_value"]} if canaries else {})
    run = Run(path.parent, path.name)
    run.begin()
    runner_files(run.incomplete, results, listed.label)
    progress = Progress(Mask(), out=io.StringIO())  # what it says, it says to no one
    left = [{"kind": "network", "id": CANARIES["image_id"], "name": CANARIES["network"],
             "project": CANARIES["project_id"], "remove_with": f"openstack network delete {CANARIES['image_id']}"}]
    events = [("mode", {"credentials": "preprovisioned", "concurrency": 1, "accounts": 1}),
              ("choices", {"image": {"id": CANARIES["image_id"], "name": "cirros-0.6.3"},
                           "flavor": {"id": "42", "name": "m1.nano"},
                           "network": {"id": CANARIES["project_id"], "name": CANARIES["network"]} if canaries else None}),
              ("selected", {"count": len(results), "missing": []}),
              ("cleanup", {"removed": 2, "left": left if canaries else [],
                           **({"error": f"cannot reach https://{CANARIES['host']}:9696"} if canaries else {})}),
              ("done", {**{k: sum(s == v for _, s in results) for k, v in
                           (("passed", "success"), ("failed", "fail"), ("skipped", "skip"))},
                        "admin_skipped": 0, "duration_seconds": 12})]
    for name, fields in events:
        progress.feed(1, contract.event(name, **fields).encode())
    record = rerun.record(selection, listed, None, choices)
    (run.incomplete / runs.SETTINGS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    (run.incomplete / contract.CLEANUP_FILE).write_text(json.dumps({"removed": 2, "left": left if canaries else []},
                                                                    indent=2) + "\n")
    asked = finish.Asked(listed, selection, contract.Cloud(cpid=CPID, admin=False), verdict.STRICT, [],
                         settings=record)
    done = finish.finish(run, asked, progress, STARTED, "tcup:0123456789abcdef").path
    if canaries:  # as an older TCUP recorded a merge: full paths
        meta = json.loads((done / "run.json").read_text())
        meta["merged_from"] = [f"{CANARIES['home']}/20260104T090000Z-0a0a0a"]
        (done / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    meta = json.loads((done / "run.json").read_text())
    meta.update(tcup_version="0.5.0", finished="2026-01-05T09:00:14Z")  # fixed, not this checkout's
    (done / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def interrupted_run(path: Path) -> None:
    from tcup.launcher.results import rerun, runs

    names = ["create_token", "validate_token", "app_credential", "list_servers", "list_images"]
    listed = test_list(names)
    path.mkdir()
    record = rerun.record(listed.selection(), listed, None, contract.Choices())
    (path / runs.SETTINGS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    data = stream([("create_token", "success"), ("validate_token", "fail"), ("app_credential", "skip")],
                  running=["list_servers"], listed=names)
    (path / (contract.SUBUNIT_FILE + ".partial")).write_bytes(data)


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    complete_run(HERE / "a-complete", [("create_token", "success"), ("validate_token", "fail"),
                                       ("app_credential", "skip"), ("list_servers", "success"),
                                       ("default_domain", "success")], canaries=True)
    complete_run(HERE / "b-later", [("create_token", "fail"), ("validate_token", "success"),
                                    ("app_credential", "skip"), ("list_servers", "skip"),
                                    ("list_images", "success")], canaries=False)
    interrupted_run(HERE / "c-interrupted.incomplete")
    (HERE / "canaries.json").write_text(json.dumps(CANARIES, indent=2, sort_keys=True) + "\n")
    for path in HERE.rglob("*"):
        if path.is_file():
            path.chmod(0o644)  # git keeps no other mode; the tests copy them before use


if __name__ == "__main__":
    main()
