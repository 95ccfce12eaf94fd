"""Run directories: where each run's results are saved, before any upload.

A run is written into ``<name>.incomplete`` and renamed to ``<name>`` in one
step once every file is there, so a run directory is either complete or
plainly marked incomplete (a killed run keeps what it had). Directories are
0700 and files 0600 from their first byte: results say things about a private
cloud. Every file is written by ``private_files.write_atomically``, which never
follows a link, under a root that no one else owns or can write to.
"""

import json
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tcup import contract, private_files
from tcup.launcher.errors import BadInput
from tcup.testids import FIXTURE_ID, read_subunit, split_test_id, test_key

# The files a run directory holds beside the runner's (contract.py names those).
RUN_FILE = "run.json"  # the run's record (RunRecord), written last: its completeness mark
UPLOADS_FILE = "uploads.json"
SETTINGS_FILE = "settings.json"  # what `tcup rerun` repeats, written as the tests begin
COMPLIANCE_JSON = "compliance.json"
COMPLIANCE_TXT = "compliance.txt"
REPORT_FILE = "report.html"
PARTIAL_STREAM = contract.SUBUNIT_FILE + ".partial"  # the runner's stream while tests run
INCOMPLETE = ".incomplete"
# run.json's format: 2 adds "format" itself; runs saved before it are read as 1.
RECORD_FORMAT = 2


def default_root() -> Path:
    """$XDG_DATA_HOME/tcup/runs, as the XDG base directory spec has it."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "tcup" / "runs"


def find_run(text, root: Optional[Path] = None) -> Path:
    """A run directory from what the user typed: a path, or a run's name
    under the results root (with or without its .incomplete mark), as
    `tcup results` lists it. Refuses anything else in one line."""
    path = Path(text).expanduser()
    base = Path(root or default_root()).expanduser()
    candidates = [path]
    if not path.is_absolute() and len(path.parts) == 1:
        candidates += [base / path, base / (path.name + INCOMPLETE)]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.absolute()
    if path.exists():
        raise BadInput(f"{text} is not a directory; give a run directory (see `tcup results`)")
    raise BadInput(f"{text} is not a run directory or the name of a saved run under {base}: it does not exist; "
                   "see `tcup results`")


# Files only a run directory holds: what the runner writes first and last,
# and what the launcher writes when it finishes.
RUN_FILES = (RUN_FILE, contract.TESTS_FILE, contract.SUBUNIT_FILE, PARTIAL_STREAM)


def run_holding(path: Path) -> Optional[Path]:
    """The run directory that holds the file ``path`` (a refstack.json named
    by itself); None for a file outside any run (a RefStack JSON from elsewhere)."""
    parent = Path(path).parent
    if parent.name.endswith(INCOMPLETE) or any((parent / name).exists() for name in RUN_FILES):
        return parent
    return None


def unfinished(run: Path) -> Optional[str]:
    """Why the run in directory ``run`` is not a finished run, as words that
    follow its path; None when it is one. The one judge of completeness:
    uploads, reports, reruns and `tcup results` all ask it."""
    meta = json_object(run / RUN_FILE)
    if meta is None:
        return f"is an incomplete run (no readable {RUN_FILE})"
    if run.name.endswith(INCOMPLETE):
        return f"is an incomplete run (its name ends in {INCOMPLETE})"
    if meta.get("complete") is not True:
        return f"is marked incomplete in {RUN_FILE}"
    return None


def read_file(path: Path) -> str:
    """A result file's text, read as private_files.read_result reads (a
    regular file, never through a link, bounded); OSError otherwise."""
    return private_files.read_result(path).decode("utf-8", errors="replace")


def json_object(path: Path) -> Optional[dict]:
    """A result file's JSON object; None when it is missing, unreadable, a
    link, or not a JSON object."""
    try:
        return parse_object(private_files.read_result(path))
    except OSError:
        return None


def parse_object(data: Optional[bytes]) -> Optional[dict]:
    """A JSON object from a result file's bytes; None for anything else."""
    try:
        found = json.loads(data.decode("utf-8", errors="replace")) if data is not None else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


@dataclass
class TestResult:
    """One test of a saved run (tests.json's entry, or what a stream says)."""

    name: str
    uuid: Optional[str]
    status: str  # tests.json's: "success" | "fail" | "skip" (or a later TCUP's own)
    reason: Optional[str] = None
    flaky: bool = False  # a rerun's: failed first, then passed
    first_reason: Optional[str] = None  # why a flaky test failed first
    waived: Optional[dict] = None  # a failure's waiver (--waivers): reason, bug, expires, test
    fixed_by: Optional[list] = None  # a rerun's: failed first, then passed with these changed settings

    @property
    def key(self) -> str:
        return test_key(self.name, self.uuid)

    @classmethod
    def of(cls, entry: dict) -> "TestResult":
        """From tests.json's entry; KeyError or TypeError when it is not one."""
        return cls(str(entry["name"]), entry.get("uuid"), str(entry["status"]), entry.get("reason"),
                   flaky=bool(entry.get("flaky")), first_reason=entry.get("first_reason"),
                   waived=entry["waived"] if isinstance(entry.get("waived"), dict) else None,
                   fixed_by=entry["fixed_by"] if isinstance(entry.get("fixed_by"), list) else None)


# run.json's fields, in the order they are written; RunRecord holds them typed.
_RECORD_FIELDS = ("format", "tcup_version", "image", "started", "finished", "label", "guideline", "target", "cpid",
                  "credentials", "concurrency", "accounts", "choices", "cleanup", "duration_seconds", "passed",
                  "failed", "skipped", "admin_skipped", "missing", "verdict", "rule", "skip_reasons", "selected",
                  "settings", "waived", "flaky", "merged_from", "complete")


@dataclass
class RunRecord:
    """run.json: what the run was, how it was judged, and its completeness mark."""

    format: int = RECORD_FORMAT
    tcup_version: Optional[str] = None
    image: Optional[str] = None
    started: Optional[str] = None  # UTC, ISO 8601
    finished: Optional[str] = None
    label: Optional[str] = None  # the selection's name: a guideline and target, a list, a regex
    guideline: Optional[str] = None
    target: Optional[str] = None
    cpid: Optional[str] = None
    credentials: Optional[str] = None  # "admin" or "member"
    concurrency: Optional[int] = None
    accounts: Optional[int] = None
    choices: Optional[dict] = None  # what discovery chose (flavors, images, network)
    cleanup: Optional[dict] = None  # what the cleanup did (cleanup.json's summary)
    duration_seconds: Optional[float] = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    admin_skipped: int = 0
    missing: int = 0
    verdict: Optional[str] = None  # "compliant", "failed", "not compliant" or "compliant with waivers"
    rule: Optional[str] = None  # the verdict rule's id (results/verdict.py)
    skip_reasons: List[dict] = field(default_factory=list)  # [{"reason", "count"}], largest first
    selected: int = 0
    settings: Optional[dict] = None  # what `tcup rerun` repeats
    waived: Optional[int] = None  # merged or waived runs only, from here on
    flaky: Optional[int] = None
    merged_from: Optional[List[str]] = None  # the runs' names a rerun merged
    complete: bool = False

    @classmethod
    def of(cls, data: Optional[dict]) -> "RunRecord":
        """From run.json's object, whatever TCUP wrote it; unknown fields are dropped."""
        known = {key: value for key, value in (data or {}).items() if key in _RECORD_FIELDS}
        return cls(**{"format": 1, **known})

    def as_json(self) -> dict:
        document = {name: getattr(self, name) for name in _RECORD_FIELDS}
        return {key: value for key, value in document.items()
                if value is not None or key not in ("waived", "flaky", "merged_from")}


class SavedRun:
    """A saved run's directory, read: the one reader of the files a run holds
    (each a regular file, never through a link, bounded), for the report,
    diff, rerun, bundle, upload and `tcup results`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def find(cls, text, root: Optional[Path] = None) -> "SavedRun":
        """The run the user named (as find_run finds it) if it holds a run's
        files; refuses anything else in one line."""
        run = cls(find_run(text, root))
        if not any((run.path / name).is_file() for name in RUN_FILES):
            raise BadInput(f"{run.path} is not a TCUP run directory (it holds no {RUN_FILE} or "
                           f"{contract.TESTS_FILE}); see `tcup results` for the saved runs")
        return run

    @classmethod
    def holding(cls, file: Path) -> Optional["SavedRun"]:
        """The run whose directory holds ``file``; None for a file outside any run."""
        parent = run_holding(file)
        return cls(parent) if parent is not None else None

    @property
    def name(self) -> str:
        return self.path.name

    def unfinished(self) -> Optional[str]:
        return unfinished(self.path)

    @property
    def complete(self) -> bool:
        return self.unfinished() is None

    def data(self, name: str) -> bytes:
        """A file's bytes; OSError when it is missing, a link or not a regular file."""
        return private_files.read_result(self.path / name)

    def text(self, name: str) -> str:
        return self.data(name).decode("utf-8", errors="replace")

    def json(self, name: str) -> Optional[dict]:
        return json_object(self.path / name)

    def record(self) -> RunRecord:
        """run.json, typed; an incomplete run's is empty."""
        return RunRecord.of(self.json(RUN_FILE))

    def tests_document(self) -> dict:
        """tests.json: {"tests": [...], "missing": [...]}; one BadInput line
        when the run has none readable (it stopped before the runner wrote it)."""
        file = self.path / contract.TESTS_FILE
        try:
            document = parse_object(self.data(contract.TESTS_FILE))
        except FileNotFoundError:
            raise BadInput(f"{self.path} has no {contract.TESTS_FILE}: the run stopped before its results were "
                           "written, so there is nothing to report, compare or rerun") from None
        except OSError as error:
            raise BadInput(f"cannot read {file}: {error.strerror or error}") from None
        if document is None or not isinstance(document.get("tests"), list):
            raise BadInput(f"{file} is not TCUP's tests.json")
        return document

    def tests(self) -> List[TestResult]:
        try:
            return [TestResult.of(entry) for entry in self.tests_document()["tests"]]
        except (KeyError, TypeError) as error:
            raise BadInput(f"{self.path / contract.TESTS_FILE} is not TCUP's tests.json "
                           f"({type(error).__name__}: {error})") from None

    def stream(self) -> Optional[bytes]:
        """The run's subunit stream: whole, or as far as an interrupted run wrote it."""
        for name in (contract.SUBUNIT_FILE, PARTIAL_STREAM):
            try:
                return self.data(name)
            except OSError:
                continue
        return None

    def results(self) -> Dict[str, TestResult]:
        """The run's results by test key: tests.json, or for a run interrupted
        before it wrote that, what its subunit stream says finished."""
        tests_file = self.path / contract.TESTS_FILE
        if tests_file.exists() or tests_file.is_symlink():
            return {test.key: test for test in self.tests()}
        data = self.stream()
        if data is None:
            raise BadInput(f"{self.path} holds no test results ({contract.TESTS_FILE} or {contract.SUBUNIT_FILE}); "
                           "is it a TCUP run directory?")
        return stream_results(data)[1]

    def listed_and_finished(self) -> Tuple[Dict[str, Tuple[str, Optional[str]]], Dict[str, TestResult]]:
        """An interrupted run's stream: the tests stestr listed (key -> (name,
        uuid)) and those that finished."""
        data = self.stream()
        return stream_results(data) if data is not None else ({}, {})

    def settings(self) -> Optional[dict]:
        """What `tcup rerun` repeats: run.json's record of it, or settings.json
        (an interrupted run has only that)."""
        return self.record().settings or self.json(SETTINGS_FILE)

    def uploads(self) -> list:
        try:
            found = json.loads(self.text(UPLOADS_FILE))
        except (OSError, ValueError):
            return []
        return found if isinstance(found, list) else []


def stream_results(data: bytes) -> Tuple[Dict[str, Tuple[str, Optional[str]]], Dict[str, TestResult]]:
    """(tests listed, results) of a subunit stream, each by test key. A class
    or module fixture's skip or failure is its tests' (unittest then reports
    none of them); they are known from the list stestr streams first."""
    listed, found, fixtures = {}, {}, []
    for status in read_subunit(data):
        fixture = FIXTURE_ID.match(status.test_id)
        if status.status == "inprogress":
            continue
        if fixture:
            if status.status != "exists":
                fixtures.append((fixture.group("scope") + ".", status.status))
            continue
        name, uuid = split_test_id(status.test_id)
        if status.status == "exists":
            listed[test_key(name, uuid)] = (name, uuid)
        else:
            found[test_key(name, uuid)] = TestResult(name, uuid, status.status)
    for scope, outcome in fixtures:
        for key, (name, uuid) in listed.items():
            if name.startswith(scope):
                found.setdefault(key, TestResult(name, uuid, outcome))
    return listed, found


def write_file(path: Path, content: str) -> None:
    private_files.write_atomically(path, content.encode())


def write_json(path: Path, data) -> None:
    write_file(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass
class Run:
    """One run's directory, while it is written and after."""

    root: Path
    name: str

    @property
    def path(self) -> Path:
        return self.root / self.name

    @property
    def incomplete(self) -> Path:
        return self.root / (self.name + INCOMPLETE)

    @classmethod
    def create(cls, root: Optional[Path] = None) -> "Run":
        """A new, empty, incomplete run directory under ``root``; fails early
        with a clear line when it cannot be written."""
        run = cls.plan(root)
        run.begin()
        return run

    @classmethod
    def plan(cls, root: Optional[Path] = None) -> "Run":
        """A run's place under ``root``, checked (writable, ours alone) but not
        made yet: a run stopped before its container starts, even by SIGKILL,
        leaves no empty run directory behind."""
        root = Path(root or default_root()).expanduser().absolute()
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not os.access(root, os.W_OK | os.X_OK):
                raise PermissionError
        except OSError:
            raise BadInput(f"results directory {root} is not writable; choose another with --output DIR")
        check_private(root)
        return cls(root, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3))

    def begin(self) -> None:
        """Make the run's directory, marked incomplete."""
        try:
            self.incomplete.mkdir(mode=0o700)
        except OSError:
            raise BadInput(f"results directory {self.root} is not writable; choose another with --output DIR")

    def complete(self, metadata: dict) -> Path:
        """Record the run's metadata and mark the directory complete. The
        runner wrote its files 0600 already; this makes sure of it without
        following a link (the container could have planted one)."""
        for child in self.incomplete.iterdir():
            _make_private(child)
        write_json(self.incomplete / RUN_FILE, {**metadata, "complete": True})
        os.replace(self.incomplete, self.path)
        return self.path

    def discard_if_empty(self) -> None:
        """A run that never started leaves nothing behind."""
        try:
            self.incomplete.rmdir()
        except OSError:
            pass  # not empty: whatever is there is the user's


def check_private(root: Path) -> None:
    """Refuse a results root that another user owns or can write to: they
    could plant links there, or swap the run directories."""
    info = root.stat()
    if info.st_uid != os.getuid():
        raise BadInput(f"results directory {root} belongs to another user; choose your own with --output DIR")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BadInput(f"results directory {root} is writable by other users; "
                       f"run `chmod go-w {root}` or choose another with --output DIR")


def _make_private(path: Path) -> None:
    """chmod 0600 a regular file, never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # a link (or gone): not ours to touch
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
