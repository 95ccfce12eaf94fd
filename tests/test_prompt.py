"""A password typed at TCUP's prompt, in a real terminal: a typo is asked
again, up to three times, as sudo and ssh do; one from the environment is not."""

import os
import pty
import select
import sys
import time

import pytest

from conftest import MEMBER_CANARY, openrc

pytestmark = [pytest.mark.keystone]


class Terminal:
    """TCUP on a pseudo-terminal: what it shows, and keys typed at it."""

    def __init__(self, argv, env, cwd):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: TCUP itself, and never a second pytest
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [sys.executable, "-m", "tcup", *argv], env)
            finally:
                os._exit(127)
        self.screen = b""

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"never saw {text!r}; the screen: {self.screen[-1500:]!r}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # the child closed the terminal
            return False
        self.screen += chunk
        return bool(chunk)

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def finish(self, timeout: float = 600) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.5)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while self._read(0.2):
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError(f"TCUP did not end; the screen: {self.screen[-1500:]!r}")


def prompted_env(keystone, tmp_path):
    env = openrc(keystone, "member", tmp_path)
    env.pop("OS_PASSWORD")
    env["TERM"] = "dumb"
    return env


def test_a_mistyped_password_is_asked_again(keystone, tmp_path):
    # An --output under a plain file: refused only after the password was
    # checked, before any container, so the test needs no image.
    (tmp_path / "a-file").write_text("")
    terminal = Terminal(["--no-upload", "--output", str(tmp_path / "a-file" / "runs")], prompted_env(keystone, tmp_path),
                        tmp_path)
    terminal.wait_for(b"Password for demo at ")
    terminal.type("not-the-password\n")
    terminal.wait_for(b"Keystone rejected the user name or password (HTTP 401); check your credentials; try again")
    # getpass flushes what was typed before its prompt (TCSAFLUSH): type at the prompt, as a person does.
    terminal.screen = terminal.screen.replace(b"Password for demo at ", b"[asked]", 1)
    terminal.wait_for(b"Password for demo at ")
    terminal.type(MEMBER_CANARY + "\n")
    code = terminal.finish()
    # The output is refused only after the password was checked: the second try got through.
    assert code == 2 and b"a-file" in terminal.screen and b"rejected" in terminal.screen
    assert terminal.screen.count(b"[asked]") == 1 and terminal.screen.count(b"Password for demo at ") == 1
    assert MEMBER_CANARY.encode() not in terminal.screen and b"not-the-password" not in terminal.screen


def test_three_typos_and_it_stops(keystone, tmp_path):
    terminal = Terminal(["--no-upload"], prompted_env(keystone, tmp_path), tmp_path)
    for _ in range(3):
        terminal.wait_for(b"Password for demo at ")
        terminal.screen = terminal.screen.replace(b"Password for demo at ", b"[asked]", 1)
        terminal.type("wrong\n")
    assert terminal.finish() == 2
    assert terminal.screen.count(b"[asked]") == 3 and b"Password for demo at " not in terminal.screen
    assert terminal.screen.rstrip().endswith(b"tcup: error: Keystone rejected the user name or password (HTTP 401); "
                                             b"check your credentials")


def test_a_wrong_password_from_the_environment_is_not_asked_again(keystone, tmp_path):
    env = openrc(keystone, "member", tmp_path, OS_PASSWORD="wrong", TERM="dumb")
    terminal = Terminal(["--no-upload"], env, tmp_path)
    assert terminal.finish() == 2
    assert b"Password for" not in terminal.screen and b"try again" not in terminal.screen
