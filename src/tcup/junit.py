"""JUnit XML, the form CI tools read, for both sides: the runner's junit.xml
after a run, and the launcher's for the finished tests of an interrupted one."""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, Iterable

# XML 1.0 cannot carry these, and tracebacks sometimes do (terminal colours).
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A status as JUnit names it: a failure or a skip gets an element of its own.
ELEMENTS = {"fail": "failure", "skip": "skipped"}


@dataclass
class Case:
    test_id: str  # Tempest's id, with its [attributes]
    name: str  # without them: the classname is all but its last part
    status: str  # "success" | "fail" | "skip"
    reason: str = ""
    detail: str = ""  # a failure's traceback
    seconds: float = 0.0


def document(cases: Iterable[Case], seconds: float) -> bytes:
    """One testsuite, a testcase per test, sorted by id."""
    cases = sorted(cases, key=lambda case: case.test_id)
    number: Dict[str, int] = {status: sum(case.status == status for case in cases) for status in ELEMENTS}
    suite = ET.Element("testsuite", {
        "name": "tempest", "tests": str(len(cases)), "failures": str(number["fail"]),
        "errors": "0", "skipped": str(number["skip"]), "time": f"{seconds:.3f}",
    })
    for case in cases:
        classname, _, method = case.name.rpartition(".")
        method_id = case.test_id[len(case.name) - len(method):]  # keep the [attrs]
        element = ET.SubElement(suite, "testcase", {"classname": classname, "name": method_id,
                                                    "time": f"{case.seconds:.3f}"})
        if case.status in ELEMENTS:
            outcome = ET.SubElement(element, ELEMENTS[case.status], {"message": text(case.reason)})
            if case.status == "fail" and case.detail:
                outcome.text = text(case.detail)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def text(value: str) -> str:
    return XML_INVALID.sub("?", value or "")
