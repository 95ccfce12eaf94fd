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
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from tcup import contract, private_files
from tcup.launcher.errors import BadInput, printable

RUN_FILE = "run.json"
UPLOADS_FILE = "uploads.json"
INCOMPLETE = ".incomplete"


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
RUN_FILES = (RUN_FILE, contract.TESTS_FILE, contract.SUBUNIT_FILE, contract.SUBUNIT_FILE + ".partial")


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
        data = json.loads(read_file(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_file(path: Path, content: str) -> None:
    private_files.write_atomically(path, content.encode())


def write_json(path: Path, data) -> None:
    write_file(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def status_counts(tests: List[dict]) -> dict:
    """How many of tests.json's entries passed, failed and were skipped, by Tempest's status names."""
    return {status: sum(t.get("status") == status for t in tests) for status in ("success", "fail", "skip")}


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


def list_runs(root: Optional[Path] = None) -> List[dict]:
    """Saved runs under ``root``, oldest first, each as its run.json plus its
    path and upload record; incomplete runs are listed as such."""
    root = Path(root or default_root()).expanduser()
    runs = []
    if not root.is_dir():
        return runs
    for path in sorted(root.iterdir()):
        if not path.is_dir():
            continue
        entry = {"path": str(path), "name": path.name, **(json_object(path / RUN_FILE) or {})}
        entry["complete"] = unfinished(path) is None
        try:
            entry["uploads"] = json.loads(read_file(path / UPLOADS_FILE))
        except (OSError, ValueError):
            entry["uploads"] = []
        runs.append(entry)
    return runs


def render_runs(runs: List[dict]) -> str:
    """`tcup results`: one line per run, in columns as wide as their widest cell."""
    if not runs:
        return "no saved runs"
    header = ("run", "cpid", "list", "verdict", "pass", "fail", "skip", "upload")
    rows = []
    for run in runs:
        if not run.get("complete"):
            rows.append((run["name"], "(incomplete: kept as it was left)"))
            continue
        uploads = run.get("uploads") or []
        rows.append((run["name"], str(run.get("cpid", "?")), str(run.get("label", "?")), str(run.get("verdict") or "-"),
                     str(run.get("passed", 0)), str(run.get("failed", 0)), str(run.get("skipped", 0)),
                     uploads[-1]["url"] if uploads else "not uploaded"))
    full = [header] + [row for row in rows if len(row) == len(header)]
    widths = [max(len(row[i]) for row in full) for i in range(len(header) - 1)]
    numbers = {"pass", "fail", "skip"}
    lines = []
    for row in [header] + rows:
        if len(row) != len(header):
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]}")
            continue
        cells = [cell.rjust(widths[i]) if header[i] in numbers else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join(cells) + "  " + row[-1])
    # run.json and uploads.json quote a server (the result URL).
    return printable("\n".join(lines))



def expected_duration(label: str, credentials: str, root: Optional[Path] = None) -> Optional[str]:
    """How long a run of this selection took last time, in the same mode
    (admin or member), as words; None when no such run is saved."""
    same = [run for run in list_runs(root)
            if run.get("complete") and run.get("label") == label and run.get("credentials") == credentials
            and isinstance(run.get("duration_seconds"), (int, float))]
    if not same:
        return None
    last = same[-1]
    minutes, seconds = divmod(int(last["duration_seconds"]), 60)
    took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    return f"about {took} (the last such run, {last['name']}, at concurrency {last.get('concurrency')})"
