"""Reading the user's cloud credentials on the host.

Sources, as OpenStack users already have them: the ``OS_*`` variables of an
openrc file, or ``OS_CLOUD`` naming an entry of clouds.yaml (with secure.yaml
merged in). Only the fields of ``contract.Credentials`` are read; nothing else
from the host environment ever reaches the container.
"""

import os
from pathlib import Path
from typing import Callable, List, Mapping, Optional
from urllib.parse import urlsplit

from tcup.contract import Credentials
from tcup.launcher.errors import BadInput

APP_CREDENTIAL = "v3applicationcredential"
KEYRING_SERVICE = "tcup"

# OS_* variable -> Credentials field. The v2 names of the 2014 spec
# (OS_TENANT_*) mean the project.
ENVIRONMENT = {
    "OS_AUTH_URL": "auth_url",
    "OS_IDENTITY_API_VERSION": "identity_api_version",
    "OS_AUTH_TYPE": "auth_type",
    "OS_USERNAME": "username",
    "OS_USER_ID": "user_id",
    "OS_PASSWORD": "password",
    "OS_TENANT_NAME": "project_name",
    "OS_TENANT_ID": "project_id",
    "OS_PROJECT_NAME": "project_name",
    "OS_PROJECT_ID": "project_id",
    "OS_USER_DOMAIN_NAME": "user_domain_name",
    "OS_USER_DOMAIN_ID": "user_domain_id",
    "OS_PROJECT_DOMAIN_NAME": "project_domain_name",
    "OS_PROJECT_DOMAIN_ID": "project_domain_id",
    "OS_REGION_NAME": "region_name",
    "OS_INTERFACE": "interface",
    "OS_APPLICATION_CREDENTIAL_ID": "application_credential_id",
    "OS_APPLICATION_CREDENTIAL_NAME": "application_credential_name",
    "OS_APPLICATION_CREDENTIAL_SECRET": "application_credential_secret",
}

# clouds.yaml keys (under ``auth`` or at the top of a cloud) -> field.
CLOUDS_AUTH = {
    "auth_url": "auth_url",
    "username": "username",
    "user_id": "user_id",
    "password": "password",
    "project_name": "project_name",
    "project_id": "project_id",
    "tenant_name": "project_name",
    "tenant_id": "project_id",
    "user_domain_name": "user_domain_name",
    "user_domain_id": "user_domain_id",
    "project_domain_name": "project_domain_name",
    "project_domain_id": "project_domain_id",
    "application_credential_id": "application_credential_id",
    "application_credential_name": "application_credential_name",
    "application_credential_secret": "application_credential_secret",
}
CLOUDS_TOP = {
    "region_name": "region_name",
    "interface": "interface",
    "identity_api_version": "identity_api_version",
    "auth_type": "auth_type",
}

TRUE = {"1", "true", "yes", "on"}


def from_environment(environ: Mapping[str, str] = os.environ) -> dict:
    """The credential fields set in ``environ``, plus the host-side extras
    (``cacert_path``, ``insecure``) that are resolved later."""
    if environ.get("OS_CLOUD"):
        fields = from_clouds_yaml(environ["OS_CLOUD"], environ)
    else:
        fields = {}
        # Later names win: OS_PROJECT_* over the v2 OS_TENANT_* aliases.
        for variable, field in ENVIRONMENT.items():
            if environ.get(variable):
                fields[field] = environ[variable]
        if environ.get("OS_CACERT"):
            fields["cacert_path"] = environ["OS_CACERT"]
        fields["insecure"] = environ.get("OS_INSECURE", "").lower() in TRUE
    return fields


def clouds_yaml_paths(name: str, environ: Mapping[str, str]) -> list:
    """The standard search path of clouds.yaml/secure.yaml, first match wins."""
    config_home = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.cwd() / name, config_home / "openstack" / name, Path("/etc/openstack") / name]


def _read_yaml(path: Path) -> dict:
    import yaml  # only OS_CLOUD users pay for it

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}; fix its permissions or unset OS_CLOUD")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise BadInput(f"{path} is not valid YAML{where}; fix it or unset OS_CLOUD")
    if not isinstance(data, dict):
        raise BadInput(f"{path} holds no 'clouds:' mapping; fix it or unset OS_CLOUD")
    return data


def _find_file(name: str, environ: Mapping[str, str], override: Optional[str]) -> Optional[Path]:
    if override:
        path = Path(override)
        if not path.exists():
            raise BadInput(f"{override} does not exist; fix the variable that names it")
        return path
    return next((p for p in clouds_yaml_paths(name, environ) if p.exists()), None)


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def from_clouds_yaml(cloud: str, environ: Mapping[str, str]) -> dict:
    """The credential fields of the cloud named ``cloud`` in clouds.yaml."""
    clouds_path = _find_file("clouds.yaml", environ, environ.get("OS_CLIENT_CONFIG_FILE"))
    if clouds_path is None:
        searched = ", ".join(str(p) for p in clouds_yaml_paths("clouds.yaml", environ))
        raise BadInput(f"OS_CLOUD={cloud} but no clouds.yaml was found (searched {searched}); create one or unset OS_CLOUD")
    clouds = _read_yaml(clouds_path).get("clouds") or {}
    if cloud not in clouds:
        known = ", ".join(sorted(clouds)) or "none"
        raise BadInput(f"cloud '{cloud}' is not in {clouds_path} (clouds there: {known}); fix OS_CLOUD")
    entry = clouds[cloud] or {}
    secure_path = _find_file("secure.yaml", environ, environ.get("OS_CLIENT_SECURE_FILE"))
    if secure_path is not None:
        entry = _merge(entry, (_read_yaml(secure_path).get("clouds") or {}).get(cloud) or {})

    fields = {}
    auth = entry.get("auth") or {}
    for key, field in CLOUDS_AUTH.items():
        if auth.get(key):
            fields[field] = str(auth[key])
    for key, field in CLOUDS_TOP.items():
        if entry.get(key):
            fields[field] = str(entry[key])
    # A password may still come from the environment, as the OpenStack client allows.
    if "password" not in fields and environ.get("OS_PASSWORD"):
        fields["password"] = environ["OS_PASSWORD"]
    if entry.get("cacert"):
        fields["cacert_path"] = str(entry["cacert"])
    verify = entry.get("verify", True)
    fields["insecure"] = verify is False or str(verify).lower() in {"false", "0", "no"}
    return fields


def check_auth_url(url: str) -> str:
    """A usable Keystone URL, or a BadInput naming what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(
            f"OS_AUTH_URL '{url}' is not an http(s) URL with a host; set it to your Keystone endpoint, "
            "e.g. https://keystone.example.com:5000/v3"
        )
    try:
        parts.port
    except ValueError:
        raise BadInput(f"OS_AUTH_URL '{url}' has an invalid port; fix OS_AUTH_URL")
    return url.rstrip("/")


def _missing(fields: dict) -> list:
    """Each critical value that is absent, named as the user would set it."""
    missing = []
    if not fields.get("auth_url"):
        missing.append("OS_AUTH_URL")
    if fields.get("auth_type") == APP_CREDENTIAL:
        if not (fields.get("application_credential_id") or fields.get("application_credential_name")):
            missing.append("OS_APPLICATION_CREDENTIAL_ID (or _NAME)")
        elif not fields.get("application_credential_id") and not (fields.get("username") or fields.get("user_id")):
            missing.append("OS_USERNAME or OS_USER_ID (an application credential given by name needs its user)")
    else:
        if not (fields.get("username") or fields.get("user_id")):
            missing.append("OS_USERNAME (or OS_USER_ID)")
        if not (fields.get("project_name") or fields.get("project_id")):
            missing.append("OS_PROJECT_NAME (or OS_PROJECT_ID / OS_TENANT_NAME)")
    return missing


def secret_field(fields: dict) -> str:
    return "application_credential_secret" if fields.get("auth_type") == APP_CREDENTIAL else "password"


def keyring_user(fields: dict) -> str:
    """The keyring user name TCUP reads the secret under (see README)."""
    who = (
        fields.get("application_credential_id")
        or fields.get("application_credential_name")
        if fields.get("auth_type") == APP_CREDENTIAL
        else fields.get("username") or fields.get("user_id")
    )
    return f"{who}@{fields['auth_url']}"


def read_keyring(fields: dict) -> Optional[str]:
    """The secret stored in the OS keyring, if any. TCUP never writes there."""
    from tcup.launcher.entry import missing_part

    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as error:
        raise BadInput(missing_part("the OS keyring (--keyring)", "keyring", error)) from None
    try:
        return keyring.get_password(KEYRING_SERVICE, keyring_user(fields))
    except KeyringError as error:
        raise BadInput(_secret_service_missing() or f"the OS keyring could not be read ({type(error).__name__}); "
                       "drop --keyring or set up a keyring backend") from None


def _secret_service_missing() -> Optional[str]:
    """Why the desktop keyring (Secret Service) is out of this Python's reach, when
    a compiled part it needs is missing; keyring itself only finds no backend."""
    from tcup.launcher.entry import missing_part

    try:
        import secretstorage  # noqa: F401 (imports cryptography, and so cffi's compiled part)
    except ImportError as error:
        return missing_part("the OS keyring (--keyring)", "secretstorage", error)
    return None


def prompt_secret(prompt: str) -> str:
    """Ask on the terminal without echo; refuse when there is no terminal."""
    import getpass

    try:
        with open("/dev/tty"):
            pass
    except OSError:
        raise BadInput("no password given and no terminal to ask for it; export OS_PASSWORD, or use --keyring")
    return getpass.getpass(prompt)


def with_secret(credentials: Credentials, secret: str) -> Credentials:
    """The same credentials with another secret (typed again after a typo)."""
    import dataclasses

    if not secret:
        raise BadInput("an empty secret was given; try again")
    return dataclasses.replace(credentials, **{secret_field(dataclasses.asdict(credentials)): secret})


def load(
    environ: Mapping[str, str] = os.environ,
    *,
    use_keyring: bool = False,
    prompt: Callable[[str], str] = prompt_secret,
) -> Credentials:
    """Credentials from the environment, checked for completeness, with the
    secret taken from the environment, the keyring (if asked) or a prompt."""
    fields = from_environment(environ)
    missing = _missing(fields)
    if missing:
        source = f"cloud '{environ['OS_CLOUD']}' in clouds.yaml" if environ.get("OS_CLOUD") else "the environment"
        raise BadInput(f"missing from {source}: {', '.join(missing)}; source your openrc file or set OS_CLOUD")
    fields["auth_url"] = check_auth_url(fields["auth_url"])
    fields.setdefault("auth_type", "password")
    if fields["auth_type"] not in ("password", "v3password", APP_CREDENTIAL):
        raise BadInput(f"OS_AUTH_TYPE '{fields['auth_type']}' is not supported; use password or {APP_CREDENTIAL}")
    if fields["auth_type"] == "v3password":
        fields["auth_type"] = "password"
    if fields["auth_type"] == "password" and not (fields.get("user_domain_name") or fields.get("user_domain_id")):
        fields["user_domain_name"] = "Default"  # Keystone's stock domain, as most openrc files assume
    if fields["auth_type"] == "password" and not (fields.get("project_domain_name") or fields.get("project_domain_id")):
        fields["project_domain_name"] = "Default"

    secret = secret_field(fields)
    if not fields.get(secret) and use_keyring:
        fields[secret] = read_keyring(fields)
        if not fields[secret]:
            raise BadInput(
                f"no secret in the OS keyring for service '{KEYRING_SERVICE}', user '{keyring_user(fields)}'; "
                "store it there with your keyring tool or drop --keyring"
            )
    if not fields.get(secret):
        label = "Application credential secret" if secret != "password" else "Password"
        who = fields.get("username") or fields.get("user_id") or fields.get("application_credential_id") or ""
        fields[secret] = prompt(f"{label} for {who} at {fields['auth_url']}: ")
        if not fields[secret]:
            raise BadInput(f"an empty {label.lower()} was given; try again")

    cacert_path = fields.pop("cacert_path", None)
    if cacert_path:
        try:
            fields["cacert"] = Path(cacert_path).expanduser().read_text()
        except OSError as error:
            raise BadInput(f"OS_CACERT file {cacert_path} cannot be read ({error.strerror}); fix OS_CACERT")
        if "BEGIN CERTIFICATE" not in fields["cacert"]:
            raise BadInput(f"OS_CACERT file {cacert_path} holds no PEM certificate; point OS_CACERT at a PEM file")
    identity_version = str(fields.get("identity_api_version", "3"))
    # The v2 API is gone from every Keystone still running; its names are honoured, the protocol is v3.
    fields["identity_api_version"] = "3" if identity_version.startswith("2") else identity_version
    return Credentials(**fields)


# Tempest's accounts.yaml keys TCUP takes (roles and resources are Tempest's
# own business: every account here is a member of its project).
ACCOUNT_FIELDS = ("username", "user_id", "password", "project_name", "project_id", "tenant_name",
                  "user_domain_name", "user_domain_id", "project_domain_name", "project_domain_id")


def load_accounts(path: Path, main: Credentials) -> List[Credentials]:
    """More member accounts for parallel workers, from Tempest's accounts.yaml
    form (a list of accounts) or a clouds.yaml (every cloud in it with the
    same auth URL). Each needs a user name and a password: a prompt per
    account would not scale, and Tempest can use nothing else."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BadInput(f"--accounts {path}: cannot read it ({error.strerror})")
    except yaml.YAMLError:
        raise BadInput(f"--accounts {path} is not valid YAML; give a list of accounts (Tempest's accounts.yaml) "
                       "or a clouds.yaml")
    if isinstance(data, dict) and isinstance(data.get("clouds"), dict):
        entries = []
        for name, cloud in data["clouds"].items():
            auth = dict((cloud or {}).get("auth") or {})
            if check_auth_url(auth.get("auth_url") or main.auth_url).rstrip("/") != main.auth_url.rstrip("/"):
                continue  # another cloud: not an account of this one
            entries.append((f"cloud {name}", auth))
    elif isinstance(data, list):
        entries = [(f"account {number}", entry) for number, entry in enumerate(data, 1)]
    else:
        raise BadInput(f"--accounts {path} holds neither a list of accounts nor a 'clouds:' mapping")
    accounts = []
    for where, entry in entries:
        if not isinstance(entry, dict):
            raise BadInput(f"--accounts {path}: {where} is not a mapping of username, password, project_name ...")
        fields = {CLOUDS_AUTH.get(key, key): str(value) for key, value in entry.items()
                  if key in ACCOUNT_FIELDS and value is not None}
        missing = [name for name in ("username", "password", "project_name") if not fields.get(name)]
        if missing:
            raise BadInput(f"--accounts {path}: {where} lacks {', '.join(missing)}")
        for owner in ("user", "project"):
            if not fields.get(f"{owner}_domain_id"):
                fields.setdefault(f"{owner}_domain_name", "Default")
        accounts.append(Credentials(auth_url=main.auth_url, identity_api_version=main.identity_api_version,
                                    region_name=main.region_name, interface=main.interface, cacert=main.cacert,
                                    insecure=main.insecure, **fields))
    if not accounts:
        raise BadInput(f"--accounts {path} holds no account for {main.auth_url}")
    return accounts
