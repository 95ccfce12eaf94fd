"""The runner's two outputs besides result files: contract events on stdout,
and a log on stderr. Both pass through the redactor first."""

import sys

from tcup import contract
from tcup.runner.redact import Redactor

# Replaced by ``use_redactor`` as soon as the settings are read; until then
# there is nothing secret to mask.
_redactor = Redactor({})


def use_redactor(redactor: Redactor) -> None:
    """Mask these secrets in every event and log line from now on."""
    global _redactor
    _redactor = redactor


def redactor() -> Redactor:
    return _redactor


# Fields that hold Tempest's own test names, masked nowhere: a user called
# "identity" must not turn tempest.api.identity into tempest.api.<username>.
VERBATIM_FIELDS = ("name", "uuid")


def emit(name: str, /, **payload) -> None:
    """One event line on stdout, flushed so the launcher sees it at once."""
    clean = {key: _redactor.text(value) if isinstance(value, str) and key not in VERBATIM_FIELDS else value
             for key, value in payload.items()}
    sys.stdout.write(contract.event(name, **clean) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """One line (or block) of log on stderr, never on stdout."""
    sys.stderr.write(_redactor.text(message.rstrip("\n")) + "\n")
    sys.stderr.flush()
