"""Choosing the tests: Tempest's installed test ids against the selection.

A test id looks like ``tempest.api.identity.v3.test_tokens.TokensV3Test.
test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9,smoke]``. Its
``id-`` attribute (the idempotent id) is what guideline lists name, so list
entries are matched by uuid, never by name: names move, uuids stay.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional

from tcup.contract import Selection
from tcup.testids import TEST_ID, bare_uuid, split_test_id
from tcup.runner import process
from tcup.runner.errors import InputError

LIST_TIMEOUT = 300


@dataclass(frozen=True)
class Test:
    """One installed Tempest test."""

    id: str  # the full id, as stestr knows it
    name: str  # the id without its [..] attributes
    uuid: Optional[str]


@dataclass
class Chosen:
    tests: List[Test]
    missing: List[str]  # uuids of the list that this Tempest lacks



def parse_listed_tests(text: str) -> List[Test]:
    """The tests in `tempest run --list-tests` output, skipping any line
    that is not a test id (log lines, blank lines)."""
    tests = []
    for line in text.splitlines():
        line = line.strip()
        if "." in line and TEST_ID.match(line):
            name, uuid = split_test_id(line)
            tests.append(Test(line, name, uuid))
    return tests


def installed_tests(env: dict, workspace: Path) -> List[Test]:
    """Every test this Tempest has, as stestr discovers them (no tempest.conf needed)."""
    out = process.run(["tempest", "run", "--list-tests"], env=env, cwd=str(workspace),
                      timeout=LIST_TIMEOUT, what="tempest run --list-tests", capture=True)
    return parse_listed_tests(out)



def choose(installed: Iterable[Test], selection: Selection, tempest_version: str) -> Chosen:
    """The installed tests the selection asks for: those whose uuid is on
    its list (if any) and whose full id matches its regex (if any)."""
    pattern = compile_regex(selection.regex)
    tests = sorted({t for t in installed if pattern is None or pattern.search(t.id)}, key=lambda t: t.id)
    missing: List[str] = []
    if selection.tests is not None:
        wanted = {bare_uuid(entry["uuid"]): entry for entry in selection.tests if entry.get("uuid")}
        tests = one_per_uuid([t for t in tests if t.uuid in wanted], wanted)
        have = {t.uuid for t in installed if t.uuid}
        # A regex narrows the list, so only the missing entries it would match count.
        missing = sorted(uuid for uuid, entry in wanted.items()
                         if uuid not in have and (pattern is None or pattern.search(entry.get("name") or "")))
    if not tests:
        raise InputError(f"the test list matches no test in Tempest {tempest_version} "
                         f"({selection.label}); check the guideline or --regex")
    return Chosen(tests, missing)


def one_per_uuid(candidates: List[Test], wanted: dict) -> List[Test]:
    """One test for each listed uuid. Subclasses inherit their parent's
    tests, uuid included (ServersTestBootFromVolume repeats ServersTestJSON's),
    so a uuid can name several installed tests; the list means the one whose
    name is its own, or for a renamed test the nearest name."""
    by_uuid = {}
    for test in candidates:
        by_uuid.setdefault(test.uuid, []).append(test)

    def nearness(test: Test, listed: str):
        shared = len(os.path.commonprefix([test.name, listed]))
        return (test.name == listed, shared, -len(test.name), test.id)

    chosen = [max(tests, key=lambda t: nearness(t, wanted[uuid].get("name") or "")) for uuid, tests in by_uuid.items()]
    return sorted(chosen, key=lambda t: t.id)


def compile_regex(regex: Optional[str]):
    if not regex:
        return None
    try:
        return re.compile(regex)
    except re.error as error:
        raise InputError(f"--regex {regex!r} is not a valid regular expression: {error}")


def write_load_list(tests: Iterable[Test], path: Path) -> Path:
    """stestr's --load-list file: one full test id a line."""
    path.write_text("".join(t.id + "\n" for t in tests))
    return path
