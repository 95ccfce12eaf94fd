"""What RefStack takes: the upload body, checked before anything is sent.

Only cpid, duration_seconds and each passed test's name and uuid go out;
every reason the server would (or should) refuse them is said at once, on
this side, in one line.
"""

import json
import re
from collections import Counter
from typing import List

from tcup.contract import EXIT_BAD_INPUT
from tcup.testids import UUID

# The only keys a RefStack upload carries; anything else stays home.
BODY_KEYS = ("cpid", "duration_seconds", "results")
TEST_KEYS = ("name", "uuid")
SHOWN_PROBLEMS = 5  # problems named in one error line before "and N more"
_UUID = re.compile(rf"^{UUID}$")  # bare, as RefStack stores it


def problems(doc) -> List[str]:
    """Every reason the server would (or should) refuse these results, one short sentence each."""
    if not isinstance(doc, dict):
        return ["the results are not a JSON object"]
    found = []
    cpid = doc.get("cpid")
    if not isinstance(cpid, str) or not cpid.strip():
        found.append("cpid is missing or empty")
    duration = doc.get("duration_seconds")
    # bool is an int in Python but not in JSON Schema, which the server uses.
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
        found.append(f"duration_seconds must be a whole number >= 0, not {duration!r}")
    tests = doc.get("results")
    if not isinstance(tests, list):
        return found + ["results is missing or not a list"]
    if not tests:
        found.append("there are no passed tests to upload")
    found += _test_problems(tests)
    return found


def _test_problems(tests: list) -> List[str]:
    """Problems of the individual test entries: shape, uuid, duplicate names."""
    found = []
    for index, test in enumerate(tests):
        if not isinstance(test, dict):
            found.append(f"results[{index}] is not an object")
            continue
        name, test_id = test.get("name"), test.get("uuid")
        if not isinstance(name, str) or not name.strip():
            found.append(f"results[{index}] has no test name")
        if not isinstance(test_id, str) or not _UUID.match(test_id):
            found.append(f"test {name or index!s} has uuid {test_id!r}, which is not a UUID")
    names = Counter(t.get("name") for t in tests if isinstance(t, dict) and isinstance(t.get("name"), str))
    for name, times in names.items():
        if times > 1:
            # RefStack stores each name once per run and answers 500 on a repeat.
            found.append(f"test {name} is listed {times} times")
    return found


def request_body(doc) -> dict:
    """The upload body: cpid, duration_seconds and results [{name, uuid}] only, after checking them."""
    found = problems(doc)
    if found:
        shown = "; ".join(found[:SHOWN_PROBLEMS])
        more = f"; and {len(found) - SHOWN_PROBLEMS} more" if len(found) > SHOWN_PROBLEMS else ""
        from tcup.launcher.upload.refstack import UploadError

        raise UploadError(f"these results cannot be uploaded: {shown}{more}", EXIT_BAD_INPUT)
    body = {key: doc[key] for key in BODY_KEYS}
    body["results"] = [{key: test[key] for key in TEST_KEYS} for test in doc["results"]]
    return body


def encode(body: dict) -> bytes:
    """The exact bytes sent (and signed): compact ASCII JSON, so no encoding can differ on the way."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")
