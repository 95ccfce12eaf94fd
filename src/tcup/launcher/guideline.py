"""Which Tempest tests a guideline requires: shipped lists, files, URLs, test lists.

An interop guideline (schema 2.0) names *targets* (platforms such as
"OpenStack Powered Platform", or add-on programs such as "DNS"); each target
lists components, each component lists its required capabilities, and each
capability lists Tempest tests by name and idempotent id. The *required test
list* of a target is every unflagged test of every required capability of the
target's components. Tests are identified by their idempotent id (uuid), never
by name: Tempest renames tests, the uuid stays.

Targets are spoken of by short names, as RefStack does: ``platform``,
``compute``, ``object`` for the platform programs, and ``dns``,
``orchestration`` for the add-ons. A shipped add-on belongs to the platform
guideline of the same date, so ``load("2020.06", "dns")`` reads the
``dns.2020.06`` add-on; ``load("dns.2020.06", "dns")`` is the same list.

Standard library only at import time: ``requests`` is imported only when a
URL is fetched.
"""

import json
import re
import time
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tcup.launcher.errors import BadInput, network_reason
from tcup.testids import valid_uuid

# Where the generated lists live inside the package (see tools/make_guidelines.py).
GUIDELINES_DIR = "guidelines"
INDEX_FILE = "index.json"

# RefStack's short target names and the guideline's own names for them.
PLATFORM_TARGETS = {
    "platform": "OpenStack Powered Platform",
    "compute": "OpenStack Powered Compute",
    "object": "OpenStack Powered Storage",
}
ADDON_TARGETS = {"dns": "DNS", "orchestration": "Orchestration"}

# Bounds on a guideline or test-list URL, so that a stalled, slow or hostile
# server cannot hang a run or fill the memory: seconds per read, seconds in
# all (a server dripping a byte at a time never trips a per-read timeout),
# and bytes (the largest guideline is 200 kB).
FETCH_TIMEOUT = 30
FETCH_TOTAL = 120
FETCH_BYTES = 16 * 1024 * 1024

# A test-list line: `name` optionally followed by `[attr,attr,...]`.
_LINE_RE = re.compile(r"^([^\s\[\]]+)(?:\[([^\]]*)\])?$")
# RefStack's test-list endpoint: {base}/v1/guidelines/<version>/tests
_REFSTACK_TESTS_RE = re.compile(r"/v1/guidelines/([^/]+)/tests/?$")


class GuidelineError(BadInput):
    """A guideline or test list that cannot be used; the message says how to fix it."""


@dataclass
class TestList:
    """The tests to run and judge, each ``{"name", "uuid", "capability"}``.

    ``uuid`` is the idempotent id without its ``id-`` prefix. ``capability``
    is None for plain test lists, which carry no capabilities. A test that
    belongs to several capabilities has them all in ``capabilities`` and the
    first of them (sorted) in ``capability``. ``rule`` is the id of the
    verdict rule the list carries (launcher/results/verdict.py): shipped lists carry
    one in index.json; "" (a file, a URL, a test list) means none. ``needs``
    names the Tempest plugin(s) a shipped list's tests come from that TCUP's image lacks.
    """

    __test__ = False  # not a pytest test class, despite the name

    label: str
    guideline: str
    target: str
    tests: List[dict]
    source: str = ""
    rule: str = ""
    needs: str = ""

    def uuids(self) -> List[str]:
        """The uuids of the list, in list order."""
        return [t["uuid"] for t in self.tests]

    def selection(self):
        """The runner's view of this list: names and uuids only."""
        from tcup.contract import Selection

        return Selection(label=self.label, tests=[{"name": t["name"], "uuid": t["uuid"]} for t in self.tests])

    def to_dict(self) -> dict:
        """The shipped-file form (see tools/make_guidelines.py)."""
        return {
            "guideline": self.guideline,
            "target": self.target,
            "source": self.source,
            "tests": self.tests,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str) -> "TestList":
        """A list read back from its shipped-file form."""
        try:
            guideline, target, tests = data["guideline"], data["target"], data["tests"]
        except (KeyError, TypeError):
            raise GuidelineError(f"{source} is not a TCUP test list file (needs guideline, target, tests)") from None
        return cls(label=list_label(guideline, target), guideline=guideline, target=target,
                   tests=tests, source=data.get("source") or source)


def list_label(guideline: str, target: str) -> str:
    """How a list is named to the user: "2020.06 platform", or "dns.2020.06" for an add-on."""
    if guideline.startswith(target + "."):
        return guideline
    return f"{guideline} {target}".strip()



# ---------------------------------------------------------------------------
# Selecting the required tests of a schema-2.0 guideline


def target_names(doc: dict) -> Dict[str, str]:
    """Short target name -> the guideline's own target name, for every target of the doc."""
    targets = doc.get("platforms") or doc.get("add-ons") or {}
    known = {**{v: k for k, v in PLATFORM_TARGETS.items()}, **{v: k for k, v in ADDON_TARGETS.items()}}
    names = {}
    for long_name in targets:
        short = known.get(long_name)
        if short is None:
            # A target this code has never seen: derive a short name rather than refuse it.
            short = re.sub(r"^openstack (powered|with) ", "", long_name.lower()).replace(" ", "-")
        names[short] = long_name
    return names


def guideline_id(doc: dict, source: str) -> str:
    """The guideline's version as it names itself ("2020.06", "dns.2020.06", "next")."""
    meta = doc.get("metadata") or {}
    return str(meta.get("id") or Path(urlsplit(source).path).stem or "unknown")


def guideline_status(doc: dict) -> str:
    """"approved", "draft", ... as the guideline says; "" when it does not say."""
    approval = (doc.get("metadata") or {}).get("os_trademark_approval") or {}
    return str(approval.get("status") or "")


def check_schema(doc, source: str) -> None:
    """Refuse anything but a schema-2.0 guideline, naming what is wrong."""
    if not isinstance(doc, dict):
        raise GuidelineError(f"{source} is not an interop guideline: expected a JSON object")
    schema = str((doc.get("metadata") or {}).get("schema") or doc.get("schema") or "")
    if not schema.startswith("2."):
        found = f"schema {schema!r}" if schema else "no metadata.schema"
        raise GuidelineError(
            f"{source} is not a schema 2.0 interop guideline ({found}); "
            "use a guideline from 2018.02 or later, or a RefStack test list with --test-list"
        )
    for key in ("components", "capabilities"):
        if not isinstance(doc.get(key), dict):
            raise GuidelineError(f"{source} is not a usable schema 2.0 guideline: it has no '{key}' object")
    if not (isinstance(doc.get("platforms"), dict) or isinstance(doc.get("add-ons"), dict)):
        raise GuidelineError(f"{source} is not a usable schema 2.0 guideline: it has neither 'platforms' nor 'add-ons'")


def resolve_target(doc: dict, target: Optional[str], source: str) -> str:
    """The short name of the requested target; None picks platform, or an add-on's only target."""
    names = target_names(doc)
    if target is None:
        target = "platform" if "platform" in names or len(names) != 1 else next(iter(names))
    wanted = target.strip().lower()
    for short, long_name in names.items():
        if wanted in (short, long_name.lower()):
            return short
    valid = ", ".join(sorted(names)) or "none"
    raise GuidelineError(f"{source} has no target {target!r}; valid targets: {valid}")


def required_tests(doc: dict, target: Optional[str], source: str) -> TestList:
    """The required, unflagged tests of ``target`` in the schema-2.0 guideline ``doc``.

    Tests are keyed by uuid, so a test required by two capabilities (or by two
    components, as the identity token tests are) appears once. The list is
    sorted by name.
    """
    check_schema(doc, source)
    short = resolve_target(doc, target, source)
    long_name = target_names(doc)[short]
    targets = doc.get("platforms") or doc.get("add-ons")
    by_uuid: Dict[str, dict] = {}
    for capability in sorted(_required_capabilities(doc, targets[long_name], source)):
        for name, details in _capability_tests(doc, capability, source).items():
            if details.get("flagged"):
                continue  # the Interop WG excused it: not required
            uuid = valid_uuid(details.get("idempotent_id", ""))
            if uuid is None:
                raise GuidelineError(
                    f"{source}: test {name} of {capability} has no valid idempotent_id "
                    f"({details.get('idempotent_id')!r}); fix the guideline file"
                )
            entry = by_uuid.setdefault(uuid, {"name": name, "uuid": uuid, "capability": capability, "capabilities": []})
            entry["name"] = min(entry["name"], name)
            if capability not in entry["capabilities"]:
                entry["capabilities"].append(capability)
    tests = sorted(by_uuid.values(), key=lambda t: (t["name"], t["uuid"]))
    version = guideline_id(doc, source)
    return TestList(label=list_label(version, short), guideline=version, target=short, tests=tests, source=source)


def _required_capabilities(doc: dict, target_doc: dict, source: str) -> set:
    """Every required capability of the target's components."""
    capabilities = set()
    for component in target_doc.get("components") or []:
        name = component.get("name") if isinstance(component, dict) else component
        try:
            required = doc["components"][name]["capabilities"]["required"]
        except (KeyError, TypeError):
            raise GuidelineError(f"{source}: component {name!r} has no capabilities.required list; fix the guideline file") from None
        capabilities.update(required)
    return capabilities


def _capability_tests(doc: dict, capability: str, source: str) -> dict:
    """The tests of one capability: {name: {idempotent_id, flagged?, aliases?}}."""
    try:
        tests = doc["capabilities"][capability]["tests"]
    except (KeyError, TypeError):
        raise GuidelineError(f"{source}: required capability {capability!r} is not described; fix the guideline file") from None
    if not isinstance(tests, dict):
        raise GuidelineError(f"{source}: capability {capability!r} lists tests without idempotent ids (schema 1.x?)")
    return tests


# ---------------------------------------------------------------------------
# Plain test lists (RefStack's `name[id-<uuid>,...]` lines)


def parse_refstack_list(text: str, source: str) -> TestList:
    """The tests of a RefStack test list: one ``name[id-<uuid>,...]`` per line.

    Blank lines and ``#`` comments are ignored. Several names for one uuid
    (RefStack lists a test's aliases on lines of their own) make one test,
    under the first of those names. A line without an id is an error: tests are
    matched by uuid, and a name alone could select the wrong test.
    """
    by_uuid: Dict[str, dict] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.match(line)
        uuids = [u for u in (valid_uuid(a) for a in (match.group(2) or "").split(",")) if u] if match else []
        if not uuids:
            shown = line if len(line) <= 120 else line[:117] + "..."
            raise GuidelineError(
                f"{source} line {number} has no idempotent id: {shown!r}; "
                "each line must read name[id-<uuid>] (RefStack's test-list format)"
            )
        by_uuid.setdefault(uuids[0], {"name": match.group(1), "uuid": uuids[0], "capability": None})
    if not by_uuid:
        raise GuidelineError(f"{source} lists no tests; each line must read name[id-<uuid>]")
    name = Path(urlsplit(source).path).name or source
    return TestList(label=f"test list {name}", guideline="", target="", tests=list(by_uuid.values()), source=source)


def load_test_list(path: str) -> TestList:
    """The tests of a ``--test-list FILE``."""
    return parse_refstack_list(_read_text(Path(path), "--test-list"), path)


# ---------------------------------------------------------------------------
# Shipped lists, files and URLs


def _shipped_dir():
    """The generated lists inside the package; works from a directory and from a zipapp."""
    return resources.files("tcup").joinpath(GUIDELINES_DIR)


def shipped_index() -> dict:
    """The index of shipped lists (see tools/make_guidelines.py)."""
    return json.loads(_shipped_dir().joinpath(INDEX_FILE).read_text(encoding="utf-8"))


def shipped_versions() -> List[str]:
    """The guideline versions shipped with TCUP, newest first."""
    versions = {entry["version"] for entry in shipped_index()["lists"]}
    # Dated versions newest first, then drafts such as "next".
    return sorted(versions, key=lambda v: (not v[:1].isdigit(), [-int(p) for p in v.split(".") if p.isdigit()], v))


def load_shipped(version: Optional[str], target: Optional[str] = None) -> TestList:
    """A shipped list; ``version`` None is the newest approved guideline."""
    index = shipped_index()
    version = version or index["default"]
    matching = [e for e in index["lists"] if version in (e["version"], e["guideline"])]
    if not matching:
        raise GuidelineError(
            f"no shipped guideline {version!r}; shipped: {', '.join(shipped_versions())} "
            "(or give a guideline FILE or URL)"
        )
    if target is None:
        # An add-on named by its own id ("dns.2020.06") has one target; a platform guideline defaults to platform.
        target = matching[0]["target"] if len(matching) == 1 else "platform"
    wanted = target.strip().lower()
    for entry in matching:
        if entry["target"] == wanted:
            data = json.loads(_shipped_dir().joinpath(entry["file"]).read_text(encoding="utf-8"))
            return replace(TestList.from_dict(data, entry["file"]), rule=entry.get("rule", ""),
                           needs=entry.get("needs", ""))
    valid = ", ".join(sorted(e["target"] for e in matching))
    raise GuidelineError(f"guideline {version} has no target {target!r}; valid targets: {valid}")


def load(guideline: Optional[str], target: Optional[str] = "platform") -> TestList:
    """The required tests for ``--guideline`` and ``--target``.

    ``guideline`` is one of: None (the newest shipped approved guideline); a
    shipped version ("2019.11", "2020.06", "next", or an add-on id such as
    "dns.2020.06"); the path of a schema-2.0 guideline JSON file; an http(s)
    URL of such a file; or the URL of a RefStack server's test list,
    ``{base}/v1/guidelines/<version>/tests``. ``target`` None means the
    guideline's natural target: platform, or an add-on's only one.
    """
    if guideline and re.match(r"^https?://", guideline, re.IGNORECASE):
        return load_url(guideline, target)
    if guideline and guideline.lower() in shipped_versions():
        guideline = guideline.lower()  # "SCS-0128" as its standard writes it
    elif guideline and guideline.lower() in ADDON_TARGETS:
        guideline = _newest_addon(guideline.lower())  # the README's `--guideline dns`
    if not guideline or _looks_like_version(guideline) or guideline in shipped_versions():
        return load_shipped(guideline, target)
    path = Path(guideline).expanduser()
    if not path.exists():
        raise GuidelineError(
            f"guideline {guideline!r} is neither a shipped version ({', '.join(shipped_versions())}) "
            "nor an existing file; check the name or path"
        )
    return from_json_text(_read_text(path), target, str(path))


def load_runnable(guideline: Optional[str], target: Optional[str] = "platform") -> TestList:
    """`load` for a run: a list needing a plugin the image lacks is refused, as its tests would match nothing."""
    tests = load(guideline, target)
    if tests.needs:
        raise GuidelineError(f"{tests.label} needs {tests.needs}, a Tempest plugin TCUP's image does not carry, so "
                             "none of its tests can run; choose a list `tcup guidelines` shows as runnable")
    return tests


def _newest_addon(target: str) -> str:
    """The newest shipped add-on list of ``target`` ("dns" -> "dns.2020.06"); ``target`` when none is shipped."""
    shipped = [e["guideline"] for e in shipped_index()["lists"] if e["target"] == target]
    return next((g for v in shipped_versions() for g in shipped if g.endswith("." + v)), target)


def _looks_like_version(value: str) -> bool:
    """"2020.06", "next", "dns.2020.06": a name, not a path (no slash, no .json)."""
    return bool(re.match(r"^([a-z]+\.)?(\d{4}\.\d{2}|next)$", value))


def _read_text(path: Path, option: str = "--guideline") -> str:
    """A local file's text, or a GuidelineError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GuidelineError(f"{option} {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise GuidelineError(f"{option} {path} cannot be read: {error}") from None


def from_json_text(text: str, target: Optional[str], source: str) -> TestList:
    """The required tests of a guideline given as JSON text."""
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise GuidelineError(f"{source} is not JSON ({error}); give a schema 2.0 interop guideline file") from None
    return required_tests(doc, target, source)


def _guideline_or_test_list(text: str, target: Optional[str], source: str) -> TestList:
    """A fetched body: a guideline JSON, or else a plain test list served as text."""
    try:
        return from_json_text(text, target, source)
    except GuidelineError as not_json:
        if text.lstrip().startswith(("{", "[")):
            raise  # it was meant to be JSON: say what is wrong with it
        try:
            return parse_refstack_list(text, source)
        except GuidelineError:
            raise not_json from None


def refstack_tests_url(url: str, target: Optional[str]) -> str:
    """A RefStack test-list URL asking for the required, unflagged tests.

    RefStack's endpoint returns every type of test (advisory, deprecated...)
    and flagged tests unless told otherwise, so missing ``type`` and ``flag``
    parameters are filled in; parameters the user gave are kept as given.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("type", "required")
    query.setdefault("flag", "false")
    if target is not None:
        query.setdefault("target", target)
    return urlunsplit(parts._replace(query=urlencode(query)))


def load_url(url: str, target: Optional[str] = "platform") -> TestList:
    """A guideline JSON or a RefStack test list fetched over http(s)."""
    refstack = _REFSTACK_TESTS_RE.search(urlsplit(url).path)
    if refstack:
        url = refstack_tests_url(url, target)
    text = _fetch(url)
    if not refstack:
        return _guideline_or_test_list(text, target, url)
    if text.lstrip().startswith(("Error", "Invalid")):
        # RefStack answers 200 with a one-line message for an unknown version or target.
        raise GuidelineError(f"RefStack refused {url}: {text.strip()[:200]}")
    tests = parse_refstack_list(text, url)
    version = refstack.group(1).replace(".json", "")
    chosen = dict(parse_qsl(urlsplit(url).query)).get("target", "platform")
    return replace(tests, guideline=version, target=chosen, label=list_label(version, chosen))


def _fetch(url: str) -> str:
    """The body of ``url``, within FETCH_TOTAL seconds and FETCH_BYTES; any
    failure becomes a GuidelineError naming the URL. A redirect is refused,
    as the upload does: it names where to, for the user to give instead."""
    import requests  # only here: the launcher must import without it
    import urllib3

    deadline = time.monotonic() + FETCH_TOTAL
    try:
        # identity: a compressed body could unpack to far more than its size.
        with requests.get(url, timeout=(FETCH_TIMEOUT, min(FETCH_TIMEOUT, FETCH_TOTAL)), stream=True,
                          allow_redirects=False, headers={"Accept-Encoding": "identity"}) as response:
            if response.is_redirect:
                where = response.headers.get("Location", "elsewhere")
                raise GuidelineError(f"{url} redirects (HTTP {response.status_code}) to {where:.200}; "
                                     "give that URL instead")
            if response.status_code != 200:
                raise GuidelineError(f"{url} answered HTTP {response.status_code}; check the URL")
            body = _read_bounded(response, url, deadline)
            return body.decode(response.encoding or "utf-8", errors="replace")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        # The body is read from urllib3 directly: its errors arrive unwrapped.
        # Named by its kind: its text may quote a proxy's URL, password and all.
        raise GuidelineError(f"cannot fetch {url} ({network_reason(error)}); check the URL and the "
                             "https_proxy/http_proxy settings, or download the file and give its path") from None


def _read_bounded(response, url: str, deadline: float) -> bytes:
    """The body, refused once it passes FETCH_BYTES or the deadline."""
    too_big = GuidelineError(f"{url} is larger than {FETCH_BYTES // (1024 * 1024)} MiB; it is not a guideline")
    if int(response.headers.get("Content-Length") or 0) > FETCH_BYTES:
        raise too_big
    # read1 returns what one read brings, so the deadline is checked as the
    # bytes come, however slowly they come.
    read = getattr(response.raw, "read1", response.raw.read)
    body = bytearray()
    while True:
        chunk = read(65536, decode_content=True)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > FETCH_BYTES:
            raise too_big
        if time.monotonic() > deadline:
            raise GuidelineError(f"{url} did not arrive within {FETCH_TOTAL} s; download it and give its path")
