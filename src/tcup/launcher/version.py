"""Which TCUP this is: its version and the image it drives.

The pyz carries the version build_zipapp.py stamped into it (from git); a
checkout asks git itself. Both name the image the same way (image.py), so
`--version` tells a user which image a pyz and a checkout share.
"""

import subprocess
import sys
from pathlib import Path

import tcup

STAMP = Path(__file__).with_name("VERSION")


def version() -> str:
    if STAMP.is_file():
        return STAMP.read_text().strip()
    return from_git(Path(__file__).resolve().parents[3]) or tcup.__version__


def from_git(checkout: Path) -> str:
    """``v0.2.0`` on a tagged commit gives 0.2.0; three commits later
    0.2.0+3.g1234abc; with no tag, the package's version and the commit;
    uncommitted changes add .dirty. Empty outside a git checkout."""
    try:
        described = subprocess.run(
            ["git", "-C", str(checkout), "describe", "--tags", "--match", "v[0-9]*", "--long", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    if described.returncode != 0 or not (checkout / ".git").exists():
        return ""
    text = described.stdout.strip()
    dirty = text.endswith("-dirty")
    text = text[: -len("-dirty")] if dirty else text
    parts = text.rsplit("-", 2)
    if len(parts) == 3 and parts[0].startswith("v"):
        tag, distance, commit = parts
        local = [] if distance == "0" else [distance, commit]
    else:  # no release tag yet: only the commit
        tag, local = "v" + tcup.__version__, [f"g{text}"]
    local += ["dirty"] if dirty else []
    return tag[1:] + ("+" + ".".join(local) if local else "")


def describe() -> str:
    """The `--version` line: TCUP's version and the image tag it drives."""
    from tcup.launcher.engine.image import tag_of_this_version

    try:
        tag = tag_of_this_version()
    except Exception as error:  # noqa: BLE001 - a broken install still says its version
        tag = f"unknown ({error})"
    return f"tcup {version()} (image {tag})"


def invoked_as() -> str:
    """How the user started TCUP, for the commands it prints back to them:
    ``./tcup.pyz`` as typed, ``python3 -m tcup`` from a checkout, or ``tcup``."""
    first = sys.argv[0] if sys.argv and sys.argv[0] else "tcup"
    if first.endswith(("tcup/__main__.py", "tcup\\__main__.py")):
        return f"{Path(sys.executable).name} -m tcup"
    if first.endswith(".pyz"):
        return first if "/" in first else "./" + first
    return "tcup"  # the installed script, or TCUP called from other Python code
