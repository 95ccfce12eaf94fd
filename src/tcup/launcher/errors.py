"""The launcher's exit codes, the one error type the CLI turns into one line,
and ``printable``: what every message passes through before a terminal sees it."""

import os
import re
from typing import List, Mapping

from tcup import contract
from tcup.masking import Mask, url_password

# Exit codes 0 to 3 (compliant, a test failed, bad input, could not run) are
# the runner's too: contract.py names them. These are the launcher's own.
EXIT_UPLOAD_FAILED = 4  # results are saved; `tcup upload RUN` resumes
# The run finished and none failed, but some were skipped or are missing from
# this Tempest: not compliant, which CI must not take for a pass.
EXIT_NOT_COMPLIANT = 5
# Every selected test passed but for failures under a waiver (--waivers):
# compliant by the operator's judgement, not by the results RefStack receives.
EXIT_WAIVED = 6
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report it

# Terminal control: escape sequences (CSI, OSC and string commands up to their
# terminator, two-character ones), the 8-bit C1 controls, every other C0
# control but tab and newline, and the bidirectional overrides that make text
# read otherwise than it is.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


# Where requests (and so every fetch, token request and upload) finds a proxy
# URL, which may hold a password: each in lower and upper case.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def proxy_secrets(environ: Mapping[str, str] = os.environ) -> List[str]:
    """The passwords of the proxy URLs in the environment (http://user:pw@proxy:3128)."""
    urls = (environ.get(name) for variable in PROXY_VARIABLES for name in (variable, variable.upper()))
    return [password for password in (url_password(url) for url in urls if url) if password]


def proxy_mask(environ: Mapping[str, str] = os.environ) -> Mask:
    """A mask of the proxies' passwords (of the environment, or of a build's
    proxy settings, which apt's and pip's messages in a build log may quote)."""
    mask = Mask()
    for secret in proxy_secrets(environ):
        mask.secret(secret)
    return mask


def network_reason(error: Exception) -> str:
    """The root cause of a requests error in a few words, never its text
    (a paragraph of pool internals that may quote a URL, a proxy's with its
    password): the system's or TLS's own reason, else the error's kind."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.search(r"\[SSL: [A-Z_]+\] ([^'\")(]+)", text)
    if found and "://" not in found.group(1):
        return found.group(1).strip().rstrip(".")
    return type(error).__name__


def printable(text: str) -> str:
    """Text from the cloud, a server or a file, safe to print on a terminal:
    no sequence in it can move the cursor, retitle the window or hide what
    follows. Tabs and newlines stay."""
    return _CONTROL.sub("", text)


def plural(count: int, noun: str) -> str:
    """"1 test", "2 tests", "3 capabilities"."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


class TcupError(Exception):
    """A failure the user can act on: ``str(error)`` is the whole message,
    printable (it may quote what a server or the cloud said)."""

    exit_code = contract.EXIT_INFRA

    def __init__(self, message: str, exit_code: int = None):
        # A message may quote what a library said about a URL: never a proxy's password.
        super().__init__(printable(proxy_mask().text(str(message))))
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(TcupError):
    exit_code = contract.EXIT_BAD_INPUT


class Infrastructure(TcupError):
    exit_code = contract.EXIT_INFRA
