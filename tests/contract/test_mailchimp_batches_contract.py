"""Batch operations against the Mailchimp spec: what the client sends to POST /batches, the status reads, the
list and delete calls, and every operation the fake ran inside a batch (recorded as exchanges) are validated
against the OpenAPI description and the documented rules the copy lost."""

from __future__ import annotations

import hashlib
import json

import requests
from segflow.destinations.mailchimp import MailchimpClient
from segflow.destinations.mailchimp_batches import BatchNotCompleted, BatchPolling
from segflow.destinations.mailchimp_models import MemberUpsert
from segflow.destinations.results import Outcome
from segflow_local.fakes import FakeMailchimp
from segflow_local.fakes.mailchimp import is_batch_operation

from tests.contract.contract_recorder import SpecBook
from tests.unit.destinations.doubles import VirtualClock

POLLING = BatchPolling(first_delay_s=1.0, max_delay_s=4.0, budget_s=30.0)


def _hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def test_client_batch_updates_match_the_spec(checked_mailchimp: FakeMailchimp) -> None:
    fake, clock = checked_mailchimp, VirtualClock()
    list_id = fake.default_list_id
    for i in range(6):
        fake.add_member(f"m{i}@example.com")
    fake.add_member("gone@example.com", "unsubscribed")
    fake.add_member("erased@example.com")
    fake.forget_member("erased@example.com")
    with MailchimpClient(
        fake.api_key, base_url=fake.base_url, sleep=clock.sleep, clock=clock, batch_polling=POLLING
    ) as client:
        members = [MemberUpsert(f"m{i}@example.com", {"FNAME": "Ann", "LNAME": str(i)}) for i in range(6)]
        members += [MemberUpsert("gone@example.com", {"FNAME": "G"}), MemberUpsert("erased@example.com")]
        results = {r.email: r.outcome for r in client.upsert_members(list_id, members)}
        fake.batch_polls_to_finish = 1_000  # the next batch stalls: the client deletes it
        try:
            client.upsert_members(list_id, members[:5])
        except BatchNotCompleted:
            pass
    assert (
        results["gone@example.com"] is Outcome.COMPLIANCE
        and results["erased@example.com"] is Outcome.COMPLIANCE
    )
    assert [results[f"m{i}@example.com"] for i in range(6)] == [Outcome.UPDATED] * 6
    routes = {
        (e.method, e.path.split("/")[2]) for e in fake.exchanges if not is_batch_operation(e)
    }  # /3.0/<x>
    assert {("POST", "batches"), ("GET", "batches"), ("DELETE", "batches")} <= routes
    assert len([e for e in fake.exchanges if is_batch_operation(e)]) == 13  # 8 + 5, validated at teardown


def test_batch_endpoints_of_the_fake_match_the_spec(
    checked_mailchimp: FakeMailchimp, mailchimp_session: requests.Session
) -> None:
    fake, s = checked_mailchimp, mailchimp_session
    base, list_id = fake.base_url, fake.default_list_id
    operations = [
        {
            "method": "PUT",
            "path": f"/lists/{list_id}/members/{_hash('a@example.com')}",
            "operation_id": "a",
            "body": json.dumps({"email_address": "a@example.com", "status_if_new": "subscribed"}),
        },
        {
            "method": "POST",
            "path": f"/lists/{list_id}/members/{_hash('a@example.com')}/tags",
            "operation_id": "t",
            "body": json.dumps({"tags": [{"name": "vip", "status": "active"}]}),
        },
        {
            "method": "GET",
            "path": f"/lists/{list_id}/merge-fields",
            "params": {"count": 2},
            "operation_id": "g",
        },
        {"method": "GET", "path": "/lists/nope", "operation_id": "missing"},
    ]
    batch = s.post(f"{base}/batches", json={"operations": operations}).json()
    assert batch["status"] == "pending"
    assert [s.get(f"{base}/batches/{batch['id']}").json()["status"] for _ in range(2)] == [
        "started",
        "finished",
    ]
    listed = s.get(f"{base}/batches", params={"count": 5}).json()
    assert listed["total_items"] == 1 and listed["batches"][0]["errored_operations"] == 1
    assert s.delete(f"{base}/batches/{batch['id']}").status_code == 204
    assert s.get(f"{base}/batches/{batch['id']}").status_code == 404
    inner = [(e.method, e.status) for e in fake.exchanges if is_batch_operation(e)]
    assert inner == [("PUT", 200), ("POST", 204), ("GET", 200), ("GET", 404)]


def test_documented_rules_catch_malformed_batch_operations(spec_book: SpecBook) -> None:
    with FakeMailchimp() as fake, requests.Session() as s:
        s.auth = ("segflow", fake.api_key)
        versioned = {"method": "GET", "path": "/3.0/lists", "operation_id": "v"}
        not_json = {"method": "PUT", "path": "/lists/x/members/y", "operation_id": "j", "body": "{oops"}
        s.post(f"{fake.base_url}/batches", json={"operations": [versioned, not_json]})
    outer = next(e for e in fake.exchanges if e.path.endswith("/batches"))
    spec_only = [
        p for p in spec_book.exchange_problems("mailchimp", outer) if not p.startswith("documented rule")
    ]
    assert spec_only == []  # the spec copy alone accepts the request
    assert spec_book.exchange_problems("mailchimp", outer) == [
        "documented rule: operations[0].path '/3.0/lists' is not relative to the API root (/lists/...)",
        "documented rule: operations[1].body is not a string holding a JSON object",
    ]


def test_memberships_batched_with_updates_match_the_spec(checked_mailchimp: FakeMailchimp) -> None:
    """The sync's one batch per work item: member PUTs, member tags and static segment operations."""
    from segflow.sync.adapters import MailchimpAdapter, MembershipChange, UpsertRequest
    from segflow.sync.desired import SyncConfig

    fake, clock = checked_mailchimp, VirtualClock()
    list_id = fake.default_list_id
    for i in range(4):
        fake.add_member(f"m{i}@example.com")
    with MailchimpClient(
        fake.api_key, base_url=fake.base_url, sleep=clock.sleep, clock=clock, batch_polling=POLLING
    ) as client:
        adapter = MailchimpAdapter(client, list_id, SyncConfig(segments=(), fields=()))
        adapter.prepare(False, [("tag", "vip"), ("segment", "Loyal")], [])
        changes = [
            MembershipChange(("segment", "Loyal"), ("m0@example.com", "m1@example.com", "m9@example.com")),
            MembershipChange(("tag", "vip"), ("m0@example.com", "m2@example.com"), ("m3@example.com",)),
            MembershipChange(("tag", "old"), (), ("m0@example.com",)),
        ]
        updates = [UpsertRequest(f"c{i}", f"m{i}@example.com", {"FNAME": "Ann"}, False, True) for i in (1, 2)]
        assert adapter.bundles_updates(len(updates), changes)
        writes = adapter.change_all(changes, updates)
    assert [(r.email, r.outcome) for r in writes.upserts] == [
        ("m1@example.com", Outcome.UPDATED),
        ("m2@example.com", Outcome.UPDATED),
    ]
    loyal, vip, old = (writes.memberships[c.membership] for c in changes)
    assert loyal.added == {"m0@example.com", "m1@example.com"} and set(loyal.failed) == {"m9@example.com"}
    assert vip.added == {"m0@example.com", "m2@example.com"} and vip.removed == {"m3@example.com"}
    assert old.removed == {"m0@example.com"}
    tags_of = {
        e: {t["name"] for t in fake.member(f"{e}@example.com")["tags"]} for e in ("m0", "m1", "m2", "m3")
    }
    assert tags_of == {"m0": {"vip", "Loyal"}, "m1": {"Loyal"}, "m2": {"vip"}, "m3": set()}
    inner = [(e.method, e.path.rsplit("/", 1)[-1]) for e in fake.exchanges if is_batch_operation(e)]
    assert inner[:2] == [("PUT", _hash("m1@example.com")), ("PUT", _hash("m2@example.com"))]  # updates first
    segment_id = adapter._segments["Loyal"]
    assert inner[2:] == [("POST", "tags")] * 3 + [("POST", segment_id)]  # 3 members, then 1 segment
    tag_bodies = {e.path.split("/")[-2]: e.body for e in fake.exchanges if e.path.endswith("/tags")}
    assert tag_bodies[_hash("m0@example.com")] == {
        "tags": [{"name": "old", "status": "inactive"}, {"name": "vip", "status": "active"}],
        "is_syncing": False,
    }
