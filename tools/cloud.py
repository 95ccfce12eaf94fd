#!/usr/bin/env python3
"""A whole OpenStack on 127.0.0.1 for TCUP's tests and demo (tools/testcloud).

    python3 tools/cloud.py start --dir DIR [--services nova,cinder,...] [--profile scs,tls,paging]
    python3 tools/cloud.py stop --dir DIR
    python3 tools/cloud.py status --dir DIR
    python3 tools/cloud.py venvs

``start`` installs each service's venv once (under ~/.cache/tcup-dev/),
starts the cloud in the background, seeds a new DIR, writes
``DIR/admin-openrc``, ``DIR/member-openrc`` and ``DIR/clouds.yaml``, prints
the auth URL and returns. DIR keeps its data: a later ``start`` only starts
the processes again (``--fresh`` wipes DIR first). ``stop`` leaves no process.
``venvs`` only installs the venvs (`make demo` does it while apt installs
MariaDB and RabbitMQ).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from testcloud.cloud import SERVICES, Cloud, ensure_venvs
from testcloud.profiles import PROFILES
from testcloud.common import (
    CloudError, Pidfile, group_members, memory_kib, processes_under, say,
)


def status(root: Path) -> str:
    """One line per process of the cloud in ``root``: pid, memory, name."""
    lines = [f"{'pid':>8} {'RSS MiB':>8} {'PSS MiB':>8}  process"]
    total_rss = total_pss = 0
    for pidfile in sorted((root / "run").glob("*.pid")) if (root / "run").is_dir() else []:
        pid = Pidfile(pidfile).live_pid()
        if pid is None:
            continue
        rss, pss = memory_kib(group_members(pid))
        total_rss, total_pss = total_rss + rss, total_pss + pss
        lines.append(f"{pid:>8} {rss / 1024:>8.0f} {pss / 1024:>8.0f}  {pidfile.stem}")
    lines.append(f"{'total':>8} {total_rss / 1024:>8.0f} {total_pss / 1024:>8.0f}  "
                 f"({len(processes_under(root)) if root.is_dir() else 0} processes in {root})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``start``, ``stop`` or ``status`` of the cloud in ``--dir``; or ``venvs``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the cloud in the background")
    start.add_argument("--services", default=",".join(SERVICES),
                       help="comma-separated; Keystone and what they need are added "
                            f"(default: all: {','.join(SERVICES)})")
    start.add_argument("--fresh", action="store_true", help="wipe DIR first")
    start.add_argument("--profile", default="", metavar="NAME[,NAME]",
                       help="shape the cloud like operators' clouds: "
                            + "; ".join(f"{name}: {what}" for name, what in PROFILES.items()))
    for command in (start, commands.add_parser("stop", help="stop every process of the cloud"),
                    commands.add_parser("status", help="list the cloud's processes")):
        command.add_argument("--dir", required=True, type=Path, help="state directory")
    commands.add_parser("venvs", help="install every service's venv (once); start nothing")
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            if args.fresh:
                Cloud(args.dir).stop(quiet=True)
                shutil.rmtree(args.dir, ignore_errors=True)
            services = [s.strip() for s in args.services.split(",") if s.strip()]
            cloud = Cloud(args.dir, services, args.profile).start()
            spent = ", ".join(f"{k} {v:.1f} s" for k, v in cloud.timings.items())
            say("cloud", f"{', '.join(cloud.services)} up; {spent}; openrc files in {cloud.root}")
            print(cloud.site.public_auth_url)
        elif args.command == "venvs":
            print("\n".join(str(venv) for venv in ensure_venvs(list(SERVICES)).values()))
        elif args.command == "stop":
            Cloud(args.dir).stop()
        else:
            print(status(args.dir))
    except CloudError as exc:
        say("cloud", f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
