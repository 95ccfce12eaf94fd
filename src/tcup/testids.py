"""Test ids and subunit streams: the one parser of each, for both sides.

A Tempest test id looks like ``tempest.api.identity.v3.test_tokens.TokensV3Test.
test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9,smoke]``. Its ``id-``
attribute (the idempotent id) is what guideline lists, waivers and RefStack
name, so tests are matched by uuid, never by name: names move, uuids stay.

Standard library only: the launcher has no python-subunit (the runner reads its
live stream with python-subunit; saved streams are read here, by both sides).
"""

import re
import zlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_RE = re.compile(rf"^(?:id-)?({UUID})$", re.I)
# A dotted Python name with an optional [attr,attr] suffix, nothing else.
TEST_ID = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?:\[(?P<attrs>[^\]]*)\])?$")


def valid_uuid(value: Optional[str]) -> Optional[str]:
    """The bare lowercase uuid of an idempotent id (``id-<uuid>`` or ``<uuid>``), or None."""
    match = _UUID_RE.match((value or "").strip())
    return match.group(1).lower() if match else None


def bare_uuid(value: Optional[str]) -> Optional[str]:
    """A list entry's uuid without its ``id-`` prefix, lower case; None when it has none."""
    value = (value or "").strip().lower()
    return (value[3:] if value.startswith("id-") else value) or None


def test_key(name: str, uuid: Optional[str]) -> str:
    """How runs are compared: by the idempotent id, by name when a test has none."""
    return uuid.lower() if uuid else name


def split_test_id(test_id: str) -> Tuple[str, Optional[str]]:
    """(name, uuid) of a full Tempest test id; uuid is None when it carries no
    ``id-`` attribute. What is not a test id (a fixture's) is its own name."""
    test_id = test_id.strip()
    match = TEST_ID.match(test_id)
    if not match:
        return test_id.partition("[")[0], None
    for attr in (match.group("attrs") or "").split(","):
        attr = attr.strip()
        if attr.lower().startswith("id-") and valid_uuid(attr):
            return match.group("name"), valid_uuid(attr)
    return match.group("name"), None


# Subunit v2, python-subunit's wire format: the few fields TCUP needs.
SUBUNIT_SIGNATURE = 0xB3
SUBUNIT_EXISTS = 1  # stestr lists the tests it will run, up front
SUBUNIT_INPROGRESS = 2
SUBUNIT_ENDED = {3: "success", 4: "fail", 5: "skip", 6: "fail", 7: "success"}  # uxsuccess fails, xfail passes
FIXTURE_ID = re.compile(r"^(?:setUpClass|setUpModule|tearDownClass|tearDownModule) \((?P<scope>[^)]+)\)$")


@dataclass
class SubunitStatus:
    test_id: str
    status: str  # "exists", "inprogress", "success", "fail" or "skip"
    timestamp: Optional[float]  # seconds since the epoch
    worker: str  # stestr's route code (or worker-N tag): tests on one worker run one after another


def read_subunit(data: bytes) -> List[SubunitStatus]:
    """The test statuses of a subunit v2 stream. What is not a whole packet
    (the torn end of an interrupted run, stray output) is stepped over."""
    found = []
    view = memoryview(data)
    position = 0
    while True:
        position = data.find(bytes([SUBUNIT_SIGNATURE]), position)
        if position < 0:
            return found
        try:
            status, length = _subunit_packet(data, view, position)
        except (ValueError, IndexError):
            position += 1
            continue
        if status is not None:
            found.append(status)
        position += length


def _number(data: bytes, position: int) -> Tuple[int, int]:
    # The first byte's two high bits say how many bytes follow.
    extra = data[position] >> 6
    if position + extra >= len(data):
        raise IndexError("number past the end")
    value = data[position] & 0x3F
    for byte in data[position + 1:position + 1 + extra]:
        value = value << 8 | byte
    return value, position + 1 + extra


def _utf8(data: bytes, position: int) -> Tuple[str, int]:
    length, position = _number(data, position)
    if position + length > len(data):
        raise IndexError("string past the end")
    return data[position:position + length].decode("utf-8", errors="replace"), position + length


def _subunit_packet(data: bytes, view: memoryview, start: int) -> Tuple[Optional[SubunitStatus], int]:
    flags = int.from_bytes(data[start + 1:start + 3], "big")
    if flags >> 12 != 2:
        raise ValueError("not a subunit v2 packet")
    length, position = _number(data, start + 3)
    end = start + length
    if length < 8 or end > len(data) or zlib.crc32(view[start:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
        raise ValueError("not a whole packet")
    timestamp, test_id, tags, route = None, None, [], ""
    if flags & 0x0200:
        seconds = int.from_bytes(data[position:position + 4], "big")
        nanoseconds, position = _number(data, position + 4)
        timestamp = seconds + nanoseconds / 1e9
    if flags & 0x0800:
        test_id, position = _utf8(data, position)
    if flags & 0x0080:
        count, position = _number(data, position)
        for _ in range(count):
            tag, position = _utf8(data, position)
            tags.append(tag)
    if flags & 0x0020:
        _, position = _utf8(data, position)  # MIME type
    if flags & 0x0040:
        _, position = _utf8(data, position)  # file name
        size, position = _number(data, position)
        position += size
    if flags & 0x0400:
        route, position = _utf8(data, position)
    code = flags & 0x0007
    named = {SUBUNIT_EXISTS: "exists", SUBUNIT_INPROGRESS: "inprogress", **SUBUNIT_ENDED}
    if not test_id or code not in named:
        return None, length
    worker = route or next((tag for tag in tags if tag.startswith("worker-")), "")
    return SubunitStatus(test_id, named[code], timestamp, worker), length
