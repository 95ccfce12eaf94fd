#!/usr/bin/env python3
"""Generate TCUP's shipped test lists from the Interop WG guideline files
and from SovereignCloudStack's SCS-0128 list, which carries them on.

Reads every schema-2.0 guideline in a source directory (``*.json`` and
``add-ons/*.json``, as laid out in the openstack/interop repository) and
writes, into ``src/tcup/guidelines/``, one JSON file per guideline and target
holding its required, unflagged tests; then ``scs-0128.json`` from SCS-0128's
test list (each test under its service, as a capability); then
``index.json``, which names the lists, their dates, sources and verdict
rules (src/tcup/launcher/results/verdict.py), the Tempest plugins a list needs
that the image (image/requirements.in) does not install (``needs``), and the
default guideline (the newest approved interop one; drafts such as ``next``
never are).

The output is committed; ``--check`` exits 1 when the committed files differ
from what this script would write now (tests/test_guideline.py runs it).

    python3 tools/make_guidelines.py [--source DIR] [--scs DIR] [--output DIR] [--check]
"""

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))  # the selection logic is the launcher's own

from tcup.launcher import guideline  # noqa: E402
from tcup.launcher.results import verdict as rules  # noqa: E402

DEFAULT_SOURCE = REPO.parent / "shared" / "interop"
DEFAULT_SCS = REPO.parent / "shared" / "scs-0128"
SCS_FILE = "tempest-tests-non-admin.lst"
# Where SCS-0128's list comes from (its README beside the list says the same,
# with the license: CC BY-SA 4.0, attribution kept in src/tcup/guidelines/README.md).
SCS = {
    "guideline": "scs-0128",
    "target": "iaas",  # SCS's layer: the standard lives under Tests/iaas/
    "status": "stable",
    "date": "2026-08-06",  # the list's last change
    # SCS-0128 v1: "Tempest MUST NOT report any failed test cases"; skips are
    # allowed (settled in SovereignCloudStack/standards PR #1253).
    "rule": rules.NO_FAILURES.id,
    "source": "github.com/SovereignCloudStack/standards@077174d9 "
              "Tests/iaas/scs_0128_e2e_testing/tempest-tests-non-admin.lst (CC BY-SA 4.0)",
}
DEFAULT_OUTPUT = REPO / "src" / "tcup" / "guidelines"
# What the image installs: a list whose tests live in a Tempest plugin not
# named here cannot run with TCUP's image, and index.json says which it needs.
IMAGE_REQUIREMENTS = REPO / "image" / "requirements.in"
# The interop guidelines are judged as RefStack judges them: every required
# test passes, and a skipped one fails its capability.
INTEROP_RULE = rules.REFSTACK.id


def guideline_files(source: Path) -> list:
    """The guideline files of an interop checkout: dated or `next` files and their add-ons."""
    files = sorted(source.glob("*.json")) + sorted(source.glob("add-ons/*.json"))
    if not files:
        raise SystemExit(f"make_guidelines: no guideline JSON files in {source}; give --source DIR")
    return files


def version_of(guideline_id: str) -> str:
    """The platform guideline an id belongs to: "dns.2020.06" -> "2020.06"."""
    head, _, rest = guideline_id.partition(".")
    return rest if head.isalpha() and head != "next" and rest else guideline_id


def version_key(version: str) -> tuple:
    """Sort key putting dated versions in date order."""
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def render_list(tests: guideline.TestList) -> str:
    """A list as committed: one test per line so that diffs read well."""
    head = {k: v for k, v in tests.to_dict().items() if k != "tests"}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "tests": [')
    rows = [f"    {json.dumps(t, ensure_ascii=False)}" for t in tests.tests]
    lines.append(",\n".join(rows))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def scs_list(directory: Path) -> guideline.TestList:
    """SCS-0128's tests, each under its service (tempest.api.<service>...) as
    its capability, so the compliance report reads per service."""
    path = directory / SCS_FILE
    if not path.is_file():
        raise SystemExit(f"make_guidelines: no {SCS_FILE} in {directory}; give --scs DIR")
    parsed = guideline.parse_refstack_list(path.read_text(encoding="utf-8"), SCS_FILE)
    tests = []
    for test in sorted(parsed.tests, key=lambda t: t["name"]):
        service = test["name"].split(".")[2] if test["name"].startswith("tempest.api.") else "other"
        tests.append({"name": test["name"], "uuid": test["uuid"], "capability": service})
    return guideline.TestList(label=guideline.list_label(SCS["guideline"], SCS["target"]), guideline=SCS["guideline"],
                              target=SCS["target"], tests=tests, source=SCS["source"])


def image_packages() -> set:
    """The package names the image installs (image/requirements.in), normalised as pip does."""
    names = set()
    for line in IMAGE_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def plugins_needed(tests: guideline.TestList, installed: set) -> list:
    """The Tempest plugins (by package name) a list's tests come from that the image lacks.
    A plugin's tests are named after its module: designate_tempest_plugin.tests... """
    modules = {t["name"].split(".", 1)[0] for t in tests.tests}
    return sorted(name for name in (m.replace("_", "-") for m in modules if m != "tempest") if name not in installed)


def dated(version: str) -> str:
    """An interop guideline's date from its id: "2020.06" -> "2020-06"; a draft has none."""
    return version.replace(".", "-") if version[:1].isdigit() else "draft"


def build(source: Path, scs: Path) -> dict:
    """File name -> text of every list and the index, as they should be committed."""
    outputs, entries, installed = {}, [], image_packages()
    for path in guideline_files(source):
        doc = json.loads(path.read_text(encoding="utf-8"))
        origin = (doc.get("metadata") or {}).get("source") or path.name
        for target in sorted(guideline.target_names(doc)):
            tests = guideline.required_tests(doc, target, origin)
            name = tests.label.replace(" ", "-") + ".json"
            outputs[name] = render_list(tests)
            entries.append({
                "guideline": tests.guideline,
                "version": version_of(tests.guideline),
                "target": tests.target,
                "status": guideline.guideline_status(doc),
                "date": dated(version_of(tests.guideline)),
                "source": origin,
                "file": name,
                "tests": len(tests.tests),
                "rule": INTEROP_RULE,
            })
            needs = plugins_needed(tests, installed)
            if needs:
                entries[-1]["needs"] = ", ".join(needs)
    carried_on = scs_list(scs)
    outputs["scs-0128.json"] = render_list(carried_on)
    entries.append({"guideline": SCS["guideline"], "version": SCS["guideline"], "target": SCS["target"],
                     "status": SCS["status"], "date": SCS["date"], "source": SCS["source"], "file": "scs-0128.json",
                     "tests": len(carried_on.tests), "rule": SCS["rule"]})
    entries.sort(key=lambda e: e["file"])
    approved = [e["version"] for e in entries if e["status"] == "approved" and e["version"][:1].isdigit()]
    if not approved:
        raise SystemExit(f"make_guidelines: no approved guideline in {source}")
    index = {"default": max(approved, key=version_key), "lists": entries}
    outputs[guideline.INDEX_FILE] = json.dumps(index, indent=2) + "\n"
    return outputs


def check(outputs: dict, output: Path) -> list:
    """What differs between the committed lists and ``outputs``: one line per file."""
    problems = []
    for name, text in sorted(outputs.items()):
        path = output / name
        if not path.exists():
            problems.append(f"missing {path}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs {path}")
    for path in sorted(output.glob("*.json")):
        if path.name not in outputs:
            problems.append(f"stale {path}")
    return problems


def write(outputs: dict, output: Path) -> None:
    """Write the lists and drop lists that no longer exist (README.md stays)."""
    output.mkdir(parents=True, exist_ok=True)
    for path in output.glob("*.json"):
        if path.name not in outputs:
            path.unlink()
    for name, text in outputs.items():
        (output / name).write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="interop guideline directory (default: %(default)s)")
    parser.add_argument("--scs", type=Path, default=DEFAULT_SCS, help="directory of SCS-0128's test list (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the lists go (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the committed lists are out of date")
    args = parser.parse_args(argv)
    outputs = build(args.source, args.scs)
    if args.check:
        problems = check(outputs, args.output)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("make_guidelines: lists are out of date; run python3 tools/make_guidelines.py", file=sys.stderr)
            return 1
        print(f"make_guidelines: {len(outputs)} files up to date in {args.output}")
        return 0
    write(outputs, args.output)
    index = json.loads(outputs[guideline.INDEX_FILE])
    for entry in index["lists"]:
        needs = f"  needs {entry['needs']}" if entry.get("needs") else ""
        print(f"{entry['file']:<28} {entry['tests']:>4} tests  {entry['status']:<9} {entry['rule']}{needs}")
    print(f"default guideline: {index['default']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
