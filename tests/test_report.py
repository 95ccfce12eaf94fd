"""The HTML report: written into the run directory at the end of a real run
(real Tempest in the real image against a real Keystone that goes away
mid-run, so there are passes, real failures with tracebacks, and skips),
made again by `tcup report RUN`, and rendered in headless Chromium with a
proxy that records any request the page would make."""

import html
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import CONTAINER_LABEL, ADMIN_CANARY, MEMBER_CANARY, ROOT, _unavailable, base_env, only_run, openrc, tcup

GUIDELINE_2020_06 = 273
# Every element the page has: none of them loads anything (no img, link, script, iframe).
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "span", "table",
             "thead", "tbody", "tr", "th", "td", "nav", "a", "section", "div", "b", "article", "details", "summary",
             "pre", "ul", "li"}
SCREENSHOT = ROOT / ".cache" / "report-screenshot.png"
# Chromium's own services, which it calls whatever page it shows (time,
# component updates, sign-in), even with background networking off. Font
# and other CDNs (fonts.googleapis.com, fonts.gstatic.com) are not among them.
CHROMIUM_OWN = {"clients2.google.com", "update.googleapis.com", "accounts.google.com", "redirector.gvt1.com",
                "optimizationguide-pa.googleapis.com", "safebrowsing.googleapis.com",
                "content-autofill.googleapis.com", "www.google.com"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--metrics-recording-only"]


@pytest.fixture(scope="module")
def failing_run(image, engine, tmp_path_factory):
    """A real 2020.06 run as admin whose Keystone stops after the first
    passed test: the compute, network, image, volume and object tests skip
    (no such service), one or more identity tests pass, the rest fail."""
    from keystone_cloud import KeystoneCloud

    tmp = tmp_path_factory.mktemp("report-run")
    cloud = KeystoneCloud(tmp / "cloud", admin_password=ADMIN_CANARY, member_password=MEMBER_CANARY).start()
    try:
        command = [sys.executable, "-m", "tcup", "--no-upload", "--output", str(tmp / "runs"),
                   "--guideline", "2020.06", "--concurrency", "1"]
        process = subprocess.Popen(command, env=openrc(cloud, "admin", tmp), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for line in process.stderr:
                if re.search(r"\] passed tempest", line):
                    cloud.stop()
                    break
            stdout, _ = process.communicate(timeout=900)
        finally:
            process.kill()
    finally:
        cloud.stop()
    assert process.returncode == 1, stdout[-2000:]
    # The run's container is gone (other sessions' containers may share the engine:
    # ours is the one that mounted this run's directory).
    deadline = time.time() + 15
    while time.time() < deadline and ours(engine, tmp):
        time.sleep(0.5)
    assert not ours(engine, tmp), "the run's container was left behind"
    run = only_run(tmp / "runs")
    return run, stdout


def ours(engine, tmp: Path) -> list:
    """TCUP containers that mount something under tmp."""
    found = []
    for container in engine.containers.list(all=True, filters={"label": CONTAINER_LABEL}):
        try:
            mounts = container.attrs.get("Mounts") or []
        except Exception:  # noqa: BLE001 - gone between list and look
            continue
        if any(str(m.get("Source", "")).startswith(str(tmp)) for m in mounts):
            found.append(container.id)
    return found


def facts(run: Path):
    meta = json.loads((run / "run.json").read_text())
    tests = json.loads((run / "tests.json").read_text())["tests"]
    return meta, tests


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _unavailable("chromium is not installed: run `bash .ci/chromium.sh` (Debian's chromium package)")
    return path


class RecordingProxy:
    """An HTTP proxy on loopback that answers nothing and records every
    connection: Chromium, pointed at it, sends every request it makes there."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    self.requests.append(connection.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace"))
                except OSError:
                    self.requests.append("(connection)")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.close()
        self.thread.join(5)


def render(chromium: str, page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium on the page with a fresh profile, every request sent to a
    recording proxy and every name unresolvable; returns its run and the
    requests it tried."""
    profile = tmp / f"profile-{time.monotonic_ns()}"
    with RecordingProxy() as proxy:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{proxy.port}",
             "--proxy-bypass-list=<-loopback>", *args, page.as_uri()],
            capture_output=True, timeout=180, env={**os.environ, "HOME": str(tmp)})
        time.sleep(0.5)
    shutil.rmtree(profile, ignore_errors=True)
    done.requests = [r for r in proxy.requests if request_host(r) not in CHROMIUM_OWN]
    return done


def request_host(request_line: str) -> str:
    """The host of a proxy request line: "GET http://host/..." or "CONNECT host:443"."""
    target = request_line.split(" ")[1] if " " in request_line else ""
    return target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]


def png_size(path: Path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def section(dom: str, name: str) -> str:
    """The text of <section id=name> in the DOM, tags dropped, entities decoded."""
    match = re.search(rf'<section id="{name}">(.*?)</section>', dom, re.S)
    assert match, f"no section {name}"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def test_a_run_writes_its_report_and_chromium_renders_it_without_the_network(failing_run, chromium, tmp_path):
    run, stdout = failing_run
    meta, tests = facts(run)
    page = run / "report.html"
    assert page.is_file() and oct(page.stat().st_mode & 0o777) == "0o600"
    failed = sorted((t for t in tests if t["status"] == "fail"), key=lambda t: t["name"])
    skipped = [t for t in tests if t["status"] == "skip"]
    assert meta["failed"] == len(failed) >= 1 and meta["passed"] >= 1
    assert meta["skipped"] == len(skipped) >= 200 and len(tests) == GUIDELINE_2020_06

    # Self-contained: nothing to fetch, and a policy that forbids fetching.
    source = page.read_text()
    tags = re.findall(r"<[a-zA-Z][^>]*>", source)  # text is escaped: every "<" left opens a real tag
    assert {re.match(r"<(\w+)", tag).group(1).lower() for tag in tags} <= PAGE_TAGS
    assert not [tag for tag in tags if re.search(r"(?i)\b(src|href|action)\s*=\s*[\"']?\s*(\w+:|//)", tag)]
    style = re.search(r"<style>(.*?)</style>", source, re.S).group(1)
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    assert "default-src 'none'" in source

    dom = render(chromium, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.requests == [], f"the report made requests: {dom.requests}"
    text = dom.stdout.decode()
    # Verdict and counts, as run.json has them.
    # By the 2020.06 guideline's own rule, RefStack's, with the skips by reason.
    by = re.escape("NOT COMPLIANT by RefStack's rule (every required test passes; a skipped test fails its capability)")
    assert re.search(rf'id="verdict">{by}: {len(failed)} tests? failed; {len(skipped)} tests skipped: \d+ ', text)
    assert "refstack: every required test passes" in re.search(r'<table class="facts">(.*?)</table>', text).group(1)
    for label, number in (("selected", GUIDELINE_2020_06), ("passed", meta["passed"]),
                          ("failed", meta["failed"]), ("skipped", meta["skipped"])):
        assert re.search(rf'id="count-{label}"><b>{number}</b>', text), label
    # Compliance per capability, failing ones first.
    compliance = section(text, "compliance")
    report = json.loads((run / "compliance.json").read_text())
    assert f"{report['totals']['capabilities']} capabilities: 0 pass, {report['totals']['fail']} fail" in compliance
    assert "By RefStack's rule, a capability passes only when every one of its tests passed." in compliance
    failing_caps = sorted(n for n, c in report["capabilities"].items() if c["status"] == "fail")
    assert failing_caps and all(name in compliance for name in report["capabilities"])
    assert compliance.index(failing_caps[-1]) < compliance.index("compute-servers-create")
    # Every failure with its whole traceback, as junit.xml holds it.
    failures = section(text, "failures")
    assert f"Failures ({len(failed)})" in failures
    junit = (run / "junit.xml").read_text()
    for test in failed:
        assert test["name"] in failures and test["reason"] in failures
    frame = 'File "/opt/tempest/lib/python3.11/site-packages/tempest/lib/common/rest_client.py", line'
    assert frame in junit and failures.count(frame) >= len(failed)
    assert failures.count("Traceback (most recent call last):") >= len(failed)
    # Every skip with its reason.
    skips = section(text, "skips")
    assert f"Skips ({len(skipped)})" in skips and "Nova is not available" in skips
    assert all(t["name"] in skips for t in skipped)
    # The slowest tests: ten rows, slowest first, and every test with its duration.
    slowest = re.search(r'<section id="slowest">.*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    times = [float(t) for t in re.findall(r'<td class="num">([\d.]+) s</td>', slowest)]
    assert len(times) == 10 and times == sorted(times, reverse=True)
    assert all(t["name"] in section(text, "tests") for t in tests)
    # Nothing secret or identifying reached the page.
    assert ADMIN_CANARY not in source and "127.0.0.1" not in source.replace(str(run), "")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = render(chromium, page, tmp_path, f"--screenshot={SCREENSHOT}", "--window-size=1280,2400")
    assert shot.returncode == 0 and shot.requests == [], shot.stderr[-2000:]
    assert png_size(SCREENSHOT) == (1280, 2400)
    assert SCREENSHOT.stat().st_size > 50_000  # a blank page compresses to a few kB


def test_the_network_check_sees_a_page_that_fetches(chromium, tmp_path):
    """The proxy check above is not vacuous: a page with a remote image is caught."""
    page = tmp_path / "fetching.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://fonts.googleapis.com/css">'
                    '</head><body><img src="http://images.example.invalid/x.png"></body></html>')
    done = render(chromium, page, tmp_path, "--dump-dom")
    assert {request_host(r) for r in done.requests} >= {"fonts.googleapis.com", "images.example.invalid"}


def test_report_command_makes_it_again_and_escapes_what_the_run_holds(failing_run, chromium, tmp_path):
    run, _ = failing_run
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    (copy / "report.html").unlink()
    # A test whose reason and traceback hold markup, as a cloud's error page can.
    outcome = json.loads((copy / "tests.json").read_text())
    hostile = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"
    victim = next(t for t in outcome["tests"] if t["status"] == "fail")
    victim["reason"] = f"HTTP 500 {hostile}"
    (copy / "tests.json").write_text(json.dumps(outcome))

    env = base_env(tmp_path)
    done = tcup(["report", str(copy)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{copy / 'report.html'}\n" and done.stderr == ""
    source = (copy / "report.html").read_text()
    assert "&lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in source
    dom = render(chromium, copy / "report.html", tmp_path, "--dump-dom").stdout.decode()
    assert "<script" not in dom and "<img" not in dom and "owned" not in re.search(r"<title>(.*?)</title>", dom).group(1)
    assert f"HTTP 500 {hostile}" in section(dom, "failures")

    # A run named by its name under --output, as `tcup results` lists it.
    by_name = tcup(["report", run.name, "--output", str(run.parent)], env)
    assert by_name.returncode == 0 and by_name.stdout.strip() == str(run / "report.html")


@pytest.mark.parametrize("command", ["report", "bundle"])
def test_what_is_not_a_run_is_refused_in_one_line(command, tmp_path):
    env = base_env(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    stopped = tmp_path / "20260101T000000Z-abcdef.incomplete"
    stopped.mkdir()
    (stopped / "tempest.subunit.partial").write_bytes(b"")
    cases = [(tmp_path / "nowhere", "does not exist"), (tmp_path / "file", "is not a directory"),
             (tmp_path / "empty", "is not a TCUP run directory")]
    if command == "report":
        cases.append((stopped, "nothing to report"))
    for path, phrase in cases:
        done = tcup([command, str(path)], env, cwd=tmp_path)
        lines = done.stderr.splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith("tcup: error: ") and phrase in lines[0], lines[0]
        assert done.stdout == ""
    assert not list(tmp_path.glob("*.tar.gz")) and not (stopped / "report.html").exists()


def stored_run(path: Path, rule, verdict: str, results) -> Path:
    """A saved run of some of SCS-0128's tests, judged against those tests,
    as a run directory holds it (``rule`` None: as a TCUP that named no rule
    saved it)."""
    from tcup.launcher import guideline
    from tcup.launcher.results import verdict as rules
    from tcup.launcher.results import compliance

    from dataclasses import replace

    shipped = guideline.load("scs-0128", None)
    by_name = {t["name"]: t for t in shipped.tests}
    listed = replace(shipped, tests=[by_name[name] for name, _, _ in results])
    tests = [{"name": name, "uuid": by_name[name]["uuid"], "status": status, "reason": reason}
             for name, status, reason in results]
    path.mkdir(parents=True)
    (path / "tests.json").write_text(json.dumps({"tests": tests, "missing": []}))
    report = compliance.report(listed, tests, [], rules.named(rule))
    (path / "compliance.json").write_text(json.dumps(report))
    meta = {"complete": True, "label": listed.label, "verdict": verdict, "selected": len(tests), "cpid": "c0ffee",
            **({"rule": rule} if rule else {})}
    (path / "run.json").write_text(json.dumps(meta))
    return path


SCS_IDENTITY = [
    ("tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token", "success", None),
    ("tempest.api.identity.v3.test_tokens.TokensV3Test.test_validate_token", "success", None),
    ("tempest.api.identity.v3.test_users.IdentityV3UsersTest.test_password_history_check_self_service_api", "skip",
     "Security compliance not available"),
    ("tempest.api.identity.v3.test_users.IdentityV3UsersTest.test_user_update_own_password", "skip",
     "Security compliance not available."),
    ("tempest.api.identity.v3.test_projects.IdentityV3ProjectsTest.test_list_projects_returns_only_authorized_projects",
     "skip", "Missing a 2nd set of API credentials in configuration."),
]


def test_the_report_names_the_rule_and_the_skips_of_a_compliant_run(tmp_path):
    run = stored_run(tmp_path / "20260101T000000Z-aaaaaa", "no-failures", "compliant", SCS_IDENTITY)
    done = tcup(["report", str(run)], base_env(tmp_path))
    assert done.returncode == 0 and done.stdout == f"{run / 'report.html'}\n", done.stderr
    page = html.unescape((run / "report.html").read_text())
    verdict = re.search(r'<p class="verdict (\w+)" id="verdict">(.*?)</p>', page)
    assert verdict.groups() == ("good", "COMPLIANT by the no-failures rule (no test fails; skips are allowed): 2 passed, "
                                        "none failed; 3 tests skipped: 2 security compliance not available, "
                                        "1 missing a 2nd set of API credentials in configuration")
    assert "<tr><th>Verdict rule</th><td>no-failures: no test fails; skips are allowed</td></tr>" in page
    compliance = section(page, "compliance")
    assert ("By the no-failures rule, a capability passes when none of its tests failed and at least one passed"
            in compliance)
    assert re.search(r"PASS\s+identity\s+2/5", compliance)
    # The skips by cause, grouped as the verdict groups them, each with its tests, once on the page.
    assert re.search(r"Skips by cause \(3\)\s+Count\s+Cause\s+Tests\s+2\s+security compliance not available\s+"
                     r"tempest\S+test_password_history_check_self_service_api\s+tempest\S+test_user_update_own_password"
                     r"\s+1\s+missing a 2nd", section(page, "causes"))
    assert "security compliance not available" not in section(page, "skips")

    # The same results saved by a TCUP that named no rule were judged strictly: so says the page.
    older = stored_run(tmp_path / "20250101T000000Z-bbbbbb", None, "not compliant", SCS_IDENTITY)
    assert tcup(["report", str(older)], base_env(tmp_path)).returncode == 0
    page = html.unescape((older / "report.html").read_text())
    assert re.search(r'id="verdict">NOT COMPLIANT by the strict rule \(every selected test passes\): none failed, '
                     r"but 3 tests skipped: 2 security", page)
    assert "<tr><th>Verdict rule</th><td>strict: every selected test passes</td></tr>" in page
    assert "By the strict rule, a capability passes only when every one of its tests passed." in page
    assert re.search(r"PARTIAL\s+identity\s+2/5", section(page, "compliance"))
