"""Run directories: where each run's results are saved, before any upload.

A run is written into ``<name>.incomplete`` and renamed to ``<name>`` in one
step once every file is there, so a run directory is either complete or
plainly marked incomplete (a killed run keeps what it had). Directories are
0700 and files 0600: results say things about a private cloud.
"""

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from tcup.launcher.errors import BadInput

RUN_FILE = "run.json"
UPLOADS_FILE = "uploads.json"
INCOMPLETE = ".incomplete"


def default_root() -> Path:
    """$XDG_DATA_HOME/tcup/runs, as the XDG base directory spec has it."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "tcup" / "runs"


def write_file(path: Path, content: str) -> None:
    """Write crash-safe (temp file, then rename) with owner-only access."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(content)
    os.replace(tmp, path)


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
        root = Path(root or default_root()).expanduser().absolute()
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not os.access(root, os.W_OK | os.X_OK):
                raise PermissionError
            name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
            run = cls(root, name)
            run.incomplete.mkdir(mode=0o700)
        except OSError:
            raise BadInput(f"results directory {root} is not writable; choose another with --output DIR")
        return run

    def complete(self, metadata: dict) -> Path:
        """Record the run's metadata and mark the directory complete."""
        for child in self.incomplete.iterdir():
            child.chmod(0o600)
        write_json(self.incomplete / RUN_FILE, {**metadata, "complete": True})
        os.replace(self.incomplete, self.path)
        return self.path

    def discard_if_empty(self) -> None:
        """A run that never started leaves nothing behind."""
        try:
            self.incomplete.rmdir()
        except OSError:
            pass  # not empty: whatever is there is the user's


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
        entry = {"path": str(path), "name": path.name}
        try:
            entry.update(json.loads((path / RUN_FILE).read_text()))
        except (OSError, ValueError):
            entry["complete"] = False
        try:
            entry["uploads"] = json.loads((path / UPLOADS_FILE).read_text())
        except (OSError, ValueError):
            entry["uploads"] = []
        runs.append(entry)
    return runs


def render_runs(runs: List[dict]) -> str:
    """`tcup results`: one line per run."""
    if not runs:
        return "no saved runs"
    lines = [f"{'run':<26} {'cpid':<32} {'guideline':<20} {'pass':>5} {'fail':>5} {'skip':>5}  upload"]
    for run in runs:
        if not run.get("complete"):
            lines.append(f"{run['name']:<26} (incomplete: kept as it was left)")
            continue
        uploads = run.get("uploads") or []
        where = uploads[-1]["url"] if uploads else "not uploaded"
        lines.append(
            f"{run['name']:<26} {str(run.get('cpid', '?')):<32} {str(run.get('label', '?')):<20} "
            f"{run.get('passed', 0):>5} {run.get('failed', 0):>5} {run.get('skipped', 0):>5}  {where}"
        )
    return "\n".join(lines)

