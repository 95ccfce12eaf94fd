"""Running Tempest's commands as bounded, logged subprocesses.

Their output goes to our stderr line by line, masked; never to our stdout,
which carries only events. Each runs in its own session so that a timeout or
SIGTERM can end it together with the workers it started.
"""

import os
import re
import signal
import subprocess
import threading
from typing import Dict, List, Optional

from tcup.runner import events
from tcup.runner.errors import InfraError

# How much of a failed command's output its error message quotes.
MESSAGE_CHARS = 300


def start(argv: List[str], *, env: Dict[str, str], cwd: str) -> subprocess.Popen:
    """Start argv with stdout piped (binary) and stdin closed."""
    return subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )


def stop(process: subprocess.Popen, grace: float = 10, patience: float = 0) -> None:
    """End the process and everything in its session, bounded in time:
    wait patience seconds for it to exit on its own, then SIGTERM, then
    SIGKILL; leftovers of its session are killed either way."""
    try:
        process.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if _signal_session(process, sig):
                try:
                    process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
    _signal_session(process, signal.SIGKILL)


def _signal_session(process: subprocess.Popen, sig: int) -> bool:
    """Signal the process's session (its process group); False if none is left."""
    try:
        os.killpg(process.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def log_lines(stream, tail: List[str], prefix: str) -> threading.Thread:
    """Copy a byte stream to our log in a thread, keeping its last lines,
    masked (before they are stripped: a secret ending in a space would no
    longer match)."""

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            line = events.mask().text(raw.decode("utf-8", errors="replace")).rstrip()
            if line:
                tail[:] = (tail + [line])[-20:]
                events.log(f"{prefix}: {line}")
        stream.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def run(argv: List[str], *, env: Dict[str, str], cwd: str, timeout: float, what: str,
        capture: bool = False) -> Optional[str]:
    """Run argv to the end within timeout seconds. Its stderr (and stdout,
    unless captured) is logged; a non-zero exit raises InfraError quoting the
    last line it wrote. Returns the captured stdout."""
    process = start(argv, env=env, cwd=cwd)
    tail: List[str] = []
    out: List[bytes] = []
    pumps = [log_lines(process.stderr, tail, what),
             collect(process.stdout, out) if capture else log_lines(process.stdout, tail, what)]
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InfraError(f"{what} did not finish within {int(timeout)} s")
    finally:
        stop(process)
        for pump in pumps:
            pump.join(5)
    if process.returncode != 0:
        raise InfraError(failure(what, process.returncode, tail))
    return b"".join(out).decode("utf-8", errors="replace") if capture else None


def failure(what: str, returncode: int, tail: List[str]) -> str:
    """The one-line error of a failed command, quoting the line of its output
    that says why: masked first, then cut (a cut secret would not match)."""
    last = last_error_line(tail) or "no output"
    return events.mask().one_line(f"{what} failed (exit {returncode}): {last}", MESSAGE_CHARS)


def collect(stream, chunks: List[bytes]) -> threading.Thread:
    """Read a byte stream to its end in a thread, into chunks."""

    def pump() -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            chunks.append(chunk)
        stream.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


# oslo.log's line prefix: "2026-01-01 00:00:00.000 12 ERROR tempest [-] ".
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \d+ (?P<level>[A-Z]+) \S+ (?:\[[^\]]*\] )?")
# "KeyError: ...", "requests.exceptions.SSLError: ...": a dotted CapWord name, then ": ".
EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*: \S")


def last_error_line(lines: List[str]) -> str:
    """The line of a command's output that best says why it failed: the last
    exception line, else the last ERROR message, else the last line; without
    oslo.log's timestamp prefix."""
    messages = []
    for line in lines:
        prefix = LOG_PREFIX.match(line)
        message = line[prefix.end():] if prefix else line
        if message.strip():
            messages.append((prefix.group("level") if prefix else "", message.strip()))
    for level, message in reversed(messages):
        if EXCEPTION.match(message):
            return message
    for level, message in reversed(messages):
        if level in ("ERROR", "CRITICAL"):
            return message
    return messages[-1][1] if messages else ""
