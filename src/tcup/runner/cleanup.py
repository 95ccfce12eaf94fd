"""Leaving the cloud as the run found it, touching nothing that is not the run's.

Tempest's tests delete what they create, unless they are cut short: a
Ctrl-C, a SIGTERM, a crash or a timeout leaves servers, volumes, networks
and, for an admin, the users and projects of dynamic credentials. Other
people work in the same cloud at the same time, with the same account
even, and their resources may carry Tempest's names too. So a resource is
removed only with evidence that this run made it:

* its id is in the run's record (``tcup.runner.records``: every resource a
  request of this run created, as it was created; and Tempest's own
  ``record_resources`` file), or
* it belongs to a project or user that this run's dynamic credentials made
  (and then that project or user goes too, being recorded).

Never by name, and never merely because it appeared during the run.

``save``, before the tests, lists what the credentials see of each kind
(every page of it). A recorded id that was already there is spared (an
answer that named an existing resource). A kind whose listing failed or was
cut short cannot be checked so: for it, only recorded ids are removed, and
a note says so. ``clean`` repeats deleting until nothing of the run's is
left (a server's volume goes once the server has gone) or a deadline passes,
and reports what it removed and what is left, by kind, id, name and project.

``tcup cleanup RUN`` runs ``clean`` later, from the saved record alone (no
listing from before the run exists then).

Run as ``python -m tcup.runner.cleanup save|clean [--record FILE] [--no-state]
[--dry-run]`` in the workspace, with Tempest's environment: a member's
account is read from accounts.yaml, an admin's from tempest.conf.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from tcup import contract
from tcup.runner import records, resources

# Written in the workspace (the process's cwd), in the secret tmpfs.
STATE_FILE = "tcup-cleanup-state.json"
RESULT_FILE = "tcup-cleanup-result.json"
TEMPEST_RECORD = "resource_list.json"  # Tempest's record_resources file, in its cwd
DEADLINE = 120  # seconds of deleting before what is left is reported
SAVE_TIMEOUT = 120
PAUSE = 3
SERVICES = ("nova", "cinder", "neutron", "glance", "swift")


class Scopes:
    """Tempest's clients for the run's own credentials, by the scope they
    see. The admin sees every project (its listings ask for all of them)
    and reaches every user's keypairs by id. A member's accounts each see
    their own project (with --accounts, the tests' resources are spread
    over all of them): one account per project. Keypairs Nova keeps per
    user, and a member lists only their own: those are looked at as each
    account's user, in scopes named ``user <id>``."""

    def __init__(self, admin: bool):
        from tempest import clients, config
        from tempest.common import credentials_factory

        if admin:
            self.projects = {"admin": clients.Manager(credentials_factory.get_configured_admin_credentials())}
            self.users = self.projects
            return
        import yaml

        self.projects, self.users = {}, {}
        for entry in yaml.safe_load(Path(config.CONF.auth.test_accounts_file).read_text()):
            account = {key: value for key, value in entry.items() if key not in ("roles", "resources")}
            mgr = clients.Manager(credentials_factory.get_credentials(**account))
            scope = account.get("project_id") or f"{account.get('project_domain_name')}/{account.get('project_name')}"
            self.projects.setdefault(scope, mgr)
            try:
                user = mgr.auth_provider.auth_data[1]["user"]["id"]
            except Exception:  # noqa: BLE001 - an account that cannot log in has no keypairs to list
                continue
            self.users.setdefault(f"user {user}", mgr)

    def of(self, kind: str) -> dict:
        """{scope: manager} that ``kind`` is listed and removed in."""
        return self.users if kind == "keypairs" else self.projects


def scope_user(scope: str) -> Optional[str]:
    """The user a ``user <id>`` scope is, or None for a project's or the admin's."""
    return scope[len("user "):] if scope.startswith("user ") else None


def available() -> Dict[str, bool]:
    from tempest import config

    return {name: bool(getattr(config.CONF.service_available, name, False)) for name in SERVICES}


def list_kind(kind: resources.Kind, mgr, admin: bool) -> resources.Listing:
    """A kind's listing; one that fails is an empty, incomplete one."""
    try:
        return kind.list(mgr, admin)
    except Exception as error:  # noqa: BLE001 - a kind these credentials may not list
        if type(error).__name__ == "NotFound":
            return resources.Listing([], True)  # the cloud has no such API (an extension not loaded)
        return resources.Listing([], False, f"failed ({type(error).__name__})")


def save(admin: bool) -> dict:
    """What the credentials can see now: {scope: {kind: {"ids", "complete", "why"}}}."""
    state: dict = {}
    scopes = Scopes(admin)
    for kind in resources.kinds(admin, available()):
        for scope, mgr in scopes.of(kind.name).items():
            found = list_kind(kind, mgr, admin)
            state.setdefault(scope, {})[kind.name] = {"ids": sorted({item["id"] for item in found.items}),
                                                      "complete": found.complete, "why": found.why}
    return state


class Evidence:
    """What this run can prove it made: recorded ids, and the projects and
    users its dynamic credentials made (an admin's run)."""

    def __init__(self, recorded: records.Recorded, admin: bool):
        self.recorded = recorded
        self.projects = set(recorded.ids("projects")) if admin else set()
        self.users = set(recorded.ids("users")) if admin else set()

    def why(self, kind: str, item: dict, before: Optional[dict], user: Optional[str] = None) -> Optional[str]:
        """Why ``item`` is the run's to remove, or None. ``before``: the
        kind's listing from before the run (None: there is none, as for
        `tcup cleanup`); a kind whose listing was not complete is removed
        by record alone. ``user``: the member account whose own keypairs
        ``item`` is one of."""
        if before is not None and before["complete"] and item["id"] in before["ids"]:
            return None  # it was there before the run, whatever the record says
        if item["id"] in self.recorded.ids(kind):
            return None if self.another_users(kind, item["id"], user) else "recorded"
        if before is not None and not before["complete"]:
            return None
        if item.get("project") in self.projects and kind != "projects":
            return "in a project this run made"
        if kind == "keypairs" and item.get("user") in self.users:
            return "of a user this run made"
        return None

    def another_users(self, kind: str, key: str, user: Optional[str]) -> bool:
        """Whether the record of ``key`` is another account's keypair: a
        name alone is not enough, as two users may have the same one."""
        recorded = self.recorded.ids(kind).get(key, {}).get("user")
        return bool(user) and recorded not in (None, user)


class Cleaner:
    """Rounds of listing and deleting what this run made, in every scope."""

    def __init__(self, admin: bool, state: Optional[dict], evidence: Evidence, dry_run: bool = False):
        self.admin, self.state, self.evidence, self.dry_run = admin, state, evidence, dry_run
        self.scopes = Scopes(admin)
        self.kinds = resources.kinds(admin, available())
        self.asked: Dict[tuple, dict] = {}  # every resource deleting was tried for
        self.notes: List[str] = []
        self.seen: Dict[str, List[dict]] = {}  # the newest listing of each kind, every scope

    def listed_before(self, scope: str, kind: str) -> Optional[dict]:
        if self.state is None:
            return None
        found = (self.state.get(scope) or {}).get(kind)
        return {"ids": set(found["ids"]), "complete": found["complete"]} if found else \
            {"ids": set(), "complete": False}

    def run(self) -> dict:
        deadline = time.monotonic() + DEADLINE
        kinds = self.kinds
        while True:
            present = self.round(kinds)
            if not present and kinds != self.kinds:
                # What was there is gone; one more look at every kind.
                kinds = self.kinds
                present = self.round(kinds)
            if not present or self.dry_run or time.monotonic() > deadline:
                break
            for (kind, _), entry in present.items():
                self.delete(kind, entry)
            time.sleep(PAUSE)  # deleting is asynchronous: what is gone shows in the next listing
            # Listing every kind of a large cloud takes a while: the next
            # rounds look again only at the kinds that had something.
            kinds = [kind for kind in self.kinds if any(name == kind.name for name, _ in present)]
        removed = [entry for key, entry in self.asked.items() if key not in present]
        return {"removed": [public(entry) for entry in removed], "left": [public(entry) for entry in present.values()],
                "unproven": [public(entry) for entry in self.unproven()], "notes": self.notes,
                "dry_run": self.dry_run}

    def unproven(self) -> List[dict]:
        """Resources named as a request of this run asked, when the run was
        stopped before the answer (and its id) came: maybe the run's, maybe
        not, so they are shown, never removed."""
        found = []
        for asked in self.evidence.recorded.unanswered():
            for item in self.seen.get(asked["kind"], []):
                if item["name"] == asked["name"] and item["id"] not in self.evidence.recorded.ids(asked["kind"]):
                    found.append({**item, "kind": asked["kind"], "why": "asked for by the run; no answer came"})
        return found

    def round(self, kinds: List[resources.Kind]) -> Dict[tuple, dict]:
        """What of the run's is there now, of these kinds, by (kind, id)."""
        present: Dict[tuple, dict] = {}
        for kind in kinds:
            self.seen[kind.name] = []
            for scope, mgr in self.scopes.of(kind.name).items():
                for entry in self.candidates(scope, mgr, kind):
                    present[(kind.name, entry["id"])] = entry
        return present

    def candidates(self, scope: str, mgr, kind: resources.Kind) -> List[dict]:
        before = self.listed_before(scope, kind.name)
        found = list_kind(kind, mgr, self.admin)
        self.seen[kind.name] += found.items
        words = contract.kind_words(kind.name)
        if before is not None and not before["complete"]:
            self.note(f"{words}: the listing from before the tests {self.why_incomplete(scope, kind.name)}, so only "
                      f"the {words} this run recorded are removed, by id")
        elif not found.complete:
            self.note(f"{words}: the listing {found.why or 'was cut short'}, so the recorded {words} it did not "
                      "show are removed by id")
        chosen = []
        user = scope_user(scope)
        for item in found.items:
            why = self.evidence.why(kind.name, item, before, user)
            if why:
                entry = {**item, "kind": kind.name, "why": why, "scope": scope, "mgr": mgr}
                if user:
                    entry["user"] = None  # a user's own keypair goes as that user's, not by user id
                chosen.append(entry)
        if not found.complete or (kind.name == "keypairs" and not user):
            # Nova lists only the caller's keypairs: a dynamic user's is
            # known from its record alone.
            chosen += self.unlisted(scope, mgr, kind, {item["id"] for item in found.items}, before)
        return chosen

    def unlisted(self, scope, mgr, kind, listed: set, before) -> List[dict]:
        """Recorded resources a cut-short listing did not show: deleting by id
        says whether they are still there (gone: not found)."""
        entries = []
        user = scope_user(scope)
        for key, record in self.evidence.recorded.ids(kind.name).items():
            if key in listed or (before and before["complete"] and key in before["ids"]):
                continue
            if self.evidence.another_users(kind.name, key, user):
                continue  # its own account's scope looks at it
            entry = {"id": key, "name": record.get("name") or "", "project": record.get("project"),
                     "user": None if user else record.get("user"), "kind": kind.name, "why": "recorded",
                     "scope": scope, "mgr": mgr}
            if self.dry_run or self.delete(kind, entry, quiet_if_gone=True):
                entries.append(entry)
        return entries

    def delete(self, kind, entry: dict, quiet_if_gone: bool = False) -> bool:
        """Ask for one resource to go; False when it is not there (any more)."""
        kind = kind if isinstance(kind, resources.Kind) else resources.BY_NAME[kind]
        self.asked[(kind.name, entry["id"])] = entry
        try:
            kind.delete(entry["mgr"], entry)
            entry.pop("error", None)
        except Exception as error:  # noqa: BLE001 - it may go in a later round
            if type(error).__name__ == "NotFound":
                if quiet_if_gone:
                    self.asked.pop((kind.name, entry["id"]), None)
                return False
            entry["error"] = type(error).__name__
        return True

    def why_incomplete(self, scope: str, kind: str) -> str:
        found = (self.state or {}).get(scope, {}).get(kind)
        return found["why"] if found and found.get("why") else "is missing"


    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)


def public(entry: dict) -> dict:
    """A resource as cleanup.json and the launcher show it."""
    shown = {key: entry.get(key) for key in ("kind", "id", "name", "project", "why", "error") if entry.get(key)}
    template = resources.BY_NAME[entry["kind"]].removes_with
    shown["remove_with"] = template.format(id=entry["id"])
    return shown


def read_recorded(record: Optional[str]) -> records.Recorded:
    """The run's record and Tempest's own, as one."""
    recorded = records.Recorded()
    if record and Path(record).is_file():
        recorded = records.Recorded.parse(Path(record).read_text(errors="replace"))
    try:
        recorded.add_tempest(json.loads(Path(TEMPEST_RECORD).read_text()))
    except (OSError, ValueError):
        pass  # none: Tempest recorded nothing (or the run never started)
    return recorded


# -- in the runner (no Tempest imported there) -----------------------------------

def before(workspace) -> None:
    """Remember what the cloud holds before the tests."""
    from tcup.runner import process
    from tcup.runner.errors import InfraError
    from tcup.runner.events import log

    try:
        process.run([sys.executable, "-m", "tcup.runner.cleanup", "save"], env=workspace.env,
                    cwd=str(workspace.path), timeout=SAVE_TIMEOUT, what="cleanup (before the tests)")
    except InfraError as error:
        # Not fatal: the cleanup then removes only what the run recorded.
        log(f"cannot list the cloud's resources before the tests: {error}")


def after(workspace, results_dir: Path, record: Path, by_record: bool = False, dry_run: bool = False) -> dict:
    """Remove what the run made; {"removed": [...], "left": [...], "notes": [...]},
    also written to the results (an interrupted run's launcher reads it
    there), unless it only says what it would remove."""
    from tcup import contract, private_files
    from tcup.runner import events, process
    from tcup.runner.errors import InfraError

    argv = [sys.executable, "-m", "tcup.runner.cleanup", "clean", "--record", str(record)]
    argv += ["--no-state"] if by_record else []
    argv += ["--dry-run"] if dry_run else []
    try:
        process.run(argv, env=workspace.env, cwd=str(workspace.path), timeout=DEADLINE + SAVE_TIMEOUT,
                    what="cleanup (after the tests)")
        result = json.loads((Path(workspace.path) / RESULT_FILE).read_text())
    except (InfraError, OSError, ValueError) as error:
        result = {"removed": [], "left": [], "notes": [], "error": str(error)}
    if not dry_run:
        # Masked as every result file is: the user's own project id is no
        # business of a file that may be sent on.
        shown = contract.masked(result, events.mask().text)
        private_files.write_atomically(results_dir / contract.CLEANUP_FILE, (json.dumps(shown, indent=2) + "\n").encode())
    return result


def main(argv) -> int:
    from tempest import config

    parser = argparse.ArgumentParser(prog="tcup.runner.cleanup")
    parser.add_argument("action", choices=("save", "clean"))
    parser.add_argument("--record", help="the run's record (records.py)")
    parser.add_argument("--no-state", action="store_true", help="no listing from before the run exists")
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    args = parser.parse_args(argv)
    admin = config.CONF.auth.use_dynamic_credentials
    if args.action == "save":
        Path(STATE_FILE).write_text(json.dumps(save(admin)))
        return 0
    if args.no_state:
        state = None
    elif Path(STATE_FILE).exists():
        state = json.loads(Path(STATE_FILE).read_text())
    else:
        state = {}  # the listing before the tests failed: every kind by record alone
    result = Cleaner(admin, state, Evidence(read_recorded(args.record), admin), args.dry_run).run()
    Path(RESULT_FILE).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as error:  # noqa: BLE001 - one line for the runner's log, whatever it was
        print(f"cleanup: {type(error).__name__}: {' '.join(str(error).split())[:300]}", file=sys.stderr)
        sys.exit(1)
