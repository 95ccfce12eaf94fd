"""What must not get out, in any spelling: one mask for both sides.

The runner masks its events, log, result files and subunit stream (secrets
and what identifies the user or the cloud); the launcher masks what it
prints (secrets), behind the runner. Mask first, then cut or reshape: a cut
or reformatted secret no longer matches. Standard library only: the runner
imports it inside the image.
"""

import base64
import json
import re
from typing import Dict, List, Optional, Set
from urllib.parse import quote, quote_plus, unquote, urlsplit

SECRET_LABEL = "***"
# A secret cut at the edge of a text (a message cut short, a line split) is
# masked from this many of its characters on; shorter pieces are ordinary
# words too often ("pass" starts every "password:").
MIN_FRAGMENT = 6
# Shorter base64 pieces would match by chance.
MIN_BASE64 = 8


class Mask:
    """Replaces each value, in each of its ``spellings``, by its label; the
    longest match first, in one pass, so that labels are never masked again."""

    def __init__(self):
        self._labels: Dict[str, str] = {}  # spelling -> label
        self._any_case: Dict[str, str] = {}  # lower-case spelling -> label
        self._secrets: List[str] = []
        self._pattern: Optional["re.Pattern"] = None

    def secret(self, value: Optional[str]) -> "Mask":
        """Mask value however short it is; a secret wins over an identifier."""
        if value:
            self._secrets.append(value)
            self._labels.update(dict.fromkeys(spellings(value), SECRET_LABEL))
            self._pattern = None
        return self

    def identifier(self, value: Optional[str], label: str, ignore_case: bool = False) -> "Mask":
        """Mask value as label; in any case if ignore_case (host names)."""
        for form in spellings(value) if value else ():
            if ignore_case:
                self._any_case.setdefault(form.lower(), label)
            else:
                self._labels.setdefault(form, label)
        self._pattern = None
        return self

    def text(self, text: str) -> str:
        if self._pattern is None:
            self._pattern = self._compile()
        return self._mask_edges(self._pattern.sub(self._label, text))

    def bytes(self, data: bytes) -> bytes:
        # surrogateescape: bytes that are not UTF-8 come back unchanged.
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def one_line(self, text: str, limit: Optional[int] = None) -> str:
        """Masked, then on one line, then cut: never the other way round."""
        line = " ".join(self.text(text).split())
        return line[:limit] if limit else line

    def _compile(self) -> "re.Pattern":
        # The labels themselves are matched too (and kept), so that masking
        # twice changes nothing: a secret "e" must not shred "<username>".
        keep = set(self._labels.values()) | set(self._any_case.values())
        needles = [(form, re.escape(form)) for form in set(self._labels) | keep]
        needles += [(form, f"(?i:{re.escape(form)})") for form in self._any_case]
        needles.sort(key=lambda needle: (-len(needle[0]), needle[0]))
        return re.compile("|".join(pattern for _, pattern in needles) or "(?!)")

    def _label(self, match: "re.Match") -> str:
        found = match.group()
        return self._labels.get(found) or self._any_case.get(found.lower()) or found

    def _mask_edges(self, text: str) -> str:
        """A secret's first characters at the end of text, or its last ones at
        the start: what is left of it where something cut it."""
        body = text.rstrip("\r\n")
        end = text[len(body):]
        for secret in self._secrets:
            for size in range(len(secret) - 1, MIN_FRAGMENT - 1, -1):
                if body.endswith(secret[:size]):
                    body = body[:-size] + SECRET_LABEL
                    break
            for size in range(len(secret) - 1, MIN_FRAGMENT - 1, -1):
                if body.startswith(secret[-size:]):
                    body = SECRET_LABEL + body[size:]
                    break
        return body + end


def url_password(url: str) -> Optional[str]:
    """The password in a URL's user part (a proxy's: http://user:pw@proxy:3128),
    as written and decoded alike by the Mask's spellings; None without one.
    A URL without a scheme is read as requests reads it, as http://."""
    try:
        password = urlsplit(url if "://" in url else "http://" + url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def spellings(value: str) -> Set[str]:
    """The forms value takes in logs, tracebacks and bodies: as written;
    JSON-escaped, once and twice; between the quotes of a Python str or bytes
    repr; percent-encoded (quote, quote_plus); XML-escaped; base64."""
    json_forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    json_forms |= {json.dumps(form)[1:-1] for form in json_forms}
    forms = {value} | json_forms
    for form in (value, *json_forms):  # repr of a dict holding a JSON body, too
        forms |= {_repr_body(form, "'"), _repr_body(form, "")}
    forms |= {_repr_body(value.encode(), "'"), _repr_body(value.encode(), "")}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms |= {encoded, re.sub("%[0-9A-F]{2}", lambda hex_: hex_.group().lower(), encoded)}
    xml = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    forms |= {xml, xml.replace('"', "&quot;")}
    forms |= {xml.replace('"', "&quot;").replace("'", apos) for apos in ("&apos;", "&#x27;", "&#39;")}
    forms |= _base64_forms(value.encode())
    forms.discard("")
    return forms


def _repr_body(value, quote_char: str) -> str:
    """value (str or bytes) as it reads between the quotes of its repr, the
    quote_char escaped (repr escapes ' unless it quotes with ")."""
    if isinstance(value, bytes):
        chars = [chr(byte) if 32 <= byte < 127 else repr(bytes([byte]))[2:-1] for byte in value]
    else:
        chars = [char if char.isprintable() else repr(char)[1:-1] for char in value]
    return "".join("\\" + char if char in ("\\", quote_char) else char for char in chars)


def _base64_forms(data: bytes) -> Set[str]:
    """data in base64, whole and as its part of a longer encoded text (HTTP
    Basic's user:password): one piece per alignment, without the characters
    its neighbours share."""
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(data).decode())
        for offset in range(3):
            encoded = encode(bytes(offset) + data).decode()
            forms.add(encoded[-(-8 * offset // 6):8 * (offset + len(data)) // 6])
    return {form for form in forms if len(form) >= MIN_BASE64}
