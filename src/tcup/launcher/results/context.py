"""What a run ran with, in words: the cloud's image, flavors and network
its servers used, each --set, the verdict rule, TCUP's image, and where it
was uploaded. summary.txt, report.html and `tcup results RUN` show these
same rows, so a result read months later says what produced it."""

from pathlib import Path
from typing import List, Optional, Tuple

from tcup import contract
from tcup.launcher.results import verdict
from tcup.launcher.results.runs import RunRecord, SavedRun, write_file

LABELS = {"image": "Image (servers)", "flavors": "Flavors", "network": "Network", "settings": "Settings (--set)",
          "rule": "Verdict rule", "tcup_image": "TCUP image", "upload_url": "Uploaded to RefStack"}
# Rows that name the cloud's resources, the user's values or a server: a
# support bundle shows only that they were there (results/bundle.py).
PRIVATE = ("image", "flavors", "network", "settings", "upload_url")
# summary.txt's line for an upload (appended after each one).
UPLOADED = LABELS["upload_url"] + ": "


def rows(record: RunRecord, upload_url: Optional[str] = None) -> List[Tuple[str, str, str]]:
    """(key, label, value): --json names a row by its key, a person by its
    label; a row the run does not know is left out."""
    choices = record.choices or {}
    found = [("image", LABELS["image"], _pair(choices.get("image"), choices.get("image_alt"))),
             ("flavors", LABELS["flavors"], _pair(choices.get("flavor"), choices.get("flavor_alt"))),
             ("network", LABELS["network"], _name(choices.get("network")))]
    shown = [row for row in found if row[2]]
    options = ((record.settings or {}).get("choices") or {}).get("tempest_options")
    if isinstance(options, dict) and record.complete:
        given = ", ".join(f"{key}={value}" for key, value in sorted(options.items()))
        shown.append(("settings", LABELS["settings"], given or "none"))
    if record.complete:
        rule = verdict.named(record.rule)
        shown.append(("rule", LABELS["rule"], f"{rule.id}: {rule.requires}"))
    if record.image:
        shown.append(("tcup_image", LABELS["tcup_image"], record.image))
    if upload_url:
        shown.append(("upload_url", LABELS["upload_url"], upload_url))
    return shown


def upload_url(run: SavedRun) -> Optional[str]:
    """Where the run's newest upload went; None when it has none."""
    return newest_url(run.uploads())


def newest_url(uploads) -> Optional[str]:
    """The URL of the newest entry of an upload record (uploads.json's list)."""
    return uploads[-1].get("url") if uploads and isinstance(uploads[-1], dict) else None


def of_run(run: SavedRun) -> List[Tuple[str, str, str]]:
    return rows(run.record(), upload_url(run))


def lines(found: List[Tuple[str, str, str]]) -> List[str]:
    return [f"{label}: {value}" for _, label, value in found]


def as_json(found: List[Tuple[str, str, str]]) -> dict:
    return {key: value for key, _, value in found}


def without_values(summary: str) -> str:
    """summary.txt for a support bundle: the private rows' values replaced
    by their kind; --set keeps which options, not what they were set to."""
    lines = []
    for line in summary.splitlines():
        key = next((key for key in PRIVATE if line.startswith(LABELS[key] + ": ")), None)
        if key == "settings":
            options = line[len(LABELS[key]) + 2:].split(", ")
            line = f"{LABELS[key]}: " + ", ".join(f"{option.split('=', 1)[0]}=<value>" if "=" in option else option
                                                  for option in options)
        elif key is not None:
            line = f"{LABELS[key]}: <{key}>"
        lines.append(line)
    return "\n".join(lines) + ("\n" if summary.endswith("\n") else "")


def note_upload(path: Path, url: str) -> None:
    """After an upload: summary.txt says where to, and report.html is made
    again with it. Both are views; failing to write them loses nothing."""
    from tcup.launcher.results import report
    from tcup.launcher.results.runs import run_holding

    path = path if path.is_dir() else run_holding(path)
    if path is None:
        return  # a RefStack JSON file from outside any run
    run = SavedRun(path)
    try:
        write_file(path / contract.SUMMARY_FILE, run.text(contract.SUMMARY_FILE).rstrip("\n") + f"\n{UPLOADED}{url}\n")
    except OSError:
        pass
    if run.complete:
        report.write_after_run(path)


def _name(resource) -> Optional[str]:
    if isinstance(resource, dict):
        return resource.get("name") or resource.get("id")
    return None


def _pair(first, second) -> Optional[str]:
    """"a" or "a (second: b)": where a test needs two, the second one."""
    one, two = _name(first), _name(second)
    if one is None:
        return None
    return one if two in (None, one) else f"{one} (second: {two})"
