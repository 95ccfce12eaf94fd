"""`tcup rerun RUN`: run again only the tests of a saved run that failed or
did not run (for an interrupted ``NAME.incomplete`` run, that is resume; with
--include-skipped its skipped tests too), with the run's selection and
settings, and save a new run whose results merge both.

What a rerun repeats is the run's record (``settings.json``, and the same
under "settings" in run.json): the selection, the test list it is judged
against, the verdict rule, the requested concurrency and the user's choices.
Credentials are never in it; they come from the environment as for any run.
The rerun's own --image, --image-alt, --flavor, --flavor-alt, --network and
--set replace the recorded choices, and the merged run records them.

Only like is merged with like: a rerun whose credentials reach another
cloud (another cpid) or run in another mode (admin, with dynamic
credentials, or member, with pre-provisioned ones) than the earlier run is
refused before any container starts, and nothing is written.

Merge rules, by test key (uuid, else name):
  * a test the rerun ran takes the rerun's result (marked ``reran``); one
    that failed before and passed now is kept as passed, with its first
    failure's reason, and marked ``flaky`` when the settings were the same,
    or ``fixed_by`` the changed settings ("--flavor X", "--set K=V") when not;
  * every other test keeps the earlier run's result (passes, and skips
    unless --include-skipped, are not run again: a skip follows from the
    cloud's configuration);
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


# The choices a rerun may change, as the options that change them are spelled.
CHANGEABLE = {"image": "--image", "image_alt": "--image-alt", "flavor": "--flavor", "flavor_alt": "--flavor-alt",
              "network": "--network"}

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
    skipped: Optional[int] = None  # the earlier run's skips run again (--include-skipped); None: not asked
    # What the runner chose for the earlier run (run.json's "choices": {"flavor": {"id", "name"}, ...}).
    chosen_before: dict = field(default_factory=dict)
    # The rerun's changes of the recorded settings, as options ("--flavor X"):
    # a failure that passes after them is fixed by them, not flaky.
    changed: List[str] = field(default_factory=list)

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

    def change(self, given: Dict[str, Optional[str]], tempest_options: Dict[str, str]) -> None:
        """The rerun's choices (``given``: a CHANGEABLE name -> its value,
        None when not given) and --set values over the recorded ones; each
        that differs from the earlier run's is named in ``changed``."""
        choices = dict(self.settings.get("choices") or {})
        recorded_options = dict(choices.get("tempest_options") or {})
        for name, value in given.items():
            if value is None:
                continue
            if not self._chose_before(name, value, choices.get(name)):
                self.changed.append(f"{CHANGEABLE[name]} {value}")
            choices[name] = value
        self.changed += [f"--set {key}={value}" for key, value in tempest_options.items()
                         if recorded_options.get(key) != value]
        choices["tempest_options"] = {**recorded_options, **tempest_options}
        self.settings = {**self.settings, "choices": choices}

    def _chose_before(self, name: str, value: str, recorded: Optional[str]) -> bool:
        """The earlier run used ``value``: the user named it, or (by name or
        id) the runner chose it."""
        chosen = self.chosen_before.get(name)
        return value == recorded or (isinstance(chosen, dict) and value in (chosen.get("id"), chosen.get("name")))

    @property
    def again_words(self) -> str:
        """Which of the earlier run's tests run again, in words."""
        kinds = ["failed"] + (["skipped"] if self.skipped is not None else []) + ([] if self.complete else ["not-run"])
        return f"its {_and(kinds)} tests"

    def describe(self) -> str:
        what = [plural(self.failed, "failed test")]
        what += [plural(self.skipped, "skipped test")] if self.skipped is not None else []
        what += [f"{self.not_run} not run"] if self.not_run is not None else ["every test that had not finished"]
        how = "resuming the interrupted run" if not self.complete else "rerunning"
        changed = f", with {', '.join(self.changed)}" if self.changed else ""
        return f"{how} {self.previous.name}: {_and(what)} ({self.selection.label}){changed}"

    @property
    def original_size(self) -> Optional[int]:
        """How many tests the earlier run selected, when its selection is a
        list alone (a regex narrows a list to a count known only by running)."""
        original = self.settings.get("selection") or {}
        tests = original.get("tests")
        return len(tests) if isinstance(tests, list) and not original.get("regex") else None

    @property
    def duration_before(self) -> int:
        """The earlier run's Tempest time, whole seconds, as its refstack.json says."""
        return earlier_duration(self.previous)


def _and(words: List[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def plan(path: Path, include_skipped: bool = False) -> Plan:
    """The rerun of the run in ``path`` (``include_skipped``: its skipped
    tests too); one BadInput line when there is nothing to rerun."""
    run = SavedRun(path)
    meta, complete, settings = run.record(), run.complete, run.settings()
    if not settings or "selection" not in settings:
        raise BadInput(f"{path} does not record its selection and settings (a run saved by an older TCUP, or one "
                       "stopped before its tests began); start a new run instead")
    original = contract.Selection(**settings["selection"])
    where = {"cpid": meta.cpid or settings.get("cpid"), "credentials": meta.credentials or settings.get("credentials"),
             "chosen_before": meta.choices if isinstance(meta.choices, dict) else {}}
    again_statuses = ("fail", "skip") if include_skipped else ("fail",)
    if complete:
        document = run.tests_document()
        earlier = {test_key(t["name"], t.get("uuid")): dict(t) for t in document["tests"]}
        missing = list(document.get("missing") or [])
        again = [t for t in earlier.values() if t.get("status") in again_statuses]
        if not again:
            raise BadInput(f"{path} has no failed {'or skipped ' if include_skipped else ''}test to rerun "
                           f"(verdict: {meta.verdict})" + _skips_hint(earlier.values(), include_skipped))
        tests = [{"name": t["name"], "uuid": t["uuid"]} for t in again]
        selection = contract.Selection(label=original.label, tests=tests, regex=original.regex)
        failed = [t for t in again if t.get("status") == "fail"]
        return Plan(path, True, settings, earlier, missing, selection, not_run=0, merged_from=[path.name],
                    failed_before={test_key(t["name"], t.get("uuid")): t.get("reason") for t in failed},
                    failed=len(failed), skipped=len(again) - len(failed) if include_skipped else None, **where)
    # Resume: the stream says what finished; stestr listed every test it was given first.
    listed, results = run.listed_and_finished()
    finished = {key: {"name": r.name, "uuid": r.uuid, "status": r.status, "reason": r.reason}
                for key, r in results.items()}
    kept = ("success",) if include_skipped else ("success", "skip")
    earlier = {key: result for key, result in finished.items() if result["status"] in kept}
    failed_before = {key: result.get("reason") for key, result in finished.items() if result["status"] == "fail"}
    skipped = sum(result["status"] == "skip" for result in finished.values()) if include_skipped else None
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
                failed=len(failed_before), not_run=not_run, merged_from=[path.name], skipped=skipped, **where)


def _skips_hint(tests, include_skipped: bool) -> str:
    """For a run with nothing failed: that --include-skipped would rerun its skips."""
    skipped = sum(t.get("status") == "skip" for t in tests)
    return "" if include_skipped or not skipped else f"; --include-skipped reruns its {plural(skipped, 'skipped test')}"



# --- the merge -------------------------------------------------------------------------

def merge(previous: Plan, results_dir: Path) -> dict:
    """Rewrite the rerun's result files in ``results_dir`` as the merged run's;
    returns the merged tests.json document."""
    now = json_object(results_dir / contract.TESTS_FILE) or {"tests": [], "missing": []}
    # "reran" marks this rerun's results only: an earlier merge's marks go
    # (they made "a rerun of N" count every rerun's tests).
    merged = {key: {k: v for k, v in test.items() if k != "reran"} for key, test in previous.earlier.items()}
    reran = {}
    for test in now["tests"]:
        key = test_key(test["name"], test.get("uuid"))
        test = dict(test)
        if key in previous.failed_before and test.get("status") == "success":
            if previous.changed:
                test["fixed_by"] = list(previous.changed)  # passed after a change of settings
            else:
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
        "duration_seconds": int(now.get("duration_seconds") or 0) + earlier_duration(previous),
        "results": [{"name": name, "uuid": uuid} if uuid else {"name": name} for name, uuid in passed],
    })


def earlier_duration(previous: Path) -> int:
    """An earlier run's Tempest time in whole seconds, from its refstack.json
    (a merged run's is both runs'; run.json's is the same sum)."""
    before = json_object(previous / contract.REFSTACK_FILE) or {}
    try:
        return int(before.get("duration_seconds") or 0)
    except (TypeError, ValueError):
        return 0  # not a number: a file TCUP did not write


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
    """The tests that failed, then passed when rerun: with the same settings
    (flaky), and after a change of settings (fixed_by), each list apart."""
    lines = []
    flaky = [t for t in tests if t.get("flaky")]
    if flaky:
        lines += ["Flaky (failed, then passed when rerun with the same settings):"] + [_passed_line(t) for t in flaky]
    fixed = [t for t in tests if t.get("fixed_by") and not t.get("flaky")]
    if fixed:
        lines += [""] if lines else []
        lines += ["Passed after a change of settings (failed, then passed when rerun with the settings named):"]
        lines += [_passed_line(t, f"passed with {', '.join(map(str, t['fixed_by']))}") for t in fixed]
    return lines


def _passed_line(test: dict, how: str = "") -> str:
    """"  name [uuid]: how; first failed with REASON"."""
    said = [how] if how else []
    said += [f"first failed with {test['first_reason']}"] if test.get("first_reason") else []
    return f"  {test['name']} [{test.get('uuid')}]" + (": " + "; ".join(said) if said else "")


def write_summary(previous: Plan, results_dir: Path, document: dict) -> None:
    """summary.txt of the merged run, in the runner's form (save() adds the
    compliance table, the waivers and the verdict): both runs' counts as one,
    the failures left, and the tests that passed when rerun."""
    try:
        head = read_file(results_dir / contract.SUMMARY_FILE).splitlines()[:2]
    except OSError:
        head = [f"TCUP run: {previous.selection.label}"]
    tests = document["tests"]
    number = Counts.of_tests(document)
    changed = [f"Changed for the rerun: {', '.join(previous.changed)}"] if previous.changed else []
    reran = sum(1 for t in tests if t.get("reran"))
    lines = head + [
        f"Merged: {previous.previous.name} and a rerun of {plural(reran, 'test')} ({previous.again_words})",
        f"Selected: {plural(selected(previous, document), 'test')}"
        + (f" ({len(document['missing'])} more on the list are not in this Tempest)" if document["missing"] else ""),
        f"Passed: {number.passed}  Failed: {number.failed}  Skipped: {number.skipped}",
    ] + changed
    failures = [t for t in tests if t.get("status") == "fail" and not t.get("waived")]
    if failures:
        lines += ["", "Failures:"] + [f"  {t['name']} [{t.get('uuid')}]: {t.get('reason')}" for t in failures]
    flaky = flaky_lines(tests)
    lines += [""] + flaky if flaky else []
    private_files.write_atomically(results_dir / contract.SUMMARY_FILE, ("\n".join(lines) + "\n").encode())


def selected(previous: Plan, document: dict) -> int:
    """How many tests the merged run selected: its tests, or the earlier
    run's list when some of it reported nothing in either run (the list's
    tests this Tempest lacks are not selected, as in any run)."""
    size = previous.original_size
    tests = len(document["tests"])
    return tests if size is None else max(tests, size - len(document.get("missing") or []))
