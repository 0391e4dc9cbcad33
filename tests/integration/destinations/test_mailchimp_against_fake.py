"""MailchimpClient against the fake Mailchimp server on loopback (real HTTP, the real API's rules)."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from segflow.destinations.http import RetryPolicy
from segflow.destinations.mailchimp import MailchimpClient
from segflow.destinations.mailchimp_batches import BatchPolling
from segflow.destinations.mailchimp_models import MemberUpsert, MergeFieldSpec, TagUpdate
from segflow.destinations.results import Outcome, outcome_counts
from segflow_local.fakes import FakeMailchimp

from tests.unit.destinations.doubles import VirtualClock

BATCH_ROUTE = "POST /3.0/lists/{list_id}"
FAST_POLLING = BatchPolling(first_delay_s=0.001, max_delay_s=0.002, budget_s=30.0)
SPECS = [MergeFieldSpec(f"SEG{i}", f"Segflow field {i}", "number") for i in range(12)] + [
    MergeFieldSpec("TIER", "Tier", "dropdown", ("gold", "silver")),
]


@pytest.fixture
def fake() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as server:
        yield server


def client_for(fake: FakeMailchimp, **options: object) -> MailchimpClient:
    options.setdefault("batch_polling", FAST_POLLING)  # the fake finishes batches by status reads, not time
    return MailchimpClient(fake.api_key, base_url=fake.base_url, **options)  # type: ignore[arg-type]


def test_provisioning_is_idempotent_past_the_default_page_of_ten(fake: FakeMailchimp) -> None:
    list_id = fake.default_list_id
    with client_for(fake) as client:
        first = client.ensure_merge_fields(list_id, SPECS)
        created = fake.stats()["requests"]["POST /3.0/lists/{list_id}/merge-fields"]
        second = client.ensure_merge_fields(list_id, SPECS)
        segment = client.ensure_static_segment(list_id, "High CLV")
        assert client.ensure_static_segment(list_id, "High CLV") == segment
    assert first == second == {s.tag: s.tag for s in SPECS}
    assert created == len(SPECS)
    assert fake.stats()["requests"]["POST /3.0/lists/{list_id}/merge-fields"] == len(SPECS)  # nothing new
    tags = [f["tag"] for f in fake.state()["lists"][list_id]["merge_fields"]]
    assert len(tags) == len(set(tags)) == 5 + len(SPECS)  # Mailchimp's 5 default fields + ours, no duplicates
    assert fake.stats()["requests"]["POST /3.0/lists/{list_id}/segments"] == 1


def test_1200_new_members_take_three_batch_calls(fake: FakeMailchimp) -> None:
    list_id = fake.default_list_id
    with client_for(fake) as client:
        client.ensure_merge_fields(list_id, SPECS)
        members = [MemberUpsert(f"user{i}@example.com", {"SEG0": i, "TIER": "gold"}, subscribe_if_new=True)
                   for i in range(1_200)]
        results = client.upsert_members(list_id, members)
    assert outcome_counts(results) == {"created": 1_200}
    assert fake.stats()["requests"][BATCH_ROUTE] == 3
    members_state = fake.state()["lists"][list_id]["members"]
    assert len(members_state) == 1_200 and members_state["user7@example.com"]["merge_fields"]["SEG0"] == 7


def test_unsubscribed_cleaned_pending_and_forgotten_members_are_never_resubscribed(fake: FakeMailchimp) -> None:
    list_id = fake.default_list_id
    fake.add_member("gone@example.com", "unsubscribed")
    fake.add_member("bounced@example.com", "cleaned")
    fake.add_member("waiting@example.com", "pending")
    fake.add_member("erased@example.com")
    fake.forget_member("erased@example.com")
    everyone = ["gone@example.com", "bounced@example.com", "waiting@example.com", "erased@example.com"]
    with client_for(fake) as client:
        # the caller (wrongly) claims consent for a new membership: the client must still not resubscribe
        results = client.upsert_members(list_id, [MemberUpsert(e.upper(), {"FNAME": "X"}, subscribe_if_new=True)
                                                  for e in everyone])
        again = client.upsert_members(list_id, [MemberUpsert(e, {"LNAME": "Y"}) for e in everyone])
    by_email = {r.email.lower(): r for r in results}
    assert by_email["gone@example.com"].outcome is Outcome.COMPLIANCE
    assert by_email["bounced@example.com"].outcome is Outcome.COMPLIANCE
    assert by_email["erased@example.com"].outcome is Outcome.COMPLIANCE
    assert by_email["erased@example.com"].error_code == "FORGOTTEN_EMAIL"
    assert by_email["waiting@example.com"].outcome is Outcome.UPDATED
    assert {r.outcome for r in again if r.email != "erased@example.com"} <= {Outcome.COMPLIANCE, Outcome.UPDATED}
    assert fake.member("gone@example.com")["status"] == "unsubscribed"
    assert fake.member("bounced@example.com")["status"] == "cleaned"
    assert fake.member("waiting@example.com")["status"] == "pending"
    assert fake.member("gone@example.com")["merge_fields"]["LNAME"] == "Y"  # data still kept up to date
    assert fake.member("erased@example.com") is None and fake.is_forgotten("erased@example.com")
    for exchange in fake.exchanges:
        if exchange.method == "PUT":
            assert "status" not in exchange.body
        if exchange.method == "POST" and exchange.path.endswith(f"/lists/{list_id}"):
            assert exchange.body["update_existing"] is False


def test_tags_segments_and_permanent_delete(fake: FakeMailchimp) -> None:
    list_id = fake.default_list_id
    with client_for(fake) as client:
        client.upsert_members(list_id, [MemberUpsert(f"m{i}@example.com", subscribe_if_new=True) for i in range(5)])
        tagged = client.update_tags_many(list_id, [TagUpdate(f"m{i}@example.com", {"vip": True, "lapsed": False})
                                                   for i in range(3)])
        untagged = client.update_tags(list_id, TagUpdate("m0@example.com", {"vip": False}))
        segment = client.ensure_static_segment(list_id, "Churn risk")
        added = client.update_segment_members(list_id, segment, add=["m1@example.com", "m2@example.com",
                                                                     "nobody@example.com"])
        removed = client.update_segment_members(list_id, segment, remove=["m2@example.com"])
        deleted = client.delete_permanently(list_id, "m4@example.com")
        statuses = client.member_statuses(list_id, ["m3@example.com", "m4@example.com"])
    state = fake.state()["lists"][list_id]
    assert {r.outcome for r in tagged} == {Outcome.OK} and untagged.outcome is Outcome.OK
    # in Mailchimp a static segment is a tag too
    assert state["members"]["m1@example.com"]["tags"] == ["Churn risk", "vip"]
    assert state["members"]["m0@example.com"]["tags"] == []
    assert [r.outcome.value for r in added] == ["ok", "ok", "failed"]
    assert removed[0].outcome is Outcome.OK
    assert state["segments"]["Churn risk"]["members"] == ["m1@example.com"]
    assert state["members"]["m2@example.com"]["status"] == "subscribed"  # leaving a segment is not an unsubscribe
    assert deleted.outcome is Outcome.OK and fake.is_forgotten("m4@example.com")
    assert [(r.outcome, r.status) for r in statuses] == [(Outcome.OK, "subscribed"), (Outcome.SKIPPED, None)]


def test_parallel_workers_never_pass_ten_connections(fake: FakeMailchimp) -> None:
    list_id = fake.default_list_id
    members = [MemberUpsert(f"p{i}@example.com") for i in range(60)]
    clients = [client_for(fake, max_connections=10, batch_updates_above=None) for _ in range(3)]  # single PUTs
    workers = [threading.Thread(target=c.upsert_members, args=(list_id, members)) for c in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    stats = fake.stats()
    assert stats["requests"]["PUT /3.0/lists/{list_id}/members/{subscriber_hash}"] == 180
    assert stats["max_in_flight"] <= 10 and stats["throttled"] == 0


def test_twenty_percent_injected_faults_converge_with_retries() -> None:
    clock = VirtualClock()
    with FakeMailchimp(fault_rate=0.2, seed=11, fault_kinds=("429", "500")) as fake:
        list_id = fake.default_list_id
        policy = RetryPolicy(max_attempts=10, base_delay_s=0.5)
        with client_for(fake, sleep=clock.sleep, clock=clock, policy=policy) as client:
            client.ensure_merge_fields(list_id, SPECS[:3])
            new = [MemberUpsert(f"f{i}@example.com", {"SEG0": i}, subscribe_if_new=True) for i in range(1_200)]
            created = client.upsert_members(list_id, new)
            updated = client.upsert_members(list_id, [MemberUpsert(f"f{i}@example.com", {"SEG1": i}) for i in range(40)])
            stats = client.stats()
        faults = fake.stats()["faults_injected"]
        state = fake.state()["lists"][list_id]
    assert outcome_counts(created) == {"created": 1_200}
    assert outcome_counts(updated) == {"updated": 40}
    assert len(state["members"]) == 1_200 and state["members"]["f5@example.com"]["merge_fields"]["SEG1"] == 5
    assert sum(faults.values()) > 0 and stats.retries == sum(faults.values())
