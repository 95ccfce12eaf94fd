"""`tcup bundle RUN`: one .tar.gz to attach to a support ticket.

It holds the run's result files, tempest.conf as the runner sanitised it
(tempest.sanitised.conf: no secret, user, project, domain, region, id or
host), the services the cloud offers with their API versions (read from that
file), and the versions of TCUP, Tempest and the image. Everything in it
comes from the run directory, whose files the runner masked before they
reached the disk, plus facts about this TCUP; nothing is asked of the cloud,
and no credential is read. The launcher's own records (run.json,
settings.json, cleanup.json, uploads.json) go in sanitised: the cloud's id,
the names and ids of its resources, the --set values, servers and paths
become placeholders or names; report.html is made again from them.

Standard library only.
"""

import configparser
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tcup import contract, private_files
from tcup.launcher.errors import BadInput
from tcup.launcher.results.runs import (REPORT_FILE, RUN_FILE, SETTINGS_FILE, UPLOADS_FILE, RunRecord, SavedRun,
                                        parse_object)

# Files the runner writes for the bundle; they go to its top level, not results/.
SUPPORT_FILES = (contract.TEMPEST_CONF_FILE, contract.VERSIONS_FILE)
# python-tempestconf's [service_available] names, as catalog types.
SERVICE_TYPES = {"nova": "compute", "neutron": "network", "glance": "image", "cinder": "volume",
                 "swift": "object-store", "heat": "orchestration", "designate": "dns", "placement": "placement",
                 "octavia": "load-balancer", "barbican": "key-manager", "manila": "shared-file-system",
                 "ironic": "baremetal", "aodh": "alarming", "panko": "event", "sahara": "data-processing",
                 "zaqar": "messaging", "mistral": "workflowv2", "trove": "database", "horizon": "dashboard",
                 "ceilometer": "metering", "gnocchi": "metric", "watcher": "infra-optim"}
# Tempest's sections for each service's options and feature flags.
FEATURE_SUFFIX = "-feature-enabled"


def command(args) -> int:
    """Write the bundle of the run in args.run; print its path."""
    path = SavedRun.find(args.run, args.output).path
    target = Path(args.file) if args.file else Path.cwd() / f"tcup-bundle-{path.name}.tar.gz"
    if target.exists() or target.is_symlink():
        raise BadInput(f"{target} exists; remove it or choose another name with --file FILE")
    if not target.parent.is_dir():
        raise BadInput(f"{target.parent} is not a directory; choose where the bundle goes with --file FILE")
    try:
        write(path, target)
    except OSError as error:
        raise BadInput(f"cannot write {target} ({error.strerror or error}); choose another place with --file FILE")
    print(target)
    return 0


def write(run: Path, target: Path) -> Path:
    """The bundle of ``run`` as ``target``, owner-only, whole or not at all."""
    top = f"tcup-bundle-{run.name}"
    members = contents(run)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mtime in members:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), int(mtime), 0o600
            tar.addfile(info, io.BytesIO(data))
    private_files.write_atomically(target, buffer.getvalue())
    return target


def contents(run: Path) -> List[Tuple[str, bytes, float]]:
    """(name in the bundle, bytes, mtime) of every member."""
    now = time.time()
    files, mtimes = _regular_files(run)
    run_meta = sanitised_run(_load(files.get(RUN_FILE)))
    # The run's record of what it created in the cloud (ids, names, projects)
    # is for `tcup cleanup`, not for a support ticket.
    members = [(f"results/{name}", _sanitised(name, data), mtimes[name]) for name, data in sorted(files.items())
               if name not in SUPPORT_FILES + (REPORT_FILE, contract.RESOURCES_FILE)]
    # The report is made again from the sanitised run.json: the run's own
    # shows its cloud's id, and one from an older TCUP its full path.
    report = _report(run, run_meta)
    if report is not None:
        members.append((f"results/{REPORT_FILE}", report.encode(), now))
    conf = files.get(contract.TEMPEST_CONF_FILE)
    if conf is not None:
        members.append((contract.TEMPEST_CONF_FILE, conf, mtimes[contract.TEMPEST_CONF_FILE]))
    services = services_from_conf(conf.decode(errors="replace")) if conf else None
    members.append(("services.json", _json({"services": services, "source": contract.TEMPEST_CONF_FILE}
                                           if services is not None else
                                           {"services": None, "note": NO_CONF}), now))
    runner = _load(files.get(contract.VERSIONS_FILE))
    members.append(("versions.json", _json(versions(run_meta, runner, files)), now))
    members.append(("README.txt", readme(run, conf is not None).encode(), now))
    return members


NO_CONF = ("this run's runner saved no sanitised tempest.conf (a TCUP older than `tcup bundle`, or a run that "
           "stopped before discovery): the services and their versions are not known")


def _regular_files(run: Path) -> Tuple[Dict[str, bytes], Dict[str, float]]:
    """The run directory's regular files and their mtimes, never through a
    link: a file the container planted as a link to something of the user's
    stays out (private_files.read_result)."""
    files, mtimes = {}, {}
    saved = SavedRun(run)
    for entry in sorted(run.iterdir()):
        if entry.name.startswith("."):
            continue  # a temporary file of a write in progress
        try:
            files[entry.name] = saved.data(entry.name)
            mtimes[entry.name] = entry.lstat().st_mtime
        except OSError:
            continue
    return files, mtimes


def _report(run: Path, meta: dict) -> Optional[str]:
    from tcup.launcher.results import report

    try:
        facts = report.read(SavedRun(run))
    except (BadInput, OSError):
        return None  # no tests.json: nothing to show
    facts.meta, facts.upload_url = RunRecord.of(meta), None
    return report.render(facts)


# --- what the bundle says about the run: its shape, not the cloud's names ----------

# run.json's fields kept as they are: what ran, how, and how it ended. Any
# other field is left out (a later TCUP's included): nothing goes into a
# bundle that no rule here has looked at.
RUN_FACTS = ("tcup_version", "image", "started", "finished", "label", "guideline", "target", "credentials",
             "concurrency", "accounts", "duration_seconds", "passed", "failed", "skipped", "admin_skipped",
             "missing", "verdict", "rule", "selected", "complete", "waived", "flaky", "format")


def sanitised_run(meta: dict) -> dict:
    """run.json for a support ticket: the run's facts; the cloud's id, the
    discovered resources' and the cleanup's names and ids, the --set values
    and any path reduced to placeholders or names."""
    kept = {key: meta[key] for key in RUN_FACTS if key in meta}
    if meta.get("cpid"):
        kept["cpid"] = "<cpid>"
    if isinstance(meta.get("merged_from"), list):
        kept["merged_from"] = [Path(str(path)).name for path in meta["merged_from"]]
    for key in ("choices", "cleanup"):
        if key in meta:
            kept[key] = placeholders(meta[key], key)
    if isinstance(meta.get("settings"), dict):
        kept["settings"] = sanitised_settings(meta["settings"])
    return kept


def sanitised_settings(record: dict) -> dict:
    """settings.json (what `tcup rerun` repeats) without the user's values:
    which tests and options, not what the options were set to."""
    kept = {"concurrency": record.get("concurrency"), "selection": record.get("selection")}
    listed = record.get("test_list")
    if isinstance(listed, dict):
        source = str(listed.get("source") or "")
        kept["test_list"] = {**{key: listed.get(key) for key in ("label", "guideline", "target", "tests")},
                             "source": "<url>" if "://" in source else Path(source).name}
    choices = record.get("choices")
    if isinstance(choices, dict):
        options = choices.get("tempest_options") or {}
        kept["choices"] = {**{key: placeholders(choices.get(key), key) for key in ("image", "flavor", "network")},
                           "tempest_options": {key: "<value>" for key in options} if isinstance(options, dict) else {},
                           "skip_services": choices.get("skip_services") or []}
    return kept


def placeholders(value, key: str):
    """``value`` with every string but a resource's kind replaced by its
    field's name in brackets: how many of what kind, not what the cloud calls
    them ({"id": "<id>", "name": "<name>"})."""
    if isinstance(value, str):
        return value if key == "kind" else f"<{key}>"
    if isinstance(value, list):
        return [placeholders(item, key) for item in value]
    if isinstance(value, dict):
        return {inner: placeholders(item, inner) for inner, item in value.items()}
    return value


def _sanitised(name: str, data: bytes) -> bytes:
    """A result file as the bundle carries it: the launcher's records
    sanitised, the runner's files (masked before they reached the disk) whole."""
    if name == RUN_FILE:
        return _json(sanitised_run(_load(data)))
    if name == SETTINGS_FILE:
        return _json(sanitised_settings(_load(data)))
    if name in (contract.CLEANUP_FILE, UPLOADS_FILE):
        try:
            return _json(placeholders(json.loads(data.decode(errors="replace")), name.split(".")[0]))
        except ValueError:
            return _json(None)
    if name == contract.REFSTACK_FILE:
        body = _load(data)
        return _json({**body, "cpid": "<cpid>"}) if body.get("cpid") else data
    if name == contract.SUMMARY_FILE:  # the launcher adds what the run ran with
        from tcup.launcher.results import context

        return context.without_values(data.decode(errors="replace")).encode()
    return data


def _load(data: Optional[bytes]) -> dict:
    """A JSON object from a file's bytes; {} when there is none."""
    return parse_object(data) or {}


def _json(document) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def services_from_conf(text: str) -> Dict[str, dict]:
    """The services discovery found, from the sanitised tempest.conf:
    {name: {"available", "type", "api_versions", "microversions"}}."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="\x00none")
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    services: Dict[str, dict] = {}
    if parser.has_section("service_available"):
        for name, value in parser.items("service_available"):
            services[name] = {"available": value.strip().lower() == "true", "type": SERVICE_TYPES.get(name)}
    # Keystone is in every catalog; python-tempestconf does not list it there.
    services.setdefault("keystone", {"available": True, "type": "identity"})
    by_type = {entry["type"]: name for name, entry in services.items() if entry.get("type")}
    for section in parser.sections():
        kind = section[: -len(FEATURE_SUFFIX)] if section.endswith(FEATURE_SUFFIX) else section
        name = by_type.get(_type_of(kind))
        if name is None:
            continue
        entry = services[name]
        if section.endswith(FEATURE_SUFFIX):
            versions = sorted(option[len("api_"):] for option, value in parser.items(section)
                              if option.startswith("api_v") and value.strip().lower() == "true")
            if versions:
                entry["api_versions"] = versions
        else:
            micro = {key: parser.get(section, key) for key in ("min_microversion", "max_microversion")
                     if parser.has_option(section, key) and parser.get(section, key).strip().lower() != "none"}
            if micro:
                entry["microversions"] = micro
            if parser.has_option(section, "catalog_type"):
                entry["catalog_type"] = parser.get(section, "catalog_type")
    return dict(sorted(services.items()))


def _type_of(section: str) -> str:
    """Tempest's section name for a service, as its catalog type."""
    return {"object-storage": "object-store", "volume": "volume", "identity": "identity"}.get(section, section)


def versions(run_meta: dict, runner: dict, files: dict) -> dict:
    """TCUP's (the run's and this one's), Tempest's and the image's versions."""
    from tcup.launcher.version import version

    found = {"tcup_run": run_meta.get("tcup_version"), "tcup_bundle": version(),
             "tempest": runner.get("tempest") or _tempest_from_summary(files.get(contract.SUMMARY_FILE)),
             "python_tempestconf": runner.get("python_tempestconf"), "image_python": runner.get("python"),
             "image_os": runner.get("image_os")}
    try:
        from tcup.launcher.engine.image import tag_of_this_version

        found["image"] = tag_of_this_version()
        found["image_note"] = ("the image this TCUP drives; the run used the same one"
                               if found["tcup_run"] == found["tcup_bundle"] and "dirty" not in (found["tcup_run"] or "")
                               else "the image this TCUP drives; the run's TCUP (tcup_run) may have driven another")
    except Exception as error:  # noqa: BLE001 - a bundle without the tag is still worth sending
        found["image"] = None
        found["image_note"] = f"unknown: {type(error).__name__}"
    return found


def _tempest_from_summary(summary: Optional[bytes]) -> Optional[str]:
    """Older runs name Tempest's version in summary.txt's second line only."""
    if summary is None:
        return None
    for line in summary.decode(errors="replace").splitlines()[:3]:
        if line.startswith("Tempest "):
            return line.split()[1].rstrip(",")
    return None


def readme(run: Path, has_conf: bool) -> str:
    conf = ("tempest.sanitised.conf  tempest.conf of the run, every secret, user, project, domain, region,\n"
            "                        id and host replaced by a placeholder\n" if has_conf else
            f"(no tempest.sanitised.conf: {NO_CONF})\n")
    return (f"TCUP support bundle of run {run.name}\n\n"
            "results/                the run's result files (test results, compliance, summary, report.html),\n"
            "                        secrets and the user's and cloud's names masked by the runner; in\n"
            "                        run.json, settings.json, cleanup.json and uploads.json the cloud's id,\n"
            "                        its resources' names and ids, --set values, servers and paths are\n"
            "                        placeholders such as <id> and <value>\n"
            + conf +
            "services.json           the services discovery found, with their API versions\n"
            "versions.json           TCUP's, Tempest's and the image's versions\n\n"
            "Nothing here was asked of the cloud, and no credential was read to make it.\n")
