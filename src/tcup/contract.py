"""The contract between the launcher (host) and the runner (container).

This module is the interface between the two sides; besides it they share
only ``tcup.__version__``, ``tcup.masking`` and ``tcup.private_files``. It holds plain data and the wire format, nothing else, and it must stay
importable with the standard library alone.

Going in (launcher -> runner): one JSON line on the container's stdin, a
``Settings`` object. It carries the secrets, so it never travels through the
container's environment, command line or any file outside tmpfs.

Coming out (runner -> launcher):
  * progress events, one JSON object per line on the runner's stdout
    (``{"event": NAME, ...}``); anything the runner logs goes to stderr;
  * result files, written into ``RESULTS_DIR`` (a host directory mounted there).

Both sides also share two rules about what they let out, each written once
beside this module: ``tcup.masking`` (no secret in any spelling) and
``tcup.private_files`` (result files whole, owner-only, never through a link).

Bump ``VERSION`` whenever a field changes meaning; the runner refuses settings
of another version rather than guessing.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Dict, List, Optional

VERSION = 4

# Where the launcher mounts the run's results directory inside the container.
RESULTS_DIR = "/results"
# Where --debug mounts the user's working directory (not /dev: see README).
WORKSPACE_DIR = "/workspace"
# The tmpfs that holds everything secret inside the container (tempest.conf,
# accounts.yaml, the Tempest workspace). Nothing under it reaches a disk.
SECRET_DIR = "/tmp/tcup"
# The runner's entry point inside the image.
RUNNER_COMMAND = ["python", "-m", "tcup.runner"]

# Result files the runner writes into RESULTS_DIR.
SUBUNIT_FILE = "tempest.subunit"
REFSTACK_FILE = "refstack.json"
TESTS_FILE = "tests.json"
JUNIT_FILE = "junit.xml"
SUMMARY_FILE = "summary.txt"
# tempest.conf with its secrets, names, ids and hosts replaced by placeholders,
# and the versions of what ran (Tempest, python-tempestconf, the image's OS):
# what a support ticket needs (`tcup bundle`). The real tempest.conf never leaves the tmpfs.
TEMPEST_CONF_FILE = "tempest.sanitised.conf"
VERSIONS_FILE = "versions.json"
CLEANUP_FILE = "cleanup.json"  # what the tests left in the cloud, and what TCUP removed
# What the run created in the cloud, one JSON object a line, written as it was
# created (tcup.runner.records): the evidence the cleanup and `tcup cleanup` go by.
RESOURCES_FILE = "resources.jsonl"

# Runner exit codes, mirrored by the launcher's own (see README).
EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFRA = 3


# tempest.conf options TCUP sets itself, which a --set may not change: they
# keep Tempest's logs where the mask reaches and out of the results, record
# every resource the tests create for the cleanup, name what is TCUP's to
# delete, take the credentials and Keystone's address from TCUP alone, and
# keep TLS as the user's openrc has it. "section.option" in lower case; a
# trailing "*" covers every option so begun.
PROTECTED_OPTIONS = (
    "default.debug", "default.verbose", "default.use_stderr", "default.log_dir", "default.log_file",
    "default.log_config_append", "default.default_log_levels", "default.use_syslog", "default.use_journal",
    "default.use_json", "default.use_eventlog", "default.publish_errors", "default.watch_log_file",
    "default.record_resources", "default.resource_name_prefix", "oslo_concurrency.*",
    "auth.test_accounts_file", "auth.use_dynamic_credentials", "auth.admin_*",
    "identity.uri", "identity.uri_v3", "identity.auth_version", "identity.ca_certificates_file",
    "identity.disable_ssl_certificate_validation",
)
# An option whose name holds one of these holds a secret: --set values are
# saved with the run, and TCUP hands Tempest the credentials itself.
SECRET_WORDS = ("password", "secret", "token")


def option_refusal(key: str) -> Optional[str]:
    """Why a --set of tempest.conf ``key`` ("section.option") is refused:
    "secret", "protected", or None when it may be set. Options are compared
    as oslo.config reads them: in any case, a dash the same as an underscore."""
    section, _, option = key.strip().lower().partition(".")
    option = option.strip().replace("-", "_")
    if any(word in option for word in SECRET_WORDS):
        return "secret"
    name = f"{section.strip()}.{option}"
    if any(name == protected or (protected.endswith("*") and name.startswith(protected[:-1]))
           for protected in PROTECTED_OPTIONS):
        return "protected"
    return None


@dataclass
class Credentials:
    """What Tempest needs to reach the cloud. Secret fields are marked."""

    auth_url: str
    identity_api_version: str = "3"
    auth_type: str = "password"  # or "v3applicationcredential"
    username: Optional[str] = None
    user_id: Optional[str] = None
    password: Optional[str] = None  # secret
    project_name: Optional[str] = None
    project_id: Optional[str] = None
    user_domain_name: Optional[str] = None
    user_domain_id: Optional[str] = None
    project_domain_name: Optional[str] = None
    project_domain_id: Optional[str] = None
    region_name: Optional[str] = None
    interface: Optional[str] = None
    application_credential_id: Optional[str] = None
    application_credential_name: Optional[str] = None
    application_credential_secret: Optional[str] = None  # secret
    cacert: Optional[str] = None  # PEM text of OS_CACERT, not a host path
    insecure: bool = False

    SECRET_FIELDS = ("password", "application_credential_secret")

    def secrets(self) -> List[str]:
        return [v for v in (getattr(self, f) for f in self.SECRET_FIELDS) if v]

    def __repr__(self) -> str:
        # A stray print or traceback must not show the secret.
        shown = {
            f.name: ("***" if f.name in self.SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name))
            for f in fields(self)
            if f.name != "cacert"
        }
        return f"Credentials({shown})"


@dataclass
class Cloud:
    """Facts the launcher learned while checking the credentials. The ids and
    hosts are there to be masked: the user may have named only the project,
    yet its id shows in every Swift URL (AUTH_<id>)."""

    cpid: str  # RefStack's cloud provider id: the identity service's catalog id
    admin: bool  # the token carries the admin role
    user_id: Optional[str] = None
    project_id: Optional[str] = None
    domain_ids: List[str] = field(default_factory=list)  # the user's and the project's
    hosts: List[str] = field(default_factory=list)  # every endpoint host of the catalog
    # The catalog's endpoints: {"type", "interface", "region", "url"} each.
    endpoints: List[dict] = field(default_factory=list)


@dataclass
class Selection:
    """Which tests to run. ``tests`` entries are {"name": ..., "uuid": ...};
    they are matched by uuid (the idempotent id), never by name."""

    label: str
    tests: Optional[List[dict]] = None
    regex: Optional[str] = None


@dataclass
class Choices:
    """What the user chose rather than let the runner discover: the cloud's
    images, flavors and (as a member) network for the tests' servers, by name
    or id (the _alt ones are Tempest's second image and flavor), and
    tempest.conf values ("section.key" -> value) that override discovery's."""

    image: Optional[str] = None
    flavor: Optional[str] = None
    network: Optional[str] = None
    image_alt: Optional[str] = None
    flavor_alt: Optional[str] = None
    tempest_options: Dict[str, str] = field(default_factory=dict)
    # Catalog types to run without (--skip-service): discovery leaves them
    # out, so their tests skip instead of failing on a dead endpoint.
    skip_services: List[str] = field(default_factory=list)


@dataclass
class Settings:
    credentials: Credentials
    cloud: Cloud
    selection: Selection
    # "run"; "debug": write tempest.conf, then wait for the shell; "plan":
    # select and discover, report what a run would do, run nothing;
    # "cleanup": remove what the run in RESULTS_DIR recorded (`tcup cleanup`).
    mode: str = "run"
    concurrency: Optional[int] = None  # None: the container's CPU count
    choices: Choices = field(default_factory=Choices)
    # More member accounts (each a user with a password, checked by the
    # launcher) for parallel workers; secrets like the main credentials.
    accounts: List[Credentials] = field(default_factory=list)
    # http_proxy/https_proxy/no_proxy for the runner's own environment. They
    # travel here, not in the container's environment, because a proxy URL
    # may hold a password and `docker inspect` shows the environment.
    proxy: Dict[str, str] = field(default_factory=dict)
    # "cleanup" mode: say what would be removed, remove nothing.
    dry_run: bool = False
    contract: int = VERSION

    def to_line(self) -> bytes:
        return (json.dumps(asdict(self), separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> "Settings":
        data = json.loads(line)
        if data.get("contract") != VERSION:
            raise ValueError(f"settings speak contract {data.get('contract')!r}, this runner speaks {VERSION}")
        return cls(
            credentials=Credentials(**data["credentials"]),
            cloud=Cloud(**data["cloud"]),
            selection=Selection(**data["selection"]),
            mode=data["mode"],
            concurrency=data["concurrency"],
            choices=Choices(**data["choices"]),
            accounts=[Credentials(**account) for account in data["accounts"]],
            proxy=data.get("proxy") or {},
            dry_run=bool(data.get("dry_run")),
        )

    def secrets(self) -> List[str]:
        """Every secret these settings carry: the credentials' and the accounts'."""
        return [secret for credentials in [self.credentials, *self.accounts] for secret in credentials.secrets()]


# Events: the runner prints ``event(NAME, **fields)`` lines; the launcher reads
# them with ``parse_event``. Names and their fields (PROTOCOL_FIELDS are the
# protocol's own; every other string, at any depth, is free text from the
# cloud and is masked on both sides: see ``masked``):
#   phase     name ("config"|"select"|"run"|"cleanup"|"results"), message
#   selected  count, missing (uuids of the list that this Tempest lacks)
#   mode      credentials ("dynamic"|"preprovisioned"), concurrency, accounts
#   choices   image, image_alt, flavor, flavor_alt, network: {"id", "name"} or
#             null, what discovery chose for the tests' servers; why: why
#             it chose each, and what it passed over, one line each;
#             flavors: every flavor the project can use, "name (vCPUs, RAM, disk)"
#   plan      services (catalog types), tests ({service: count}), skips
#             ({service: {"count", "reason" (the largest), "reasons": [{"reason",
#             "count"}]}} of the tests certain to skip: the catalog lacks their
#             service, or tempest.conf alone skips them, as runner/foresee.py
#             finds), foreseen ({test name: reason})
#   cleanup   removed: [{"kind", "id", "name", "project", "why"}] what the run
#             had made and TCUP deleted; left: the same, with "remove_with"
#             (a command) and "error", for what is still in the cloud (in
#             "cleanup" mode with dry_run: what would be removed); unproven:
#             the same, for resources named as a request of the run asked when
#             no answer came (shown, never removed); notes: lines
#             on what could not be checked; dry_run; error (why the cleanup
#             could not run), if any
#   test      name, uuid, status ("inprogress"|"success"|"fail"|"skip"), reason
#   ready     (debug) tempest.conf is written; the runner waits for the shell;
#             command: what to type in that shell to run the selected tests
#   done      passed, failed, skipped, admin_skipped, duration_seconds
#   error     kind ("input"|"infra"), message
def kind_words(kind: str, count: int = 2) -> str:
    """A resource kind of the ``cleanup`` event as words, for either side to
    show: "security_groups" -> "security groups" (one: "security group")."""
    words = kind.replace("_", " ").replace("floatingips", "floating IPs").replace("subnetpools", "subnet pools")
    return words[:-1] if count == 1 and words.endswith("s") else words


EVENTS = ("phase", "selected", "mode", "choices", "plan", "cleanup", "test", "ready", "done", "error")
# Never masked: a password such as "fail", "done" or "0" must not turn a
# status, a test's name or uuid, or the JSON itself into "***". At an event's
# top level these; in a nested object, only what kind of thing it describes.
PROTOCOL_FIELDS = ("event", "name", "uuid", "status", "kind", "credentials", "missing")
NESTED_PROTOCOL_FIELDS = ("kind",)


def masked(event: dict, mask: Callable[[str], str]) -> dict:
    """``event`` with every free-text string passed through ``mask``, nested
    lists and objects included (a cleanup's names, ids and commands, the
    choices' names): what a field holds is the cloud's unless the protocol
    says otherwise. Keys are the protocol's and stay."""
    def clean(value, key):
        if isinstance(value, str):
            return value if key in NESTED_PROTOCOL_FIELDS else mask(value)
        if isinstance(value, list):
            return [clean(item, key) for item in value]
        if isinstance(value, dict):
            return {inner: clean(item, inner) for inner, item in value.items()}
        return value

    return {key: value if key in PROTOCOL_FIELDS else clean(value, key) for key, value in event.items()}


def event(name: str, /, **payload) -> str:
    # name is positional-only: the phase and test events have a "name" field.
    assert name in EVENTS, name
    return json.dumps({"event": name, **payload}, separators=(",", ":"))


def parse_event(line: str) -> Optional[dict]:
    """The event on this stdout line, or None if the line is not one."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("event") in EVENTS:
        return data
    return None
