"""Which selected tests are certain to skip, decided as Tempest decides them,
from tempest.conf alone: nothing is created in the cloud, nothing is asked.

Two decisions are Tempest's own and need no cloud. A test class's
``skip_checks()`` (the first thing its setUpClass does) raises
``skipException`` from CONF: a service marked unavailable, a feature flag,
``validation.run_validation``, no alternate or admin account in the accounts
file. A test method decorated ``@testtools.skipUnless(CONF...)`` (or any
``unittest.skip*``) was marked skipped when its module was imported. The
class's verdict comes first, as in a run: its tests never start.

Only certain skips count. Any other exception from skip_checks, an import
that fails, a method that is not found: not foreseen. This process can reach
no other host (every connection and name lookup is refused), and a class
whose skip_checks tried is not foreseen either, whatever it raised.

Run as ``python -m tcup.runner.foresee LOAD_LIST OUT`` in Tempest's workspace
environment (TEMPEST_CONFIG: the tempest.conf discovery wrote); OUT gets
{test_id: reason}, reasons on one line as a run's tests.json gives them.
"""

import importlib
import json
import socket
import sys
import unittest
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tcup import private_files
from tcup.testids import split_test_id

# Connections and name lookups this process tried (and was refused).
_network_attempts = 0


class NetworkRefused(OSError):
    """What a connection or a name lookup raises here."""


def refuse_network() -> None:
    """Refuse every network connection and name lookup of this process, and
    count them: a prediction must come from tempest.conf alone. Local
    sockets (AF_UNIX) stay."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def attempted() -> NetworkRefused:
        global _network_attempts
        _network_attempts += 1
        return NetworkRefused("tcup's foresight makes no network request")

    def refused_connect(self, address):
        if self.family == socket.AF_UNIX:
            return connect(self, address)
        raise attempted()

    def refused_connect_ex(self, address):
        if self.family == socket.AF_UNIX:
            return connect_ex(self, address)
        raise attempted()

    def refused_lookup(*args, **kwargs):
        raise attempted()

    socket.socket.connect = refused_connect
    socket.socket.connect_ex = refused_connect_ex
    socket.getaddrinfo = refused_lookup
    socket.gethostbyname = refused_lookup
    socket.create_connection = refused_lookup


def one_line(reason: str) -> str:
    """A skip reason as a run's result files give it (tcup.runner.run)."""
    from tcup.runner.run import one_line_reason

    return one_line_reason("skip", {"reason": reason.encode("utf-8", errors="replace")})[0]


def where(test_id: str) -> Optional[Tuple[str, str, str]]:
    """(module, class, method) of a test id; scenario tests carry "(scenario)"."""
    name, _ = split_test_id(test_id)
    parts = name.split(".")
    if len(parts) < 3:
        return None
    return ".".join(parts[:-2]), parts[-2], parts[-1].partition("(")[0]


def load_class(module_name: str, class_name: str):
    """The test class, or None when it cannot be imported (not foreseen)."""
    try:
        return getattr(importlib.import_module(module_name), class_name, None)
    except Exception as error:  # a plugin's import may fail in any way; its tests just run
        print(f"tcup foresee: {module_name} not imported: {type(error).__name__}", file=sys.stderr)
        return None


def class_skip(cls) -> Optional[str]:
    """The reason the whole class skips before any of its tests start, if certain."""
    if getattr(cls, "__unittest_skip__", False):
        return getattr(cls, "__unittest_skip_why__", None) or None
    checks = getattr(cls, "skip_checks", None)
    if not callable(checks):
        return None
    skip_types = (unittest.SkipTest, getattr(cls, "skipException", unittest.SkipTest))
    before = _network_attempts
    try:
        checks()
    except skip_types as skip:
        # A skip_checks that reached for the network decided on something
        # other than tempest.conf, even if it says skip.
        return str(skip) if _network_attempts == before else None
    except Exception:
        return None  # needs credentials, the network, ...: the run decides
    return None


def method_skip(cls, method_name: str) -> Optional[str]:
    """The reason a test method was marked skipped at import, if any."""
    method = getattr(cls, method_name, None)
    if method is None or not getattr(method, "__unittest_skip__", False):
        return None
    return getattr(method, "__unittest_skip_why__", None) or None


def foresee(test_ids: List[str]) -> Dict[str, str]:
    """{test_id: reason} of the tests certain to skip."""
    by_class: Dict[Tuple[str, str], List[Tuple[str, str]]] = {}
    for test_id in test_ids:
        found = where(test_id)
        if found:
            by_class.setdefault(found[:2], []).append((test_id, found[2]))
    foreseen = {}
    for (module_name, class_name), tests in by_class.items():
        cls = load_class(module_name, class_name)
        if cls is None:
            continue
        whole = class_skip(cls)
        for test_id, method_name in tests:
            reason = whole or method_skip(cls, method_name)
            if reason:
                foreseen[test_id] = one_line(reason)
    return foreseen


def main(argv: List[str]) -> int:
    load_list, out = Path(argv[0]), Path(argv[1])
    refuse_network()
    test_ids = [line.strip() for line in load_list.read_text().splitlines() if line.strip()]
    foreseen = foresee(test_ids)
    with private_files.create_private(out) as file:
        file.write(json.dumps(foreseen).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
