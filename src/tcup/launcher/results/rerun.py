"""`tcup rerun RUN`: run again only the tests of a saved run that failed or
did not run (for an interrupted ``NAME.incomplete`` run, that is resume), with
the run's selection and settings, and save a new run whose results merge both.

What a rerun repeats is the run's record (``settings.json``, and the same
under "settings" in run.json): the selection, the test list it is judged
against, the verdict rule, the requested concurrency and the user's choices.
Credentials are never in it; they come from the environment as for any run.

Only like is merged with like: a rerun whose credentials reach another
cloud (another cpid) or run in another mode (admin, with dynamic
credentials, or member, with pre-provisioned ones) than the earlier run is
refused before any container starts, and nothing is written.

Merge rules, by test key (uuid, else name):
  * a test the rerun ran takes the rerun's result; one that failed before
    and passed now is kept as passed and marked ``flaky`` (with its first
    failure's reason);
  * every other test keeps the earlier run's result (passes and skips are
    not run again: a skip follows from the cloud's configuration);
  * refstack.json is made anew from the merged passes, so the merged run
    uploads as one result; the subunit streams are joined, junit.xml keeps
    the earlier run's cases that were not run again.
"""

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from tcup import contract, private_files
from tcup.launcher.errors import BadInput, plural
from tcup.launcher.results.runs import SavedRun, json_object, read_file, write_json
from tcup.launcher.results.verdict import Counts
from tcup.testids import bare_uuid, split_test_id, test_key


def record(selection: contract.Selection, test_list, concurrency: Optional[int], choices: contract.Choices) -> dict:
    """What a rerun of this run needs, secrets excluded (there are none in
    a selection or in the choices; credentials stay in the environment)."""
    listed = None
    if test_list is not None:
        listed = {key: getattr(test_list, key) for key in ("label", "guideline", "target", "source", "tests", "rule")}
    return {"selection": asdict(selection), "test_list": listed, "concurrency": concurrency,
            "choices": asdict(choices)}


def judged(rule, cloud: contract.Cloud) -> dict:
    """The record's part that says how and where a run was judged: the
    rule applied, the cloud (cpid) and the mode; a rerun keeps them."""
    from tcup.launcher.cloud.identity import credentials_mode

    return {"rule": rule.id, "cpid": cloud.cpid, "credentials": credentials_mode(cloud)}


def new_record(selection: contract.Selection, test_list, concurrency: Optional[int], choices: contract.Choices,
               rule, cloud: contract.Cloud) -> dict:
    """A new run's record: what it ran, and how and where it is judged."""
    return {**record(selection, test_list, concurrency, choices), **judged(rule, cloud)}


# How run.json's ``credentials`` reads to a person.
MODE_WORDS = {"dynamic": "an admin (dynamic credentials)", "preprovisioned": "a member (pre-provisioned credentials)"}


@dataclass
class Plan:
    """A rerun: the earlier run, what it recorded, and what runs again."""

    previous: Path
    complete: bool  # the earlier run finished (else it is resumed)
    settings: dict  # the earlier run's record (see ``record``)
    earlier: Dict[str, dict]  # the earlier run's results by test key, tests.json entries
    missing: List[str]  # uuids of the list that this Tempest lacks, as the earlier run found
    selection: contract.Selection  # what the runner runs now
    # The earlier run's failures by test key -> reason: one that passes now is flaky.
    failed_before: Dict[str, Optional[str]] = field(default_factory=dict)
    failed: int = 0
    not_run: Optional[int] = None  # None: unknown (an interrupted run that listed nothing)
    merged_from: List[str] = field(default_factory=list)  # run names, never paths (the user's home)
    # Where and how the earlier run ran (None: not recorded, by an older TCUP).
    cpid: Optional[str] = None
    credentials: Optional[str] = None  # "dynamic" | "preprovisioned"

    @property
    def root(self) -> Path:
        """Where the new run is saved unless --output says otherwise: beside the earlier one."""
        return self.previous.parent

    @property
    def test_list(self):
        from tcup.launcher.guideline import TestList

        listed = self.settings.get("test_list")
        return TestList(**listed) if listed else None

    @property
    def rule(self):
        """The verdict rule the earlier run was judged by (a record without
        one: its list's own, which for a record that old is the strict rule)."""
        from tcup.launcher.results import verdict as rules

        recorded = self.settings.get("rule")
        return rules.named(recorded) if recorded else rules.applied(self.test_list)

    @property
    def choices(self) -> contract.Choices:
        return contract.Choices(**(self.settings.get("choices") or {}))

    @property
    def concurrency(self) -> Optional[int]:
        return self.settings.get("concurrency")

    def record(self, rule, cloud: contract.Cloud) -> dict:
        """The merged run's record: the earlier run's, judged by ``rule``."""
        return {**self.settings, **judged(rule, cloud)}

    def refuse_unlike(self, cloud: contract.Cloud) -> None:
        """One BadInput line when these credentials' cloud or mode is not the
        earlier run's: their results would not make one run."""
        from tcup.launcher.cloud.identity import credentials_mode

        name, mode = self.previous.name, credentials_mode(cloud)
        if self.cpid and self.cpid != cloud.cpid:
            raise BadInput(f"{name} ran against another cloud (cpid {self.cpid}) than these credentials reach "
                           f"(cpid {cloud.cpid}); a rerun merges only runs of one cloud: source that cloud's "
                           "credentials, or start a new run")
        if self.credentials in MODE_WORDS and self.credentials != mode:
            raise BadInput(f"{name} ran as {MODE_WORDS[self.credentials]}, and these credentials would run as "
                           f"{MODE_WORDS[mode]}; a rerun merges only runs in one mode: use credentials like the "
                           "earlier run's, or start a new run")

    def describe(self) -> str:
        what = [plural(self.failed, "failed test")]
        what += [f"{self.not_run} not run"] if self.not_run is not None else ["every test that had not finished"]
        how = "resuming the interrupted run" if not self.complete else "rerunning"
        return f"{how} {self.previous.name}: {' and '.join(what)} ({self.selection.label})"


def plan(path: Path) -> Plan:
    """The rerun of the run in ``path``; one BadInput line when there is nothing to rerun."""
    run = SavedRun(path)
    meta, complete, settings = run.record(), run.complete, run.settings()
    if not settings or "selection" not in settings:
        raise BadInput(f"{path} does not record its selection and settings (a run saved by an older TCUP, or one "
                       "stopped before its tests began); start a new run instead")
    original = contract.Selection(**settings["selection"])
    where = {"cpid": meta.cpid or settings.get("cpid"), "credentials": meta.credentials or settings.get("credentials")}
    if complete:
        document = run.tests_document()
        earlier = {test_key(t["name"], t.get("uuid")): dict(t) for t in document["tests"]}
        missing = list(document.get("missing") or [])
        again = [t for t in earlier.values() if t.get("status") == "fail"]
        if not again:
            raise BadInput(f"{path} has no failed test to rerun (verdict: {meta.verdict})")
        tests = [{"name": t["name"], "uuid": t["uuid"]} for t in again]
        selection = contract.Selection(label=original.label, tests=tests, regex=original.regex)
        return Plan(path, True, settings, earlier, missing, selection, not_run=0, merged_from=[path.name],
                    failed_before={test_key(t["name"], t.get("uuid")): t.get("reason") for t in again},
                    failed=len(again), **where)
    # Resume: the stream says what finished; stestr listed every test it was given first.
    listed, results = run.listed_and_finished()
    finished = {key: {"name": r.name, "uuid": r.uuid, "status": r.status, "reason": r.reason}
                for key, r in results.items()}
    earlier = {key: result for key, result in finished.items() if result["status"] in ("success", "skip")}
    failed_before = {key: result.get("reason") for key, result in finished.items() if result["status"] == "fail"}
    done = set(earlier)
    if original.tests is not None:
        tests = [t for t in original.tests if (bare_uuid(t.get("uuid")) or t["name"]) not in done]
        not_run = len([k for k in listed if k not in finished]) if listed else None
    elif listed:
        tests = [{"name": name, "uuid": uuid} for key, (name, uuid) in listed.items() if key not in done and uuid]
        not_run = len([k for k in listed if k not in finished])
    else:
        tests, not_run = None, None  # nothing was listed: the whole regex again
    if tests is not None and not tests:
        raise BadInput(f"{path}: every test of the interrupted run finished with a pass or a skip; "
                       "nothing is left to run")
    selection = contract.Selection(label=original.label, tests=tests, regex=original.regex)
    return Plan(path, False, settings, earlier, [], selection, failed_before=failed_before,
                failed=len(failed_before), not_run=not_run, merged_from=[path.name], **where)



# --- the merge -------------------------------------------------------------------------

def merge(previous: Plan, results_dir: Path) -> dict:
    """Rewrite the rerun's result files in ``results_dir`` as the merged run's;
    returns the merged tests.json document."""
    now = json_object(results_dir / contract.TESTS_FILE) or {"tests": [], "missing": []}
    merged = {key: dict(test) for key, test in previous.earlier.items()}
    reran = {}
    for test in now["tests"]:
        key = test_key(test["name"], test.get("uuid"))
        test = dict(test)
        if key in previous.failed_before and test.get("status") == "success":
            test["flaky"] = True
            # An interrupted run's stream keeps no reason: None then.
            test["first_reason"] = previous.failed_before[key]
        test["reran"] = True  # this result is the rerun's own
        merged[key] = test
        reran[key] = test
    missing = sorted(set(previous.missing) | set(now.get("missing") or []))
    document = {"tests": sorted(merged.values(), key=lambda t: t["name"]), "missing": missing}
    write_json(results_dir / contract.TESTS_FILE, document)
    _merge_refstack(previous.previous, results_dir, document["tests"])
    _merge_junit(previous.previous / contract.JUNIT_FILE, results_dir / contract.JUNIT_FILE, set(reran))
    _join_streams(previous.previous, results_dir)
    return document


def _merge_refstack(previous: Path, results_dir: Path, tests: List[dict]) -> None:
    """RefStack's body from the merged results: passed tests only, so a
    failure (waived or not) is never uploaded as passed."""
    now = json_object(results_dir / contract.REFSTACK_FILE) or {}
    before = json_object(previous / contract.REFSTACK_FILE) or {}
    passed = sorted({(t["name"], t.get("uuid")) for t in tests if t.get("status") == "success"},
                    key=lambda pair: (pair[0], pair[1] or ""))
    write_json(results_dir / contract.REFSTACK_FILE, {
        "cpid": now.get("cpid") or before.get("cpid"),
        "duration_seconds": int(now.get("duration_seconds") or 0) + int(before.get("duration_seconds") or 0),
        "results": [{"name": name, "uuid": uuid} if uuid else {"name": name} for name, uuid in passed],
    })


def _merge_junit(previous: Path, current: Path, reran: set) -> None:
    """junit.xml of both: the rerun's cases, and the earlier run's of the tests not run again."""
    try:
        before = ET.fromstring(private_files.read_result(previous))
        after = ET.fromstring(private_files.read_result(current))
    except (OSError, ET.ParseError):
        return  # an interrupted run has none; the rerun's stands alone
    suite = after if after.tag == "testsuite" else after.find("testsuite")
    old_suite = before if before.tag == "testsuite" else before.find("testsuite")
    if suite is None or old_suite is None:
        return
    for case in old_suite.findall("testcase"):
        name, uuid = split_test_id(f"{case.get('classname', '')}.{case.get('name', '')}")
        if test_key(name, uuid) not in reran:
            suite.append(case)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    suite.set("time", f"{float(suite.get('time') or 0) + float(old_suite.get('time') or 0):.3f}")
    ET.indent(after)
    private_files.write_atomically(current, ET.tostring(after, encoding="utf-8", xml_declaration=True) + b"\n")


def _join_streams(previous: Path, results_dir: Path) -> None:
    """One subunit stream of both runs (v2 streams join end to end): the
    ETA's timings and `tcup diff` of a partial run read it."""
    earlier = SavedRun(previous).stream()
    current = results_dir / contract.SUBUNIT_FILE
    try:
        now = private_files.read_result(current)
    except OSError:
        return
    if earlier is not None:
        private_files.write_atomically(current, earlier + now)


def flaky_lines(tests: List[dict]) -> List[str]:
    flaky = [t for t in tests if t.get("flaky")]
    if not flaky:
        return []
    return ["Flaky (failed, then passed when rerun):"] + [
        f"  {t['name']} [{t.get('uuid')}]" + (f": first failed with {t['first_reason']}" if t.get("first_reason")
                                             else "") for t in flaky]


def write_summary(previous: Plan, results_dir: Path, document: dict) -> None:
    """summary.txt of the merged run, in the runner's form (save() adds the
    compliance table, the waivers and the verdict): both runs' counts as one,
    the failures left, and the flaky tests."""
    try:
        head = read_file(results_dir / contract.SUMMARY_FILE).splitlines()[:2]
    except OSError:
        head = [f"TCUP run: {previous.selection.label}"]
    tests = document["tests"]
    number = Counts.of_tests(document)
    reran = sum(1 for t in tests if t.get("reran"))
    lines = head + [
        f"Merged: {previous.previous.name} and a rerun of {plural(reran, 'test')} (its failed and not-run tests)",
        f"Selected: {plural(len(tests), 'test')}"
        + (f" ({len(document['missing'])} more on the list are not in this Tempest)" if document["missing"] else ""),
        f"Passed: {number.passed}  Failed: {number.failed}  Skipped: {number.skipped}",
    ]
    failures = [t for t in tests if t.get("status") == "fail" and not t.get("waived")]
    if failures:
        lines += ["", "Failures:"] + [f"  {t['name']} [{t.get('uuid')}]: {t.get('reason')}" for t in failures]
    flaky = flaky_lines(tests)
    lines += [""] + flaky if flaky else []
    private_files.write_atomically(results_dir / contract.SUMMARY_FILE, ("\n".join(lines) + "\n").encode())
