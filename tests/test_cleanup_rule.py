"""The cleanup's rule, as pure logic: what a run records creating, what
counts as evidence that a resource is the run's, and listings followed to
their last page. The real cleanup against real clouds (other tenants
beside the run, small listing limits) is in tests/test_cleanup_cloud.py."""

import json

import pytest

from tcup.runner import records, resources
from tcup.runner.cleanup import Evidence


def test_a_post_answer_is_recorded_as_kind_id_name_and_project_and_nothing_else():
    body = json.dumps({"server": {"id": "s1", "name": "tempest-x", "tenant_id": "p1", "adminPass": "hunter2"}})
    assert records.from_answer("servers", body) == [{"kind": "servers", "id": "s1", "name": "tempest-x",
                                                     "project": "p1"}]
    secret = {"application_credential": {"id": "a1", "name": "ac", "secret": "s3cr3t", "user_id": "u1"}}
    assert records.from_answer("users/u1/application_credentials", secret) == [
        {"kind": "application_credentials", "id": "a1", "name": "ac", "user": "u1"}]
    assert "s3cr3t" not in json.dumps(records.from_answer("x", secret))


@pytest.mark.parametrize("url,body,location,expected", [
    ("images", {"id": "i1", "name": "img", "owner": "p1", "status": "queued"}, None,
     [{"kind": "images", "id": "i1", "name": "img", "project": "p1"}]),
    ("servers/s1/action", b"", "http://nova/v2.1/images/i2", [{"kind": "images", "id": "i2", "name": ""}]),
    ("servers/s1/action", {"image_id": "i3"}, None, [{"kind": "images", "id": "i3", "name": ""}]),
    ("volumes/v1/action", {"os-volume_upload_image": {"id": "v1", "image_id": "i4", "image_name": "up"}}, None,
     [{"kind": "images", "id": "i4", "name": "up"}]),
    ("os-keypairs", {"keypair": {"name": "kp", "user_id": "u1", "private_key": "KEY"}}, None,
     [{"kind": "keypairs", "id": "kp", "name": "kp", "user": "u1"}]),
    ("v2.0/ports", {"ports": [{"id": "a", "project_id": "p"}, {"id": "b", "project_id": "p"}]}, None,
     [{"kind": "ports", "id": "a", "name": "", "project": "p"}, {"kind": "ports", "id": "b", "name": "", "project": "p"}]),
    ("auth/tokens", {"token": {"methods": ["password"], "expires_at": "x"}}, None, []),
    ("servers/s1/action", {"output": "console text"}, None, []),
    ("servers", b"not json", None, []),
])
def test_what_each_kind_of_answer_records(url, body, location, expected):
    assert records.from_answer(url, body, location) == expected


def test_a_record_file_with_a_torn_last_line_and_tempests_own_record_read_as_one(tmp_path):
    path = tmp_path / "resources.jsonl"
    records.append(str(path), [records.header("cpid-1", "dynamic"),
                               {"kind": "servers", "id": "s1", "name": "tempest-a", "project": "p1"}])
    with open(path, "a") as file:
        file.write('{"kind": "volumes", "id": "v1", "na')  # a SIGKILL mid-write
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    recorded = records.Recorded.parse(path.read_text())
    recorded.add_tempest({"volumes": {"v2": "tempest-vol"}, "servers": {"s1": "tempest-a"}})
    assert recorded.header["cpid"] == "cpid-1"
    assert set(recorded.ids("servers")) == {"s1"} and recorded.ids("servers")["s1"]["project"] == "p1"
    assert set(recorded.ids("volumes")) == {"v2"}
    assert len(recorded) == 2


def test_a_request_cut_off_before_its_answer_is_known_as_asked_for_and_unanswered(tmp_path):
    """A SIGKILL mid-request: the cloud may have made the server, and no
    answer gave its id. Negative tests' refusals count as answered."""
    path = str(tmp_path / "resources.jsonl")
    made = records.ask("servers", json.dumps({"server": {"name": "tempest-made-1", "imageRef": "i"}}))
    refused = records.ask("volumes", json.dumps({"volume": {"name": "tempest-bad-2", "size": -1}}))
    lost = records.ask("servers", json.dumps({"server": {"name": "tempest-lost-3"}}))
    assert records.ask("auth/tokens", json.dumps({"auth": {"identity": {}}})) is None
    records.append(path, [made, refused, lost])
    records.append(path, records.answered(made, records.from_answer("servers", b'{"server": {"id": "s1"}}')))
    records.append(path, [{"answered": refused["ask"]}])
    recorded = records.Recorded.parse((tmp_path / "resources.jsonl").read_text())
    assert recorded.ids("servers") == {"s1": {"kind": "servers", "id": "s1", "name": "tempest-made-1"}}
    assert recorded.unanswered() == [{"kind": "servers", "name": "tempest-lost-3"}]


def evidence(admin=True):
    recorded = records.Recorded()
    for record in ({"kind": "servers", "id": "mine", "name": "tempest-mine"},
                   {"kind": "projects", "id": "dyn-project", "name": "tempest-p"},
                   {"kind": "users", "id": "dyn-user", "name": "tempest-u"},
                   {"kind": "servers", "id": "was-there", "name": "rebuilt"}):
        recorded.add(record)
    return Evidence(recorded, admin)


COMPLETE = {"ids": {"was-there", "colleague-old"}, "complete": True}
CUT_SHORT = {"ids": {"was-there"}, "complete": False}


@pytest.mark.parametrize("kind,item,before,why", [
    # recorded by this run: removed
    ("servers", {"id": "mine", "name": "tempest-mine"}, COMPLETE, "recorded"),
    # named like Tempest's, new since the run began, in the run's project: a colleague's; kept
    ("servers", {"id": "colleague", "name": "tempest-colleague-1", "project": "demo"}, COMPLETE, None),
    ("servers", {"id": "tempestuous", "name": "tempestuous-db"}, CUT_SHORT, None),
    # recorded, but listed before the run: an answer that named an existing resource; kept
    ("servers", {"id": "was-there", "name": "rebuilt"}, COMPLETE, None),
    # in a project this run's dynamic credentials made, though not recorded (Neutron's default group)
    ("security_groups", {"id": "sg", "name": "default", "project": "dyn-project"}, COMPLETE,
     "in a project this run made"),
    # ...but a kind whose listing from before was cut short goes by record alone
    ("security_groups", {"id": "sg", "name": "default", "project": "dyn-project"}, CUT_SHORT, None),
    ("servers", {"id": "mine", "name": "tempest-mine"}, CUT_SHORT, "recorded"),
    # the project itself goes because it is recorded
    ("projects", {"id": "dyn-project", "name": "tempest-p"}, COMPLETE, "recorded"),
    ("keypairs", {"id": "kp", "name": "kp", "user": "dyn-user"}, COMPLETE, "of a user this run made"),
    # `tcup cleanup RUN`: no listing from before; records and the run's projects
    ("ports", {"id": "port", "project": "dyn-project"}, None, "in a project this run made"),
    ("ports", {"id": "port", "project": "someone-else"}, None, None),
])
def test_only_evidence_that_the_run_made_it_removes_a_resource(kind, item, before, why):
    assert evidence().why(kind, item, before) == why


def test_a_member_run_has_no_dynamic_projects_to_go_by():
    assert evidence(admin=False).why("ports", {"id": "p", "project": "dyn-project"}, COMPLETE) is None


def test_a_member_account_removes_only_the_keypairs_recorded_as_its_users():
    recorded = records.Recorded()
    recorded.add({"kind": "keypairs", "id": "tempest-key-1", "name": "tempest-key-1", "user": "user-a"})
    recorded.add({"kind": "keypairs", "id": "tempest-key-2", "name": "tempest-key-2"})  # Tempest's record: no user
    member = Evidence(recorded, admin=False)
    listed = {"id": "tempest-key-1", "name": "tempest-key-1"}
    assert member.why("keypairs", listed, COMPLETE, "user-a") == "recorded"
    # user-b has a keypair of the same name: another user's, not this run's
    assert member.why("keypairs", listed, COMPLETE, "user-b") is None
    assert member.another_users("keypairs", "tempest-key-1", "user-b")
    assert not member.another_users("keypairs", "tempest-key-2", "user-b")
    # the admin reaches every user's by id: no account of its own to match
    assert not member.another_users("keypairs", "tempest-key-1", None)


def pages(items, size, style):
    """A fake API answering pages of ``size`` items in the given paging style."""
    def fetch(query):
        start = items.index(query["marker"]) + 1 if "marker" in query else 0
        page = items[start:start + size]
        body = {"things": [{"id": i} for i in page]}
        more = start + size < len(items)
        if more and style == "links":
            body["things_links"] = [{"rel": "next", "href": f"http://x/things?limit={size}&marker={page[-1]}"}]
        if more and style == "glance":
            body["next"] = f"/v2/things?marker={page[-1]}"
        return body
    return fetch


@pytest.mark.parametrize("style", ["links", "glance"])
def test_a_listing_follows_every_page(style):
    items = [f"id-{n}" for n in range(23)]
    found, complete = resources.paged(pages(items, 5, style), "things", {"all_tenants": True})
    assert [item["id"] for item in found] == items and complete


def test_a_listing_that_pages_on_and_on_is_cut_short(monkeypatch):
    monkeypatch.setattr(resources, "MAX_PAGES", 3)
    found, complete = resources.paged(pages([f"i{n}" for n in range(40)], 5, "links"), "things")
    assert len(found) == 15 and not complete


def test_server_groups_page_by_offset_until_an_empty_page():
    groups = [{"id": f"g{n}"} for n in range(12)]
    found, complete = resources.by_offset(lambda q: {"server_groups": groups[q["offset"]:q["offset"] + 5]},
                                          "server_groups")
    assert [g["id"] for g in found] == [g["id"] for g in groups] and complete


def test_every_kind_says_how_to_remove_one_by_hand():
    assert all("{id}" in kind.removes_with for kind in resources.KINDS)
    names = [kind.name for kind in resources.KINDS]
    # deleting goes from what holds things to what is held, identities last
    assert names.index("servers") < names.index("volumes") and names.index("snapshots") < names.index("volumes")
    assert names.index("routers") < names.index("subnets") < names.index("networks")
    assert names.index("projects") > names.index("security_groups")
