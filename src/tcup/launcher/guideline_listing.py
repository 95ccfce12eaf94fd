"""`tcup guidelines`: the shipped test lists (guideline.py), each with its
date, status, test count, verdict rule and source; apart from them, those
TCUP's image cannot run, as their tests come from a Tempest plugin it does
not carry (index.json's ``needs``)."""

import json
from typing import List

from tcup.launcher import guideline

HEADER = ("LIST", "DATE", "STATUS", "TESTS", "RULE", "SOURCE")


def shipped_lists() -> List[dict]:
    """Every shipped list, by name, as `tcup guidelines --json` gives it."""
    from tcup.launcher.results import verdict as rules

    index = guideline.shipped_index()
    lists = [{"name": guideline.list_label(e["guideline"], e["target"]), "guideline": e["guideline"],
              "version": e["version"], "target": e["target"], "date": e.get("date", ""),
              "status": e.get("status", ""), "tests": e["tests"], "rule": rules.named(e.get("rule")).id,
              "source": e.get("source", ""), "default": e["version"] == index["default"] and e["target"] == "platform",
              "runnable": not e.get("needs"), "needs": e.get("needs") or None}
             for e in index["lists"]]
    return sorted(lists, key=lambda entry: entry["name"])


def render(lists: List[dict]) -> str:
    """The table of runnable lists, then those that are not, then the rules."""
    from tcup.launcher.results import verdict as rules

    rows = [(e["name"] + (" (default)" if e["default"] else ""), e["date"], e["status"], str(e["tests"]), e["rule"],
             e["source"] if e["runnable"] else f"needs {e['needs']}") for e in lists]
    widths = [max(len(row[i]) for row in rows + [HEADER]) for i in range(5)]

    def line(row) -> str:
        return "  ".join(cell.rjust(widths[i]) if i == 3 else cell.ljust(widths[i])
                         for i, cell in enumerate(row[:5])) + "  " + row[5]

    lines = [line(HEADER)] + [line(row) for row, e in zip(rows, lists) if e["runnable"]]
    not_runnable = [line(row) for row, e in zip(rows, lists) if not e["runnable"]]
    if not_runnable:
        lines += ["", "Not runnable with this image (needs PLUGIN: a Tempest plugin TCUP's image does not carry):"]
        lines += not_runnable
    lines += ["", "Rules (what makes a run compliant):"]
    lines += [f"  {rule.id:<12} {rule.requires}" for rule in rules.RULES.values()]
    lines += ["A --test-list, --regex, or a guideline file or URL is judged by the strict rule; --strict applies "
              "it to any list.", "",
              "Run one with --guideline VERSION [--target TARGET], e.g. --guideline scs-0128."]
    return "\n".join(text.rstrip() for text in lines)


def command(args) -> int:
    """`tcup guidelines`; with --json, one object on stdout: the lists and the rules."""
    from tcup.launcher.results import verdict as rules

    lists = shipped_lists()
    if args.json:
        print(json.dumps({"guidelines": lists, "default": guideline.shipped_index()["default"],
                          "rules": {rule.id: rule.requires for rule in rules.RULES.values()}}))
    else:
        print(render(lists))
    return 0
