"""Waivers (--waivers FILE): known failures that an operator has accepted
for a while, each with a reason, the bug that tracks it and an expiry date.

The file is a YAML list:

    - test: tempest.api.identity.v3.test_users.IdentityV3UsersTest.test_user_account_lockout
      reason: lockout is configured per domain here
      bug: https://bugs.example.com/1234
      expires: 2026-06-30

``test`` is a test's uuid (idempotent id, with or without ``id-``) or a
regular expression searched in its name. A waiver holds through its
``expires`` day; from the day after, it waives nothing and is reported.

A waived failure stays a failure in every file (tests.json keeps status
"fail"; refstack.json, what RefStack receives, holds passed tests only), and
is marked ``waived`` so that the summary, the compliance report and the HTML
report show it as such, and the verdict can say so.
"""

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from tcup.testids import bare_uuid, valid_uuid
from tcup.launcher.errors import BadInput

FIELDS = ("test", "reason", "bug", "expires")


@dataclass
class Waiver:
    test: str  # a uuid or a regex, as the file gave it
    reason: str
    bug: str
    expires: datetime.date
    number: int  # its place in the file, from 1, to name it in messages

    def matches(self, name: str, uuid: Optional[str]) -> bool:
        wanted = valid_uuid(self.test)
        if wanted:
            return bare_uuid(uuid) == wanted
        return re.search(self.test, name) is not None

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires

    def record(self) -> dict:
        """How a waived test carries its waiver in tests.json."""
        return {"test": self.test, "reason": self.reason, "bug": self.bug, "expires": self.expires.isoformat()}


def load(path: Path) -> List[Waiver]:
    """The waivers in ``path``; anything malformed is one BadInput line that
    names the file, the waiver (its number) and the field."""
    import yaml

    where = f"--waivers {path}"
    try:
        data = yaml.load(Path(path).read_text(), Loader=_loader())
    except OSError as error:
        raise BadInput(f"{where}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise BadInput(f"{where}: cannot read it (not UTF-8 text; write it as a YAML or JSON list)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{where} is not valid YAML{at}: {_yaml_problem(error)}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise BadInput(f"{where}: expected a list of waivers (- test: ..., reason: ..., bug: ..., expires: YYYY-MM-DD)")
    return [_waiver(entry, number, where) for number, entry in enumerate(data, 1)]


def _yaml_problem(error) -> str:
    """PyYAML's problem in one line; with its context where the problem
    alone is half a sentence ("but found another document")."""
    problem = str(getattr(error, "problem", None) or error)
    context = getattr(error, "context", None)
    if context and problem.startswith("but "):
        problem = f"{context} {problem}"
    return " ".join(problem.split())


def _loader():
    """YAML's safe loader, but a date stays the text it was: PyYAML turns
    2027-13-45 into a ValueError of its own, which would name no waiver; the
    date is checked here instead, with the waiver's number."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
    return Loader


def _waiver(entry, number: int, where: str) -> Waiver:
    if not isinstance(entry, dict):
        raise BadInput(f"{where}: waiver {number} is not a mapping with {', '.join(FIELDS)}")
    unknown = sorted(str(key) for key in entry if key not in FIELDS)
    if unknown:
        raise BadInput(f"{where}: waiver {number} has unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    test, reason, bug = (_text(entry, key, number, where) for key in ("test", "reason", "bug"))
    if not valid_uuid(test):
        try:
            re.compile(test)
        except re.error as error:
            raise BadInput(f"{where}: waiver {number}: test {test!r} is neither a uuid nor a valid regular "
                           f"expression ({error})") from None
    if not re.match(r"^https?://\S+$", bug):
        raise BadInput(f"{where}: waiver {number}: bug {bug!r} is not an http(s) URL")
    return Waiver(test, reason, bug, _expires(entry, number, where), number)


def _text(entry: dict, key: str, number: int, where: str) -> str:
    """A text field, present and not blank (a blank test would be a regex
    that waives every failure)."""
    value = entry.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None or value == "" or isinstance(value, str):
        raise BadInput(f"{where}: waiver {number} has no {key!r}")
    raise BadInput(f"{where}: waiver {number}: {key} {value!r} is not text (write it as a string; quote it "
                   f"if YAML reads it otherwise)")


def _expires(entry: dict, number: int, where: str) -> datetime.date:
    """``expires`` as a day, YYYY-MM-DD, a real one."""
    value = entry.get("expires")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadInput(f"{where}: waiver {number} has no 'expires'")
    # YAML's own dates may leave out a leading zero (2026-6-30): so may this.
    day = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", value.strip()) if isinstance(value, str) else None
    if day:
        try:
            return datetime.date(*(int(part) for part in day.groups()))
        except ValueError:
            pass
    raise BadInput(f"{where}: waiver {number}: expires {value!r} is not a date (YYYY-MM-DD)")


def expired_lines(waivers: List[Waiver], today: datetime.date) -> List[str]:
    """One line per expired waiver: which, and since when it waives nothing."""
    return [f"waiver {w.number} ({w.test}; {w.bug}) expired on {w.expires.isoformat()}, so since "
            f"{(w.expires + datetime.timedelta(days=1)).isoformat()} it waives nothing"
            for w in waivers if w.expired(today)]


def apply(tests: List[dict], waivers: List[Waiver], today: datetime.date) -> int:
    """Mark each failed test that a waiver in force matches (tests.json
    entries, changed in place: ``waived`` holds the first such waiver);
    the status stays "fail". Returns how many were marked."""
    active = [w for w in waivers if not w.expired(today)]
    marked = 0
    for test in tests:
        test.pop("waived", None)  # a rerun's merge decides afresh, with the waivers of this run
        if test.get("status") != "fail":
            continue
        waiver = next((w for w in active if w.matches(test.get("name") or "", test.get("uuid"))), None)
        if waiver is not None:
            test["waived"] = waiver.record()
            marked += 1
    return marked


def summary_lines(tests: List[dict], expired: List[str]) -> List[str]:
    """summary.txt's waiver section: each waived failure with its waiver, and the expired waivers."""
    lines = []
    waived = sorted((t for t in tests if t.get("waived")), key=lambda t: t.get("name") or "")
    if waived:
        lines += ["Waived failures (still failures; not uploaded as passed):"]
        for test in waived:
            w = test["waived"]
            lines.append(f"  {test['name']} [{test.get('uuid')}]: {w['reason']} ({w['bug']}, until {w['expires']})")
    if expired:
        lines += ([""] if lines else []) + ["Expired waivers (not applied):"] + [f"  {line}" for line in expired]
    return lines
