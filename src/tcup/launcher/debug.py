"""`tcup --debug`: a shell in the container, Tempest configured as a run
configures it, the user's directory at /workspace; no test starts."""

import sys
from pathlib import Path

from tcup import contract
from tcup.launcher import launch
from tcup.contract import EXIT_INFRA
from tcup.launcher.errors import BadInput, Infrastructure, TcupError, printable
from tcup.launcher.interrupts import Leftovers


def command(args) -> int:
    """A run's first phases (check, image), then the shell instead of the tests."""
    from tcup.launcher.engine.container import Container

    checked = launch.check(args)
    with Leftovers() as left:
        ready = launch.image(args)
        left.container = Container(ready.engine, ready.tag, workspace=Path.cwd())
        return debug_shell(left.container, checked.settings("debug", ready.proxies), checked.redact, args.verbose)


def debug_shell(container, settings, redact, verbose: bool = False) -> int:
    """Tempest configured, the user's directory at /workspace, an
    interactive shell; no tests start. Discovery's log goes to a file (on
    the terminal too with -v), so the shell starts quietly."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BadInput("--debug opens an interactive shell and needs a terminal; run it from one")
    from tcup import private_files
    from tcup.launcher.engine.image import log_dir

    log_path = log_dir() / "debug.log"
    log_lines = []
    print("tcup: writing tempest.conf with discover-tempest-config (its log: "
          f"{log_path}{'' if verbose else '; -v shows it here'})", file=sys.stderr, flush=True)
    with container:
        container.send(settings.to_line())
        try:
            for stream, line in container.output():
                event = contract.parse_event(line.decode(errors="replace")) if stream == 1 else None
                if event and event["event"] == "ready":
                    break
                if event and event["event"] == "error":
                    raise TcupError(redact.text(event["message"]),
                                    contract.EXIT_BAD_INPUT if event.get("kind") == "input" else EXIT_INFRA)
                if stream == 2:
                    text = printable(redact.text(line.decode(errors="replace")))
                    log_lines.append(text)
                    if verbose:
                        print(text, file=sys.stderr)
            else:
                raise Infrastructure(f"the runner stopped before Tempest was configured; its log is in {log_path}")
        finally:
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                private_files.write_atomically(log_path, "".join(line + "\n" for line in log_lines).encode())
            except OSError:
                pass  # the log is a convenience; the shell does not depend on it
        print(
            "tcup: Tempest is configured; your directory is at /workspace. Start the tests by hand with:\n"
            f"    {printable(event.get('command', 'tempest run'))}\n"
            "Leave the shell (exit) and the container is gone.",
            flush=True,
        )
        return container.shell()
