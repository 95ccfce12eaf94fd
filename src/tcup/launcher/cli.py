"""Command line: parse, and hand over to the command named (COMMAND_TABLE).
`tcup [options]` runs the tests; the other commands work on saved runs, the
image, a signing key and the cloud (EPILOG lists them).

Imports here stay light so that --help and --version answer at once; each
command's module is imported when it runs.
"""

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Callable, NamedTuple

from tcup.launcher.errors import EXIT_INTERRUPTED, TcupError

TARGETS = ("platform", "compute", "object", "dns", "orchestration", "iaas")

DESCRIPTION = """\
Run OpenStack's interop tests (Tempest) against your cloud from a container,
save the results, and upload them to RefStack.

Credentials come from your openrc (OS_AUTH_URL, OS_USERNAME, OS_PROJECT_NAME,
...) or OS_CLOUD and clouds.yaml. A missing password is asked for.
"""

EPILOG = """\
other commands:
  tcup plan [options]  what a run with these options would do: services, image, flavor,
                       network, accounts, tests per service, expected duration; runs no test
  tcup upload RUN      upload a saved run (its directory or name, or a RefStack JSON file)
  tcup results         list saved runs
  tcup rerun RUN       run a saved run's failed and not-run tests again (resume an interrupted
                       NAME.incomplete run), with its selection and settings (--flavor, --image,
                       --network, --set ... change them; --include-skipped reruns skips too); saves a
                       new run that merges both into one verdict, and marks a test that failed, then
                       passed, flaky (or passed after a change of settings)
  tcup diff RUN_A RUN_B
                       what changed from run A to run B: newly failing, passing, skipped, missing
  tcup report RUN      write the run's HTML report (report.html) again and print its path
  tcup bundle RUN      write a support bundle (.tar.gz): results, a sanitised tempest.conf,
                       services and versions; no secret, user, project or host in it
  tcup cleanup RUN     remove from the cloud what a saved run recorded creating (what a killed
                       run left); --dry-run shows it first
  tcup guidelines      list the shipped test lists (interop guidelines and SCS-0128)
                       and the verdict rule each is judged by
  tcup pubkey --sign-key KEY
                       print a key's public line and self-signature for RefStack
  tcup image           build the image now (or find it) and print its tag;
                       --save FILE / --load FILE carry it to an air-gapped machine;
                       --prune removes the images of other TCUP versions

verdict rules: each shipped list is judged by its own (`tcup guidelines`):
  refstack     the interop guidelines: every required test passes; a skipped
               test fails its capability
  no-failures  SCS-0128: no test fails; skips are allowed (and reported)
  strict       every selected test passes: --test-list, --regex, a guideline
               file or URL, and any list with --strict

exit codes: 0 compliant under the rule applied, 1 a test failed (any rule),
5 not compliant: none failed, but tests were skipped or are missing (under
the refstack and strict rules) or reported no result (any rule),
6 compliant with waivers (compliant but for failures that --waivers waives;
RefStack still sees them as not passed),
2 bad input, 3 could not run (container engine, image, cloud, runner),
4 upload failed (results saved; the message says how to resume),
130 interrupted.
"""


def _upload_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("upload")
    group.add_argument("--upload-url", metavar="URL",
                       help="RefStack API to upload to (default: $REFSTACK_URL, else https://refstack.openstack.org/api)")
    group.add_argument("--sign-key", metavar="KEY", type=Path,
                       help="sign the upload with this RSA private key (PEM or OpenSSH); results then carry your identity")
    group.add_argument("--upload-retries", metavar="N", type=_positive_int, default=5,
                       help="tries before an upload is given up (default: 5)")
    group.add_argument("--upload-timeout", metavar="SECONDS", type=_positive_float, default=120.0,
                       help="give up retrying an upload after this long (default: 120)")


def _image_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image")
    group.add_argument("--rebuild", action="store_true", help="build the image anew, without cached layers (fresh Debian and PyPI files)")
    group.add_argument("--ca-cert", metavar="FILE", type=Path, default=os.environ.get("TCUP_CA_CERT") or None,
                       help="extra CA certificates (PEM) the image trusts, for building and running behind a "
                            "TLS-inspecting proxy (default: $TCUP_CA_CERT)")


class Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean --no-upload?" for a mistyped option."""

    def error(self, message):
        import difflib
        import re

        unknown = re.findall(r"(?<![\w-])(--?[\w-]+)", message.partition("unrecognized arguments:")[2])
        known = [option for action in self._actions for option in action.option_strings]
        for word in unknown:
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {close[0]}?)"
                break
        super().error(message)


class _Version(argparse.Action):
    """argparse's own version action, but the line (which hashes the image's
    build context) is made only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from tcup.launcher.version import describe

        print(describe())
        parser.exit()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _tempest_option(text: str):
    key, equals, value = text.partition("=")
    section, dot, option = key.partition(".")
    if not (equals and dot and section.strip() and option.strip()) or "\n" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not SECTION.KEY=VALUE (e.g. compute-feature-enabled.resize=true)")
    # Which options are refused is checked with the run's own (launch.check_tempest_options).
    return key.strip(), value.strip()


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def run_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tcup", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action=_Version, help="print TCUP's version and the image it drives, and exit")
    parser.add_argument("--debug", action="store_true",
                        help="open a shell in the container with Tempest configured and this directory at /workspace; run no tests")
    tests = parser.add_argument_group("which tests")
    tests.add_argument("--guideline", metavar="VERSION|FILE|URL",
                       help="interop guideline: a shipped list (2020.06, 2019.11, next, scs-0128; see `tcup guidelines`), a guideline JSON file or URL, "
                            "or a RefStack test-list URL (default: the newest, 2020.06)")
    tests.add_argument("--target", choices=TARGETS,
                       help="guideline target (default: platform, or the add-on's own target)")
    tests.add_argument("--test-list", metavar="FILE", type=Path,
                       help="run the tests of a RefStack test list (name[id-<uuid>,...] per line), matched by id")
    tests.add_argument("--regex", metavar="REGEX", help="run the tests whose names match REGEX")
    _strict_option(tests, "judge the run by the strict rule: every selected test passes, a skip makes it not "
                          "compliant (exit 5); the default for --test-list and --regex, while each shipped list "
                          "has its own rule (see `tcup guidelines`)")
    tests.add_argument("--concurrency", metavar="N", type=_positive_int,
                       help="parallel test workers (default: the CPU count; for a member, one per account)")
    tests.add_argument("--dry-run", action="store_true", help="the same as `tcup plan`: show what would run, run nothing")
    creds = parser.add_argument_group("credentials")
    creds.add_argument("--keyring", action="store_true",
                       help="read a missing password or application-credential secret from the OS keyring (see README)")
    creds.add_argument("--accounts", metavar="FILE", type=Path,
                       help="more member accounts, one test worker each: Tempest's accounts.yaml form "
                            "(username, password, project_name, ...) or a clouds.yaml")
    cloud = parser.add_argument_group("the cloud's resources for the tests")
    _resource_options(cloud)
    cloud.add_argument("--skip-service", metavar="TYPE[,TYPE]", action="append", default=[],
                       help="run as if the catalog lacked these service types (e.g. a service that is down): "
                            "their tests skip")
    _set_option(cloud, "a tempest.conf value over discovery's, e.g. compute-feature-enabled.resize=true (repeatable)")
    _image_options(parser)
    results = parser.add_argument_group("results")
    results.add_argument("--output", metavar="DIR", type=Path,
                         help="save runs under DIR (default: $XDG_DATA_HOME/tcup/runs)")
    results.add_argument("--no-upload", action="store_true", help="save the results only; upload nothing")
    results.add_argument("--json", action="store_true",
                         help="print the run's summary as one JSON object on stdout (verdict, counts, run directory, "
                              "upload URL), and the rest on stderr; with plan, the plan (services, tests per "
                              "service, skips, rule, expected duration)")
    _waiver_option(results)
    _upload_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the runner's log")
    return parser


def _resource_options(group) -> None:
    """--image, --image-alt, --flavor, --flavor-alt and --network, for `tcup`
    and `tcup rerun` alike (contract.Choices by the same names)."""
    group.add_argument("--image", metavar="NAME|ID",
                       help="the image the tests boot (default: a CirrOS the cloud has, else its smallest image that "
                            "a flavor can boot); TCUP never uploads one")
    group.add_argument("--image-alt", metavar="NAME|ID",
                       help="the second image, which some tests rebuild servers onto (default: the next smallest that "
                            "a flavor boots along with the first)")
    group.add_argument("--flavor", metavar="NAME|ID",
                       help="the flavor of the tests' servers (default: the smallest with a disk that fits the "
                            "images' min_disk and min_ram; a flavor without a disk only when named here)")
    group.add_argument("--flavor-alt", metavar="NAME|ID",
                       help="the second flavor, which tests resize servers to (default: the next one after --flavor)")
    group.add_argument("--network", metavar="NAME|ID",
                       help="as a member, the network the tests' servers use (default: your project's only network)")


def _set_option(group, text: str) -> None:
    """--set, parsed and checked alike by `tcup` and `tcup rerun`."""
    group.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="tempest_options",
                       type=_tempest_option, help=text)


def _strict_option(group, text: str) -> None:
    """--strict, for `tcup` and `tcup rerun` alike."""
    group.add_argument("--strict", action="store_true", help=text)


def _waiver_option(group) -> None:
    group.add_argument("--waivers", metavar="FILE", type=Path,
                       help="known failures to waive: a YAML list of {test: uuid or regex, reason, bug: URL, "
                            "expires: YYYY-MM-DD}; a waived failure is shown as waived, never uploaded as passed, "
                            "and with no other failure the verdict is 'compliant with waivers' (exit 6)")


def rerun_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup rerun",
                    description="Run again the failed and not-run tests of a saved run (of an interrupted "
                                "NAME.incomplete run too: that resumes it), with the selection, concurrency and "
                                "choices it recorded, and save a new run that merges both: one verdict, one "
                                "compliance report, one result to upload. Credentials come from the environment, "
                                "as for any run; they must reach the same cloud (cpid) in the same mode (admin or "
                                "member) as the earlier run's, or nothing is run (exit 2).")
    parser.add_argument("run", metavar="RUN", help="a run directory, or a run's name as `tcup results` lists it")
    creds = parser.add_argument_group("credentials")
    creds.add_argument("--keyring", action="store_true", help="read a missing password from the OS keyring")
    creds.add_argument("--accounts", metavar="FILE", type=Path,
                       help="more member accounts, one test worker each (as for a run)")
    parser.add_argument("--include-skipped", action="store_true",
                        help="run the earlier run's skipped tests again too (e.g. after --set enables a feature)")
    cloud = parser.add_argument_group("the cloud's resources for the tests",
                                      "the earlier run's choices stand unless given here (the defaults below are a "
                                      "new run's); each one given replaces the earlier run's, and the new run records "
                                      "it; a test that failed and passes after such a change is 'passed after a "
                                      "change of settings', not flaky")
    _resource_options(cloud)
    _set_option(cloud, "a tempest.conf value over the run's own (its --set) and discovery's, e.g. once the "
                       "cause of a failure is fixed (repeatable); the new run records it")
    _strict_option(parser, "judge the merged run by the strict rule (every selected test passes), whatever rule "
                           "the earlier run was judged by")
    _image_options(parser)
    results = parser.add_argument_group("results")
    results.add_argument("--output", metavar="DIR", type=Path,
                         help="where runs given by name are, and where the new run is saved "
                              "(default: beside the run given)")
    results.add_argument("--no-upload", action="store_true", help="save the results only; upload nothing")
    results.add_argument("--json", action="store_true",
                         help="print the merged run's summary as one JSON object on stdout, and the rest on stderr")
    _waiver_option(results)
    _upload_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the runner's log")
    return parser


def upload_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup upload", description="Upload a saved run to a RefStack server.")
    parser.add_argument("run", metavar="RUN", type=Path,
                        help="a run directory, a run's name as `tcup results` lists it, or a RefStack JSON file")
    parser.add_argument("--output", metavar="DIR", type=Path,
                        help="where runs named by name are (default: $XDG_DATA_HOME/tcup/runs)")
    parser.add_argument("--force", action="store_true", help="upload even if this run is incomplete or already on that server")
    _upload_options(parser)
    return parser


def diff_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup diff", description="Compare two saved runs, test by test (matched by uuid): "
                                                  "newly failing, newly passing, newly skipped, and missing from either.")
    parser.add_argument("run_a", metavar="RUN_A", help="the earlier run: a run directory, or a run's name from `tcup results`")
    parser.add_argument("run_b", metavar="RUN_B", help="the later run, the same way")
    parser.add_argument("--output", metavar="DIR", type=Path, help="where runs given by name are (default: $XDG_DATA_HOME/tcup/runs)")
    parser.add_argument("--json", action="store_true", help="print the diff as one JSON object")
    return parser


def results_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup results", description="List saved runs; given one, show what it ran with.")
    parser.add_argument("run", metavar="RUN", nargs="?",
                        help="one run (a directory or a name from the list): its counts, verdict, the image, flavors "
                             "and network its servers used, each --set, the verdict rule and where it was uploaded")
    parser.add_argument("--output", metavar="DIR", type=Path, help="where the runs are (default: $XDG_DATA_HOME/tcup/runs)")
    parser.add_argument("--json", action="store_true",
                        help="print the runs as one JSON object (name, path, verdict, rule, counts, upload URL)")
    return parser


def report_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup report",
                    description="Write a saved run's HTML report (report.html in its directory) and print its path.")
    _saved_run(parser)
    return parser


def _saved_run(parser) -> None:
    """RUN and --output, for `tcup report` and `tcup bundle` alike."""
    parser.add_argument("run", metavar="RUN", type=Path, help="a run directory, or a run's name as `tcup results` lists it")
    parser.add_argument("--output", metavar="DIR", type=Path,
                        help="where runs named by name are (default: $XDG_DATA_HOME/tcup/runs)")


def bundle_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup bundle",
                    description="Write a support bundle of a saved run (one .tar.gz) and print its path: the results, "
                                "tempest.conf with every secret and identifier removed, the services and their "
                                "versions, and TCUP's, Tempest's and the image's versions.")
    _saved_run(parser)
    parser.add_argument("--file", metavar="FILE", type=Path,
                        help="write the bundle here (default: tcup-bundle-RUN.tar.gz in the current directory)")
    return parser


def cleanup_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup cleanup",
                    description="Remove from the cloud what a saved run (complete or NAME.incomplete) recorded "
                                "creating: the resources its tests made, by their recorded ids, and what lies in "
                                "the projects its dynamic credentials made; nothing else, and nothing by name. "
                                "It needs the credentials the run had, from the environment.")
    parser.add_argument("run", metavar="RUN", help="a run directory, or a run's name as `tcup results` lists it")
    parser.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
    creds = parser.add_argument_group("credentials")
    creds.add_argument("--keyring", action="store_true", help="read a missing password from the OS keyring")
    creds.add_argument("--accounts", metavar="FILE", type=Path,
                       help="the member accounts the run had besides yours (its --accounts)")
    parser.add_argument("--output", metavar="DIR", type=Path,
                        help="where runs named by name are (default: $XDG_DATA_HOME/tcup/runs)")
    _image_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the runner's log")
    return parser


def guidelines_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tcup guidelines",
                    description="List the test lists shipped with TCUP: date, status, tests, verdict rule, source; "
                                "apart, those TCUP's image cannot run and the Tempest plugin each needs.")
    parser.add_argument("--json", action="store_true",
                        help="print the lists as one JSON object (name, rule, tests, runnable, needs, ...)")
    return parser


def pubkey_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tcup pubkey", description="Print a signing key's public key and self-signature, to register it with RefStack."
    )
    parser.add_argument("--sign-key", metavar="KEY", type=Path, required=True, help="RSA private key (PEM or OpenSSH)")
    return parser


def image_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tcup image",
        description="Build the TCUP image unless it exists and print its tag; or carry it to a machine "
                    "with no PyPI or Debian mirror in reach: --save FILE here, --load FILE there.",
    )
    _image_options(parser)
    carry = parser.add_mutually_exclusive_group()
    carry.add_argument("--save", metavar="FILE", type=Path,
                       help="write the image (built first if missing) to FILE, a tar that `tcup image --load` reads")
    carry.add_argument("--load", metavar="FILE", type=Path,
                       help="load an image that `tcup image --save` wrote; no build, no network")
    carry.add_argument("--prune", action="store_true",
                       help="remove TCUP images of other versions (one piles up per version) and say how much space "
                            "that freed; no build")
    return parser


class Command(NamedTuple):
    parser: Callable[[], argparse.ArgumentParser]
    function: str  # "module:function", imported only when the command runs: --help and --version stay light


# Every command: its parser, and what runs it, in the module of what it acts on.
# `tcup` alone is `run`; on its command line --dry-run names `plan`, and
# --debug the debug shell.
COMMAND_TABLE = {
    "run": Command(run_parser, "tcup.launcher.launch:run_command"),
    "plan": Command(run_parser, "tcup.launcher.plan:command"),
    "debug": Command(run_parser, "tcup.launcher.debug:command"),
    "upload": Command(upload_parser, "tcup.launcher.upload.command:upload_saved"),
    "results": Command(results_parser, "tcup.launcher.results.listing:command"),
    "pubkey": Command(pubkey_parser, "tcup.launcher.upload.command:pubkey"),
    "image": Command(image_parser, "tcup.launcher.engine.command:build_image"),
    "guidelines": Command(guidelines_parser, "tcup.launcher.guideline_listing:command"),
    "report": Command(report_parser, "tcup.launcher.results.report:command"),
    "bundle": Command(bundle_parser, "tcup.launcher.results.bundle:command"),
    "diff": Command(diff_parser, "tcup.launcher.results.diff:command"),
    "rerun": Command(rerun_parser, "tcup.launcher.launch:rerun_command"),
    "cleanup": Command(cleanup_parser, "tcup.launcher.cloud.cleanup:command"),
}
COMMANDS = tuple(name for name in COMMAND_TABLE if name != "debug")  # what the first argument may name

# Signals that end TCUP by default without unwinding: a closed terminal or
# dropped ssh (SIGHUP), SIGTERM, SIGQUIT (Ctrl-\\).
ENDING_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT")


def _on_ending_signal(signum, frame):
    # The same unwinding as Ctrl-C, so `with Container` removes the container
    # on these paths too.
    raise KeyboardInterrupt


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    parser = COMMAND_TABLE[name].parser()
    args = parser.parse_args(argv)
    if name in ("run", "plan"):
        name = _run_or_plan_or_debug(name, parser, args)
    for signal_name in ENDING_SIGNALS:
        number = getattr(signal, signal_name)
        # One the parent chose to ignore (nohup) stays ignored.
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _on_ending_signal)
    return _dispatch(COMMAND_TABLE[name].function, args)


def _run_or_plan_or_debug(name: str, parser: argparse.ArgumentParser, args) -> str:
    """`tcup`'s own options name its command (--debug before --dry-run), and
    some of them exclude others."""
    chosen = "debug" if args.debug else "plan" if args.dry_run or name == "plan" else "run"
    if args.test_list and args.guideline:
        parser.error("--test-list and --guideline both choose the tests; give one")
    if args.json and chosen == "debug":
        parser.error("--json summarises a run or a plan; drop it for --debug")
    return chosen


def _dispatch(function: str, args) -> int:
    """Call a command's function under the net all share: TCUP's errors, an
    engine's, an interrupt and a closed pipe each end as one line and an exit code."""
    import importlib

    module, _, name = function.partition(":")
    try:
        return getattr(importlib.import_module(module), name)(args)
    except TcupError as error:
        print(f"tcup: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:  # noqa: BLE001 - the net under engine_request: an engine's error, one line
        if not type(error).__module__.startswith("docker."):
            raise
        from tcup.launcher.engine.connection import refusal
        from tcup.launcher.errors import Infrastructure

        refused = Infrastructure(refusal(None, "do what TCUP asked", error))
        print(f"tcup: error: {refused}", file=sys.stderr)
        return refused.exit_code
    except KeyboardInterrupt as interrupt:
        # A command that knows says what it interrupted and what is left
        # (interrupts.Interrupted); claim nothing it did not say.
        said = f" {interrupt}" if str(interrupt) else ""
        try:
            print(f"\ntcup: interrupted{said}", file=sys.stderr)
        except OSError:
            pass  # the terminal that would show it is gone (SIGHUP)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
