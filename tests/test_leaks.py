"""The canary leak matrix (issue 8): TCUP started and ended in every way a
user can, and every place a secret could land searched for it afterwards.

Each mode runs the pyz as a user would, with canaries unique to this session:
the cloud password (with spaces, quotes, a backslash and non-ASCII letters),
a proxy password, a signing-key passphrase, an application-credential secret.
While the mode runs, the engine's view of its container (inspect, logs, the
files under the engine's data root and its runtime bundle, the writable
layer) and every process on the host and in the container (argv and
environment) are read; once it has ended, what the engine kept of the while
(its events of every container it created, so none too short-lived for a
look escapes, and its own log), the mode's output, result files, the upload
as the server received it, temporary files and the keyring are read too. Each canary is searched for in every spelling ``tcup.masking`` knows
(raw, JSON, repr, percent, XML, base64) through the random token inside it:
each of those spellings keeps the token in one of the token's own spellings.

The counts (surfaces x modes, items read, hits) go to .cache/leak-matrix.json
and are printed at the end; docs/SECURITY.md cites them.
"""

import base64
import glob
import http.client
import json
import os
import pty
import re
import secrets
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple
from urllib.parse import quote, urlsplit

import pytest

from conftest import CONTAINER_LABEL, ROOT, ContainerWatch, _unavailable, as_a_terminal_starts_it, base_env
from tcup.masking import spellings

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

# Two fast tests: the matrix is about where secrets go, not about Tempest.
REGEX = r"test_tokens\.TokensV3Test\.test_(create|validate)_token\["
RUNNING = rb"running \d+ tests"  # the runner's phase line, just before Tempest starts
MATRIX_FILE = ROOT / ".cache" / "leak-matrix.json"
# A file larger than this is no config, log or result; the image is streamed.
MAX_FILE = 64 << 20
POLL = 0.25  # seconds between looks at processes and engine files; discover runs for ~2 s
CONTAINERS_DIR = "containers"
RUNTIME_BUNDLES = ("/run/docker/containerd/daemon/io.containerd.runtime.v2.task/*/{id}",
                   "/run/containerd/io.containerd.runtime.v2.task/*/{id}")
CONTAINERD_DBS = ("{root}/containerd/daemon/io.containerd.metadata.v1.bolt/meta.db",
                  "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db")
# Where the sessions' own tooling keeps its files; not TCUP's, never read.
TMP_NOT_OURS = ("pytest-of-", "bash_")
ENVIRONMENT_SURFACE = "container environment"
# Leaks this matrix once found, now fixed; the modes tolerate none.
KNOWN_LEAKS = ()


# --- canaries and the matrix ------------------------------------------------------

@dataclass(frozen=True)
class Canary:
    """A planted secret (or identity), with a random token inside it."""

    name: str
    value: str
    token: str

    @classmethod
    def make(cls, name: str, template: str = "{token}") -> "Canary":
        token = secrets.token_hex(8)
        canary = cls(name, template.format(token=token), token)
        # Searching for the token's spellings finds every spelling of the
        # value (and a value cut anywhere but inside the token): check it.
        needles = canary.needles()
        assert all(any(n in form.encode() for n in needles) for form in spellings(canary.value))
        return canary

    def needles(self) -> List[bytes]:
        return sorted({form.encode() for form in spellings(self.token)}, key=len, reverse=True)

    def spelling_in(self, data: bytes) -> str:
        """Which spelling of the whole value data holds, for the report."""
        for form in sorted(spellings(self.value), key=len, reverse=True):
            if form.encode() in data:
                return _kind(self.value, form)
        return "a piece of it"


def _kind(value: str, form: str) -> str:
    if form == value:
        return "raw"
    if form in (json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
        return "JSON"
    if "&" in form and "&" not in value:
        return "XML"
    if "%" in form:
        return "percent"
    if re.fullmatch(r"[A-Za-z0-9+/=_-]+", form):
        return "base64"
    return "repr or JSON in JSON"


# The one canary with everything that breaks naive escaping; Keystone takes it
# as a password, Tempest's accounts.yaml and discover-tempest-config too.
AWKWARD = 'pw {token} "q\' \\b \u00e9t\u00e9 \u03a9\u03bc'


@dataclass
class Cell:
    """One surface of one mode: how much was read, and what was found."""

    items: int = 0
    bytes: int = 0
    hits: List[str] = field(default_factory=list)
    # In the user's own environment, where the user put it (OS_PASSWORD, a
    # proxy URL): inherited, not spread by TCUP.
    allowed: List[str] = field(default_factory=list)


class Matrix:
    """Surfaces x modes: what was searched, and what was found where."""

    def __init__(self, canaries: List[Canary], identities: List[Canary]):
        self.canaries = canaries
        self.identities = identities
        self.modes: Dict[str, dict] = {}

    def mode(self, name: str, **facts) -> dict:
        return self.modes.setdefault(name, {"surfaces": {}, **facts})

    def cell(self, mode: str, surface: str) -> Cell:
        return self.mode(mode)["surfaces"].setdefault(surface, Cell())

    def scan(self, mode: str, surface: str, items: Iterable[Tuple[str, bytes]], *,
             identities: bool = False, allow: Set[str] = frozenset(), why: str = "") -> Cell:
        """Search each (where, data) for every canary (and the identities,
        where TCUP promises to hide them); names in allow are noted apart."""
        cell = self.cell(mode, surface)
        wanted = self.canaries + (self.identities if identities else [])
        for where, data in items:
            cell.items += 1
            cell.bytes += len(data)
            for canary in wanted:
                if any(needle in data for needle in canary.needles()):
                    note = f"{canary.name} ({canary.spelling_in(data)}) in {where}"
                    if canary.name in allow:
                        cell.allowed.append(f"{note}: {why}")
                    else:
                        cell.hits.append(note)
        return cell

    def scan_stream(self, mode: str, surface: str, where: str, chunks: Iterable[bytes]) -> Cell:
        """The same search over a stream too large to hold (an image save)."""
        cell = self.cell(mode, surface)
        needles = [(canary, needle) for canary in self.canaries for needle in canary.needles()]
        overlap = max(len(needle) for _, needle in needles)
        found, tail = set(), b""
        for chunk in chunks:
            window = tail + chunk
            found |= {canary.name for canary, needle in needles if needle in window}
            tail = window[-overlap:]
            cell.bytes += len(chunk)
        cell.items += 1
        cell.hits += [f"{name} in {where}" for name in sorted(found)]
        return cell

    def hits(self, mode: str) -> List[str]:
        return [f"{surface}: {hit}" for surface, cell in self.mode(mode)["surfaces"].items() for hit in cell.hits]

    def leaks(self, mode: str) -> List[str]:
        """The mode's hits but for the known leaks (each fails its own test)."""
        return [hit for hit in self.hits(mode) if not any(known.match(hit) for known in KNOWN_LEAKS)]

    def as_json(self) -> dict:
        return {"modes": {name: {**{k: v for k, v in mode.items() if k != "surfaces"},
                                 "surfaces": {s: vars(c) for s, c in mode["surfaces"].items()}}
                          for name, mode in self.modes.items()}}


# --- what the matrix runs against ------------------------------------------------------

class Identity:
    """The test Keystone's admin API, for the users this matrix plants."""

    def __init__(self, keystone):
        import requests

        self.url = keystone.auth_url
        self.http = requests.Session()
        self.http.trust_env = False  # straight to the loopback Keystone, never a proxy
        self.http.headers["X-Auth-Token"] = keystone.token("admin")[0]

    def call(self, method: str, path: str, wanted: int, **kwargs) -> dict:
        answer = self.http.request(method, self.url + path, timeout=30, **kwargs)
        assert answer.status_code == wanted, f"{method} {path}: HTTP {answer.status_code}"
        return answer.json() if answer.content else {}

    def member(self, name: str, password: str) -> str:
        """A user with the member role on project demo, as a cloud's user is."""
        project = self.call("GET", "/projects?name=demo", 200)["projects"][0]["id"]
        role = self.call("GET", "/roles?name=member", 200)["roles"][0]["id"]
        body = {"user": {"name": name, "domain_id": "default", "password": password, "default_project_id": project}}
        user = self.call("POST", "/users", 201, json=body)["user"]["id"]
        self.call("PUT", f"/projects/{project}/users/{user}/roles/{role}", 204)
        return user

    def set_password(self, user: str, password: str) -> None:
        self.call("PATCH", f"/users/{user}", 200, json={"user": {"password": password}})

    def application_credential(self, user: str, name: str, password: str, secret: str) -> str:
        """An application credential of user's with a secret we choose; only
        the user's own token may make one."""
        login = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"id": user, "password": password}}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
        answer = self.http.post(self.url + "/auth/tokens", json=login, headers={"X-Auth-Token": None}, timeout=30)
        assert answer.status_code == 201, answer.status_code
        made = self.call("POST", f"/users/{user}/application_credentials", 201,
                         headers={"X-Auth-Token": answer.headers["X-Subject-Token"]},
                         json={"application_credential": {"name": name, "secret": secret}})
        return made["application_credential"]["id"]

    def delete(self, user: str) -> None:
        self.http.delete(f"{self.url}/users/{user}", timeout=30)


HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection",
              "te", "trailer", "transfer-encoding", "upgrade"}


@dataclass
class Forwarded:
    port: int
    user_agent: str
    request: bytes = field(repr=False)  # as the server gets it, proxy credentials gone; holds secrets


class ForwardProxy:
    """A plain-HTTP forward proxy on loopback that wants a password, as a
    company's does. TCUP's Keystone check, discover-tempest-config inside
    the container and the upload all go through it, so the proxy password
    is used, not merely present; it records what it forwards."""

    USER = "proxy-user"

    def __init__(self, password: str):
        self.password = password
        # requests sends the credentials in Latin-1, other clients in UTF-8.
        self.expected = {"Basic " + base64.b64encode(f"{self.USER}:{password}".encode(charset)).decode()
                         for charset in ("utf-8", "latin-1")}
        self.refused = 0  # requests without the right proxy credentials
        self.forwarded: List[Forwarded] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """As a user writes it: the password percent-encoded in the URL."""
        return f"http://{self.USER}:{quote(self.password, safe='')}@127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(proxy):
        class Handler(BaseHTTPRequestHandler):
            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Proxy-Authorization") not in proxy.expected:
                    proxy.refused += 1
                    return self.answer(407, [("Proxy-Authenticate", 'Basic realm="leaks"')], b"who are you?\n")
                target = urlsplit(self.path)
                path = target.path + (f"?{target.query}" if target.query else "")
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
                raw = f"{self.command} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
                proxy.forwarded.append(Forwarded(target.port, self.headers.get("User-Agent", ""), raw.encode() + body))
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                try:
                    connection.request(self.command, path, body=body or None, headers=dict(headers))
                    response = connection.getresponse()
                    data = response.read()
                except OSError as error:
                    return self.answer(502, [], f"proxy: {error}\n".encode())
                finally:
                    connection.close()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
                self.answer(response.status, kept, data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = forward

            def answer(self, status, headers, body):
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


# A keyring that is one JSON file, loaded by the launcher through
# PYTHON_KEYRING_BACKEND: anything TCUP wrote there would change the file.
KEYRING_MODULE = '''\
"""A keyring in one JSON file ($LEAK_KEYRING_FILE), for tests/test_leaks.py."""
import json
import os

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1

    def _load(self):
        with open(os.environ["LEAK_KEYRING_FILE"]) as file:
            return json.load(file)

    def _save(self, data):
        with open(os.environ["LEAK_KEYRING_FILE"], "w") as file:
            json.dump(data, file)

    def get_password(self, service, username):
        return self._load().get(service, {}).get(username)

    def set_password(self, service, username, password):
        data = self._load()
        data.setdefault(service, {})[username] = password
        self._save(data)

    def delete_password(self, service, username):
        data = self._load()
        data.get(service, {}).pop(username, None)
        self._save(data)
'''


# --- one TCUP process, and what happens around it while it runs -----------------

class Launch:
    """One TCUP process started as a user would: from a shell (pipes), or
    at a terminal (a real pty); its output collected as it comes."""

    def __init__(self, argv: List[str], env: dict, cwd: Path, tty: bool):
        self.tty = tty
        self.out, self.err, self.screen = bytearray(), bytearray(), bytearray()
        self.code: Optional[int] = None
        if tty:
            self.pid, self.fd = pty.fork()
            if self.pid == 0:
                try:
                    os.chdir(cwd)
                    as_a_terminal_starts_it()
                    os.execve(argv[0], argv, env)
                finally:
                    os._exit(127)
            self._readers = [self._read(lambda: os.read(self.fd, 65536), self.screen)]
        else:
            self.process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                preexec_fn=as_a_terminal_starts_it)
            self.pid = self.process.pid
            self._readers = [self._read(lambda: self.process.stdout.read1(65536), self.out),
                             self._read(lambda: self.process.stderr.read1(65536), self.err)]

    @staticmethod
    def _read(read: Callable[[], bytes], into: bytearray) -> threading.Thread:
        def pump():
            while True:
                try:
                    chunk = read()
                except (OSError, ValueError):  # EIO: the pty's other side is gone
                    return
                if not chunk:
                    return
                into.extend(chunk)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread

    def wait_for(self, pattern: bytes, timeout: float = 300) -> None:
        """Until the terminal (or stderr) shows pattern; fail if it never does."""
        seen = self.screen if self.tty else self.err
        deadline = time.monotonic() + timeout
        while not re.search(pattern, bytes(seen)):
            if time.monotonic() > deadline or not self.running():
                raise AssertionError(f"never saw {pattern!r}: {bytes(seen)[-2000:].decode(errors='replace')}")
            time.sleep(0.1)

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def running(self) -> bool:
        if self.code is not None:
            return False
        if not self.tty:
            return self.process.poll() is None
        done, status = os.waitpid(self.pid, os.WNOHANG)
        if done:
            self.code = os.waitstatus_to_exitcode(status)
        return self.code is None

    def finish(self, timeout: float = 600) -> int:
        """Its exit code; a launcher that hangs is killed and fails the test."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.running():
            self.signal(signal.SIGKILL)
            self.finish(30)
            raise AssertionError(f"TCUP did not end within {timeout} s")
        for reader in self._readers:
            reader.join(30)
        if self.tty:
            os.close(self.fd)
            return self.code
        return self.process.returncode


@dataclass
class Process:
    pid: int
    comm: str
    argv: bytes
    environ: bytes
    launcher: bool  # the launcher itself, or one of its children

    def name(self) -> str:
        command = self.argv.replace(b"\0", b" ").decode(errors="replace").strip()
        return f"pid {self.pid} ({self.comm}): {command[:100]}"


class Observer:
    """While one mode runs: every process of the host (its argv and
    environment, and whether it is the launcher or a child of it), every
    process of the mode's container, and the engine's files for that
    container, each read as it is then: a removed container takes its
    files with it."""

    def __init__(self, watch: ContainerWatch, mine: Callable[[dict], bool], launcher: int,
                 data_root: Path):
        self.watch, self.mine, self.launcher, self.data_root = watch, mine, launcher, data_root
        self.containers: Dict[str, dict] = {}  # id -> its last inspect
        self.files: Dict[str, bytes] = {}  # engine files, last read
        self.layer: Dict[str, bytes] = {}  # the writable layer's files, last read
        self.host: Dict[tuple, Process] = {}
        self.inside: Dict[tuple, Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.poll()  # a last look

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(POLL)

    def poll(self) -> None:
        for record in list(self.watch.seen.values()):
            try:
                inspect = json.loads(record.get("inspect") or "{}")
            except ValueError:
                continue
            if inspect and self.mine(inspect):
                self.containers[inspect["Id"]] = inspect
        namespaces = set()
        for container_id, inspect in self.containers.items():
            self._read_engine_files(container_id, inspect)
            pid = (inspect.get("State") or {}).get("Pid")
            if pid:
                try:
                    namespaces.add(os.readlink(f"/proc/{pid}/ns/pid"))
                except OSError:
                    pass
        self._read_processes(namespaces)

    def _read_engine_files(self, container_id: str, inspect: dict) -> None:
        config_dir = self.data_root / CONTAINERS_DIR / container_id
        bundles = [Path(p) for pattern in RUNTIME_BUNDLES for p in glob.glob(pattern.format(id=container_id))]
        for directory in [config_dir, *bundles]:
            for path, data in files_in(directory, recursive=False):
                self.files[path] = data
        for pattern in CONTAINERD_DBS:
            for path in glob.glob(pattern.format(root=self.data_root)):
                self.files.update(files_in(Path(path), recursive=False))
        # Null while the engine removes the container.
        upper = ((inspect.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
        if upper:
            self.layer.update(files_in(Path(upper)))

    def _read_processes(self, namespaces: Set[str]) -> None:
        parents, starts, names = {}, {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                line = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
            comm, rest = line[line.index("(") + 1:line.rindex(")")], line[line.rindex(")") + 2:].split()
            pid = int(entry.name)
            parents[pid], starts[pid], names[pid] = int(rest[1]), rest[19], comm
        ours = {self.launcher}
        grew = True
        while grew:  # the launcher's children, and theirs
            grown = ours | {pid for pid, parent in parents.items() if parent in ours}
            grew, ours = grown != ours, grown
        for pid in parents:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                inside = bool(namespaces) and os.readlink(f"/proc/{pid}/ns/pid") in namespaces
            except OSError:
                continue
            book = self.inside if inside else self.host
            key = (pid, starts[pid], argv)  # an exec keeps the pid, not the argv
            if key in book:
                continue
            environ = b""
            # Every argv is anyone's to read (ps); an environment is read
            # only where TCUP could have put something: its own processes.
            if inside or pid in ours:
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    pass
            book[key] = Process(pid, names[pid], argv, environ, pid in ours)


def files_in(root: Path, *, recursive: bool = True,
             since: Optional[Dict[str, tuple]] = None) -> Iterator[Tuple[str, bytes]]:
    """(path, content) of each regular file under root, never through a
    link and never a FIFO (the runner's stdin is one); with since, only
    files that are new or changed since that snapshot."""
    try:
        if root.is_file() and not root.is_symlink():
            paths = [root]
        elif recursive:
            paths = [Path(d) / f for d, _, fs in os.walk(root) for f in fs]
        else:
            paths = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return  # a container's directory, gone with it
    for path in paths:
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
                continue
            if since is not None and since.get(str(path)) == (info.st_mtime_ns, info.st_size):
                continue
            yield str(path), path.read_bytes()
        except OSError:
            continue  # gone between the listing and the read


def snapshot(roots: Iterable[Path]) -> Dict[str, tuple]:
    found = {}
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                try:
                    info = os.lstat(os.path.join(directory, name))
                except OSError:
                    continue
                found[os.path.join(directory, name)] = (info.st_mtime_ns, info.st_size)
    return found


def new_tmp_entries(before: Set[str]) -> List[Path]:
    """What appeared directly in /tmp since before: where a program that
    ignored TMPDIR would have written."""
    return [Path("/tmp", name) for name in set(os.listdir("/tmp")) - before
            if not name.startswith(TMP_NOT_OURS)]


# --- the lab: canaries, cloud, proxy, RefStack, and one run of a mode ---------------

@dataclass
class Outcome:
    code: int
    out: str
    err: str
    screen: str
    output: Path  # --output
    containers: Dict[str, dict]
    forwarded: List[Forwarded]  # what went through the proxy

    def run_dir(self) -> Path:
        runs = [p for p in self.output.iterdir() if p.is_dir()]
        assert len(runs) == 1, runs
        return runs[0]


class Lab:
    """Everything the modes share: the canaries, the users that have them,
    the proxy, the keyring, the pyz; and ``run``, one mode end to end."""

    def __init__(self, root: Path, engine, keystone, pyz: Path):
        self.root, self.engine, self.keystone, self.pyz = root, engine, keystone, pyz
        self.password = Canary.make("password", AWKWARD)
        self.wrong = Canary.make("wrong password", AWKWARD)
        self.doomed = Canary.make("password changed mid-run", AWKWARD)
        # Latin-1 only: requests encodes proxy credentials so.
        self.proxy_password = Canary.make("proxy password", "px {token} \u00e9/@:")
        self.passphrase = Canary.make("signing-key passphrase", "pass {token} \u00e9\\\"'")
        self.app_secret = Canary.make("application-credential secret", "app {token} \u00e9\\\"'")
        self.username = Canary.make("user name", "leak{token}")
        self.matrix = Matrix([self.password, self.wrong, self.doomed, self.proxy_password, self.passphrase,
                              self.app_secret], [self.username])
        self.data_root = Path(engine.info()["DockerRootDir"])
        self.shiv_root = root / "shiv"
        self.keyring_dir = root / "keyring"
        self.keyring_dir.mkdir()
        (self.keyring_dir / "leak_keyring.py").write_text(KEYRING_MODULE)
        self.keyring_file = self.keyring_dir / "keyring.json"
        # The README's service and user: tcup, <OS_USERNAME>@<OS_AUTH_URL>.
        stored = {"tcup": {f"{self.username.value}@{keystone.auth_url}": self.password.value}}
        self.keyring_file.write_text(json.dumps(stored))
        self.proxy = ForwardProxy(self.proxy_password.value)
        self.identity = Identity(keystone)
        self.user = self.identity.member(self.username.value, self.password.value)
        self.doomed_name = "leak-doomed-" + secrets.token_hex(4)
        self.doomed_user = self.identity.member(self.doomed_name, self.doomed.value)
        self.refstack = None  # started by the modes that upload there
        self.images: Set[str] = set()
        self.tag = ""  # the image the pyz drives
        self.controls: List[str] = []  # surfaces where a planted canary was found

    def close(self) -> None:
        self.proxy.close()
        for user in (self.user, self.doomed_user):
            self.identity.delete(user)

    def env(self, tmp: Path, **credentials) -> dict:
        """A user's shell: their proxy (with its password), their keyring,
        and the credentials given; no OS_* of anyone else's."""
        env = base_env(tmp)
        env.pop("no_proxy", None)
        env.pop("NO_PROXY", None)
        env.update(SHIV_ROOT=str(self.shiv_root), http_proxy=self.proxy.url, https_proxy=self.proxy.url,
                   PYTHON_KEYRING_BACKEND="leak_keyring.FileKeyring", LEAK_KEYRING_FILE=str(self.keyring_file),
                   PYTHONPATH=str(self.keyring_dir))
        env.update(credentials)
        return env

    def openrc(self, tmp: Path, password: Optional[str] = None, username: Optional[str] = None) -> dict:
        """The member's openrc, OS_PASSWORD included unless password is ''."""
        variables = dict(self.keystone.openrc("member"), OS_USERNAME=username or self.username.value)
        variables.pop("OS_PASSWORD")
        if password != "":
            variables["OS_PASSWORD"] = password or self.password.value
        return self.env(tmp, **variables)

    def run(self, mode: str, tmp: Path, args: List[str], env: dict, *, tty: bool = False,
            during: Optional[Callable[[Launch], None]] = None, upload: bool = False) -> Outcome:
        """One mode: start the pyz, act on it while it runs (during), let it
        end; then search every surface it could have written to."""
        home, temp, work, output = (tmp / name for name in ("home", "tmp", "work", "runs"))
        for directory in (home, temp, work):
            directory.mkdir()
        env = dict(env, HOME=str(home), TMPDIR=str(temp))
        argv = [str(self.pyz), "--output", str(output)] + args
        tmp_before, shiv_before = set(os.listdir("/tmp")), snapshot([self.shiv_root])
        keyring_before = self.keyring_file.read_bytes()
        forwarded_before = len(self.proxy.forwarded)

        def mine(inspect: dict) -> bool:
            return mounts_under(inspect, tmp)

        with ContainerWatch(self.engine) as watch:
            launch = Launch(argv, env, work, tty)
            observer = Observer(watch, mine, launch.pid, self.data_root)
            try:
                if during:
                    during(launch)
                code = launch.finish()
            finally:
                if launch.running():
                    launch.signal(signal.SIGKILL)
                    launch.finish(30)
                observer.stop()
            logs = {cid: watch.seen.get(cid, {}).get("logs", "") for cid in observer.containers}
        self._wait_until_gone(observer.containers)
        self.images |= {inspect["Image"] for inspect in observer.containers.values()}

        level = "-v" if "-v" in args else "pty" if tty else "normal"
        self.matrix.mode(mode, level=level, exit=code, containers=len(observer.containers),
                         created=len(watch.created(self.tag)))

        def scan(surface, items, **kwargs):
            self.matrix.scan(mode, surface, items, **kwargs)

        # The launcher's environment is the user's shell: it holds what the user put there.
        given = {c.name for c in self.matrix.canaries if any(c.token in value for value in env.values())}
        search_observed(self.matrix, mode, observer, logs, given)
        search_engine_records(self.matrix, mode, watch, self.tag)
        scan("engine files, after", self._engine_files_after(observer.containers))
        # What the user sees and keeps.
        if tty:
            scan("terminal (pty)", [("the terminal", bytes(launch.screen))])
        else:
            scan("stdout", [("stdout", bytes(launch.out))])
            scan("stderr", [("stderr", bytes(launch.err))])
        scan("results", [*files_in(output), *files_in(work)], identities=True)
        scan("extraction dir (SHIV_ROOT)", files_in(self.shiv_root, since=shiv_before))
        scan("temporary files", [*files_in(temp), *files_in(home),
                                 *(item for entry in new_tmp_entries(tmp_before) for item in files_in(entry))])
        # TCUP only reads the keyring.
        keyring = self.matrix.cell(mode, "keyring")
        keyring.items += 1
        if self.keyring_file.read_bytes() != keyring_before:
            keyring.hits.append("the keyring file changed")
        # What reached servers other than Keystone (which must get the
        # password): the upload, and discover-tempest-config's dashboard probe.
        sent = [f for f in self.proxy.forwarded[forwarded_before:] if f.port != self.keystone.port]
        received = [(f"request to port {f.port}", f.request) for f in sent]
        if upload and self.refstack is not None:
            received += [("RefStack's database", _dump(self.refstack.db_path)),
                         ("RefStack's log", self.refstack.log_path.read_bytes())]
        if received:
            scan("upload and other requests, as received", received, identities=True)
        return Outcome(code, launch.out.decode(errors="replace"), launch.err.decode(errors="replace"),
                       launch.screen.decode(errors="replace"), output, observer.containers,
                       self.proxy.forwarded[forwarded_before:])

    def _wait_until_gone(self, containers: Dict[str, dict]) -> None:
        deadline = time.monotonic() + 20
        left = set(containers)
        while left and time.monotonic() < deadline:
            there = self.engine.api.containers(all=True, filters={"label": CONTAINER_LABEL})
            left &= {c["Id"] for c in there}
            time.sleep(0.5)
        assert not left, f"containers left behind: {left}"

    def _engine_files_after(self, containers: Dict[str, dict]) -> Iterator[Tuple[str, bytes]]:
        """The engine's data root once the mode's container is gone: its own
        directory must be gone, and no other file holds a canary."""
        for container_id in containers:
            assert not (self.data_root / CONTAINERS_DIR / container_id).exists(), "its files outlived it"
            assert not [p for pattern in RUNTIME_BUNDLES for p in glob.glob(pattern.format(id=container_id))]
        yield from files_in(self.data_root / CONTAINERS_DIR)
        for pattern in CONTAINERD_DBS:
            for path in glob.glob(pattern.format(root=self.data_root)):
                yield from files_in(Path(path))
        for pattern in RUNTIME_BUNDLES:
            for bundle in glob.glob(pattern.format(id="*")):
                yield from files_in(Path(bundle), recursive=False)

    def my_container(self, tmp: Path):
        """The docker SDK's container of the mode running under tmp."""
        for summary in self.engine.api.containers(filters={"label": CONTAINER_LABEL}):
            if mounts_under(self.engine.api.inspect_container(summary["Id"]), tmp):
                return self.engine.containers.get(summary["Id"])
        raise AssertionError("the mode's container is not running")


def mounts_under(inspect: dict, tmp: Path) -> bool:
    """Whether a container is this mode's: its results (or workspace) are
    mounted from the mode's directory. Other sessions run TCUP too."""
    return any(str(m.get("Source", "")).startswith(f"{tmp}/") for m in inspect.get("Mounts") or [])


def search_observed(matrix: Matrix, mode: str, observer: Observer, logs: Dict[str, str],
                    given: Set[str]) -> None:
    """The surfaces read while a mode ran: its container as the engine
    showed it and kept it, and the argv and environment of every process
    (an argv is anyone's to read; given: canaries the user's own shell
    handed the launcher)."""
    def scan(surface, items, **kwargs):
        matrix.scan(mode, surface, items, **kwargs)

    scan("docker inspect", ((f"container {c[:12]}", json.dumps(i).encode()) for c, i in observer.containers.items()))
    scan("container log", ((f"container {c[:12]}", text.encode()) for c, text in logs.items()))
    scan("engine files, during", observer.files.items())
    scan("writable layer, during", observer.layer.items())
    scan("host argv", ((p.name(), p.argv) for p in observer.host.values()))
    scan("host environment", ((p.name(), p.environ) for p in observer.host.values() if p.launcher),
         allow=given, why="the user's own environment, inherited by the launcher")
    scan("container argv", ((p.name(), p.argv) for p in observer.inside.values()))
    scan(ENVIRONMENT_SURFACE, ((p.name(), p.environ) for p in observer.inside.values()))


def search_engine_records(matrix: Matrix, mode: str, watch: ContainerWatch, image: str) -> None:
    """What the engine kept of the while, read after it: the events of each
    container it created (a container too short-lived for a look is in
    them) and its own log. A container of the mode's image that no look
    caught is a hit: nothing of it was searched while it was there."""
    cell = matrix.scan(mode, "engine events", ((f"events of {event.get('id', '?')[:12]}", json.dumps(event).encode())
                                                for event in watch.events))
    cell.hits += [f"container {cid[:12]} ran and was gone before anything of it could be read"
                  for cid in sorted(watch.unseen(image))]
    matrix.scan(mode, "engine log", watch.engine_log.items())


def _dump(db: Path) -> bytes:
    with sqlite3.connect(db) as connection:
        return "\n".join(connection.iterdump()).encode()


@pytest.fixture(scope="module")
def lab(engine, keystone, pyz, tmp_path_factory):
    # The image the pyz drives, built (or found) before any proxy is set:
    # the build reaches PyPI from the engine's own network.
    root = tmp_path_factory.mktemp("leaks")
    built = subprocess.run([str(pyz), "image"], env=base_env(root), capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    lab = Lab(root, engine, keystone, pyz)
    lab.tag = built.stdout.strip().splitlines()[-1]
    yield lab
    lab.close()
    if lab.refstack is not None:
        lab.refstack.stop()


@pytest.fixture
def refstack(lab, tmp_path_factory):
    """A real RefStack server, started once for the modes that upload."""
    if lab.refstack is None:
        from refstack_server import RefStackServer

        lab.refstack = RefStackServer(tmp_path_factory.mktemp("refstack")).start()
    return lab.refstack


def until_running(launch: Launch) -> None:
    launch.wait_for(RUNNING)


# --- the net itself -----------------------------------------------------------------

OBSERVED = ("docker inspect", "container log", "engine files, during", "writable layer, during",
            "host argv", "host environment", "container argv", ENVIRONMENT_SURFACE)


def test_the_search_finds_a_canary_planted_on_purpose(lab, tmp_path):
    """No hole in the net: a canary put on purpose in each place the modes
    watch (a container's environment, argv, log and writable layer; a host
    process's argv and environment; the engine's events of a container gone
    at once) is found there, and in a stream cut in the middle of it."""
    control = Canary.make("control", AWKWARD)
    matrix = Matrix([control], [])
    (tmp_path / "mnt").mkdir()
    plant = ("import sys, time; open('/var/tmp/planted', 'w').write(sys.argv[1]); print(sys.argv[1], flush=True); "
             "time.sleep(60)")
    # Not labelled as TCUP's: other sessions' leftover checks must not see it.
    container = lab.engine.containers.run(lab.tag, ["python3", "-c", plant, control.value], detach=True,
                                          environment={"PLANTED": control.value},
                                          volumes={str(tmp_path / "mnt"): {"bind": "/mnt", "mode": "ro"}})
    host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", control.value],
                            env={"PLANTED": control.value})
    try:
        deadline = time.monotonic() + 60
        while control.token.encode() not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        inspect = lab.engine.api.inspect_container(container.id)
        watch = type("Watch", (), {"seen": {container.id: {"inspect": json.dumps(inspect)}}})
        observer = Observer(watch, lambda _: True, host.pid, lab.data_root)
        time.sleep(4 * POLL)
        observer.stop()
        search_observed(matrix, "control", observer, {container.id: container.logs().decode()}, given=set())
    finally:
        host.kill()
        host.wait()
        container.remove(force=True)
    data = b"before " + control.value.encode() + b" after"
    middle = data.index(control.token.encode()) + 8
    matrix.scan_stream("control", "image save", "a cut stream", [data[:middle], data[middle:]])
    # A container gone at once: the engine's events still tell of it, and of what it carried.
    label = f"org.openstack.tcup.test-control={control.token}"
    api = lab.engine.api
    with ContainerWatch(lab.engine, label=label) as watch:
        gone = api.create_container(lab.tag, ["true"], host_config=api.create_host_config(auto_remove=True),
                                    labels={"org.openstack.tcup.test-control": control.token, "planted": control.value})
        api.start(gone["Id"])
        while watch.tcup_containers():
            time.sleep(0.1)
    assert gone["Id"] in watch.created(lab.tag)
    search_engine_records(matrix, "control", watch, "no image of TCUP's")
    found = {surface for surface, cell in matrix.mode("control")["surfaces"].items() if cell.hits}
    assert found == {*OBSERVED, "image save", "engine events"}
    lab.controls = sorted(found)


# --- the modes ---------------------------------------------------------------------

@pytest.mark.refstack
def test_a_normal_run_leaks_nothing(lab, refstack, tmp_path):
    """Credentials from an openrc, a proxy with a password, an upload."""
    done = lab.run("normal run", tmp_path, ["--regex", REGEX, "--upload-url", refstack.base_url],
                   lab.openrc(tmp_path), upload=True)
    assert done.code == 0, done.err[-2000:]
    assert "uploaded: " in done.out
    # The proxy password was used, not merely present: by the launcher, by
    # discover-tempest-config in the container, and by the upload.
    assert lab.proxy.refused == 0
    to_keystone = [f.request.split(b" ", 1)[0] for f in done.forwarded if f.port == lab.keystone.port]
    # The launcher only POSTs a token request; discover-tempest-config, in
    # the container, also GETs Keystone's versions.
    assert b"POST" in to_keystone and b"GET" in to_keystone, to_keystone
    assert any(f.port == refstack.port for f in done.forwarded)
    assert lab.matrix.leaks("normal run") == []


def test_a_debug_session_leaks_nothing(lab, tmp_path):
    def use_the_shell(launch):
        launch.wait_for(rb"Start the tests by hand")
        launch.wait_for(rb"[$#] $", timeout=60)
        launch.type("grep -c '^\\[auth\\]' $TEMPEST_CONFIG_DIR/tempest.conf && echo TYPED-$((40+2)); exit\n")
        launch.wait_for(rb"TYPED-42")

    done = lab.run("debug session", tmp_path, ["--debug", "--regex", REGEX], lab.openrc(tmp_path), tty=True,
                   during=use_the_shell)
    assert done.code == 0, done.screen[-2000:]
    assert done.containers, "the debug container was never seen"
    assert lab.matrix.leaks("debug session") == []


def test_a_wrong_password_leaks_nothing(lab, tmp_path):
    done = lab.run("wrong password", tmp_path, ["-v", "--regex", REGEX], lab.openrc(tmp_path, lab.wrong.value))
    assert done.code == 2 and "rejected" in done.err, done.err[-2000:]
    assert not done.containers
    assert lab.matrix.leaks("wrong password") == []


def test_tempest_failures_leak_nothing(lab, tmp_path):
    """The password changes in Keystone once tempest.conf is written: Tempest's
    own authentication then fails, and its failures are what is saved."""
    def change_the_password(launch):
        until_running(launch)
        lab.identity.set_password(lab.doomed_user, "changed-" + secrets.token_hex(8))

    env = lab.openrc(tmp_path, lab.doomed.value, username=lab.doomed_name)
    done = lab.run("Tempest failures", tmp_path, ["-v", "--no-upload", "--regex", REGEX], env,
                   during=change_the_password)
    assert done.code == 1, done.err[-2000:]
    assert json.loads((done.run_dir() / "run.json").read_text())["failed"] >= 1
    assert lab.matrix.leaks("Tempest failures") == []


def test_a_runner_crash_leaks_nothing(lab, tmp_path):
    def kill_the_runner(launch):
        until_running(launch)
        kill = ("import os, signal\n"
                "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
                "    if b'tcup.runner' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
                "        os.kill(int(pid), signal.SIGKILL)\n")
        lab.my_container(tmp_path).exec_run(["python3", "-c", kill], user=f"{os.getuid()}:{os.getgid()}")

    done = lab.run("runner crash", tmp_path, ["-v", "--no-upload", "--regex", REGEX], lab.openrc(tmp_path),
                   during=kill_the_runner)
    assert done.code == 3 and "runner ended without results" in done.err, done.err[-2000:]
    assert lab.matrix.leaks("runner crash") == []


@pytest.mark.parametrize("mode, signum, args", [("Ctrl-C", signal.SIGINT, []), ("SIGHUP", signal.SIGHUP, ["-v"])])
def test_an_interrupted_run_leaks_nothing(lab, tmp_path, mode, signum, args):
    def interrupt(launch):
        until_running(launch)
        launch.signal(signum)

    done = lab.run(mode, tmp_path, args + ["--no-upload", "--regex", REGEX], lab.openrc(tmp_path), during=interrupt)
    assert done.code == 130 and "interrupted" in done.err, done.err[-2000:]
    assert lab.matrix.leaks(mode) == []


def test_an_upload_failure_leaks_nothing(lab, tmp_path):
    dead = "http://127.0.0.1:9/api"  # the discard port: nothing answers
    done = lab.run("upload failure", tmp_path, ["--regex", REGEX, "--upload-url", dead, "--upload-retries", "2",
                                                "--upload-timeout", "10"], lab.openrc(tmp_path))
    assert done.code == 4 and "to try again" in done.err, done.err[-2000:]
    assert lab.matrix.leaks("upload failure") == []


def test_a_password_from_the_keyring_leaks_nothing(lab, tmp_path):
    done = lab.run("keyring", tmp_path, ["-v", "--keyring", "--no-upload", "--regex", REGEX],
                   lab.openrc(tmp_path, password=""))
    assert done.code == 0, done.err[-2000:]
    assert lab.matrix.leaks("keyring") == []


@pytest.mark.refstack
def test_secrets_typed_at_the_prompt_leak_nothing(lab, refstack, tmp_path):
    """The password typed at TCUP's prompt (a wrong one first), then a signed
    upload whose key's passphrase is typed too: a real terminal, echo off."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "id_rsa"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(lab.passphrase.value.encode())))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    refstack.register_key(public.decode() + " tcup")

    def type_the_secrets(launch):
        # A typo first: Keystone rejects it, and TCUP asks again.
        launch.wait_for(rb"Password for [^\n]*: ")
        launch.type(lab.wrong.value + "\n")
        launch.wait_for(rb"(?s)try again.*Password for [^\n]*: ")
        launch.type(lab.password.value + "\n")
        launch.wait_for(rb"Passphrase for the signing key: ")
        launch.type(lab.passphrase.value + "\n")

    done = lab.run("prompt", tmp_path, ["--regex", REGEX, "--upload-url", refstack.base_url, "--sign-key",
                                        str(key_file)],
                   lab.openrc(tmp_path, password=""), tty=True, during=type_the_secrets, upload=True)
    assert done.code == 0, done.screen[-2000:]
    assert json.loads((done.run_dir() / "uploads.json").read_text())[0]["signed"] is True
    assert lab.matrix.leaks("prompt") == []


def test_a_password_from_secure_yaml_leaks_nothing(lab, tmp_path):
    """OS_CLOUD: clouds.yaml names the cloud and user, secure.yaml holds the password."""
    config = tmp_path / "config" / "openstack"
    config.mkdir(parents=True)
    openrc = lab.keystone.openrc("member")
    (config / "clouds.yaml").write_text(json.dumps({"clouds": {"leaky": {
        "auth": {"auth_url": openrc["OS_AUTH_URL"], "username": lab.username.value, "project_name": "demo",
                 "user_domain_name": "Default", "project_domain_name": "Default"},
        "region_name": openrc["OS_REGION_NAME"], "identity_api_version": 3}}}))
    (config / "secure.yaml").write_text(json.dumps({"clouds": {"leaky": {"auth": {"password": lab.password.value}}}}))
    env = lab.env(tmp_path, OS_CLOUD="leaky", XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = lab.run("clouds.yaml + secure.yaml", tmp_path, ["-v", "--no-upload", "--regex", REGEX], env)
    assert done.code == 0, done.err[-2000:]
    assert lab.matrix.leaks("clouds.yaml + secure.yaml") == []


def test_an_application_credential_secret_leaks_nothing(lab, tmp_path):
    """Keystone accepts it; TCUP then stops (Tempest 47 needs a password)."""
    credential = lab.identity.application_credential(lab.user, "leaks-" + secrets.token_hex(4),
                                                     lab.password.value, lab.app_secret.value)
    env = lab.env(tmp_path, OS_AUTH_URL=lab.keystone.auth_url, OS_AUTH_TYPE="v3applicationcredential",
                  OS_APPLICATION_CREDENTIAL_ID=credential, OS_APPLICATION_CREDENTIAL_SECRET=lab.app_secret.value)
    done = lab.run("application credential", tmp_path, ["-v", "--no-upload", "--regex", REGEX], env)
    assert done.code == 2 and "application credential" in done.err, done.err[-2000:]
    assert not done.containers
    assert lab.matrix.leaks("application credential") == []


# --- after every mode ----------------------------------------------------------------

AFTER_ALL = "(the image, after every mode)"
MALFORMED = "malformed proxy URL, upload"


def test_the_image_holds_no_canary(lab):
    """docker history, inspect and save of each image the modes ran."""
    if not lab.images:
        _unavailable("no mode ran a container: run the whole file, or the modes this test follows")
    api = lab.engine.api
    for image in sorted(lab.images):
        short = image.split(":")[-1][:12]
        described = [(f"history of {short}", json.dumps(api.history(image)).encode()),
                     (f"inspect of {short}", json.dumps(api.inspect_image(image)).encode())]
        lab.matrix.scan(AFTER_ALL, "image history", described)
        lab.matrix.scan_stream(AFTER_ALL, "image save", f"docker save of {short}",
                               api.get_image(image, chunk_size=8 << 20))
    assert lab.matrix.hits(AFTER_ALL) == []


def test_no_secret_in_the_environment_of_processes_in_the_container(lab):
    cells = {mode: lab.matrix.modes[mode]["surfaces"].get(ENVIRONMENT_SURFACE) for mode in lab.matrix.modes}
    if not any(cell and cell.items for cell in cells.values()):
        _unavailable("no mode ran a container: run the whole file, or the modes this test follows")
    assert [f"{mode}: {hit}" for mode, cell in cells.items() if cell for hit in cell.hits] == []


def test_a_malformed_proxy_url_is_not_printed(lab, tmp_path):
    """A proxy URL with a typo in its port: the upload says so without it."""
    results = tmp_path / "refstack.json"
    results.write_text(json.dumps({"cpid": "0" * 32, "duration_seconds": 1, "results": [
        {"name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
         "uuid": "6f8e4436-fc96-4282-8122-e41df57197a9"}]}))
    broken = lab.proxy.url.rsplit(":", 1)[0] + ":31z8"
    env = lab.env(tmp_path, http_proxy=broken, https_proxy=broken)
    done = subprocess.run([str(lab.pyz), "upload", str(results), "--upload-url", "http://localhost:9/api",
                           "--upload-retries", "1"], env=env, capture_output=True, timeout=120)
    cell = lab.matrix.scan(MALFORMED, "stderr", [("stderr", done.stderr), ("stdout", done.stdout)])
    assert done.returncode in (2, 4), done.stderr[-2000:]
    assert cell.hits == []


def test_the_matrix_adds_up(lab, capsys):
    """Writes the figures docs/SECURITY.md cites, shows them, and checks
    that each mode that ran did read its surfaces."""
    modes = {name: mode for name, mode in lab.matrix.modes.items() if name not in (AFTER_ALL, MALFORMED)}
    cells = [cell for mode in modes.values() for cell in mode["surfaces"].values()]
    summary = {
        "modes": len(modes),
        "surfaces": len({surface for mode in modes.values() for surface in mode["surfaces"]}),
        "mode x surface cells searched": len(cells),
        "items read": sum(cell.items for cell in cells),
        "MiB read": round(sum(cell.bytes for cell in cells) / 2**20),
        "hits": sum(len(cell.hits) for cell in cells),
        "hits that are known leaks": sum(len(lab.matrix.hits(name)) - len(lab.matrix.leaks(name)) for name in modes),
        "found in the user's own environment (allowed)": sum(len(cell.allowed) for cell in cells),
        "image: surfaces searched once, after every mode": sorted(lab.matrix.mode(AFTER_ALL)["surfaces"]),
        "image: MiB read": round(sum(c.bytes for c in lab.matrix.mode(AFTER_ALL)["surfaces"].values()) / 2**20),
        "image: hits": len(lab.matrix.hits(AFTER_ALL)),
        "malformed proxy URL, upload: hits (a known leak)": len(lab.matrix.hits(MALFORMED)),
        "surfaces where a canary planted on purpose was found": lab.controls,
    }
    report = {"summary": summary, "canaries": [c.name for c in lab.matrix.canaries],
              "identities": [c.name for c in lab.matrix.identities], **lab.matrix.as_json()}
    MATRIX_FILE.parent.mkdir(exist_ok=True)
    MATRIX_FILE.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")

    lines = [f"leak matrix ({MATRIX_FILE.relative_to(ROOT)}): {summary['modes']} modes x "
             f"{summary['surfaces']} surfaces, {summary['mode x surface cells searched']} cells, {summary['items read']} items, "
             f"{summary['MiB read']} MiB (+{summary['image: MiB read']} MiB of image): {summary['hits']} hits, "
             f"{summary['hits that are known leaks']} of them known leaks"]
    for name, mode in lab.matrix.modes.items():
        found, unknown = lab.matrix.hits(name), lab.matrix.leaks(name) if name != MALFORMED else []
        where = sorted({hit.split(":")[0] for hit in found})
        lines.append(f"  {name:30} {mode.get('level', ''):6} exit {mode.get('exit', '-')!s:4} "
                     f"{len(mode['surfaces']):2} surfaces {sum(c.items for c in mode['surfaces'].values()):5} items  "
                     f"{len(found)} hits ({len(unknown)} unknown){' in ' + ', '.join(where) if where else ''}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    for name, mode in modes.items():
        surfaces = mode["surfaces"]
        assert surfaces["host argv"].items and surfaces["host environment"].items, name
        if mode["containers"]:
            for surface in ("docker inspect", "container log", "engine files, during", "container argv",
                            ENVIRONMENT_SURFACE):
                assert surfaces[surface].items, (name, surface)
