"""The runner's two outputs besides result files: contract events on stdout,
and a log on stderr. Both pass through the mask first."""

import sys

from tcup import contract
from tcup.masking import Mask

# Replaced by ``use_mask`` as soon as the settings are read; until then
# there is nothing secret to mask.
_mask = Mask()


def use_mask(mask: Mask) -> None:
    """Mask these secrets in every event and log line from now on."""
    global _mask
    _mask = mask


def mask() -> Mask:
    return _mask


def emit(name: str, /, **payload) -> None:
    """One event line on stdout, flushed so that the launcher sees it at once.
    Every free-text string is masked, however deep; test names, statuses and
    the like are the protocol's (a password "fail" must not turn a failure
    into "***"): contract.masked says which."""
    sys.stdout.write(contract.event(name, **contract.masked(payload, _mask.text)) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """One line (or block) of log on stderr, never on stdout."""
    sys.stderr.write(_mask.text(message).rstrip("\n") + "\n")
    sys.stderr.flush()
