"""The user guide (docs/guide/) cannot rot: every command it shows is run here.

Each page's ``console`` blocks run in order, in a fresh home directory of their
own, as a user would type them: the pyz built from this checkout as
``./tcup.pyz``, the real Keystone test cloud behind ``my-cloud-openrc.sh``,
a real RefStack server behind ``https://refstack.example.com``, the real
container engine. Each command's exit code is checked, and every output line
the guide shows must appear in the output, in order (``...`` elides). The
marker comment above each block is the contract (see docs/guide/README.md);
a block without one fails, so an example cannot slip in untested.

The one stand-in: the OS keyring's storage is a JSON file (there is no
desktop keyring on a test machine); the ``keyring`` library and its command
line, and TCUP's reading of it, are the real ones.
"""

import errno
import hashlib
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MEMBER_CANARY, ROOT, base_env

GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(p for p in GUIDE.glob("*.md") if p.name != "README.md")
SHELL_LANGS = {"console", "sh", "bash", "shell"}
BLOCK = re.compile(
    r"(?:<!--\s*guide:(?P<opts>[^>]*?)-->\s*\n)?^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$",
    re.S | re.M,
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
DEMO2_PASSWORD = "canary-demo2-guide"
# Keystone's and RefStack's example addresses in the guide, and where the test's real ones go.
KEYSTONE_EXAMPLE = "https://keystone.example.com:5000"
REFSTACK_EXAMPLE = "https://refstack.example.com"
COMMAND_TIMEOUT = 900
EXPECT_TIMEOUT = 240  # on a terminal: the longest wait for one shown line

KEYRING_MODULE = '''\
"""The OS keyring's storage for tests/test_guide.py: one JSON file."""
import json
import os

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1

    def _load(self):
        try:
            with open(os.environ["GUIDE_KEYRING_FILE"]) as file:
                return json.load(file)
        except FileNotFoundError:
            return {}

    def get_password(self, service, username):
        return self._load().get(service, {}).get(username)

    def set_password(self, service, username, password):
        data = self._load()
        data.setdefault(service, {})[username] = password
        with open(os.environ["GUIDE_KEYRING_FILE"], "w") as file:
            json.dump(data, file)

    def delete_password(self, service, username):
        raise NotImplementedError
'''


# ---------------------------------------------------------------------------
# Reading the guide


def blocks(page: Path):
    """(options, language, body) of every fenced block of a page."""
    for match in BLOCK.finditer(page.read_text()):
        opts = match.group("opts")
        yield (None if opts is None else parse_options(opts)), match.group("lang"), match.group("body")


def parse_options(text: str) -> dict:
    options = {}
    for word in shlex.split(text):
        key, _, value = word.partition("=")
        options[key] = value if _ else True
    return options


def steps(body: str):
    """A console block as [(command, [("expect"|"type", text), ...]), ...]."""
    result = []
    for line in body.splitlines():
        if line.startswith("$ "):
            result.append((line[2:], []))
        elif result and line.startswith(">> "):
            result[-1][1].append(("type", line[3:]))
        elif result and line.strip() and line.strip() != "...":
            result[-1][1].append(("expect", line.rstrip()))
    return result


def line_pattern(expected: str) -> re.Pattern:
    """A whole output line, with `...` matching any part of it."""
    parts = [re.escape(part) for part in expected.split("...")]
    return re.compile(r"^" + r"[^\n]*?".join(parts) + r"[ \t]*$", re.M)


# ---------------------------------------------------------------------------
# The checks that need no cloud


def test_every_command_block_is_marked_and_every_exclusion_says_why():
    found = 0
    for page in PAGES:
        for options, lang, body in blocks(page):
            if lang in SHELL_LANGS:
                assert lang == "console", f"{page.name}: use ```console for commands:\n{body}"
                assert options is not None, f"{page.name}: a command block without a guide marker:\n{body}"
                if "skip" in options:
                    assert len(str(options["skip"])) >= 30, f"{page.name}: a skip needs its reason:\n{body}"
                else:
                    assert steps(body), f"{page.name}: a console block with no `$ ` command:\n{body}"
                    found += 1
            elif options is not None and "file" not in options:
                pytest.fail(f"{page.name}: a guide marker on a ```{lang} block that is neither a command nor a file")
    assert found >= 30, f"only {found} runnable blocks: the guide lost its examples?"


def test_the_index_links_every_page_and_the_tour():
    index = (GUIDE / "README.md").read_text()
    linked = set(re.findall(r"\]\(([\w-]+\.md)\)", index))
    assert linked == {p.name for p in PAGES}
    assert "](../tour/index.html)" in index and "](../tour/tour.cast)" in index
    topics = ("install", "first run", "credentials", "choosing tests", "reading the results", "debug",
              "upload", "rerun", "diff", "air-gapped", "troubleshooting", "exit codes")
    assert [t for t in topics if t not in index.lower()] == []


def test_every_tcup_subcommand_and_key_option_is_shown_somewhere():
    text = "\n".join(p.read_text() for p in PAGES)
    shown = {m.group(1) for m in re.finditer(r"^\$ .*?tcup\.pyz (\w+)", text, re.M)}
    assert {"plan", "upload", "results", "report", "diff", "bundle", "guidelines", "pubkey", "image"} <= shown
    for option in ("--guideline", "--regex", "--test-list", "--no-upload", "--upload-url", "--sign-key",
                   "--debug", "--json", "--accounts", "--keyring", "--save", "--load", "--strict"):
        assert re.search(r"^\$ .*" + re.escape(option), text, re.M), f"no runnable example uses {option}"


# ---------------------------------------------------------------------------
# Running the pages


@pytest.fixture(scope="module")
def refstack(tmp_path_factory):
    from refstack_server import RefStackServer

    with RefStackServer(tmp_path_factory.mktemp("guide-refstack")) as server:
        yield server


@pytest.fixture(scope="module")
def demo2(keystone):
    """A second member of project demo, for the guide's --accounts example."""
    from testcloud.keystone import MEMBER_PROJECT, IdentityAdmin

    admin = IdentityAdmin(keystone.auth_url, keystone.admin_password)
    admin.user("demo2", DEMO2_PASSWORD, admin.project(MEMBER_PROJECT), ("member", "reader"))
    return "demo2"


def root_url(url: str) -> str:
    match = re.match(r"(https?://[^/]+)", url)
    return match.group(1)


class Sandbox:
    """A user's home: the pyz and its checksum, the openrc files, a shell state
    carried from command to command (exports and unsets persist, as in one shell)."""

    def __init__(self, home: Path, pyz: Path, keystone, refstack):
        from testcloud.keystone import openrc_text

        self.home, self.keystone, self.refstack = home, keystone, refstack
        home.mkdir()
        shutil.copy(pyz, home / "tcup.pyz")
        digest = hashlib.sha256((home / "tcup.pyz").read_bytes()).hexdigest()
        (home / "tcup.pyz.sha256").write_text(f"{digest}  tcup.pyz\n")
        (home / "my-cloud-openrc.sh").write_text(openrc_text(keystone.openrc("member")))
        (home / "admin-openrc.sh").write_text(openrc_text(keystone.openrc("admin")))
        tools = home.parent / "guide-bin"
        tools.mkdir()
        (tools / "keyring").symlink_to(Path(sys.executable).with_name("keyring"))
        (tools / "guide_keyring.py").write_text(KEYRING_MODULE)
        env = base_env(home)
        env.pop("XDG_DATA_HOME")  # the guide shows the default, ~/.local/share/tcup/runs
        env.update(HOME=str(home), PATH=f"{tools}:{env['PATH']}", PYTHONPATH=str(tools),
                   PYTHON_KEYRING_BACKEND="guide_keyring.FileKeyring",
                   GUIDE_KEYRING_FILE=str(tools / "keyring.json"))
        self.state = home.parent / "shell-state.sh"
        self.write_state(env, member=True)
        self.ks_root = root_url(keystone.auth_url)
        self.rs_root = root_url(refstack.base_url)

    def write_state(self, env: dict, *, member: bool):
        if member:
            env = {**env, **self.keystone.openrc("member")}
        self.state.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))

    def fresh(self):
        """A new shell with no openrc sourced: the state without any OS_ variable."""
        done = subprocess.run(["bash", "-c", f"source {shlex.quote(str(self.state))}; env -0"],
                              env={}, capture_output=True, check=True)
        env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
        self.write_state({k: v for k, v in env.items() if not k.startswith("OS_")}, member=False)

    def runs(self) -> list:
        where = self.home / ".local" / "share" / "tcup" / "runs"
        return sorted(p for p in where.iterdir() if p.is_dir() and not p.name.endswith(".incomplete")) if where.is_dir() else []

    def substitute(self, text: str, *, keep_https=False) -> str:
        runs = self.runs()
        if "<run>" in text:
            text = text.replace("<run>", shlex.quote(str(runs[-1])))
        if "<previous-run>" in text:
            text = text.replace("<previous-run>", shlex.quote(str(runs[-2])))
        keystone = self.ks_root.replace("http://", "https://") if keep_https else self.ks_root
        return (text.replace(KEYSTONE_EXAMPLE, keystone).replace(REFSTACK_EXAMPLE, self.rs_root)
                .replace("<your password>", MEMBER_CANARY).replace("<demo2's password>", DEMO2_PASSWORD))

    def normalise(self, output: str) -> str:
        """Output as the guide shows it: its example hosts, ~ for the home; on a
        terminal, a line redrawn after a carriage return shows its last drawing."""
        output = ANSI.sub("", output.replace("\r\n", "\n"))
        output = "\n".join(line.split("\r")[-1] for line in output.split("\n"))
        for real in (self.ks_root, self.ks_root.replace("http://", "https://")):
            output = output.replace(real, KEYSTONE_EXAMPLE)
        return output.replace(self.rs_root, REFSTACK_EXAMPLE).replace(str(self.home), "~")

    def script(self, command: str) -> str:
        # The state is re-read and re-written around each command, so `source`,
        # `export` and `unset` carry on to the next command as in one shell.
        return (f"source {shlex.quote(str(self.state))}; cd {shlex.quote(str(self.home))}\n{command}\n"
                f"__rc=$?; export -p > {shlex.quote(str(self.state))}; exit $__rc\n")

    def run(self, command: str):
        # One stream, as a terminal shows stdout and stderr interleaved.
        done = subprocess.run(["bash", "-c", self.script(command)], env={}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT)
        return done.returncode, done.stdout

    def run_in_pty(self, command: str, items: list, where: str):
        """Run on a terminal; wait for each shown line, type each `>> ` line."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: bash on the new terminal
            os.execve("/bin/bash", ["bash", "-c", self.script(command)], {"TERM": "xterm"})
        output, position, deadline = "", 0, time.monotonic() + COMMAND_TIMEOUT

        def read(timeout):
            nonlocal output
            if select.select([fd], [], [], timeout)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError as error:  # EIO: the terminal's other side is gone
                    if error.errno != errno.EIO:
                        raise
                    return False
                if not chunk:
                    return False
                output += chunk.decode(errors="replace")
            return True

        try:
            for kind, text in items:
                if kind == "expect":
                    pattern, give_up = line_pattern(text), min(deadline, time.monotonic() + EXPECT_TIMEOUT)
                    while not (found := pattern.search(self.normalise(output), position)):
                        assert time.monotonic() < give_up and read(1.0) is not False, \
                            f"{where}: never saw {text!r} in:\n{self.normalise(output)[-3000:]}"
                    position = found.end()
                else:
                    # Let the program reach its prompt before typing (a shell, getpass).
                    settle = time.monotonic() + 3
                    while time.monotonic() < settle and not re.search(r"[#$:>] ?$", ANSI.sub("", output)):
                        read(0.2)
                    os.write(fd, (self.substitute(text) + "\n").encode())
            while time.monotonic() < deadline and read(1.0) is not False:
                pass
            _, status = os.waitpid(pid, 0)
            pid = None
            return os.waitstatus_to_exitcode(status), output, position
        finally:
            if pid:
                # As if the terminal were closed: TCUP then removes its container.
                os.killpg(pid, signal.SIGHUP)
                os.close(fd)
                os.waitpid(pid, 0)
            else:
                os.close(fd)


@pytest.mark.engine
@pytest.mark.keystone
@pytest.mark.refstack
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_the_guide_page_runs_as_shown(page, pyz, image, keystone, refstack, demo2, watch, tmp_path):
    sandbox = Sandbox(tmp_path / "home", pyz, keystone, refstack)
    ran = 0
    for options, lang, body in blocks(page):
        if options is None or "skip" in options:
            continue
        if "file" in options:
            (sandbox.home / options["file"]).write_text(sandbox.substitute(body + "\n"))
            continue
        if "fresh" in options:
            # A new terminal: no openrc here, and the next block is back in the old one.
            saved = sandbox.state.read_text()
            sandbox.fresh()
        commands = steps(body)
        for number, (command, items) in enumerate(commands, 1):
            last = number == len(commands)
            where = f"{page.name}: `{command}`"
            real = sandbox.substitute(command, keep_https="keep-https" in options)
            if "pty" in options:
                code, output, _ = sandbox.run_in_pty(real, items, where)
                output = sandbox.normalise(output)
            else:
                code, output = sandbox.run(real)
                output = sandbox.normalise(output)
                position = 0
                for kind, text in items:
                    found = line_pattern(text).search(output, position)
                    assert found, f"{where}: the guide shows {text!r}, but the output was:\n{output[-4000:]}"
                    position = found.end()
            wanted = int(options.get("exit", 0)) if last else 0
            assert code == wanted, f"{where}: exit {code}, the guide says {wanted}:\n{output[-4000:]}"
            # Whatever the guide shows must not show a secret.
            assert MEMBER_CANARY not in output and DEMO2_PASSWORD not in output, f"{where}: a password in the output"
            ran += 1
        if options.get("after") == "register-key":
            # What the user does in RefStack's web page: import the key just printed.
            key_line = re.search(r"^ssh-rsa \S+ tcup$", output, re.M).group(0)
            refstack.register_key(key_line)
        if "fresh" in options:
            sandbox.state.write_text(saved)
    assert ran, f"{page.name}: no command ran"
