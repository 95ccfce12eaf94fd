"""`tcup cleanup RUN`: remove from the cloud what a saved run recorded creating.

A run removes what its tests created before it ends, however it ends; but a
SIGKILL of TCUP or of its container, or a cloud that refused some deletes,
can leave resources behind. The run's record (``contract.RESOURCES_FILE``,
written as the tests created things) stays in its directory, and this
command removes by it: recorded ids only, and what lies in the projects the
run's dynamic credentials made; never anything by its name. ``--dry-run``
shows what would go. It needs the credentials the run had (the same cloud,
the same kind of account): the runner's cleanup runs in the TCUP container
as it does after a run.
"""

import json
import sys
from pathlib import Path

from tcup import contract
from tcup.contract import EXIT_INFRA, EXIT_OK
from tcup.launcher.errors import BadInput, TcupError, printable
from tcup.launcher.version import invoked_as

MODES = {"dynamic": "admin credentials", "preprovisioned": "member credentials"}


def read_record(run: Path):
    """(header, number of resources) of a run's record; (None, 0) without one.
    Read without following a link: the container wrote it."""
    import os

    path = run / contract.RESOURCES_FILE
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None, 0
    with os.fdopen(fd, "rb") as file:
        text = file.read(64 * 1024 * 1024).decode(errors="replace")
    header, count = None, 0
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("record") == "tcup":
            header = header or item
        elif isinstance(item, dict) and item.get("kind"):
            count += 1
    return header, count


def check_same_cloud(run: Path, header: dict, cloud) -> None:
    """The record is about one cloud and one kind of account: refuse others."""
    if header.get("cpid") and header["cpid"] != cloud.cpid:
        raise BadInput(f"{run.name} ran against another cloud (cpid {header['cpid']}; these credentials reach "
                       f"{cloud.cpid}); source the credentials it ran with")
    wanted = header.get("credentials")
    have = "dynamic" if cloud.admin else "preprovisioned"
    if wanted in MODES and wanted != have:
        raise BadInput(f"{run.name} ran with {MODES[wanted]}, and what it made is theirs to remove; these are "
                       f"{MODES[have]}: source the credentials it ran with")


def command(args) -> int:
    from tcup.launcher.cloud.login import authenticate, member_accounts
    from tcup.launcher.engine.image import host_proxies
    from tcup.launcher.results.runs import find_run

    run = find_run(str(args.run), args.output)
    header, count = read_record(run)
    if not count:
        print(printable(f"tcup: {run.name} recorded no resource in the cloud; nothing to remove"), flush=True)
        return EXIT_OK
    credentials, cloud, redact = authenticate(args.keyring)
    check_same_cloud(run, header or {}, cloud)
    accounts = member_accounts(args.accounts, credentials, cloud)
    for account in accounts:
        for secret in account.secrets():
            redact.secret(secret)
    settings = contract.Settings(credentials=credentials, cloud=cloud,
                                 selection=contract.Selection(label=f"cleanup of {run.name}"), mode="cleanup",
                                 accounts=accounts, proxy={k.lower(): v for k, v in host_proxies().items()},
                                 dry_run=args.dry_run)
    result = clean_in_container(args, settings, run, redact)
    return conclude(run, result, count, args.dry_run)


def clean_in_container(args, settings, run: Path, redact) -> dict:
    from tcup.launcher.engine.connection import Engine
    from tcup.launcher.engine.container import Container
    from tcup.launcher.engine.image import Image, host_proxies
    from tcup.launcher.interrupts import interrupted
    from tcup.launcher.progress import Progress

    with interrupted(lambda: "while preparing the image; nothing was removed"):
        engine = Engine.connect()
        tag = Image(args.ca_cert).ensure(engine, rebuild=args.rebuild, proxies=host_proxies())
    progress = Progress(redact, verbose=args.verbose)
    with interrupted(lambda: f"while removing what {run.name} recorded; the container is removed; to go on: "
                             f"{invoked_as()} cleanup {run.name}"):
        with Container(engine, tag, results=run) as container, progress:
            container.send(settings.to_line())
            for stream, line in container.output():
                progress.feed(stream, line)
            code = container.exit_code()
    if progress.cleanup is None:
        exit_code, message = (progress.failure(code, container.out_of_memory())
                              or (EXIT_INFRA, f"the runner ended without a cleanup (exit {code})"))
        raise TcupError(message, exit_code)
    return progress.cleanup


def conclude(run: Path, result: dict, count: int, dry_run: bool) -> int:
    """The closing line (the details were shown as the runner reported them)."""
    left = result.get("left") or []
    if result.get("error"):
        return EXIT_INFRA
    if dry_run:
        if left:
            print(printable(f"tcup: nothing was removed; remove them with: {invoked_as()} cleanup {run.name}"),
                  flush=True)
        else:
            print(printable(f"tcup: none of the {count} resources {run.name} recorded is in the cloud any more; "
                            "nothing to remove"), flush=True)
        return EXIT_OK
    if left:
        print(printable(f"tcup: what could not be removed is listed above (and in {run / contract.CLEANUP_FILE})"),
              file=sys.stderr, flush=True)
        return EXIT_INFRA
    if not result.get("removed"):
        print(printable(f"tcup: none of the {count} resources {run.name} recorded is in the cloud any more; "
                        "nothing to remove"), flush=True)
    return EXIT_OK
