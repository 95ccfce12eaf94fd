"""The exit codes are one story wherever a user reads them: README's table,
the guide's exit-codes page (which the troubleshooting page points to), the
prose of both, and `tcup --help`'s epilog. Read from the files themselves,
so a code that changes in one place and not the others fails here."""

import re

import pytest

from conftest import ROOT
from tcup import contract
from tcup.launcher import errors
from tcup.launcher.cli import EPILOG

README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide"
# What each code means, in words every place that lists it must use.
MEANS = {0: "compliant", 1: "failed", 2: "bad input", 3: "could not run", 4: "upload failed", 5: "not compliant",
         6: "compliant with waivers", 130: "interrupted"}
# Causes each table files under one code: both tables under the same one.
CAUSES = {
    "Keystone rejects": 2, "another cloud": 2, "signing key": 2, "a key the server does not know": 2,
    "the server refuses": 2, "incomplete run given to `upload` without `--force`": 2, "CA file": 2,
    "image file that is not TCUP's": 2,
    "no container engine": 3, "image build failed": 3, "Keystone unreachable": 3, "runner crashed": 3,
    "`tcup cleanup` could not remove everything": 3,
    "5xx": 4, "the results are saved": 4,
    "none failed, but some": 5, "missing from this Tempest": 5, "no result": 5,
    "`--waivers`": 6, "Ctrl-C": 130, "SIGTERM": 130,
}
# "exit 2", "exit code 130", "exits with 4", "(exit 5)", and the guide's own markers: `exit=4`.
SAID = re.compile(r"\bexit(?:s with| code|=)?\s*(\d+)\b")


def table(text: str, heading: str) -> dict:
    """{code: meaning} of the first table under ``heading``."""
    section = text.split(heading, 1)[1]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#") or (rows and not line.startswith("|")):
            break  # the table ended
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = cells[1]
    return rows


def readme_table() -> dict:
    return table(README.read_text(), "\n## Exit codes\n")


def guide_table() -> dict:
    return table((GUIDE / "exit-codes.md").read_text(), "# Exit codes\n")


def epilog_codes() -> dict:
    """{code: words} of --help's "exit codes:" paragraph."""
    paragraph = EPILOG.split("exit codes:", 1)[1].strip().rstrip(".")
    items = re.split(r",\s*(?=\d+ )", " ".join(paragraph.split()))
    return {int(code): words for code, words in (item.split(" ", 1) for item in items)}


def codes_in_the_code() -> set:
    """The exit codes the launcher and the runner's contract name."""
    return {value for module in (contract, errors) for name, value in vars(module).items()
            if name.startswith("EXIT_") and isinstance(value, int)}


def test_readme_the_guide_and_help_list_the_same_codes_as_the_code():
    codes = codes_in_the_code()
    assert codes == {0, 1, 2, 3, 4, 5, 6, 130}
    assert set(readme_table()) == codes
    assert set(guide_table()) == codes
    assert set(epilog_codes()) == codes


@pytest.mark.parametrize("code, words", sorted(MEANS.items()))
def test_each_code_means_the_same_everywhere(code, words):
    for where, meanings in (("README", readme_table()), ("the guide", guide_table()), ("--help", epilog_codes())):
        assert words in meanings[code], f"{where}: exit {code} is {meanings[code]!r}, without {words!r}"
    # The distinct ones: no other code's meaning claims them.
    if code in (2, 3, 4):
        assert [other for other, meaning in readme_table().items() if words in meaning] == [code]


@pytest.mark.parametrize("cause, code", sorted(CAUSES.items()))
def test_each_cause_has_the_same_code_in_readme_and_the_guide(cause, code):
    for where, meanings in (("README", readme_table()), ("the guide", guide_table())):
        filed = [number for number, meaning in meanings.items() if cause in meaning]
        assert filed == [code], f"{where} files {cause!r} under {filed}, not [{code}]"


def pages():
    return [README, *sorted(GUIDE.glob("*.md"))]


def clauses():
    """(page, clause) of README's and every guide page's prose: paragraphs
    outside code blocks and tables, cut at each sentence's end and at ";"."""
    for path in pages():
        text = re.sub(r"^```.*?^```\s*$", "", path.read_text(), flags=re.S | re.M)
        for paragraph in re.split(r"\n\s*\n", text):
            lines = [line for line in paragraph.splitlines() if not line.startswith(("|", "<!--", "#"))]
            for clause in re.split(r"(?<=[.!?;])\s+", " ".join(" ".join(lines).split())):
                yield path.relative_to(ROOT), clause


def test_every_code_the_prose_and_examples_name_is_in_the_table():
    codes = set(readme_table())
    named = [(str(page), int(number)) for page in pages() for number in SAID.findall(page.read_text())]
    assert len(named) > 20  # the guide's markers and README's prose are read
    assert [(page, number) for page, number in named if number not in codes] == []


def test_where_the_prose_gives_a_cause_one_code_it_is_the_tables():
    """A clause naming a cause and one exit code (as the troubleshooting page
    does for a signing key the server does not know) agrees with the table."""
    said = []
    for page, clause in clauses():
        numbers = set(int(number) for number in SAID.findall(clause))
        if len(numbers) == 1:
            (number,) = numbers
            said += [(str(page), cause, number, CAUSES[cause]) for cause in CAUSES if cause in clause]
    assert ("docs/guide/troubleshooting.md", "signing key", 2, 2) in said
    assert ("README.md", "5xx", 4, 4) in said
    assert [entry for entry in said if entry[2] != entry[3]] == []
