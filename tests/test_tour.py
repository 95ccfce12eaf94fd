"""The recorded tour (docs/tour/, made by `make tour` with tools/tour.py).

The committed recording must be a valid asciinema v2 cast of a real run and
show nothing private; recording one now, against the test Keystone whose
passwords are canaries, must give the same and leave no secret, host path or
Keystone address in the cast, the still or the replay page. The small
terminal emulator that draws the still is checked on the escapes TCUP's live
progress line uses.
"""

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import ADMIN_CANARY, MEMBER_CANARY, ROOT

import tour  # tools/tour.py (conftest puts tools/ on the path)

TOUR = ROOT / "docs" / "tour"
# A host path, a loopback address with a port, or an openrc's password line.
PRIVATE = re.compile(r"/root\b|/home/\w|/tmp/|/work/|127\.0\.0\.1:\d|localhost:\d|OS_PASSWORD=")


def read_cast(path: Path):
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def check_cast(path: Path):
    header, events = read_cast(path)
    assert header["version"] == 2 and header["width"] == tour.WIDTH and header["height"] == tour.HEIGHT
    times = [event[0] for event in events]
    assert times == sorted(times) and all(kind == "o" for _, kind, _ in events)
    # Silences are shortened, so the tour stays watchable.
    assert max(b - a for a, b in zip(times, times[1:])) <= tour.IDLE_CAP + 2.5
    output = "".join(text for _, _, text in events)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    for command, _ in tour.SCENES:
        assert command in plain, f"the tour does not show `{command}`"
    assert "Verdict: COMPLIANT" in plain and "tests selected" in plain and "Results saved in ~/" in plain
    assert not PRIVATE.search(output), PRIVATE.search(output).group(0)
    return header, output


def test_the_committed_tour_is_a_clean_cast_of_a_real_run():
    header, output = check_cast(TOUR / "tour.cast")
    # The live progress line redraws itself on a terminal: the recording caught it.
    assert "\r\x1b[K" in output and re.search(r"\[\d+/\d+\] passed \d+, failed \d+", output)
    assert "tcup_still" in header


def test_the_committed_still_and_replay_page_match_the_cast(tmp_path):
    # Rendering again from the committed cast gives the committed files: they are not stale.
    (tmp_path / "tour.cast").write_bytes((TOUR / "tour.cast").read_bytes())
    screen = tour.render(tmp_path / "tour.cast", tmp_path)
    assert (tmp_path / "tour.svg").read_text() == (TOUR / "tour.svg").read_text()
    assert (tmp_path / "index.html").read_text() == (TOUR / "index.html").read_text()
    assert "Verdict: COMPLIANT" in screen.text()
    ElementTree.fromstring((TOUR / "tour.svg").read_text())  # a well-formed SVG
    page = (TOUR / "index.html").read_text()
    # Self-contained: nothing fetched from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "fetch(" not in page
    assert "Verdict: COMPLIANT" in page


def test_the_emulator_draws_a_redrawn_progress_line_and_colours():
    screen = tour.Screen(40, 4)
    screen.feed("tcup: [1/3] passed a.b.c\r\x1b[Ktcup: [3/3] \x1b[32mpassed\x1b[0m x\r\nnext")
    assert screen.text().splitlines()[:2] == ["tcup: [3/3] passed x", "next"]
    assert ("p", "c32") in screen.rows[0]
    screen.feed("\r\n" * 5 + "last")  # scrolls
    assert screen.text().splitlines()[-1] == "last"
    wide = tour.Screen(10, 3)
    wide.feed("0123456789AB")  # autowrap
    assert wide.text().splitlines()[:2] == ["0123456789", "AB"]


@pytest.mark.engine
@pytest.mark.keystone
def test_recording_a_tour_shows_the_run_and_no_secret(pyz, image, keystone, watch, tmp_path):
    out = tmp_path / "tour"
    codes = tour.record(out, pyz, keystone, tmp_path / "work")
    assert list(codes.values()) == [0] * len(tour.SCENES), codes
    check_cast(out / "tour.cast")
    auth = re.match(r"https?://([^/]+)", keystone.auth_url).group(1)
    for name in ("tour.cast", "tour.svg", "index.html"):
        text = (out / name).read_text()
        for secret in (ADMIN_CANARY, MEMBER_CANARY, auth, str(tmp_path)):
            assert secret not in text, f"{name} shows {secret!r}"
    still = (out / "tour.svg").read_text()
    assert "Verdict: COMPLIANT" in still.replace("&#x27;", "'")
