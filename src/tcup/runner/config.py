"""Writing tempest.conf: a Tempest workspace under the secret tmpfs, filled
by python-tempestconf's discovery against the user's cloud.

The credentials reach discover-tempest-config only as OS_* variables in its
own environment; Tempest's later commands get an environment without them.
An admin runs with Tempest's dynamic credentials; a member runs with
pre-provisioned accounts (accounts.yaml): their own, plus any --accounts,
one worker per account.
"""

import configparser
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from tcup import contract
from tcup.contract import Credentials, Settings
from tcup.runner import process
from tcup.runner.errors import InfraError, InputError

SECRET = Path(contract.SECRET_DIR)
HOME = SECRET / "home"
WORKSPACE = SECRET / "workspace"
WORKSPACE_NAME = "tcup"
# Tempest's default registry under HOME: the debug shell's `tempest run
# --workspace tcup` finds it with no extra option.
REGISTRY = HOME / ".tempest" / "workspace.yaml"
CONFIG_FILE = WORKSPACE / "etc" / "tempest.conf"
ACCOUNTS_FILE = SECRET / "accounts.yaml"
# The OS_* and proxy variables discover-tempest-config needs, handed over in a
# file only this uid reads (tcup.runner.discover loads and deletes it), never
# in an environment, which /proc/PID/environ shows for the process's life.
DISCOVER_ENV = SECRET / "discover-env.json"
DISCOVER_ENV_VARIABLE = "TCUP_DISCOVER_ENV"
CACERT_FILE = SECRET / "cacert.pem"
# What discovery chose for the tests' servers, or why it refused (tcup.runner.discover).
CHOICES_FILE = SECRET / "choices.json"
REFUSAL_FILE = SECRET / "refusal.json"
# Set in Tempest's environment: tcup.runner.tempest_hooks applies TCUP's
# patches to Tempest in every test worker (see the image's tcup-hooks.pth).
HOOKS_VARIABLE = "TCUP_TEMPEST_HOOKS"

# tempest.conf values TCUP sets unless the user sets them (--set). SSH
# validation would boot-and-log-in as CirrOS's user to floating IPs: on a
# real cloud it contacts the user's servers, and fails for any other image.
# It also changes test ids (a "slow" attribute), so it is set before listing.
DEFAULT_OPTIONS = {"validation.run_validation": "false"}

# The role Tempest looks for in accounts.yaml to hand out "primary" credentials.
MEMBER_ROLE = "member"

# For a member: python-tempestconf, unable to list roles, names Swift's
# operator role "Member", a spelling Keystone dropped in 2018; Tempest then
# finds no account with it and skips every object-storage test. The accounts
# are declared with the role Swift's operators have ("member" unless --set).
OPERATOR_ROLE = "object-storage.operator_role"
MEMBER_OPTIONS = {OPERATOR_ROLE: MEMBER_ROLE}

INIT_TIMEOUT = 120
DISCOVER_TIMEOUT = 600

# The per-service endpoint_type options of Tempest 47, and the values it takes.
ENDPOINT_TYPE_OPTIONS = ("compute.endpoint_type", "placement.endpoint_type", "image.endpoint_type",
                         "network.endpoint_type", "volume.endpoint_type", "object-storage.endpoint_type",
                         "identity.v3_endpoint_type")
INTERFACES = ("public", "internal", "admin", "publicURL", "internalURL", "adminURL")


@dataclass
class Workspace:
    """A configured Tempest workspace, ready for `tempest run`."""

    path: Path
    env: Dict[str, str]  # for Tempest's commands: no credentials in it
    credentials: str  # "dynamic" (admin) or "preprovisioned" (member)
    max_concurrency: Optional[int]  # the number of accounts, when pre-provisioned
    choices: Dict[str, Optional[dict]]  # discovery's: image, flavor, network...


def prepare(settings: Settings) -> Dict[str, str]:
    """The secret directory and a Tempest workspace whose tempest.conf holds
    only the options that change test ids (enough to list the installed
    tests as they will run); returns the environment for Tempest's commands."""
    make_secret_dir()
    env = tempest_env()
    init_workspace(env)
    write_options(CONFIG_FILE, tempest_options(settings))
    return env


def tempest_options(settings: Settings) -> Dict[str, str]:
    """TCUP's defaults under the user's --set values."""
    member = {} if settings.cloud.admin else MEMBER_OPTIONS
    return {**DEFAULT_OPTIONS, **member, **settings.choices.tempest_options}


def write_options(path: Path, options: Dict[str, str]) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    for key, value in options.items():
        section, _, option = key.partition(".")
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, option, value)
    with path.open("w") as out:
        parser.write(out)


def configure(settings: Settings, env: Dict[str, str]) -> Workspace:
    """Write the prepared workspace's tempest.conf; nothing is created in the
    cloud. The credentials have passed check_credentials."""
    credentials = settings.credentials
    cacert = write_cacert(credentials.cacert) if credentials.cacert else None
    members = [credentials, *settings.accounts]
    options = tempest_options(settings)
    roles = sorted({MEMBER_ROLE, options.get(OPERATOR_ROLE, MEMBER_ROLE)})
    accounts = None if settings.cloud.admin else write_accounts(members, roles)
    argv = discover_command(credentials, accounts, cacert, options)
    proxies = {name: value for key, value in settings.proxy.items() for name in (key.lower(), key.upper())}
    write_secret(DISCOVER_ENV, json.dumps({**proxies, **cloud_env(credentials, cacert), **choice_env(settings)}))
    try:
        process.run(argv, env={**env, DISCOVER_ENV_VARIABLE: str(DISCOVER_ENV)}, cwd=str(WORKSPACE),
                    timeout=DISCOVER_TIMEOUT, what="discover-tempest-config")
    except InfraError:
        if REFUSAL_FILE.exists():
            raise InputError(json.loads(REFUSAL_FILE.read_text()))
        raise
    finally:
        DISCOVER_ENV.unlink(missing_ok=True)
    choices = json.loads(CHOICES_FILE.read_text()) if CHOICES_FILE.exists() else {}
    if settings.cloud.admin:
        return Workspace(WORKSPACE, env, "dynamic", None, choices)
    return Workspace(WORKSPACE, env, "preprovisioned", len(members), choices)


def choice_env(settings: Settings) -> Dict[str, str]:
    """What tcup.runner.discover reads: the user's choices, the member's
    project, and where to write what it chose."""
    chosen = settings.choices
    wanted = {"TCUP_IMAGE": chosen.image, "TCUP_IMAGE_ALT": chosen.image_alt, "TCUP_FLAVOR": chosen.flavor,
              "TCUP_FLAVOR_ALT": chosen.flavor_alt, "TCUP_NETWORK": chosen.network,
              "TCUP_MEMBER_PROJECT_ID": None if settings.cloud.admin else settings.cloud.project_id,
              "TCUP_SKIP_SERVICES": ",".join(settings.choices.skip_services)}
    return {"TCUP_CHOICES_FILE": str(CHOICES_FILE), "TCUP_REFUSAL_FILE": str(REFUSAL_FILE),
            **{key: value for key, value in wanted.items() if value}}


def check_credentials(credentials: Credentials) -> None:
    """Refuse, with a clear line, what Tempest 47 cannot authenticate with."""
    if credentials.auth_type != "password":
        # tempest.lib.auth's credential classes hold only user/password
        # attributes, and python-tempestconf reads cloud_creds['username'].
        raise InputError(f"Tempest cannot run tests with auth type {credentials.auth_type!r} "
                         "(application credentials included): it authenticates only with a user "
                         "name and password")
    missing = [name for name in ("username", "password", "project_name") if not getattr(credentials, name)]
    if missing:
        # python-tempestconf looks the user and project up by name.
        raise InputError(f"Tempest needs the credentials' {', '.join(missing)} (ids alone are not enough)")
    if str(credentials.identity_api_version) not in ("3", "3.0", "v3"):
        raise InputError(f"identity API version {credentials.identity_api_version} is not supported; use 3")
    if credentials.interface and credentials.interface not in INTERFACES:
        raise InputError(f"interface {credentials.interface!r} is not one of {', '.join(INTERFACES)}")


def make_secret_dir() -> None:
    """The tmpfs directory only this uid can read; HOME lives inside it."""
    for path in (SECRET, HOME):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)


def tempest_env() -> Dict[str, str]:
    """Our environment without any OS_* variable, with HOME and the config
    directory pointing into the secret tmpfs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    env.update(HOME=str(HOME), TEMPEST_CONFIG_DIR=str(CONFIG_FILE.parent), TEMPEST_CONFIG=CONFIG_FILE.name)
    env[HOOKS_VARIABLE] = "1"
    return env


def init_workspace(env: Dict[str, str]) -> None:
    """`tempest init`: the workspace's .stestr.conf, etc/, logs/ and lock dir,
    registered under HOME (nothing lands outside the tmpfs)."""
    process.run(["tempest", "init", "--workspace-path", str(REGISTRY), "--name", WORKSPACE_NAME, str(WORKSPACE)],
                env=env, cwd=str(SECRET), timeout=INIT_TIMEOUT, what="tempest init")


def write_secret(path: Path, text: str) -> Path:
    """A file only this uid can read, created with that mode (no window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def write_cacert(pem: str) -> Path:
    """The cloud's CA bundle (PEM text from the launcher) as a file."""
    return write_secret(CACERT_FILE, pem if pem.endswith("\n") else pem + "\n")


def accounts_entry(credentials: Credentials, roles: Optional[List[str]] = None) -> dict:
    """The user's own account, in Tempest's accounts.yaml form."""
    entry = {key: getattr(credentials, key) for key in
             ("username", "user_id", "password", "project_name", "project_id",
              "user_domain_name", "user_domain_id", "project_domain_name", "project_domain_id")
             if getattr(credentials, key)}
    # Keystone v3 needs a domain for names; python-tempestconf assumes Default too.
    if not (credentials.user_domain_name or credentials.user_domain_id):
        entry["user_domain_name"] = "Default"
    if not (credentials.project_domain_name or credentials.project_domain_id):
        entry["project_domain_name"] = "Default"
    # Tempest 47 gives tests "primary" credentials from the accounts declared
    # with the member role on a project; the declaration is not checked
    # against Keystone, and a member-only user is exactly that.
    entry["roles"] = roles or [MEMBER_ROLE]
    return entry


def write_accounts(members: List[Credentials], roles: List[str]) -> Path:
    """accounts.yaml, one account per member. JSON is YAML, so no YAML writer is needed."""
    entries = [accounts_entry(member, roles) for member in members]
    return write_secret(ACCOUNTS_FILE, json.dumps(entries, indent=2) + "\n")


def cloud_env(credentials: Credentials, cacert: Optional[Path]) -> Dict[str, str]:
    """The OS_* variables openstacksdk (inside discover-tempest-config) reads."""
    names = {
        "auth_url": "OS_AUTH_URL", "auth_type": "OS_AUTH_TYPE", "identity_api_version": "OS_IDENTITY_API_VERSION",
        "username": "OS_USERNAME", "user_id": "OS_USER_ID", "password": "OS_PASSWORD",
        "project_name": "OS_PROJECT_NAME", "project_id": "OS_PROJECT_ID",
        "user_domain_name": "OS_USER_DOMAIN_NAME", "user_domain_id": "OS_USER_DOMAIN_ID",
        "project_domain_name": "OS_PROJECT_DOMAIN_NAME", "project_domain_id": "OS_PROJECT_DOMAIN_ID",
        "region_name": "OS_REGION_NAME", "interface": "OS_INTERFACE",
    }
    env = {var: str(getattr(credentials, field)) for field, var in names.items() if getattr(credentials, field)}
    if cacert:
        env["OS_CACERT"] = str(cacert)
    if credentials.insecure:
        env["OS_INSECURE"] = "true"
    return env


def discover_command(credentials: Credentials, accounts: Optional[Path], cacert: Optional[Path],
                     options: Dict[str, str]) -> List[str]:
    """discover-tempest-config (behind TCUP's read-only guard) with the
    options and section.key overrides this run needs."""
    argv = [sys.executable, "-m", "tcup.runner.discover", "--no-default-deployer", "--out", str(CONFIG_FILE)]
    if accounts:
        argv += ["--non-admin", "--test-accounts", str(accounts)]
    if credentials.insecure:
        # openstacksdk's argparse ignores OS_INSECURE; the flag is honoured.
        argv.append("--insecure")
    for key, value in {**overrides(credentials, cacert), **options}.items():
        argv += [key, value]
    return argv


def overrides(credentials: Credentials, cacert: Optional[Path]) -> Dict[str, str]:
    """tempest.conf values TCUP decides rather than discovers."""
    values = {
        # Tempest's debug log would hold request bodies; INFO is enough.
        "DEFAULT.debug": "false",
        "DEFAULT.use_stderr": "false",
        "DEFAULT.log_dir": str(WORKSPACE / "logs"),
        "DEFAULT.log_file": "tempest.log",
        # Pre-provisioned accounts are locked here; keep it in the workspace.
        "oslo_concurrency.lock_path": str(WORKSPACE / "tempest_lock"),
        # Every resource a test creates is recorded (resource_list.json), so
        # TCUP's cleanup removes exactly those after an interrupted run.
        "DEFAULT.record_resources": "true",
    }
    if credentials.region_name:
        values["identity.region"] = credentials.region_name
    if credentials.interface:
        values.update({option: credentials.interface for option in ENDPOINT_TYPE_OPTIONS})
    if credentials.insecure:
        values["identity.disable_ssl_certificate_validation"] = "true"
    if cacert:
        values["identity.ca_certificates_file"] = str(cacert)
    return values


def debug_command(workspace: Workspace, load_list: Path, concurrency: int) -> str:
    """What a user types in the debug shell to run the selected tests."""
    return f"tempest run --workspace {WORKSPACE_NAME} --load-list {load_list} --concurrency {concurrency}"

