"""What every local server of the tools shares: venvs, processes, ports, HTTP.

* Venvs: one per service, pinned by a lock file, built once into
  ``${XDG_CACHE_HOME:-~/.cache}/tcup-dev/<name>-<version>-<digest>/`` (in a
  ``.tmp`` sibling renamed when complete, under a file lock); a changed lock
  makes a new one.
* Processes: each server runs in a session (process group) of its own, with a
  pidfile naming its pid and start time (a recycled pid is never signalled)
  and a log file; stopping kills the whole group and waits until it is gone.
* Ports and HTTP on 127.0.0.1 only, never through a proxy of the environment.

Standard library only, and Python 3.9 syntax: the host's python3 runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REGION = "RegionOne"
LOCKS_DIR = Path(__file__).resolve().parent / "locks"

INSTALL_TIMEOUT = 1200
STOP_TIMEOUT = 15
HTTP_TIMEOUT = 30
# Written into a venv last: its digest says which lock (and local packages)
# the venv holds, and its presence that the install finished.
VENV_MARKER = "tcup-ready"


class CloudError(RuntimeError):
    """A local server could not be installed, set up, started or stopped."""


def say(who: str, message: str) -> None:
    """Progress for a person, on stderr: stdout stays for what scripts read."""
    print(f"{who}: {message}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cache_root() -> Path:
    """Where developer tools of this project keep their caches."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tcup-dev"


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, waiting at most ``timeout`` s.

    Two test sessions (or a test run and ``make demo``) may install the same
    venv at once on a cold cache: the second waits for the first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CloudError(f"timed out waiting for lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------
# Venvs
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VenvSpec:
    """A venv to build: its name, the release it serves, its lock file.

    ``local_packages`` are directories of this checkout installed after the
    lock (say, Neutron's mechanism driver); their files count in the digest,
    so editing one rebuilds the venv.
    """

    name: str
    version: str
    lock: Path
    local_packages: tuple[Path, ...] = ()

    @property
    def path(self) -> Path:
        """The cached venv: ``tcup-dev/<name>-<version>-<digest>``.

        Named by its content, so checkouts with other pins (another branch,
        an older clone) each keep their own venv instead of rebuilding one
        another's.
        """
        return cache_root() / f"{self.name}-{self.version}-{self.digest()[:12]}"

    def digest(self) -> str:
        """What the venv must have been built from to be reused."""
        digest = hashlib.sha256(self.lock.read_bytes())
        for package in self.local_packages:
            for path in sorted(p for p in package.rglob("*") if _is_source(p)):
                digest.update(str(path.relative_to(package)).encode() + b"\0")
                digest.update(path.read_bytes())
        return digest.hexdigest()


def _is_source(path: Path) -> bool:
    """True for the files of a local package that matter to its install."""
    return path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path)


def venv_is_ready(venv: Path, digest: str) -> bool:
    """True when ``venv`` finished installing what ``digest`` stands for."""
    marker = venv / VENV_MARKER
    python = venv / "bin" / "python"
    return (
        marker.is_file()
        and marker.read_text().strip() == digest
        # A venv breaks when its base Python goes away.
        and python.exists()
        and Path(os.path.realpath(python)).exists()
    )


def ensure_venv(spec: VenvSpec, who: str = "testcloud") -> Path:
    """The venv for ``spec``, installed first unless it is cached already."""
    venv, digest = spec.path, spec.digest()
    if venv_is_ready(venv, digest):
        return venv
    with file_lock(venv.with_name(venv.name + ".lock"), INSTALL_TIMEOUT):
        if venv_is_ready(venv, digest):
            return venv  # another process built it while we waited
        say(who, f"installing {spec.name} {spec.version} into {venv} (once)")
        began = time.monotonic()
        building = venv.with_name(venv.name + ".tmp")
        shutil.rmtree(building, ignore_errors=True)
        _build_venv(spec, building, venv.with_name(venv.name + ".install.log"))
        relocate_scripts(building / "bin", building, venv)
        (building / VENV_MARKER).write_text(digest + "\n")
        shutil.rmtree(venv, ignore_errors=True)  # an outdated or broken one
        os.rename(building, venv)
        say(who, f"{spec.name} installed in {time.monotonic() - began:.0f} s")
    return venv


def _build_venv(spec: VenvSpec, target: Path, log: Path) -> None:
    """Create a venv at ``target``: the lock, then the local packages. With
    uv when there is one (seconds where pip takes minutes: it fetches and
    unpacks in parallel and links files from its cache), else with pip."""
    python = str(target / "bin" / "python")
    uv = find_uv()
    if uv:
        # The same Python as pip's venv would get. No bytecode now, unlike pip:
        # compiling every file of seven venvs took minutes, while compiling
        # what the services import costs their first start about 15 s.
        create = [uv, "venv", "--quiet", "--python", sys.executable, "--prompt", spec.name, str(target)]
        install = [uv, "pip", "install", "--python", python, "--no-progress"]
    else:
        create = [sys.executable, "-m", "venv", "--prompt", spec.name, str(target)]
        install = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    with open(log, "wb") as out:
        for cmd in (create, install + ["-r", str(spec.lock)]):
            _install_step(cmd, out, log)
        for package in spec.local_packages:
            # Built from a copy: setuptools writes build/ and *.egg-info into
            # the source tree, and this one is a git checkout.
            with _scratch_copy(package, target) as copy:
                _install_step(install + ["--no-deps", str(copy)], out, log)


def find_uv() -> str | None:
    """uv: beside the running Python (the dev venv's), in the checkout's
    dev venv (`make venv` installs it there), or on PATH."""
    candidates = [str(Path(sys.executable).parent / "uv"),
                  str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "uv"), shutil.which("uv")]
    return next((uv for uv in candidates if uv and os.access(uv, os.X_OK)), None)


@contextlib.contextmanager
def _scratch_copy(package: Path, beside: Path) -> Iterator[Path]:
    """A throwaway copy of ``package`` next to ``beside``."""
    copy = beside.with_name(f"{beside.name}-{package.name}.src")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _install_step(cmd: list[str], out: Any, log: Path) -> None:
    """Run one install command into ``out``; fail with the log's tail."""
    # In the caller's process group, unlike the servers: a Ctrl-C or a killed
    # test run must stop pip too.
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                       timeout=INSTALL_TIMEOUT, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        out.flush()
        raise CloudError(f"install step failed: {exc}\n{tail(log)}") from None


def relocate_scripts(bin_dir: Path, old: Path, new: Path) -> None:
    """Point the venv's scripts (shebangs, activate) at its final location.

    pip wrote the ``.tmp`` path into them; the servers' console scripts
    (``nova-conductor``, ``swift-proxy-server``...) must run from the cache.
    """
    old_bytes, new_bytes = str(old).encode(), str(new).encode()
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        content = script.read_bytes()
        if old_bytes in content:
            script.write_bytes(content.replace(old_bytes, new_bytes))


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a server: no ``OS_*`` and no proxy.

    A developer's openrc must not leak into the cloud under test (keystone-
    manage bootstrap even reads ``OS_BOOTSTRAP_*``), and loopback traffic
    between services must not go through a proxy.
    """
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_") and k.lower() not in proxies}
    env["NO_PROXY"] = env["no_proxy"] = f"{HOST},localhost"
    env.update(extra)
    return env


def run(cmd: list[str], *, timeout: float, log: Path, append: bool = True,
        **popen: Any) -> None:
    """Run a set-up command in its own process group, output to ``log``.

    On timeout or interrupt the whole group is killed; a failure raises
    CloudError with the log's tail.
    """
    with open(log, "ab" if append else "wb") as out:
        out.write(f"+ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, **popen)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise CloudError(f"timed out after {timeout} s: {' '.join(cmd[:4])}\n"
                             f"{tail(log)}") from None
        except BaseException:
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code:
        raise CloudError(f"exit status {code}: {' '.join(cmd[:6])}\n{tail(log)}")


def output(cmd: list[str], *, timeout: float, **popen: Any) -> str:
    """The stdout of a short command (its own process group, like ``run``)."""
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True, **popen)
    except subprocess.TimeoutExpired:
        raise CloudError(f"timed out after {timeout} s: {' '.join(cmd[:4])}") from None
    if done.returncode:
        raise CloudError(f"exit status {done.returncode}: {' '.join(cmd[:6])}\n"
                         f"{done.stderr[-3000:]}")
    return done.stdout


def kill_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in ticks) of a process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces; fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[19])


def _pids() -> Iterator[int]:
    """Every process id there is now."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group ``pgid`` exists."""
    for pid in _pids():
        stat = proc_stat(pid)
        if stat and stat[1] == pgid and stat[0] != "Z":
            return True
    return False


def terminate_group(pgid: int, process: subprocess.Popen | None = None,
                    timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM a group (SIGCONT too, for a paused one), SIGKILL it after
    ``timeout``, and wait until no process of it is left."""
    kill_group(pgid, signal.SIGTERM)
    kill_group(pgid, signal.SIGCONT)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None:
                process.poll()  # reap our child so it is not a zombie
            if not group_alive(pgid):
                if process is not None:
                    process.wait(timeout=timeout)
                return
            time.sleep(0.1)
        if sig is None:
            raise CloudError(f"process group {pgid} survived SIGKILL")
        kill_group(pgid, sig)


@dataclasses.dataclass(frozen=True)
class Pidfile:
    """``NAME.pid`` holding "PID START_TIME" of a server started here."""

    path: Path

    def write(self, pid: int) -> None:
        """Record ``pid`` with its start time (atomically)."""
        stat = proc_stat(pid)
        started = stat[2] if stat else 0
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text(f"{pid} {started}\n")
        os.replace(scratch, self.path)

    def live_pid(self) -> int | None:
        """The recorded pid if that very process still runs, else None."""
        try:
            pid, started = (int(x) for x in self.path.read_text().split())
        except (OSError, ValueError):
            return None
        stat = proc_stat(pid)
        if stat is None or stat[0] == "Z" or stat[2] != started:
            return None  # gone, or the pid now belongs to another process
        return pid

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the recorded server's group, if it runs; remove the file."""
        pid = self.live_pid()
        if pid is not None:
            terminate_group(pid, timeout=timeout)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def spawn(argv: list[str], *, pidfile: Path, log: Path, cwd: Path,
          env: Mapping[str, str]) -> subprocess.Popen:
    """Start a server in a new session; record it in ``pidfile``."""
    with open(log, "ab") as out:
        out.write(f"+ {' '.join(argv)}\n".encode())
        out.flush()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=cwd, env=dict(env),
                                   start_new_session=True)
    Pidfile(pidfile).write(process.pid)
    return process


# Set in the environment of every server a cloud starts (children inherit
# it), so that stopping finds exactly the cloud's processes.
CLOUD_MARKER = "TCUP_TESTCLOUD"


def processes_under(root: Path) -> list[int]:
    """Pids of the live processes started for the cloud in ``root``.

    They carry ``TCUP_TESTCLOUD=<root>`` in their environment, so this finds
    any that left its process group (a daemon that forked away) and nothing
    else (not a shell whose working directory happens to be there).
    """
    marker = f"{CLOUD_MARKER}={root.resolve()}".encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            stat = proc_stat(pid)
            if stat and stat[0] != "Z":
                found.append(pid)
    return found


def kill_processes_under(root: Path) -> list[int]:
    """SIGKILL whatever still runs in ``root``; returns the pids found."""
    found = processes_under(root)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT
    while processes_under(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def group_members(pgid: int) -> list[int]:
    """The live processes of group ``pgid``."""
    members = []
    for pid in _pids():
        stat = proc_stat(pid)
        if stat and stat[1] == pgid and stat[0] != "Z":
            members.append(pid)
    return members


def memory_kib(pids: Iterable[int]) -> tuple[int, int]:
    """(RSS, PSS) in KiB summed over ``pids``; PSS shares shared pages fairly."""
    rss = pss = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            key, _, value = line.partition(":")
            if key == "Rss":
                rss += int(value.split()[0])
            elif key == "Pss":
                pss += int(value.split()[0])
    return rss, pss


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on the loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something already holds ``port`` on the loopback."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((HOST, port)) == 0


def wait_for(check: Any, *, what: str, timeout: float, log: Path | None = None,
             alive: Any = None, interval: float = 0.25) -> None:
    """Poll ``check()`` until true; fail after ``timeout`` or once ``alive()``
    says the server died, with its log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, CloudError):
            if check():
                return
        if alive is not None and not alive():
            raise CloudError(f"{what} exited while starting:\n{tail(log) if log else ''}")
        if time.monotonic() > deadline:
            raise CloudError(f"{what} not ready within {timeout:.0f} s:\n"
                             f"{tail(log) if log else ''}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# HTTP (urllib: the host's python3 may have no requests)
# ---------------------------------------------------------------------------

# Loopback traffic must never go through a proxy named in the environment.
# The system's CAs, and those of the clouds this process started (trust).
_TLS = ssl.create_default_context()
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                      urllib.request.HTTPSHandler(context=_TLS))


def trust(cafile: Path) -> None:
    """Let ``http`` trust ``cafile`` from now on: the CA of a cloud whose
    public endpoints are behind TLS (the tls profile)."""
    _TLS.load_verify_locations(cafile)


def http(method: str, url: str, *, body: Any = None, data: bytes | None = None,
         token: str | None = None, headers: Mapping[str, str] | None = None,
         timeout: float = HTTP_TIMEOUT) -> tuple[int, Any, Any]:
    """One request: (status, headers, body); the body JSON-decoded, raw bytes
    when it is not JSON, None when empty.

    ``body`` is sent as JSON, ``data`` as it is.
    """
    sent = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    if token:
        sent["X-Auth-Token"] = token
    sent.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, resp_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, raw = exc.code, exc.headers, exc.read()
    if not raw.strip():
        return status, resp_headers, None
    try:
        return status, resp_headers, json.loads(raw)
    except ValueError:
        return status, resp_headers, raw


def expect(answer: tuple[int, Any, Any], wanted: int | Iterable[int], what: str) -> Any:
    """Check an answer of ``http``; return its body."""
    status, _, payload = answer
    allowed = {wanted} if isinstance(wanted, int) else set(wanted)
    if status not in allowed:
        raise CloudError(f"{what}: HTTP {status} (wanted {sorted(allowed)}): {payload!r:.600}")
    return payload


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have had looser bits
    with os.fdopen(fd, "w") as out:
        out.write(text)


def write_ini(path: Path, sections: Mapping[str, Mapping[str, Any]], *,
              header: str = "Written by tools/testcloud; rewritten at each start.") -> None:
    """Write an oslo.config / paste style ini file (0600: it holds passwords)."""
    lines = [f"# {header}"]
    for section, options in sections.items():
        lines.append(f"\n[{section}]")
        for key, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            lines.append(f"{key} = {value}")
    write_private(path, "\n".join(lines) + "\n")
