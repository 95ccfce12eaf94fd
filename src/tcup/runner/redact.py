"""Masking secrets and the strings that identify the user or the cloud.

Everything the runner lets out (events, its log, result files, the subunit
stream) passes through a ``Redactor`` built from the credentials. Secrets are
masked however short they are; identifying strings (user name, project,
domains, ids, the auth URL and its host) only from 3 characters on and when
they are not names every cloud has ("admin"), so that masking them does not
shred every traceback. Test names are never passed through it.
"""

import json
from typing import Dict, Iterable, Tuple
from urllib.parse import urlsplit

from tcup.contract import Credentials

SECRET = "***"
# Shorter identifying strings are too likely to occur by chance.
MIN_IDENTIFIER = 3
# Names every cloud has identify nobody, and masking them would shred the
# tracebacks (tempest/api/identity/admin/v3/...). Compared case-insensitively.
GENERIC_NAMES = {"admin", "demo", "default", "member"}


class Redactor:
    """Replaces each needle with its label, longest needle first (so the
    auth URL is masked whole before its host is)."""

    def __init__(self, replacements: Dict[str, str]):
        pairs = sorted(((needle, label) for needle, label in replacements.items() if needle),
                       key=lambda pair: len(pair[0]), reverse=True)
        self._text: Tuple[Tuple[str, str], ...] = tuple(pairs)
        self._bytes = tuple((needle.encode(), label.encode()) for needle, label in pairs)

    @classmethod
    def for_credentials(cls, credentials: Credentials) -> "Redactor":
        """The redactor for everything a run with these credentials writes."""
        replacements: Dict[str, str] = {}
        for secret in credentials.secrets():
            for form in _spellings(secret):
                replacements[form] = SECRET
        for value, label in _identifiers(credentials):
            if value and len(value) >= MIN_IDENTIFIER and value.lower() not in GENERIC_NAMES:
                for form in _spellings(value):
                    replacements.setdefault(form, label)
        return cls(replacements)

    def text(self, text: str) -> str:
        for needle, label in self._text:
            if needle in text:
                text = text.replace(needle, label)
        return text

    def bytes(self, data: bytes) -> bytes:
        for needle, label in self._bytes:
            if needle in data:
                data = data.replace(needle, label)
        return data


def _spellings(value: str) -> Iterable[str]:
    """The value as written, and as it appears inside a JSON string (a
    password with a quote or backslash shows up escaped in logged bodies)."""
    yield value
    escaped = json.dumps(value)[1:-1]
    if escaped != value:
        yield escaped


def _identifiers(credentials: Credentials) -> Iterable[Tuple[str, str]]:
    """(value, label) pairs that tie a result to a person or a cloud."""
    yield credentials.username, "<username>"
    yield credentials.user_id, "<user-id>"
    yield credentials.project_name, "<project>"
    yield credentials.project_id, "<project-id>"
    yield credentials.application_credential_id, "<application-credential-id>"
    yield credentials.application_credential_name, "<application-credential>"
    for domain, label in ((credentials.user_domain_name, "<user-domain>"),
                          (credentials.user_domain_id, "<user-domain-id>"),
                          (credentials.project_domain_name, "<project-domain>"),
                          (credentials.project_domain_id, "<project-domain-id>")):
        yield domain, label
    yield from _auth_url_parts(credentials.auth_url)


def _auth_url_parts(auth_url: str) -> Iterable[Tuple[str, str]]:
    """The auth URL (with or without its trailing slash), its host:port and
    its host: the other endpoints of the cloud usually share the host."""
    if not auth_url:
        return
    yield auth_url.rstrip("/"), "<auth-url>"
    try:
        parts = urlsplit(auth_url)
        port = parts.port
    except ValueError:
        return
    if parts.netloc:
        yield parts.netloc.rsplit("@", 1)[-1], "<auth-host>"
    if parts.hostname:
        yield parts.hostname, "<auth-host>"
        if port:
            yield f"{parts.hostname}:{port}", "<auth-host>"
