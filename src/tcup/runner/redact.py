"""What the runner masks: the secrets, and the strings that identify the user
or the cloud.

Everything the runner lets out (events, its log, result files, the subunit
stream) passes through the ``tcup.masking.Mask`` built here. Secrets are masked
however short they are; identifying strings (user name, project, domains,
ids, the auth URL, the hosts of the catalog) only from 3 characters on and
when they are not names every cloud has ("admin"), so that masking them does
not shred every traceback. Host names are matched in any case. Test names are
never passed through it.
"""

from typing import Iterable, Optional, Tuple
from urllib.parse import urlsplit

from tcup.contract import Cloud, Credentials, Settings
from tcup.masking import Mask, url_password

# Shorter identifying strings are too likely to occur by chance.
MIN_IDENTIFIER = 3
# Names every cloud has identify nobody, and masking them would shred the
# tracebacks (tempest/api/identity/admin/v3/...). Compared case-insensitively.
GENERIC_NAMES = {"admin", "demo", "default", "member"}


def for_settings(settings: Settings) -> Mask:
    """The mask for everything a run with these settings lets out."""
    mask = for_credentials(settings.credentials, settings.cloud)
    # The --accounts members: their secrets and names, like the user's own.
    for account in settings.accounts:
        for secret in account.secrets():
            mask.secret(secret)
        for value, label, any_case in _identifiers(account, None):
            _add(mask, value, label, any_case)
    # A proxy URL may hold a user and a password (http://user:pass@proxy:3128).
    for url in settings.proxy.values():
        mask.secret(url_password(url))
        try:
            _add(mask, urlsplit(url).username, "<proxy-user>")
        except ValueError:
            continue
    return mask


def for_credentials(credentials: Credentials, cloud: Optional[Cloud] = None) -> Mask:
    mask = Mask()
    for secret in credentials.secrets():
        mask.secret(secret)
    for value, label, any_case in _identifiers(credentials, cloud):
        _add(mask, value, label, any_case)
    return mask


def _add(mask: Mask, value: Optional[str], label: str, any_case: bool = False) -> None:
    if value and len(value) >= MIN_IDENTIFIER and value.lower() not in GENERIC_NAMES:
        mask.identifier(value, label, ignore_case=any_case)


def _identifiers(credentials: Credentials, cloud: Optional[Cloud]) -> Iterable[Tuple[Optional[str], str, bool]]:
    """(value, label, in any case) for what ties a result to a person or a cloud."""
    yield credentials.username, "<username>", False
    yield credentials.user_id, "<user-id>", False
    yield credentials.project_name, "<project>", False
    yield credentials.project_id, "<project-id>", False
    yield credentials.application_credential_id, "<application-credential-id>", False
    yield credentials.application_credential_name, "<application-credential>", False
    yield credentials.user_domain_name, "<user-domain>", False
    yield credentials.user_domain_id, "<user-domain-id>", False
    yield credentials.project_domain_name, "<project-domain>", False
    yield credentials.project_domain_id, "<project-domain-id>", False
    if cloud is not None:
        # Keystone's answer: the ids of what the user named only by name.
        yield cloud.user_id, "<user-id>", False
        yield cloud.project_id, "<project-id>", False
        for domain_id in cloud.domain_ids:
            yield domain_id, "<domain-id>", False
    yield from _auth_url_parts(credentials.auth_url)
    if cloud is not None:
        for host in cloud.hosts:
            yield host, "<cloud-host>", True


def _auth_url_parts(auth_url: str) -> Iterable[Tuple[str, str, bool]]:
    """The auth URL (with or without its trailing slash), its host:port and
    its host, in any case: the other endpoints usually share the host."""
    if not auth_url:
        return
    yield auth_url.rstrip("/"), "<auth-url>", True
    try:
        parts = urlsplit(auth_url)
        port = parts.port
    except ValueError:
        return
    if parts.netloc:
        yield parts.netloc.rsplit("@", 1)[-1], "<auth-host>", True
    if parts.hostname:
        yield parts.hostname, "<auth-host>", True
        if port:
            yield f"{parts.hostname}:{port}", "<auth-host>", True
