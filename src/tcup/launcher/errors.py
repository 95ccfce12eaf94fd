"""The launcher's exit codes, the one error type the CLI turns into one line,
and ``printable``: what every message passes through before a terminal sees it."""

import re

from tcup import contract

EXIT_OK = contract.EXIT_OK
EXIT_TESTS_FAILED = contract.EXIT_TESTS_FAILED
EXIT_BAD_INPUT = contract.EXIT_BAD_INPUT  # also argparse's own code for a bad flag
EXIT_INFRA = contract.EXIT_INFRA
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


def printable(text: str) -> str:
    """Text from the cloud, a server or a file, safe to print on a terminal:
    no sequence in it can move the cursor, retitle the window or hide what
    follows. Tabs and newlines stay."""
    return _CONTROL.sub("", text)


class TcupError(Exception):
    """A failure the user can act on: ``str(error)`` is the whole message,
    printable (it may quote what a server or the cloud said)."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str, exit_code: int = None):
        super().__init__(printable(str(message)))
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(TcupError):
    exit_code = EXIT_BAD_INPUT


class Infrastructure(TcupError):
    exit_code = EXIT_INFRA
