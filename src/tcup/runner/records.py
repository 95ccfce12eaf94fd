"""What a run created in the cloud, written down as it was created: the
evidence TCUP's cleanup removes by.

Every Tempest process of a run (``tempest_hooks``) appends one line to the
run's record (``contract.RESOURCES_FILE`` in the results directory) for each
resource a request created: the kind, id, name and the project or user it
belongs to, nothing else of the answer (which may hold a secret, such as an
application credential's). The file is on the user's disk from the first
resource on, so even a SIGKILL leaves the evidence for ``tcup cleanup RUN``.
Its first line says which cloud and which kind of credentials it is about.

Tempest's own ``record_resources`` file (``resource_list.json``, in the
workspace) holds the same ids for what it records; both are read.

Standard library only: the hooks import it into every Tempest process.
"""

import itertools
import json
import os
from typing import Dict, Iterable, List, Optional
from urllib.parse import urlsplit

RECORD_VARIABLE = "TCUP_RECORD_FILE"  # where a Tempest process appends (unset: it records nothing)
# Where an answer names the project (or Glance's owner) a resource belongs to.
PROJECT_FIELDS = ("project_id", "tenant_id", "os-vol-tenant-attr:tenant_id",
                  "os-extended-snapshot-attributes:project_id", "owner")
MAX_LINE = 4096  # one append per line, small enough to be written whole


def kind_of(key: str) -> str:
    """A POST answer's top-level key as a kind, as Tempest's record names it
    (``server`` -> ``servers``, ``floatingip`` -> ``floatingips``)."""
    return key if key.endswith("s") else key + "s"


def entry(kind: str, resource: dict) -> Optional[dict]:
    """One record of ``resource`` (a dict from an API's answer), or None when
    it carries no id. A keypair is known by its name."""
    if not isinstance(resource, dict):
        return None
    key = resource.get("uuid") or resource.get("id")
    if kind == "keypairs":
        key = resource.get("name")
    if not isinstance(key, str) or not key:
        return None
    project = next((resource[f] for f in PROJECT_FIELDS if isinstance(resource.get(f), str) and resource[f]), None)
    name = resource.get("name") if isinstance(resource.get("name"), str) else ""
    found = {"kind": kind, "id": key, "name": name[:255]}
    if project:
        found["project"] = project
    if isinstance(resource.get("user_id"), str) and resource["user_id"]:
        found["user"] = resource["user_id"]
    return found


def from_answer(url: str, body, location: Optional[str] = None) -> List[dict]:
    """The records of what one successful POST created, from its answer:
    ``{"server": {...}}`` (and lists of them), Glance's bare image, and a
    server snapshot's new image (in the body from Nova 2.45, else in the
    Location header)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body) if body else None
        except ValueError:
            body = None
    path = urlsplit(url or "").path.rstrip("/")
    found: List[dict] = []
    if isinstance(body, dict):
        if isinstance(body.get("image_id"), str):
            return [{"kind": "images", "id": body["image_id"], "name": ""}]
        if "id" in body and path.endswith("images"):  # Glance v2 answers with the image itself
            return [record for record in [entry("images", body)] if record]
        upload = body.get("os-volume_upload_image")
        if isinstance(upload, dict) and isinstance(upload.get("image_id"), str):  # a volume as a new image
            return [{"kind": "images", "id": upload["image_id"], "name": upload.get("image_name") or ""}]
        for key, value in body.items():
            for resource in value if isinstance(value, list) else [value]:
                record = entry(kind_of(key), resource)
                if record:
                    found.append(record)
            break  # the first key is the resource, as in Tempest's own record
    if not found and location and path.endswith("/action"):
        image = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if "/images/" in location and image:
            found.append({"kind": "images", "id": image, "name": ""})
    return found


_asked = itertools.count(1)


def ask(url: str, body) -> Optional[dict]:
    """What a POST is about to ask for, written before it is sent: if the
    run is stopped before the answer comes, the cloud may have made it with
    no record of its id. Only requests that name what they create count
    (``{"server": {"name": ...}}``): the name is how a person finds it."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body) if body else None
        except ValueError:
            return None
    if not isinstance(body, dict) or len(body) != 1:
        return None
    key, value = next(iter(body.items()))
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        return None
    return {"ask": f"{os.getpid()}-{next(_asked)}", "kind": kind_of(key), "name": value["name"][:255],
            "path": urlsplit(url or "").path[-200:]}


def answered(asked: Optional[dict], found: List[dict]) -> List[dict]:
    """The records of an answer, and that the ask was answered; a record of
    the kind asked for is named by the ask (Nova's answer to a new server
    does not repeat its name)."""
    if not asked:
        return found
    named = [{**record, "name": record.get("name") or asked["name"]} if record["kind"] == asked["kind"] else record
             for record in found]
    return named + [{"answered": asked["ask"]}]


def append(path: str, records: Iterable[dict]) -> None:
    """Add records to the file, one JSON object a line, each in one write:
    several Tempest workers append to the same file at once."""
    lines = [json.dumps(record, separators=(",", ":"))[:MAX_LINE] + "\n" for record in records]
    if not lines:
        return
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        for line in lines:
            os.write(fd, line.encode())
    finally:
        os.close(fd)


def header(cpid: str, credentials: str) -> dict:
    """The record's first line: the cloud and the kind of credentials."""
    return {"record": "tcup", "cpid": cpid, "credentials": credentials}


class Recorded:
    """What a run recorded: ``{kind: {id: record}}``, and the record's header."""

    def __init__(self):
        self.kinds: Dict[str, Dict[str, dict]] = {}
        self.header: dict = {}
        self.asks: Dict[str, dict] = {}  # what was asked for, by its token
        self.answers: set = set()  # the tokens an answer came for

    @classmethod
    def parse(cls, text: str) -> "Recorded":
        """A record file's text; a line that is not whole (a torn last write)
        or not a record is stepped over."""
        recorded = cls()
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if not isinstance(item, dict):
                continue
            if item.get("record") == "tcup":
                recorded.header = recorded.header or item
            elif isinstance(item.get("ask"), str) and "id" not in item:
                recorded.asks[item["ask"]] = item
            elif isinstance(item.get("answered"), str):
                recorded.answers.add(item["answered"])
            elif isinstance(item.get("kind"), str) and isinstance(item.get("id"), str):
                recorded.add(item)
        return recorded

    def unanswered(self) -> List[dict]:
        """What the run asked to create and never heard back about (it was
        stopped mid-request): it may exist, with no record of its id."""
        return [{"kind": asked["kind"], "name": asked["name"]}
                for token, asked in self.asks.items() if token not in self.answers]

    def add(self, record: dict) -> None:
        known = self.kinds.setdefault(record["kind"], {}).setdefault(record["id"], {})
        known.update({key: value for key, value in record.items() if value and key != "ask"})

    def add_tempest(self, resource_list: dict) -> None:
        """Tempest's own record (resource_list.json): ``{kind: {id: name}}``."""
        for kind, found in (resource_list or {}).items():
            if isinstance(found, dict):
                for key, name in found.items():
                    self.add({"kind": kind, "id": str(key), "name": name if isinstance(name, str) else ""})

    def ids(self, kind: str) -> Dict[str, dict]:
        return self.kinds.get(kind, {})

    def __len__(self) -> int:
        return sum(len(found) for found in self.kinds.values())
