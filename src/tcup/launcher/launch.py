"""`tcup` and `tcup rerun`: a run of the tests in five phases: check what
was asked and the cloud, the image, execute the tests in a container, save
the results, upload them. `tcup plan` (plan.py) and the debug shell
(debug.py) share the first two.

Data flows one way: credentials -> checked -> container -> results -> upload.
"""

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

from tcup import contract
from tcup.launcher.cloud.login import authenticate, member_accounts
from tcup.contract import EXIT_OK
from tcup.launcher.errors import BadInput, Infrastructure, TcupError, plural, printable
from tcup.launcher.interrupts import Leftovers, interrupted
from tcup.launcher.progress import Progress
from tcup.launcher.version import invoked_as

def run_command(args) -> int:
    """`tcup`; with --json, the run's summary as one JSON object on stdout."""
    return run_json(args) if args.json else run(args)


def rerun_command(args) -> int:
    """`tcup rerun RUN`; with --json, as `tcup --json`."""
    return run_json(args, rerun) if args.json else rerun(args)


def run(args, summary: Optional[dict] = None, rerun=None) -> int:
    """`tcup`: check, image, execute in a container, save, upload. ``summary``
    (for --json) gets the saved run's verdict, counts, directory and upload URL.
    ``rerun`` (a results.rerun.Plan, for `tcup rerun`) gives the tests and
    settings instead of the options, and its run is merged into the new one."""
    checked = check(args, rerun)
    # The results have a place before the tests start (the directory itself
    # is made when the container starts).
    run_dir = _results_run(args.output or (rerun and rerun.root))
    with Leftovers(run_dir) as left:
        executed = execute(left, checked, image(args), args.verbose, rerun)
    path, exit_code = save_results(run_dir, checked, executed, rerun, summary)
    return upload(args, path, exit_code, summary)


@dataclass
class Checked:
    """What a run was asked for, and the cloud it runs on: checked before
    any image or container."""

    test_list: object  # a guideline.TestList; None for --regex alone
    selection: contract.Selection
    choices: contract.Choices
    concurrency: Optional[int]
    rule: object  # results.verdict.Rule: what the verdict is judged by
    waivers: list
    credentials: contract.Credentials
    cloud: contract.Cloud
    redact: object  # the mask of what TCUP prints
    accounts: list

    def settings(self, mode: str, host_proxies: dict) -> contract.Settings:
        """What the runner is sent; ``mode``: run, plan or debug."""
        return contract.Settings(credentials=self.credentials, cloud=self.cloud, selection=self.selection, mode=mode,
                                 concurrency=self.concurrency, choices=self.choices, accounts=self.accounts,
                                 proxy={name.lower(): value for name, value in host_proxies.items()})


def check(args, rerun=None) -> Checked:
    """Phase 1: read what the user gave and refuse early what cannot work;
    then the cloud: a token from Keystone, the accounts, every endpoint
    answering. ``rerun`` gives the tests and settings instead of the options."""
    from tcup.launcher.results import verdict as rules
    from tcup.launcher.results.finish import load_waivers

    waiver_list = load_waivers(args.waivers)
    if rerun is not None:
        test_list, selection = rerun.test_list, rerun.selection
        choices, concurrency = rerun.choices, rerun.concurrency
        rule = rules.STRICT if args.strict else rerun.rule
    else:
        test_list, selection = choose_tests(args.guideline, args.target, args.test_list, args.regex)
        choices, concurrency = _choices(args), args.concurrency
        rule = rules.applied(test_list, args.strict)
    check_tempest_options(choices.tempest_options, rerun is not None)
    credentials, cloud, redact = authenticate(args.keyring)  # a token, before any container exists
    if rerun is not None:
        rerun.refuse_unlike(cloud)  # merge like with like: the same cloud, the same mode
        print(printable(f"tcup: {rerun.describe()}"), file=sys.stderr, flush=True)
    accounts = member_accounts(args.accounts, credentials, cloud)
    for account in accounts:
        for secret in account.secrets():
            redact.secret(secret)
    # The region exists and every endpoint answers, before an image or a container.
    from tcup.launcher.cloud import preflight

    with interrupted(lambda: "while checking the cloud's endpoints; no container was started and nothing was saved"):
        preflight.check(credentials, cloud, choices.skip_services)
    return Checked(test_list, selection, choices, concurrency, rule, waiver_list, credentials, cloud, redact, accounts)


def _choices(args) -> contract.Choices:
    """The cloud's resources for the tests, services to skip and --set, as given."""
    skip = sorted({kind.strip() for value in args.skip_service for kind in value.split(",") if kind.strip()})
    return contract.Choices(image=args.image, flavor=args.flavor, network=args.network, image_alt=args.image_alt,
                            flavor_alt=args.flavor_alt, tempest_options=dict(args.tempest_options), skip_services=skip)


class Ready(NamedTuple):
    """The image phase's result."""

    engine: object
    tag: str  # the image's
    proxies: dict  # the host's, under Docker's build-arg names: the build's and the runner's


def image(args) -> Ready:
    """Phase 2: the image, reused when present, built when missing."""
    from tcup.launcher.engine.connection import Engine
    from tcup.launcher.engine.image import Image, host_proxies

    with interrupted(lambda: "while preparing the image; no test ran and nothing was saved"):
        engine = Engine.connect()
        proxies = host_proxies()
        tag = Image(args.ca_cert).ensure(engine, rebuild=args.rebuild, proxies=proxies)
    return Ready(engine, tag, proxies)


@dataclass
class Executed:
    """What the container's part of a run hands on to saving."""

    progress: Progress  # what the runner reported, as shown
    started: float  # time.time() as the tests were about to start
    image_tag: str
    record: dict  # what `tcup rerun` repeats (settings.json)


def execute(left: Leftovers, checked: Checked, ready: Ready, verbose: bool, rerun) -> Executed:
    """Phase 3: the container runs the tests, shown as the runner reports
    them, and dissolves."""
    from tcup.launcher.engine.connection import answers, describe
    from tcup.launcher.engine.container import Container
    from tcup.launcher.results import rerun as rerun_
    from tcup.launcher.results.finish import Asked, record_settings
    from tcup.launcher.results.timings import Timings

    settings = checked.settings("run", ready.proxies)
    run_dir, started = left.run_dir, time.time()
    left.asked = Asked(checked.test_list, checked.selection, checked.cloud, checked.rule, checked.waivers)
    # What `tcup rerun` repeats; a rerun keeps the earlier run's whole selection,
    # so resuming it runs what is still not done.
    record = (rerun.record(checked.rule, checked.cloud) if rerun is not None else
              rerun_.new_record(checked.selection, checked.test_list, checked.concurrency, checked.choices,
                                checked.rule, checked.cloud))
    progress = Progress(checked.redact, verbose=verbose, history=lambda: Timings.load(run_dir.root),
                        selection=checked.selection, concurrency=checked.concurrency)
    run_dir.begin()
    container = left.container = Container(ready.engine, ready.tag, results=run_dir.incomplete)
    # progress ends its live line before the container's cleanup says anything.
    with container, progress:
        container.send(settings.to_line())
        recorded = False
        for stream, line in container.output():
            progress.feed(stream, line)
            if not recorded and progress.tests_began is not None:
                # Once tests run, an interrupted run can be resumed (`tcup rerun`): it needs
                # this record. Not earlier: a run stopped before its tests leaves no directory.
                recorded = record_settings(run_dir.incomplete, record)
        failure = progress.failure(container.exit_code(), container.out_of_memory())
        if failure and not answers(ready.engine):
            # The runner's output ended because the engine went (stopped, crashed).
            raise Infrastructure(f"{describe(ready.engine)} stopped answering during the run")
    if failure:
        exit_code, message = failure
        raise TcupError(message, exit_code)
    return Executed(progress, started, ready.tag, record)


def save_results(run_dir, checked: Checked, executed: Executed, rerun, summary: Optional[dict]) -> Tuple[Path, int]:
    """Phase 4: the result files finished (results/finish.py), the run
    marked complete; its report.html; its summary shown. (the saved run,
    the exit code of its verdict)"""
    from tcup.launcher.results import finish, report

    asked = finish.Asked(checked.test_list, checked.selection, checked.cloud, checked.rule, checked.waivers,
                         rerun=rerun, settings=executed.record)
    with interrupted(lambda: "while saving the results; they are kept, not uploaded, in "
                             f"{run_dir.path if run_dir.path.exists() else run_dir.incomplete}"):
        try:
            finished = finish.finish(run_dir, asked, executed.progress, executed.started, executed.image_tag)
        except OSError as error:
            # A full disk, say: every write is atomic, so what the runner wrote is whole.
            raise Infrastructure(f"cannot finish saving the results ({error.strerror or error}); the tests' results "
                                 f"are kept, marked incomplete and not uploaded, in {run_dir.incomplete}") from None
        report.write_after_run(finished.path)  # report.html: the run as one page to open or send
        print(finished.text, flush=True)
        if summary is not None:
            summary.update(finish.run_summary(finished.path, finished.counts.selected))
    return finished.path, finished.conclusion.exit_code


def upload(args, path: Path, exit_code: int, summary: Optional[dict]) -> int:
    """Phase 5: upload, only after everything is on disk. An upload that
    fails gives its exit code; otherwise the verdict's stands."""
    if args.no_upload:
        print(f"tcup: not uploaded (--no-upload); upload later with: {invoked_as()} upload {shlex.quote(str(path))}")
        return exit_code
    from tcup.launcher.upload.command import UploadOptions, upload_run

    uploaded = upload_run(path, UploadOptions.from_args(args))
    if summary is not None and uploaded == EXIT_OK:
        from tcup.launcher.results import context
        from tcup.launcher.results.runs import SavedRun

        summary["upload_url"] = context.upload_url(SavedRun(path))
    return uploaded or exit_code


def check_tempest_options(options: dict, rerun: bool = False) -> None:
    """Refuse, in one line naming them all, the --set options (given now or,
    for a ``rerun``, recorded by the run it repeats) that would hold a secret
    or change what TCUP sets for its own safety (contract.PROTECTED_OPTIONS)."""
    refused = {"secret": [], "protected": []}
    for key in options:
        why = contract.option_refusal(key)
        if why:
            refused[why].append(key)
    said = []
    if refused["secret"]:
        # --set values are saved with the run (run.json); the value is never shown.
        said.append(f"--set {', '.join(refused['secret'])} would hold a secret, and --set values are saved with "
                    "the run; TCUP gives Tempest your credentials itself")
    if refused["protected"]:
        said.append(f"--set {', '.join(refused['protected'])}: TCUP sets {plural(len(refused['protected']), 'option')} "
                    "itself, to keep Tempest's logs masked, its credentials and Keystone TCUP's own and the "
                    "cleanup whole; " + ("start a new run without them" if rerun else "drop the --set"))
    if said:
        raise BadInput("; ".join(said))


def choose_tests(guideline_name: Optional[str], target: Optional[str], test_list_path: Optional[Path],
                 regex: Optional[str]):
    """The TestList (when the tests come from a list) and the Selection."""
    import re

    from tcup.launcher import guideline

    if regex:
        try:
            re.compile(regex)
        except re.error as error:
            raise BadInput(f"--regex {regex!r} is not a valid regular expression ({error})")
    if test_list_path is not None:
        test_list = guideline.load_test_list(str(test_list_path))
    elif guideline_name or not regex:
        test_list = guideline.load_runnable(guideline_name, target)
    else:
        return None, contract.Selection(label=f"regex {regex}", regex=regex)
    tests = [{"name": t["name"], "uuid": t["uuid"]} for t in test_list.tests]
    label = test_list.label + (f" matching {regex}" if regex else "")
    return test_list, contract.Selection(label=label, tests=tests, regex=regex)


def _results_run(root):
    from tcup.launcher.results.runs import Run

    return Run.plan(root)


def run_json(args, command=None) -> int:
    """`tcup --json`: one JSON object on stdout, the run's summary (also
    after an error, with its message), for scripts; the human text that
    stdout would have had goes to stderr."""
    import json
    from contextlib import redirect_stdout

    from tcup.launcher.errors import EXIT_INTERRUPTED

    summary = {"verdict": None, "counts": None, "run_directory": None, "upload_url": None}
    stdout = sys.stdout
    try:
        with redirect_stdout(sys.stderr):
            summary["exit_code"] = (command or run)(args, summary)
    except TcupError as error:
        summary.update(exit_code=error.exit_code, error=str(error))
        raise
    except KeyboardInterrupt as error:
        summary.update(exit_code=EXIT_INTERRUPTED, error=f"interrupted {error}".strip())
        raise
    finally:
        if "exit_code" in summary:
            print(json.dumps(summary), file=stdout, flush=True)
    return summary["exit_code"]


def rerun(args, summary: Optional[dict] = None) -> int:
    """`tcup rerun RUN`: the failed and not-run tests of a saved run again
    (--include-skipped: its skips too), with the choices and --set given
    over the recorded ones, saved as a new run that merges both."""
    from tcup.launcher.results import rerun as rerun_
    from tcup.launcher.results.runs import find_run

    plan = rerun_.plan(find_run(str(args.run), args.output), include_skipped=args.include_skipped)
    plan.change({name: getattr(args, name) for name in rerun_.CHANGEABLE}, dict(args.tempest_options))
    return run(args, summary, rerun=plan)
