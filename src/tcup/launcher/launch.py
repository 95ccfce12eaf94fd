"""The launcher's commands, each a short story of steps.

Data flows one way: credentials -> checked -> container -> results -> upload.
"""

import os
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tcup import contract
from tcup.launcher.cloud import credentials as credentials_
from tcup.launcher.errors import (
    EXIT_INFRA,
    EXIT_OK,
    BadInput,
    Infrastructure,
    TcupError,
    printable,
)
from tcup.launcher.progress import Progress, plural, secret_mask
from tcup.launcher.version import invoked_as, version

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy")
PROMPT_TRIES = 3  # a secret typed at the terminal is asked for this many times


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or an ending signal (cli.ENDING_SIGNALS), with what it
    interrupted and what is left, in words the CLI prints as they are."""


@contextmanager
def interrupted(what_is_left):
    """Say what an interrupt stopped: ``what_is_left()`` is asked when it
    comes, so it tells what is true then."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(what_is_left()) from None


def run(args, summary: Optional[dict] = None, rerun=None) -> int:
    """`tcup`: check, run in a container, save, report, upload. ``summary``
    (for --json) gets the saved run's verdict, counts, directory and upload URL.
    ``rerun`` (a results.rerun.Plan, for `tcup rerun`) gives the tests and
    settings instead of the options, and its run is merged into the new one."""
    # 1. Read what the user gave us and refuse early what cannot work.
    from tcup.launcher import rules

    waiver_list = load_waivers(args.waivers)
    if rerun is not None:
        test_list, selection = rerun.test_list, rerun.selection
        choices, concurrency = rerun.choices, rerun.concurrency
        rule = rules.STRICT if args.strict else rerun.rule
    else:
        test_list, selection = choose_tests(args.guideline, args.target, args.test_list, args.regex)
        skip = sorted({kind.strip() for value in args.skip_service for kind in value.split(",") if kind.strip()})
        choices = contract.Choices(image=args.image, flavor=args.flavor, network=args.network,
                                   image_alt=args.image_alt, flavor_alt=args.flavor_alt,
                                   tempest_options=dict(args.tempest_options), skip_services=skip)
        concurrency = args.concurrency
        rule = rules.applied(test_list, args.strict)
    check_tempest_options(choices.tempest_options, rerun is not None)
    # 2. Ask Keystone for a token before any container exists.
    credentials, cloud, redact = authenticate(args.keyring)
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
    # 3. Make sure the results have a place before the tests start (the
    #    directory itself is made when the container starts).
    run_dir = None if args.debug or args.dry_run else _results_run(args.output or (rerun and rerun.root))
    container = None
    try:
        # 4. The image: reused when present, built when missing.
        from tcup.launcher.engine.container import Container, Engine, answers, describe
        from tcup.launcher.engine.image import Image

        with interrupted(lambda: "while preparing the image; no test ran and nothing was saved"):
            engine = Engine.connect()
            host_proxies = proxies()
            tag = Image(args.ca_cert).ensure(engine, rebuild=args.rebuild, proxies=host_proxies)
        settings = contract.Settings(
            credentials=credentials,
            cloud=cloud,
            selection=selection,
            mode="debug" if args.debug else "plan" if args.dry_run else "run",
            concurrency=concurrency,
            choices=choices,
            accounts=accounts,
            proxy={name.lower(): value for name, value in host_proxies.items()},
        )
        if args.debug:
            container = Container(engine, tag, workspace=Path.cwd())
            return debug_shell(container, settings, redact, args.verbose)
        if args.dry_run:
            container = Container(engine, tag)
            return show_plan(container, settings, redact, args.verbose, args.output, rule)
        # 5. The container runs the tests and dissolves.
        started = time.time()
        # What `tcup rerun` repeats; a rerun keeps the earlier run's whole selection,
        # so resuming it runs what is still not done.
        settings_record = (rerun.record(rule, cloud) if rerun is not None
                           else rerun_record(selection, test_list, concurrency, choices, rule, cloud))
        progress = Progress(redact, verbose=args.verbose, history=run_dir.root, selection=selection, rule=rule)
        run_dir.begin()
        container = Container(engine, tag, results=run_dir.incomplete)
        # progress ends its live line before the container's cleanup says anything.
        with container, progress:
            container.send(settings.to_line())
            recorded = False
            for stream, line in container.output():
                progress.feed(stream, line)
                if not recorded and progress.tests_began is not None:
                    # Once tests run, an interrupted run can be resumed (`tcup rerun`): it needs
                    # this record. Not earlier: a run stopped before its tests leaves no directory.
                    recorded = record_settings(run_dir.incomplete, settings_record)
            code = container.exit_code()
            outcome = progress.outcome(code)
            if outcome.message and not answers(engine):
                # The runner's output ended because the engine went (stopped, crashed).
                raise Infrastructure(f"{describe(engine)} stopped answering during the run")
        if outcome.message:
            raise TcupError(outcome.message, outcome.exit_code)
    except BaseException as error:
        if run_dir is not None:
            run_dir.discard_if_empty()
        if isinstance(error, KeyboardInterrupt) and not isinstance(error, Interrupted):
            raise Interrupted(_left_after_interrupt(container, run_dir)) from None
        if run_dir is not None:
            if isinstance(error, TcupError) and run_dir.incomplete.exists():
                # The runner did not finish: what it wrote stays, marked incomplete.
                raise TcupError(f"{error}; what it wrote is kept, marked incomplete, in {run_dir.incomplete}",
                                error.exit_code) from None
        raise
    # 6. Save: compliance report and metadata, then mark the run complete.
    with interrupted(lambda: "while saving the results; they are kept, not uploaded, in "
                             f"{run_dir.path if run_dir.path.exists() else run_dir.incomplete}"):
        try:
            final = finish_results(run_dir.incomplete, rerun, waiver_list, rule)
            path = save(run_dir, test_list, selection, cloud, progress, started, tag, final=final, rule=rule,
                        settings=settings_record, merged_from=rerun.merged_from if rerun is not None else None)
            if final is not None:
                outcome = final.conclusion
        except OSError as error:
            # A full disk, say: every write is atomic, so what the runner wrote is whole.
            raise Infrastructure(f"cannot finish saving the results ({error.strerror or error}); the tests' results "
                                 f"are kept, marked incomplete and not uploaded, in {run_dir.incomplete}") from None
        from tcup.launcher.results import report

        report.write_after_run(path)  # report.html: the run as one page to open or send
        print(progress.summary_text(path), flush=True)
        if summary is not None:
            summary.update(run_summary(path, final.counts["selected"] if final is not None else progress.selected))
    # 7. Upload, only after everything is on disk.
    if args.no_upload:
        print(f"tcup: not uploaded (--no-upload); upload later with: {invoked_as()} upload {shlex.quote(str(path))}")
        return outcome.exit_code
    uploaded = upload_run(path, UploadOptions.from_args(args))
    if summary is not None and uploaded == EXIT_OK:
        summary["upload_url"] = uploaded_url(path)
    return uploaded or outcome.exit_code


def authenticate(use_keyring: bool):
    """The user's credentials (a missing secret asked for at the terminal),
    checked with Keystone before any container exists: (credentials, the
    cloud's facts, the mask of what TCUP prints)."""
    prompts = []  # what the user was asked at the terminal, to ask again after a typo

    def ask(question: str) -> str:
        prompts.append(question)
        return credentials_.prompt_secret(question)

    credentials = credentials_.load(use_keyring=use_keyring, prompt=ask)
    from tcup.launcher.cloud import identity

    with interrupted(lambda: "while asking Keystone for a token; no container was started and nothing was saved"):
        for attempt in range(1, PROMPT_TRIES + 1):
            try:
                cloud = identity.check(credentials)
                break
            except identity.Rejected as error:
                # A secret typed at the prompt may be a typo: ask again, as
                # sudo and ssh do; one from the environment or keyring is final.
                if not prompts or attempt == PROMPT_TRIES:
                    raise
                print(f"tcup: {error}; try again", file=sys.stderr, flush=True)
                credentials = credentials_.with_secret(credentials, ask(prompts[0]))
    if credentials.auth_type == credentials_.APP_CREDENTIAL:
        # Tempest's credential classes and accounts.yaml hold users and
        # passwords only; discover-tempest-config fails on anything else.
        raise BadInput(
            "Keystone accepts this application credential, but Tempest 47 can only test as a user with a password; "
            "set OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME instead"
        )
    return credentials, cloud, secret_mask(credentials)


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


def run_summary(path: Path, selected: int) -> dict:
    """The --json summary of a saved run, from its run.json."""
    from tcup.launcher.results.runs import RUN_FILE, json_object

    meta = json_object(path / RUN_FILE) or {}
    counts = {"selected": selected, **{key: meta.get(key, 0) for key in ("passed", "failed", "skipped", "missing")}}
    return {"verdict": meta.get("verdict"), "rule": meta.get("rule"), "counts": counts,
            "skip_reasons": meta.get("skip_reasons") or [], "label": meta.get("label"), "run_directory": str(path)}


def uploaded_url(path: Path) -> Optional[str]:
    """The URL of the run's newest upload, from its upload record."""
    import json

    from tcup.launcher.results.runs import read_file
    from tcup.launcher.upload.refstack import UPLOADS_FILE

    try:
        return json.loads(read_file(path / UPLOADS_FILE))[-1]["url"]
    except (OSError, ValueError, LookupError, TypeError):
        return None


def member_accounts(path, credentials, cloud) -> list:
    """--accounts: more members for parallel workers, each checked with
    Keystone now (a wrong password costs a second here, an hour later)."""
    if path is None:
        return []
    if cloud.admin:
        raise BadInput("--accounts is for member runs; you are an admin, and Tempest makes the accounts it needs "
                       "(dynamic credentials): drop --accounts")
    from tcup.launcher.cloud import identity

    accounts = credentials_.load_accounts(path, credentials)
    for number, account in enumerate(accounts, 1):
        with interrupted(lambda: "while checking the --accounts; no container was started and nothing was saved"):
            try:
                identity.check(account)
            except BadInput as error:
                raise BadInput(f"--accounts {path}, account {number} ({account.username}): {error}") from None
    return accounts


def show_plan(container, settings, redact, verbose: bool, output=None, rule=None) -> int:
    """`tcup plan`: the runner selects and discovers, and says what a run
    would do, and by which verdict rule it would be judged; no test starts."""
    from tcup.launcher.results import runs as results

    progress = Progress(redact, verbose=verbose)
    with container:
        container.send(settings.to_line())
        for stream, line in container.output():
            progress.feed(stream, line)
        code = container.exit_code()
    if progress.plan is None or code != contract.EXIT_OK:
        outcome = progress.outcome(code)
        raise TcupError(outcome.message or f"the runner ended without a plan (exit {code})", outcome.exit_code)
    from tcup.launcher.cloud.identity import credentials_mode

    if rule is not None:
        print(f"tcup: verdict rule: {rule.id} ({rule.requires})")
    estimate = results.expected_duration(settings.selection.label, credentials_mode(settings.cloud), output)
    print(f"tcup: expected duration: {estimate}" if estimate else
          "tcup: expected duration: unknown (no earlier run of these tests is saved)")
    print(f"tcup: nothing was run; run the tests with: {invoked_as()} "
          + " ".join(shlex.quote(arg) for arg in sys.argv[1:] if arg not in ("plan", "--dry-run")))
    return EXIT_OK


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
        test_list = guideline.load(guideline_name, target)
    else:
        return None, contract.Selection(label=f"regex {regex}", regex=regex)
    tests = [{"name": t["name"], "uuid": t["uuid"]} for t in test_list.tests]
    label = test_list.label + (f" matching {regex}" if regex else "")
    return test_list, contract.Selection(label=label, tests=tests, regex=regex)


def _results_run(root):
    from tcup.launcher.results.runs import Run

    return Run.plan(root)


def _left_after_interrupt(container, run_dir) -> str:
    """What an interrupt of the container's part of a run left, as it is now."""
    if container is None or container.id is None:
        gone = "before any container was started"
    elif container.removed:
        gone = "while the container ran; the container is stopped and removed"
    else:
        gone = "while the container ran; the container may be left (see the warning above)"
    cleaned = ""
    if run_dir is not None and (run_dir.incomplete / contract.CLEANUP_FILE).exists():
        from tcup.launcher.progress import cleanup_lines
        from tcup.launcher.results.runs import json_object

        lines = cleanup_lines(json_object(run_dir.incomplete / contract.CLEANUP_FILE) or {})
        cleaned = "".join("\n" + line for line in lines) + ("\n" if lines else "")
        gone += "; what the tests created in the cloud was removed" if not any("warning" in l for l in lines) else ""
    if run_dir is not None and run_dir.incomplete.exists():
        return (f"{gone}; the results of the tests that finished are kept, marked incomplete, "
                f"in {run_dir.incomplete}{cleaned}")
    return f"{gone}; nothing was saved{cleaned}"


def proxies() -> dict:
    """The host's proxy settings (either case), under Docker's build-arg names."""
    found = {}
    for name in PROXY_VARIABLES:
        value = os.environ.get(name) or os.environ.get(name.upper())
        if value:
            found[name.upper()] = value
    return found


def debug_shell(container, settings, redact, verbose: bool = False) -> int:
    """`tcup --debug`: Tempest configured, the user's directory at
    /workspace, an interactive shell; no tests start. Discovery's log goes to
    a file (on the terminal too with -v), so the shell starts quietly."""
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


def load_waivers(path: Optional[Path]) -> list:
    """--waivers FILE, read before anything runs (a malformed file is one
    line, exit 2); each expired waiver is said now, once."""
    if path is None:
        return []
    import datetime

    from tcup.launcher.results import waivers

    found = waivers.load(path)
    for line in waivers.expired_lines(found, datetime.date.today()):
        print(printable(f"tcup: warning: {line}"), file=sys.stderr, flush=True)
    return found


def rerun_record(selection, test_list, concurrency, choices, rule, cloud) -> dict:
    from tcup.launcher.results import rerun as rerun_

    return {**rerun_.record(selection, test_list, concurrency, choices), **rerun_.judged(rule, cloud)}


def record_settings(results_dir: Path, record: dict) -> bool:
    """settings.json in a running run's directory: what resuming it repeats."""
    from tcup.launcher.results import rerun as rerun_
    from tcup.launcher.results.runs import write_json

    try:
        write_json(results_dir / rerun_.SETTINGS_FILE, record)
    except OSError:
        pass  # only a resume needs it; the run goes on, and says at the end if it cannot save
    return True


class Final:
    """A merged or waived run's counts and verdict, from its result files."""

    def __init__(self, conclusion, counts: dict, waiver_lines: list):
        self.conclusion, self.counts, self.waiver_lines = conclusion, counts, waiver_lines


def finish_results(results_dir: Path, rerun, waiver_list: list, rule) -> Optional[Final]:
    """Merge a rerun into its earlier run and mark the waived failures, in
    the result files; the verdict (by ``rule``) then follows from them. None
    for a plain run: the runner's counts stand."""
    if rerun is None and not waiver_list:
        return None
    import datetime

    from tcup.launcher.rules import skip_reasons, verdict
    from tcup.launcher.results import rerun as rerun_
    from tcup.launcher.results import waivers
    from tcup.launcher.results.runs import json_object, status_counts, write_json

    tests_file = results_dir / contract.TESTS_FILE
    document = json_object(tests_file)
    if document is None:
        return None
    if rerun is not None:
        document = rerun_.merge(rerun, results_dir)
    today = datetime.date.today()
    waived = waivers.apply(document["tests"], waiver_list, today)
    write_json(tests_file, document)
    if rerun is not None:
        rerun_.write_summary(rerun, results_dir, document)
    tests = document["tests"]
    number = status_counts(tests)
    counts = {"selected": len(tests), "passed": number["success"], "failed": number["fail"],
              "skipped": number["skip"], "missing": len(document.get("missing") or []), "waived": waived,
              "flaky": sum(bool(t.get("flaky")) for t in tests)}
    conclusion = verdict(counts["selected"], counts["passed"], counts["failed"], counts["skipped"],
                         counts["missing"], waived, rule, skip_reasons(tests))
    lines = waivers.summary_lines(tests, waivers.expired_lines(waiver_list, today))
    return Final(conclusion, counts, lines)


def rerun(args, summary: Optional[dict] = None) -> int:
    """`tcup rerun RUN`: the failed and not-run tests of a saved run again,
    saved as a new run that merges both."""
    from tcup.launcher.results import rerun as rerun_
    from tcup.launcher.results.runs import find_run

    plan = rerun_.plan(find_run(str(args.run), args.output))
    plan.settings["choices"]["tempest_options"].update(dict(args.tempest_options))
    return run(args, summary, rerun=plan)


def save(run_dir, test_list, selection, cloud, progress, started, image_tag=None, final=None, settings=None,
         merged_from=None, rule=None) -> Path:
    """Write the compliance report and run.json; mark the run complete.
    ``final`` (from finish_results) holds the counts and verdict of a merged
    or waived run; ``settings`` is what `tcup rerun` repeats; ``rule`` what
    the verdict is judged by (the progress's own when not given)."""
    from tcup.launcher import rules
    from tcup.launcher.results import runs as results

    rule = rule or progress.rule
    outcome = results.json_object(run_dir.incomplete / contract.TESTS_FILE)
    skips = rules.skip_reasons(outcome["tests"]) if outcome is not None else []
    done = progress.done or {}
    conclusion = final.conclusion if final is not None else progress.outcome(0, skips)
    metadata = {
        "tcup_version": version(),
        "image": image_tag,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "label": selection.label,
        "guideline": getattr(test_list, "guideline", None),
        "target": getattr(test_list, "target", None),
        "cpid": cloud.cpid,
        "credentials": progress.mode.get("credentials"),
        "concurrency": progress.mode.get("concurrency"),
        "accounts": progress.mode.get("accounts"),
        "choices": progress.choices,
        "cleanup": progress.cleanup,
        "duration_seconds": done.get("duration_seconds"),
        "passed": done.get("passed", 0),
        "failed": done.get("failed", 0),
        "skipped": done.get("skipped", 0),
        "admin_skipped": done.get("admin_skipped", 0),
        "missing": len(progress.missing),
        # compliant, failed, or not compliant (skipped or missing tests, by a
        # rule that counts them); with --waivers also "compliant with waivers"
        "verdict": conclusion.verdict,
        "rule": rule.id,  # what the verdict was judged by (launcher/rules.py)
        "skip_reasons": [{"reason": reason, "count": count} for reason, count in skips],
        "selected": progress.selected,
        "settings": settings,
    }
    if final is not None:
        metadata.update(final.counts)
    if merged_from:
        metadata["merged_from"] = merged_from
    if test_list is not None and outcome is not None:
        write_compliance(run_dir.incomplete, test_list, outcome, rule, progress)
    # summary.txt holds what the terminal showed: the runner's summary, the
    # compliance table and the verdict.
    summary_file = run_dir.incomplete / contract.SUMMARY_FILE
    try:
        summary = results.read_file(summary_file)
    except OSError:
        summary = None  # the runner wrote none (or planted something else there)
    if summary is not None:
        parts = [summary.rstrip(), "\n".join(final.waiver_lines) if final is not None else "",
                 (progress.compliance or "").rstrip(), "Verdict: " + conclusion.verdict_words]
        results.write_file(summary_file, "\n\n".join(part for part in parts if part) + "\n")
    return run_dir.complete(metadata)


def write_compliance(results_dir: Path, test_list, outcome: dict, rule, progress) -> None:
    """compliance.json and compliance.txt by ``rule``; the table (without
    each skip) for the terminal's summary."""
    from tcup.launcher.results import compliance
    from tcup.launcher.results.runs import write_file, write_json

    report = compliance.report(test_list, outcome["tests"], outcome.get("missing", []), rule)
    write_json(results_dir / "compliance.json", report)
    write_file(results_dir / "compliance.txt", compliance.render(report))
    progress.compliance = compliance.render(report, skips=False)
    if report["totals"]["skipped"]:
        progress.compliance += "(why each test was skipped: compliance.txt in the run directory)\n"


@dataclass(frozen=True)
class UploadOptions:
    """Where and how to upload: the options `tcup` and `tcup upload` share."""

    url: Optional[str]  # --upload-url; None: $REFSTACK_URL, else refstack.openstack.org
    sign_key: Optional[Path]
    retries: int
    timeout: float

    @classmethod
    def from_args(cls, args) -> "UploadOptions":
        return cls(args.upload_url, args.sign_key, args.upload_retries, args.upload_timeout)


def _passphrase() -> str:
    import getpass

    return getpass.getpass("Passphrase for the signing key: ")


def upload_run(path: Path, options: UploadOptions, force: bool = False) -> int:
    """Upload a saved run; on failure keep it and say how to resume."""
    from tcup.launcher.upload import refstack as upload
    from tcup.launcher.upload.signing import SigningError

    base_url = upload.upload_url(options.url)
    try:
        url = upload.upload(
            path,
            base_url,
            sign_key=options.sign_key,
            passphrase=_passphrase if sys.stdin.isatty() else None,
            retry=upload.Retry(tries=options.retries, max_total=options.timeout),
            confirm=_confirm if sys.stdin.isatty() else None,
            force=force,
            log=lambda message: print(f"tcup: {message}", file=sys.stderr, flush=True),
        )
    except SigningError as error:
        raise BadInput(str(error))
    except upload.UploadError as error:
        print(f"tcup: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        raise Interrupted(f"while uploading to {base_url}; the upload did not finish, and {path} is kept as it was; "
                          f"to upload it: {upload.resume_command(path, base_url, options.sign_key)}") from None
    print(f"tcup: uploaded: {url}", flush=True)
    return EXIT_OK


def _confirm(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def upload_saved(args) -> int:
    """`tcup upload RUN`: the resume path for a run that was not uploaded."""
    if not args.run.exists():
        raise BadInput(f"{args.run} does not exist; give a run directory (see `tcup results`) or a RefStack JSON file")
    return upload_run(args.run, UploadOptions.from_args(args), force=args.force)


def pubkey(args) -> int:
    """`tcup pubkey`: what a RefStack server asks for to register a key."""
    from tcup.launcher.upload import signing

    try:
        key = signing.load_key(args.sign_key, _passphrase if sys.stdin.isatty() else None)
    except signing.SigningError as error:
        raise BadInput(str(error))
    public, signature = signing.registration(key)
    print(f"public key:\n{public}\n\nself-signature (over the bytes 'signature'):\n{signature}")
    return EXIT_OK



def build_image(args) -> int:
    """`tcup image`: build ahead of time (or check), print the tag; or
    save it to a file, or load it from one, for a machine with no PyPI."""
    from tcup.launcher.engine.container import Engine
    from tcup.launcher.engine.image import Image

    engine = Engine.connect()
    image = Image(None if args.load or args.prune else args.ca_cert)
    if args.prune:
        print(image.prune(engine).report(image.tag))
        return EXIT_OK
    if args.load:
        image.load(engine, args.load)
    else:
        with interrupted(lambda: "while preparing the image; a build that had not finished tagged nothing"):
            image.ensure(engine, rebuild=args.rebuild, proxies=proxies())
    if args.save:
        image.save(engine, args.save)
        print(f"tcup: saved {image.tag} to {args.save}; on the other machine: tcup image --load {args.save.name}",
              file=sys.stderr)
    print(image.tag)
    return EXIT_OK
