"""`python -m tcup.runner`: the container's one process.

Reads the settings line on stdin, then: select (the load list), config
(tempest.conf), run (Tempest, live test events), results (the files in
RESULTS_DIR), done. In debug mode it stops after config, says `ready`, and
waits for the launcher's shell to end. Any failure is one `error` event and
an exit code from the contract; stdout carries events only.
"""

import dataclasses
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Optional

from tcup import contract
from tcup.contract import Settings
from tcup.runner import cleanup, config, events, process, records, redact, result_files, run, selection
from tcup.runner.errors import InfraError, InputError, RunnerError, Stopped
from tcup.runner.events import emit, log

SETTINGS_TIMEOUT = 60
# The debug shell is for a person at a terminal; a day is long enough.
DEBUG_TIMEOUT = 24 * 3600
LOAD_LIST = config.SECRET / "load-list.txt"
# What tcup.runner.foresee writes: the selected tests certain to skip.
FORESEEN = config.SECRET / "foreseen.json"
FORESEE_TIMEOUT = 300
MODES = ("run", "debug", "plan", "cleanup")
# Tempest's test packages (tempest.api.X) and the service_available option
# that says whether the cloud has the service they test.
SERVICE_OPTIONS = {"compute": "nova", "network": "neutron", "volume": "cinder", "image": "glance",
                   "object_storage": "swift"}


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_stop_signal)
    try:
        settings = read_settings()
        stop_when_stdin_closes()
        events.use_mask(redact.for_settings(settings))
        return serve(settings)
    except RunnerError as error:
        ignore_stop_signals()  # the runner is ending; a late SIGTERM must not cut the report short
        return report(error)
    except Exception as error:  # a bug: say where, without a traceback full of values
        ignore_stop_signals()
        frame = traceback.extract_tb(error.__traceback__)[-1]
        log(f"unexpected {type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}: {error}")
        return report(InfraError(f"the runner failed unexpectedly: {type(error).__name__}: {error}"))


def serve(settings: Settings) -> int:
    """The run, step by step."""
    check_settings(settings)
    if settings.mode in ("run", "cleanup"):
        check_results_dir()
    if settings.mode == "cleanup":
        return clean_by_record(settings)

    # select: Tempest's tests against the list and/or regex, first, so that
    # a list matching nothing is refused before anything else is said or done.
    env = config.prepare(settings)
    started = time.monotonic()
    installed = selection.installed_tests(env, config.WORKSPACE)
    log(f"Tempest lists {len(installed)} tests ({time.monotonic() - started:.1f} s)")
    chosen = selection.choose(installed, settings.selection, tempest_version())
    selection.write_load_list(chosen.tests, LOAD_LIST)
    emit("selected", count=len(chosen.tests), missing=chosen.missing)

    # config: tempest.conf, nothing created in the cloud.
    emit("phase", name="config", message="writing tempest.conf with discover-tempest-config")
    workspace = config.configure(settings, env)
    concurrency = choose_concurrency(settings, workspace)
    emit("mode", credentials=workspace.credentials, concurrency=concurrency,
         accounts=workspace.max_concurrency)
    emit("choices", **{key: workspace.choices.get(key) for key in
                       ("image", "image_alt", "flavor", "flavor_alt", "network", "why", "flavors")})
    available = services_available()
    if settings.mode == "plan":
        emit("plan", **plan(chosen.tests, available, foreseen_skips(workspace)))
        return contract.EXIT_OK
    check_choices(settings, workspace, chosen.tests, available)

    if settings.mode == "debug":
        return wait_for_shell(config.debug_command(workspace, LOAD_LIST, concurrency))

    return run_and_write(settings, workspace, chosen, concurrency)


def run_and_write(settings: Settings, workspace: config.Workspace, chosen, concurrency: int) -> int:
    """The tests, the cleanup and the result files; the done event's exit code."""
    # run: Tempest, its stream redacted into the results as it comes; and
    # whatever way it ends, what the tests created is removed from the cloud.
    results_dir = Path(contract.RESULTS_DIR)
    record = start_record(settings, workspace, results_dir)
    cleanup.before(workspace)
    try:
        emit("phase", name="run", message=f"running {len(chosen.tests)} test{'' if len(chosen.tests) == 1 else 's'}, "
                                                     f"concurrency {concurrency}")
        partial = results_dir / (contract.SUBUNIT_FILE + ".partial")
        recording = dataclasses.replace(workspace, env={**workspace.env, records.RECORD_VARIABLE: str(record)})
        outcome = run.run_tests(recording, chosen.tests, LOAD_LIST, concurrency, partial,
                                events.mask(), on_test)
        os.replace(partial, results_dir / contract.SUBUNIT_FILE)
    finally:
        # A stop signal is ignored from here on (on_stop_signal): the
        # cleanup is what the launcher waits for.
        emit("phase", name="cleanup", message="removing what the tests created in the cloud")
        emit("cleanup", **cleanup.after(workspace, results_dir, record))

    # results: refstack.json, tests.json, junit.xml, summary.txt.
    emit("phase", name="results", message="writing the result files")
    findings = result_files.Report(
        outcomes=outcome.outcomes, missing=chosen.missing, cpid=settings.cloud.cpid,
        label=settings.selection.label, credentials=workspace.credentials, concurrency=concurrency,
        duration_seconds=outcome.duration_seconds, tempest_version=tempest_version(),
        fixture_failures=outcome.fixture_failures,
    )
    result_files.write_all(results_dir, findings)
    numbers = result_files.counts(outcome.outcomes)
    emit("done", **numbers, duration_seconds=int(outcome.duration_seconds))
    return contract.EXIT_TESTS_FAILED if numbers["failed"] else contract.EXIT_OK


def start_record(settings: Settings, workspace: config.Workspace, results_dir: Path) -> Path:
    """The run's record of what it creates (tcup.runner.records), begun with
    the cloud and the kind of credentials it is about."""
    path = results_dir / contract.RESOURCES_FILE
    records.append(str(path), [records.header(settings.cloud.cpid, workspace.credentials)])
    return path


def clean_by_record(settings: Settings) -> int:
    """`tcup cleanup RUN`: remove (or, dry, list) what a saved run recorded,
    with the credentials it ran with; no test is listed or run."""
    env = config.prepare(settings)
    emit("phase", name="config", message="writing tempest.conf with discover-tempest-config")
    workspace = config.configure(settings, env)
    emit("phase", name="cleanup", message="looking for what the run recorded" if settings.dry_run else
         "removing what the run recorded")
    results_dir = Path(contract.RESULTS_DIR)
    emit("cleanup", **cleanup.after(workspace, results_dir, results_dir / contract.RESOURCES_FILE,
                                    by_record=True, dry_run=settings.dry_run))
    return contract.EXIT_OK


def service_of(test: selection.Test) -> str:
    """The service a test exercises, from its package: tempest.api.compute... -> compute."""
    parts = test.name.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "api" else parts[1] if len(parts) > 1 else "other"


def services_available() -> dict:
    """service_available from the tempest.conf discovery wrote: {"nova": True, ...}."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config.CONFIG_FILE)
    if not parser.has_section("service_available"):
        return {}
    # [DEFAULT]'s options show in every section: only the section's own count.
    own = set(parser.options("service_available")) - set(parser.defaults())
    return {key: parser.getboolean("service_available", key, fallback=False) for key in sorted(own)}


def foreseen_skips(workspace: config.Workspace) -> dict:
    """{test id: reason} of the selected tests Tempest will skip by tempest.conf
    alone (tcup.runner.foresee, in Tempest's environment); {} if that fails:
    a plan then foresees less, never a skip that would not happen."""
    FORESEEN.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        process.run([sys.executable, "-m", "tcup.runner.foresee", str(LOAD_LIST), str(FORESEEN)], env=workspace.env,
                    cwd=str(config.WORKSPACE), timeout=FORESEE_TIMEOUT, what="foreseeing skips")
        foreseen = json.loads(FORESEEN.read_text())
    except Stopped:
        raise  # the container is being stopped: no plan
    except (InfraError, OSError, ValueError) as error:
        log(f"skips not foreseen: {error}")
        return {}
    foreseen = foreseen if isinstance(foreseen, dict) else {}
    log(f"{len(foreseen)} skips foreseen from tempest.conf ({time.monotonic() - started:.1f} s)")
    return foreseen


def plan(tests, available: dict, foreseen: Optional[dict] = None) -> dict:
    """Tests per service, and those certain to skip, by reason: their service
    is not in the catalog (said so, rather than as each class of Tempest words
    it), else Tempest's own reason (``foreseen``, by test id). The event's
    ``foreseen`` names each such test (by name) and its reason."""
    per_service, reasons, named = {}, {}, {}
    for test in tests:
        service = service_of(test)
        per_service[service] = per_service.get(service, 0) + 1
        option = SERVICE_OPTIONS.get(service)
        missing = f"the catalog has no {option}" if option and not available.get(option, False) else None
        reason = missing or (foreseen or {}).get(test.id)
        if reason:
            named[test.name] = reason
            counts = reasons.setdefault(service, {})
            counts[reason] = counts.get(reason, 0) + 1
    # Keystone is always there (service_available has no key for it).
    return {"services": ["keystone"] + sorted(key for key, value in available.items() if value),
            "tests": per_service,
            "skips": {service: skip_summary(counts) for service, counts in reasons.items()},
            "foreseen": named}


def skip_summary(counts: dict) -> dict:
    """One service's skips: "count" (all) and "reason" (the largest), as the
    plan event always had them, and "reasons", each with its count, largest first."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"count": sum(counts.values()), "reason": ranked[0][0],
            "reasons": [{"reason": reason, "count": count} for reason, count in ranked]}


def check_choices(settings: Settings, workspace: config.Workspace, tests, available: dict) -> None:
    """Stop before the run when the tests' servers would have no image or,
    for a member, no network: each such test would fail, one by one."""
    if not available.get("nova") or not any(service_of(test) in ("compute", "volume") for test in tests):
        return
    choices = workspace.choices
    if "image" in choices and not choices["image"]:
        raise InputError("the cloud has no active image for the tests' servers, and TCUP uploads none: "
                         "upload one (e.g. CirrOS, as raw or qcow2) or have it shared with your project, "
                         "then run again (choose among several with --image NAME)")
    if "flavor" in choices and not choices["flavor"]:
        # With flavors but none bootable, discovery says what to do.
        raise InputError(choices.get("advice") or "the cloud offers your project no flavor for the tests' "
                         "servers; ask for one, then run again (choose with --flavor NAME)")
    if settings.cloud.admin or "network" not in choices or choices["network"]:
        return
    candidates = workspace.choices.get("network_candidates") or []
    if candidates:
        raise InputError(f"{len(candidates)} networks could carry the tests' servers ({', '.join(candidates)}); "
                         "choose one with --network NAME")
    raise InputError("your project has no network for the tests' servers: create one with a subnet "
                     "(openstack network create / subnet create), or name a shared one with --network NAME")


def read_settings() -> Settings:
    """The one settings line on stdin, waited for at most SETTINGS_TIMEOUT."""
    fd = sys.stdin.fileno()
    data = b""
    deadline = time.monotonic() + SETTINGS_TIMEOUT
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InputError(f"no settings arrived on stdin within {SETTINGS_TIMEOUT} s")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\n", 1)[0]
    if not line.strip():
        raise InputError("no settings on stdin")
    try:
        return Settings.from_line(line)
    except (ValueError, TypeError, KeyError) as error:
        # The message names a field or a position, never a value.
        raise InputError(f"the settings line is not valid: {type(error).__name__}: {error}")


def stop_when_stdin_closes() -> None:
    """The launcher holds stdin open until it lets the container go. When
    stdin closes early, the launcher is gone (a SIGKILL, a crash) and
    nobody will read the results: stop, as on SIGTERM, so the container
    ends and is removed instead of running Tempest for hours."""

    def wait_for_eof() -> None:
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass  # nothing more is said on stdin; anything that comes is ignored
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_for_eof, name="stdin-watch", daemon=True).start()


def check_settings(settings: Settings) -> None:
    """Refuse bad input before any work, each with one clear line."""
    config.check_credentials(settings.credentials)
    if settings.mode not in MODES:
        raise InputError(f"mode {settings.mode!r} is not one of {', '.join(MODES)}")
    if settings.concurrency is not None and (not isinstance(settings.concurrency, int) or settings.concurrency < 1):
        raise InputError(f"concurrency must be a positive number, not {settings.concurrency!r}")
    if settings.mode != "cleanup" and not settings.selection.tests and not settings.selection.regex:
        raise InputError("the selection names no test list and no regex")
    for key, value in settings.choices.tempest_options.items():
        section, _, option = key.partition(".")
        if not section or not option or any(c in key + value for c in "\n\r[]"):
            raise InputError(f"tempest.conf option {key!r} is not SECTION.KEY=VALUE on one line")
        if contract.option_refusal(key):  # the launcher refuses it first; never trust one alone
            raise InputError(f"tempest.conf option {key} is TCUP's own or would hold a secret; it cannot be set")
    for account in settings.accounts:
        config.check_credentials(account)


def check_results_dir() -> None:
    """Fail now, not after an hour of tests, if results cannot be written."""
    path = Path(contract.RESULTS_DIR)
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise InfraError(f"{path} is not a directory uid {os.getuid()} can write to")


def choose_concurrency(settings: Settings, workspace: config.Workspace) -> int:
    """The asked concurrency or the container's CPUs, capped by the number of
    pre-provisioned accounts (each worker locks one)."""
    wanted = settings.concurrency or len(os.sched_getaffinity(0)) or 1
    if workspace.max_concurrency is not None:
        return min(wanted, workspace.max_concurrency)
    return wanted


def tempest_version() -> str:
    try:
        return metadata.version("tempest")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def on_test(test: selection.Test, status: str, reason) -> None:
    emit("test", name=test.name, uuid=test.uuid, status=status, reason=reason)


def wait_for_shell(command: str) -> int:
    """Debug mode: tempest.conf and the load list are ready; wait until the
    launcher stops the container (SIGTERM), then exit 0."""
    emit("ready", command=command)
    log(f"ready; in the shell, run: {command}")
    deadline = time.monotonic() + DEBUG_TIMEOUT
    try:
        while time.monotonic() < deadline:
            time.sleep(min(60.0, max(deadline - time.monotonic(), 0.0)))
    except Stopped:
        pass
    return contract.EXIT_OK


def on_stop_signal(signum, frame) -> None:
    ignore_stop_signals()  # once: the unwinding and its report must not be cut short
    raise Stopped("stopped by a signal before the run finished")


def ignore_stop_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def report(error: RunnerError) -> int:
    """The error event: one line, the kind, no traceback. Masked before it
    is put on one line: a secret with two spaces would match no more."""
    message = events.mask().one_line(str(error)) or type(error).__name__
    log(f"error ({error.kind}): {message}")
    emit("error", kind=error.kind, message=message)
    return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
