"""`tcup bundle RUN`: one .tar.gz to attach to a support ticket.

It holds the run's result files, tempest.conf as the runner sanitised it
(tempest.sanitised.conf: no secret, user, project, domain, region, id or
host), the services the cloud offers with their API versions (read from that
file), and the versions of TCUP, Tempest and the image. Everything in it
comes from the run directory, whose files the runner masked before they
reached the disk, plus facts about this TCUP; nothing is asked of the cloud,
and no credential is read.

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
from tcup.launcher.results.report import REPORT_FILE, RUN_FILE, locate

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
    path = locate(args.run, args.output)
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
    files = dict(_regular_files(run))
    members = [(f"results/{name}", data, mtime) for name, (data, mtime) in sorted(files.items())
               if name not in SUPPORT_FILES]
    if REPORT_FILE not in files:
        report = _report(run)
        if report is not None:
            members.append((f"results/{REPORT_FILE}", report.encode(), now))
    conf = files.get(contract.TEMPEST_CONF_FILE)
    if conf is not None:
        members.append((contract.TEMPEST_CONF_FILE, conf[0], conf[1]))
    services = services_from_conf(conf[0].decode(errors="replace")) if conf else None
    members.append(("services.json", _json({"services": services, "source": contract.TEMPEST_CONF_FILE}
                                           if services is not None else
                                           {"services": None, "note": NO_CONF}), now))
    run_meta = _load(files.get(RUN_FILE))
    runner = _load(files.get(contract.VERSIONS_FILE))
    members.append(("versions.json", _json(versions(run_meta, runner, files)), now))
    members.append(("README.txt", readme(run, conf is not None).encode(), now))
    return members


NO_CONF = ("this run's runner saved no sanitised tempest.conf (a TCUP older than `tcup bundle`, or a run that "
           "stopped before discovery): the services and their versions are not known")


def _regular_files(run: Path):
    """The run directory's regular files, never through a link: a file the
    container planted as a link to something of the user's stays out."""
    for entry in sorted(run.iterdir()):
        if entry.name.startswith("."):
            continue  # a temporary file of a write in progress
        try:
            data = private_files.read_result(entry)
            yield entry.name, (data, entry.lstat().st_mtime)
        except OSError:
            continue


def _report(run: Path) -> Optional[str]:
    from tcup.launcher.results import report

    try:
        return report.render(report.read(run))
    except (BadInput, OSError):
        return None  # no tests.json: nothing to show


def _load(entry) -> dict:
    if entry is None:
        return {}
    try:
        data = json.loads(entry[0].decode(errors="replace"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


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
        from tcup.launcher.engine.image import Image

        found["image"] = f"{Image().tag}"
        found["image_note"] = ("the image this TCUP drives; the run used the same one"
                               if found["tcup_run"] == found["tcup_bundle"] and "dirty" not in (found["tcup_run"] or "")
                               else "the image this TCUP drives; the run's TCUP (tcup_run) may have driven another")
    except Exception as error:  # noqa: BLE001 - a bundle without the tag is still worth sending
        found["image"] = None
        found["image_note"] = f"unknown: {type(error).__name__}"
    return found


def _tempest_from_summary(entry) -> Optional[str]:
    """Older runs name Tempest's version in summary.txt's second line only."""
    if entry is None:
        return None
    for line in entry[0].decode(errors="replace").splitlines()[:3]:
        if line.startswith("Tempest "):
            return line.split()[1].rstrip(",")
    return None


def readme(run: Path, has_conf: bool) -> str:
    conf = ("tempest.sanitised.conf  tempest.conf of the run, every secret, user, project, domain, region,\n"
            "                        id and host replaced by a placeholder\n" if has_conf else
            f"(no tempest.sanitised.conf: {NO_CONF})\n")
    return (f"TCUP support bundle of run {run.name}\n\n"
            "results/                the run's result files (test results, compliance, summary, report.html),\n"
            "                        secrets and the user's and cloud's names masked by the runner\n"
            + conf +
            "services.json           the services discovery found, with their API versions\n"
            "versions.json           TCUP's, Tempest's and the image's versions\n\n"
            "Nothing here was asked of the cloud, and no credential was read to make it.\n")
