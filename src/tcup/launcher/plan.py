"""`tcup plan` (and `tcup --dry-run`): what a run with these options would
do, found by the runner as a run finds it; no test starts."""

import shlex
import sys

from tcup import contract
from tcup.launcher import launch
from tcup.contract import EXIT_INFRA, EXIT_OK
from tcup.launcher.errors import TcupError
from tcup.launcher.interrupts import Leftovers
from tcup.launcher.progress import Progress
from tcup.launcher.version import invoked_as


def command(args) -> int:
    """A run's first phases (check, image), then the plan instead of the tests;
    with --json, the plan as one JSON object on stdout and the rest on stderr."""
    if not args.json:
        return _plan(args)
    import json
    from contextlib import redirect_stdout

    document = {}
    with redirect_stdout(sys.stderr):
        code = _plan(args, document)
    print(json.dumps(document), flush=True)
    return code


def _plan(args, document=None) -> int:
    from tcup.launcher.engine.container import Container

    checked = launch.check(args)
    with Leftovers() as left:
        ready = launch.image(args)
        left.container = Container(ready.engine, ready.tag)
        return show_plan(left.container, checked.settings("plan", ready.proxies), checked.redact, args.verbose,
                         args.output, checked.rule, document)


def show_plan(container, settings, redact, verbose: bool, output=None, rule=None, document=None) -> int:
    """`tcup plan`: the runner selects and discovers, and says what a run
    would do, and by which verdict rule it would be judged; no test starts.
    ``document`` (for --json) gets the plan event, the rule and the expected duration."""
    from tcup.launcher.results import listing

    progress = Progress(redact, verbose=verbose)
    with container:
        container.send(settings.to_line())
        for stream, line in container.output():
            progress.feed(stream, line)
        code = container.exit_code()
    if progress.plan is None or code != contract.EXIT_OK:
        exit_code, message = (progress.failure(code, container.out_of_memory())
                              or (EXIT_INFRA, f"the runner ended without a plan (exit {code})"))
        raise TcupError(message, exit_code)
    from tcup.launcher.cloud.identity import credentials_mode

    if rule is not None:
        print(f"tcup: verdict rule: {rule.id} ({rule.requires})", file=sys.stderr)
    # Only runs like this one tell its duration: the same cloud, tests, mode and concurrency.
    last = listing.earlier_run(settings.selection.label, credentials_mode(settings.cloud), settings.cloud.cpid,
                               settings.concurrency, output)
    estimate = listing.expected_duration(last)
    print(f"tcup: expected duration: {estimate}" if estimate else
          "tcup: expected duration: unknown (no earlier run of these tests is saved)", file=sys.stderr)
    if document is not None:
        document.update({key: value for key, value in progress.plan.items() if key != "event"})
        document.update(label=settings.selection.label, rule=rule.id if rule else None,
                        expected_seconds=last["duration_seconds"] if last else None, expected_duration=estimate)
    print(f"tcup: nothing was run; run the tests with: {invoked_as()} "
          + " ".join(shlex.quote(arg) for arg in sys.argv[1:] if arg not in ("plan", "--dry-run")), file=sys.stderr)
    return EXIT_OK
