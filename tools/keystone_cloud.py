#!/usr/bin/env python3
"""A real, local OpenStack Identity service (Keystone) for the tests and the demo.

The server itself lives in ``testcloud/keystone_standalone.py`` (set up and
served as ``testcloud/keystone.py`` does it, with the venv and process code
every local server shares, ``testcloud/common.py``); this is its command line
and the import path the tests use::

    python3 tools/keystone_cloud.py start --dir DIR [--port N]
        [--admin-password P] [--member-password P]
    python3 tools/keystone_cloud.py stop --dir DIR

``start`` serves in the background, writes ``DIR/admin-openrc``,
``DIR/member-openrc`` and ``DIR/keystone.pid``, prints the auth URL and
returns; on a DIR whose server already runs it reuses that server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testcloud.common import CloudError, say
from testcloud.common import group_alive as _group_alive  # noqa: F401 (tests use it)
from testcloud.keystone import KeystoneError, issue_token  # noqa: F401 (the public interface)
from testcloud.keystone_standalone import IDENTITIES, KeystoneCloud  # noqa: F401 (the public interface)


def main(argv: list[str] | None = None) -> int:
    """``start`` / ``stop`` a detached Keystone in ``--dir``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="serve Keystone in the background")
    start.add_argument("--dir", required=True, type=Path, help="work directory")
    start.add_argument("--port", type=int, help="default: a free port")
    start.add_argument("--admin-password", default="admin-secret")
    start.add_argument("--member-password", default="demo-secret")
    stop = commands.add_parser("stop", help="stop the Keystone serving --dir")
    stop.add_argument("--dir", required=True, type=Path, help="work directory")
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            cloud = KeystoneCloud(args.dir, port=args.port,
                                  admin_password=args.admin_password,
                                  member_password=args.member_password).start()
            spent = ", ".join(f"{k} {v:.1f} s" for k, v in cloud.timings.items())
            say("keystone_cloud", f"pid {cloud.pid}; {spent}; openrc files in {cloud.workdir}")
            print(cloud.auth_url)
        else:
            KeystoneCloud(args.dir).stop()
    except CloudError as exc:
        say("keystone_cloud", f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
