#!/usr/bin/env python3
"""Record the TCUP tour: a real demo run on a pseudo-terminal, saved as an
asciinema v2 cast, with a still (SVG) and a replay page (HTML) a browser shows.

    python3 tools/tour.py --pyz dist/tcup.pyz --out docs/tour      (what `make tour` runs)

Why a recorder of our own rather than Debian's asciinema: the tour is a
script, not a person at a keyboard, so the commands must be "typed" into the
recording at a readable pace, each command must run in a known, clean
environment (a throwaway home, the local Keystone test cloud), and the
recording must be checked for secrets and host paths before it is written.
asciinema records what a shell does; wrapping it to get all three would take
more code than this, and would add a package to install. The pty, the
timing and the cast format are the same as asciinema's, so `asciinema play
tour.cast` replays it.

Standard library only (pty, select, time, json): it runs from the host python.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import pty
import re
import secrets
import select
import shlex
import shutil
import signal
import struct
import sys
import tempfile
import termios
import fcntl
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

WIDTH, HEIGHT = 150, 36  # wide enough for `tcup results` on one line
TYPING = 0.035        # seconds per typed character
IDLE_CAP = 1.5        # longer silences (image pulls, Keystone) are shortened to this
PROMPT = "\x1b[32m$\x1b[0m "
KEYSTONE_EXAMPLE = "https://keystone.example.com:5000"

# The tour: what a new user does first. Against the Keystone-only test cloud,
# so the identity tests pass and the plan shows what a fuller cloud would run.
SCENES = [
    ("./tcup.pyz --version", False),
    ("source demo-openrc.sh", False),
    ("./tcup.pyz plan --guideline scs-0128", False),
    (r"./tcup.pyz --no-upload --regex 'identity\.v3\.test_(tokens|catalog)'", True),  # the still
    ("./tcup.pyz results", False),
    ("ls ~/.local/share/tcup/runs/*/", False),
]


# ---------------------------------------------------------------------------
# Recording


class Recorder:
    """Runs commands on a pty and collects asciicast v2 output events."""

    def __init__(self, home: Path, env: dict, scrub: dict):
        self.home, self.env, self.scrub = home, env, scrub
        self.events: list[list] = []
        self.clock = 0.0
        self.still_at: float | None = None

    def emit(self, text: str, gap: float = 0.0):
        self.clock += gap
        if text:
            self.events.append([round(self.clock, 3), "o", text])

    def clean(self, text: str) -> str:
        for real, shown in self.scrub.items():
            text = text.replace(real, shown)
        return text

    def type_command(self, command: str):
        self.emit(PROMPT, 0.6)
        for char in command:
            self.emit(char, TYPING)
        self.emit("\r\n", 0.3)

    def run(self, command: str, timeout: float = 900):
        """Run one command in bash on a pty of the tour's size; record its output with
        its real timing, long silences shortened. The shell state (an exported
        openrc) carries to the next command through a state file, as in one shell."""
        state = self.home.parent / "tour-state.sh"
        script = (f"source {shlex.quote(str(state))}; cd ~\n{command}\n"
                  f"export -p > {shlex.quote(str(state))}\n")
        pid, fd = pty.fork()
        if pid == 0:
            os.execve("/bin/bash", ["bash", "-c", script], {"TERM": "xterm-256color"})
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0))
        last, pending, deadline = time.monotonic(), b"", time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not select.select([fd], [], [], 0.5)[0]:
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the command ended
                    break
                if not chunk:
                    break
                now = time.monotonic()
                pending += chunk
                try:
                    text = pending.decode()
                    pending = b""
                except UnicodeDecodeError:  # a character split between reads
                    continue
                self.emit(self.clean(text), min(now - last, IDLE_CAP))
                last = now
            _, status = os.waitpid(pid, 0)
            pid = 0
            return os.waitstatus_to_exitcode(status)
        finally:
            if pid:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            os.close(fd)

    def cast(self, title: str) -> str:
        header = {"version": 2, "width": WIDTH, "height": HEIGHT, "timestamp": int(time.time()),
                  "title": title, "env": {"TERM": "xterm-256color", "SHELL": "/bin/bash"}}
        if self.still_at is not None:
            header["tcup_still"] = self.still_at  # our own key: where tour.svg is taken; players ignore it
        return "\n".join(json.dumps(line) for line in [header, *self.events]) + "\n"


def record(out: Path, pyz: Path, keystone, workdir: Path, scenes=SCENES) -> dict:
    """Record the tour against ``keystone`` (a started KeystoneCloud) into ``out``:
    tour.cast, tour.svg (the still) and index.html (the replay). Returns the
    exit codes per command."""
    from testcloud.keystone import openrc_text

    home = workdir / "home"
    home.mkdir(parents=True)
    shutil.copy(pyz, home / "tcup.pyz")
    (home / "demo-openrc.sh").write_text(openrc_text(keystone.openrc("member")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k not in ("XDG_DATA_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), COLUMNS=str(WIDTH), LINES=str(HEIGHT))
    (workdir / "tour-state.sh").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    auth_root = re.match(r"https?://[^/]+", keystone.auth_url).group(0)
    # What a viewer must not see and need not see: the throwaway home and the
    # test cloud's address (TCUP itself prints neither password nor address).
    scrub = {str(home): "~", auth_root: KEYSTONE_EXAMPLE}
    recorder = Recorder(home, env, scrub)
    codes = {}
    for command, still in scenes:
        recorder.type_command(command)
        codes[command] = recorder.run(command)
        if still:  # the moment of the command's last output (as rounded in the cast)
            recorder.still_at = recorder.events[-1][0]
    recorder.emit(PROMPT, 0.6)
    recorder.emit("", 2.0)  # hold the last screen a moment
    cast = recorder.cast("TCUP tour: plan, run and results against a test cloud")
    secrets_seen = [s for s in (keystone.admin_password, keystone.member_password, auth_root, str(home), "/root/")
                    if s in cast]
    if secrets_seen:
        raise SystemExit(f"tour: the recording shows what it must not ({len(secrets_seen)} items); not written")
    out.mkdir(parents=True, exist_ok=True)
    (out / "tour.cast").write_text(cast)
    render(out / "tour.cast", out)
    return codes


# ---------------------------------------------------------------------------
# A small terminal emulator: the escapes TCUP, bash and Tempest print


COLOURS = {30: "#555", 31: "#e05252", 32: "#5fb85f", 33: "#d7a835", 34: "#5c8fe0", 35: "#c678dd",
           36: "#4fb8c4", 37: "#ddd", 90: "#888", 91: "#ff6b6b", 92: "#8fe08f", 93: "#f0d060",
           94: "#82aaff", 95: "#e08fe0", 96: "#7fdbe6", 97: "#fff"}
CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z@])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>78]")


class Screen:
    """Rows of (character, style) cells; a cursor; SGR colours and bold;
    cursor moves; erase in line and display; autowrap and scrolling."""

    def __init__(self, width=WIDTH, height=HEIGHT):
        self.width, self.height = width, height
        self.rows = [self.blank() for _ in range(height)]
        self.x = self.y = 0
        self.style = ""
        self.wrap_pending = False

    def blank(self):
        return [(" ", "") for _ in range(self.width)]

    def feed(self, text: str):
        position = 0
        for match in CSI.finditer(text):
            self.put(text[position:match.start()])
            if match.group(2):
                self.control(match.group(1), match.group(2))
            position = match.end()
        self.put(text[position:])

    def newline(self):
        if self.y == self.height - 1:
            self.rows.pop(0)
            self.rows.append(self.blank())
        else:
            self.y += 1

    def put(self, text: str):
        for char in text:
            if char == "\r":
                self.x, self.wrap_pending = 0, False
            elif char == "\n":
                self.newline()
                self.wrap_pending = False
            elif char == "\b":
                self.x = max(0, self.x - 1)
            elif char == "\t":
                self.x = min(self.width - 1, (self.x // 8 + 1) * 8)
            elif char == "\x07" or ord(char) < 32:
                continue
            else:
                if self.wrap_pending:
                    self.x, self.wrap_pending = 0, False
                    self.newline()
                self.rows[self.y][self.x] = (char, self.style)
                if self.x == self.width - 1:
                    self.wrap_pending = True
                else:
                    self.x += 1

    def control(self, params: str, final: str):
        if params.startswith("?"):
            return  # modes (cursor visibility, bracketed paste): nothing to draw
        numbers = [int(n) if n else 0 for n in params.split(";")] if params else []
        n = numbers[0] if numbers else 0
        self.wrap_pending = False
        if final == "m":
            self.sgr(numbers or [0])
        elif final == "K":
            start, end = {0: (self.x, self.width), 1: (0, self.x + 1), 2: (0, self.width)}.get(n, (0, 0))
            for column in range(start, end):
                self.rows[self.y][column] = (" ", "")
        elif final == "J":
            if n == 2 or n == 3:
                self.rows = [self.blank() for _ in range(self.height)]
            elif n == 0:
                self.control("0", "K")
                for row in range(self.y + 1, self.height):
                    self.rows[row] = self.blank()
        elif final in "ABCD":
            step = max(n, 1)
            dy, dx = {"A": (-step, 0), "B": (step, 0), "C": (0, step), "D": (0, -step)}[final]
            self.y = min(max(self.y + dy, 0), self.height - 1)
            self.x = min(max(self.x + dx, 0), self.width - 1)
        elif final == "G":
            self.x = min(max(n, 1), self.width) - 1
        elif final in "Hf":
            row, column = (numbers + [1, 1])[:2]
            self.y, self.x = min(max(row, 1), self.height) - 1, min(max(column, 1), self.width) - 1

    def sgr(self, numbers):
        colour = re.search(r"c(\d+)", self.style)
        bold = "b" in self.style
        colour = int(colour.group(1)) if colour else None
        for n in numbers:
            if n == 0:
                colour, bold = None, False
            elif n == 1:
                bold = True
            elif n == 22:
                bold = False
            elif n in COLOURS:
                colour = n
            elif n == 39:
                colour = None
        self.style = ("b" if bold else "") + (f"c{colour}" if colour else "")

    def text(self) -> str:
        return "\n".join("".join(c for c, _ in row).rstrip() for row in self.rows)

    def spans(self, row):
        """A row as runs of (text, style)."""
        runs = []
        for char, style in self.rows[row]:
            if runs and runs[-1][1] == style:
                runs[-1][0] += char
            else:
                runs.append([char, style])
        if runs and not runs[-1][1]:
            runs[-1][0] = runs[-1][0].rstrip()
        return runs


def css(style: str) -> str:
    colour = re.search(r"c(\d+)", style)
    rules = []
    if colour:
        rules.append(f"color:{COLOURS[int(colour.group(1))]}")
    if "b" in style:
        rules.append("font-weight:bold")
    return ";".join(rules)


def row_html(screen: Screen, row: int) -> str:
    return "".join(f'<span style="{css(s)}">{html.escape(t)}</span>' if s else html.escape(t)
                   for t, s in screen.spans(row))


def svg(screen: Screen, title: str) -> str:
    cell_w, cell_h, pad = 8.4, 17, 12
    width, height = screen.width * cell_w + 2 * pad, screen.height * cell_h + 2 * pad + 24
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14">',
             f"<title>{html.escape(title)}</title>",
             '<rect width="100%" height="100%" rx="8" fill="#1e1e1e"/>',
             '<circle cx="20" cy="16" r="5" fill="#ff5f56"/><circle cx="38" cy="16" r="5" fill="#ffbd2e"/>'
             '<circle cx="56" cy="16" r="5" fill="#27c93f"/>',
             f'<text x="{width / 2:.0f}" y="20" fill="#999" text-anchor="middle" font-size="12">{html.escape(title)}</text>']
    for row in range(screen.height):
        runs = [r for r in screen.spans(row) if r[0]]
        if not any(t.strip() for t, _ in runs):
            continue
        y = pad + 24 + (row + 1) * cell_h - 4
        parts = []
        for text, style in runs:
            colour = re.search(r"c(\d+)", style)
            attrs = f' fill="{COLOURS[int(colour.group(1))]}"' if colour else ""
            attrs += ' font-weight="bold"' if "b" in style else ""
            parts.append(f"<tspan{attrs}>{html.escape(text)}</tspan>")
        lines.append(f'<text x="{pad}" y="{y}" fill="#ddd" xml:space="preserve" textLength="{len("".join(t for t, _ in runs)) * cell_w:.1f}">{"".join(parts)}</text>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


PLAYER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TCUP tour</title>
<style>
body{background:#111;color:#ddd;font:15px system-ui,sans-serif;margin:2em}
#term{background:#1e1e1e;border-radius:8px;padding:12px;font:14px/17px "DejaVu Sans Mono",Menlo,Consolas,monospace;
white-space:pre;width:%(width)sch;height:%(height_px)spx;overflow:hidden}
button{font:inherit;margin:.5em .5em 0 0}
</style></head><body>
<h1>TCUP tour</h1>
<p>A real run of TCUP, recorded on a terminal by <code>make tour</code> (tools/tour.py) against the
local Keystone test cloud; replayed here by this page alone, no network.
The raw recording is <a href="tour.cast">tour.cast</a> (asciinema v2: <code>asciinema play tour.cast</code>),
a still is <a href="tour.svg">tour.svg</a>.</p>
<div id="term"></div>
<button id="play">Pause</button><button id="again">Replay</button>
<label>speed <select id="speed"><option>1</option><option selected>2</option><option>4</option></select></label>
<span id="clock"></span>
<script>
// Each frame: [seconds, {row: html}], only the rows that changed since the frame before.
const FRAMES = %(frames)s, ROWS = %(height)s, term = document.getElementById("term");
let lines, next, timer = null, paused = false, started, offset, lastSpeed = 2;
function draw(rows){ for (const r in rows) lines[r] = rows[r]; term.innerHTML = lines.join("\\n"); }
function start(){ lines = Array(ROWS).fill(""); next = 0; offset = 0; started = performance.now(); tick(); }
function tick(){
  const now = offset + (performance.now() - started) / 1000 * lastSpeed;
  while (next < FRAMES.length && FRAMES[next][0] <= now) draw(FRAMES[next++][1]);
  document.getElementById("clock").textContent = Math.min(now, FRAMES[FRAMES.length-1][0]).toFixed(0) + " s";
  timer = next < FRAMES.length ? setTimeout(tick, 30) : null;
}
document.getElementById("play").onclick = e => {
  if (paused) { started = performance.now(); paused = false; e.target.textContent = "Pause"; tick(); }
  else { clearTimeout(timer); offset += (performance.now() - started) / 1000 * lastSpeed;
         paused = true; e.target.textContent = "Play"; }
};
document.getElementById("speed").onchange = () => {
  // Keep the position: fold the time played so far at the old speed into the offset.
  if (!paused) { offset += (performance.now() - started) / 1000 * lastSpeed; started = performance.now(); }
  lastSpeed = +document.getElementById("speed").value;
};
document.getElementById("again").onclick = () => { clearTimeout(timer); paused = false;
  document.getElementById("play").textContent = "Pause"; start(); };
start();
</script>
<noscript><img src="tour.svg" alt="the last screen of the tour"></noscript>
</body></html>
"""


def frames(events, width=WIDTH, height=HEIGHT, merge=0.05):
    """Replay a cast's events on a Screen; the changed rows per moment (events
    closer than `merge` seconds share a frame). Returns (frames, screen at the end)."""
    screen, shown, result = Screen(width, height), [""] * height, []
    for index, (at, _, text) in enumerate(events):
        screen.feed(text)
        following = events[index + 1][0] if index + 1 < len(events) else None
        if following is not None and following - at < merge:
            continue
        changed = {}
        for row in range(height):
            line = row_html(screen, row)
            if line != shown[row]:
                changed[row] = shown[row] = line
        if changed:
            result.append([round(at, 2), changed])
    return result, screen


def render(cast_path: Path, out: Path) -> Screen:
    """tour.svg (the screen at the still mark, else the last) and index.html from a cast."""
    lines = cast_path.read_text().splitlines()
    header = json.loads(lines[0])
    events = [json.loads(line) for line in lines[1:]]
    replay, screen = frames(events, header["width"], header["height"])
    still_at = header.get("tcup_still")
    if still_at is not None:
        _, screen = frames([e for e in events if e[0] <= still_at], header["width"], header["height"])
    (out / "tour.svg").write_text(svg(screen, header.get("title", "TCUP tour")))
    (out / "index.html").write_text(PLAYER % {
        "frames": json.dumps(replay, separators=(",", ":")).replace("</", "<\\/"),
        "width": header["width"], "height": header["height"], "height_px": header["height"] * 17})
    return screen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyz", type=Path, default=Path("dist/tcup.pyz"))
    parser.add_argument("--out", type=Path, default=Path("docs/tour"))
    parser.add_argument("--render-only", action="store_true", help="redraw tour.svg and index.html from tour.cast")
    args = parser.parse_args(argv)
    if args.render_only:
        render(args.out / "tour.cast", args.out)
        return 0
    from keystone_cloud import KeystoneCloud

    with tempfile.TemporaryDirectory(prefix="tcup-tour-") as scratch:
        scratch = Path(scratch)
        # Throwaway passwords: the recording is checked for them before it is written.
        with KeystoneCloud(scratch / "keystone", admin_password=secrets.token_urlsafe(16),
                           member_password=secrets.token_urlsafe(16)) as keystone:
            codes = record(args.out, args.pyz.resolve(), keystone, scratch / "tour")
    for command, code in codes.items():
        print(f"tour: exit {code:3d}  {command}")
    print(f"tour: wrote {args.out}/tour.cast, tour.svg, index.html")
    return 0 if all(code in (0, 1, 5) for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
