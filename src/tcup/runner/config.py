"""Writing tempest.conf: a Tempest workspace under the secret tmpfs, filled
by python-tempestconf's discovery against the user's cloud.

The credentials reach discover-tempest-config only as OS_* variables in its
own environment; Tempest's later commands get an environment without them.
An admin runs with Tempest's dynamic credentials; a member runs as the only
pre-provisioned account, their own (accounts.yaml), with concurrency 1.
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from tcup import contract
from tcup.contract import Credentials, Settings
from tcup.runner import process
from tcup.runner.errors import InputError

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

# The role Tempest looks for in accounts.yaml to hand out "primary" credentials.
MEMBER_ROLE = "member"

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


def prepare() -> Dict[str, str]:
    """The secret directory and an empty Tempest workspace (enough to list
    the installed tests); returns the environment for Tempest's commands."""
    make_secret_dir()
    env = tempest_env()
    init_workspace(env)
    return env


def configure(settings: Settings, env: Dict[str, str]) -> Workspace:
    """Write the prepared workspace's tempest.conf; nothing is created in the
    cloud. The credentials have passed check_credentials."""
    credentials = settings.credentials
    cacert = write_cacert(credentials.cacert) if credentials.cacert else None
    accounts = None if settings.cloud.admin else write_accounts(credentials)
    argv = discover_command(credentials, accounts, cacert)
    proxies = {name: value for key, value in settings.proxy.items() for name in (key.lower(), key.upper())}
    write_secret(DISCOVER_ENV, json.dumps({**proxies, **cloud_env(credentials, cacert)}))
    try:
        process.run(argv, env={**env, DISCOVER_ENV_VARIABLE: str(DISCOVER_ENV)}, cwd=str(WORKSPACE),
                    timeout=DISCOVER_TIMEOUT, what="discover-tempest-config")
    finally:
        DISCOVER_ENV.unlink(missing_ok=True)
    if settings.cloud.admin:
        return Workspace(WORKSPACE, env, "dynamic", None)
    return Workspace(WORKSPACE, env, "preprovisioned", 1)


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


def accounts_entry(credentials: Credentials) -> dict:
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
    entry["roles"] = [MEMBER_ROLE]
    return entry


def write_accounts(credentials: Credentials) -> Path:
    """accounts.yaml with one account. JSON is YAML, so no YAML writer is needed."""
    return write_secret(ACCOUNTS_FILE, json.dumps([accounts_entry(credentials)], indent=2) + "\n")


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


def discover_command(credentials: Credentials, accounts: Optional[Path], cacert: Optional[Path]) -> List[str]:
    """discover-tempest-config (behind TCUP's read-only guard) with the
    options and section.key overrides this run needs."""
    argv = [sys.executable, "-m", "tcup.runner.discover", "--no-default-deployer", "--out", str(CONFIG_FILE)]
    if accounts:
        argv += ["--non-admin", "--test-accounts", str(accounts)]
    if credentials.insecure:
        # openstacksdk's argparse ignores OS_INSECURE; the flag is honoured.
        argv.append("--insecure")
    for key, value in overrides(credentials, cacert).items():
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

