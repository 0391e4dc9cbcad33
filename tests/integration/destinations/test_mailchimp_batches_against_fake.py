"""MailchimpClient's batch-operation path against the fake Mailchimp over real HTTP: updates of existing
members cost a constant number of calls, keep the real API's member rules, and never leak the API key."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from segflow.destinations.mailchimp import MailchimpClient
from segflow.destinations.mailchimp_batches import BatchNotCompleted, BatchPolling
from segflow.destinations.mailchimp_models import MemberUpsert
from segflow.destinations.results import Outcome, outcome_counts
from segflow_local.fakes import FakeMailchimp
from segflow_local.fakes.mailchimp import is_batch_operation

from tests.unit.destinations.doubles import VirtualClock

PUT_MEMBER = "PUT /3.0/lists/{list_id}/members/{subscriber_hash}"
POLLING = BatchPolling(first_delay_s=1.0, max_delay_s=8.0, budget_s=60.0)


@pytest.fixture
def fake() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as server:
        yield server


def client_for(fake: FakeMailchimp, clock: VirtualClock, **options: object) -> MailchimpClient:
    return MailchimpClient(
        fake.api_key,
        base_url=fake.base_url,
        sleep=clock.sleep,
        clock=clock,  # type: ignore[arg-type]
        batch_polling=POLLING,
        **options,
    )


def test_updating_k_members_costs_the_same_few_calls_whatever_k(fake: FakeMailchimp) -> None:
    list_id, clock = fake.default_list_id, VirtualClock()
    for i in range(400):
        fake.add_member(f"m{i}@example.com")
    costs = {}
    with client_for(fake, clock) as client:
        for k in (10, 400):
            fake.reset_observations()
            results = client.upsert_members(
                list_id, [MemberUpsert(f"m{i}@example.com", {"FNAME": f"k{k}"}) for i in range(k)]
            )
            assert outcome_counts(results) == {"updated": k}
            costs[k] = (fake.stats()["total_requests"], fake.stats()["archive_downloads"])
            assert fake.stats()["requests"] == {"POST /3.0/batches": 1, "GET /3.0/batches/{batch_id}": 2}
            assert fake.stats()["batch_operations"] == {PUT_MEMBER: k}
    assert costs == {10: (3, 1), 400: (3, 1)}
    assert fake.member("m399@example.com")["merge_fields"]["FNAME"] == "k400"
    assert [d.sent_authorization for d in fake.archives.downloads()] == [False]


def test_batched_updates_never_resubscribe_and_report_compliance(fake: FakeMailchimp) -> None:
    list_id, clock = fake.default_list_id, VirtualClock()
    fake.add_member("gone@example.com", "unsubscribed")
    fake.add_member("bounced@example.com", "cleaned")
    fake.add_member("waiting@example.com", "pending")
    fake.add_member("erased@example.com")
    fake.forget_member("erased@example.com")
    fake.add_member("kept@example.com")
    everyone = [
        "gone@example.com",
        "bounced@example.com",
        "waiting@example.com",
        "erased@example.com",
        "kept@example.com",
    ]
    with client_for(fake, clock) as client:
        # the caller (wrongly) claims consent: the create batch finds them, the update batch must not resubscribe
        results = {
            r.email.lower(): r
            for r in client.upsert_members(
                list_id, [MemberUpsert(e.upper(), {"LNAME": "Y"}, subscribe_if_new=True) for e in everyone]
            )
        }
    assert fake.stats()["requests"]["POST /3.0/batches"] == 1
    assert {e: (r.outcome, r.error_code) for e, r in results.items()} == {
        "gone@example.com": (Outcome.COMPLIANCE, "STATUS_UNSUBSCRIBED"),
        "bounced@example.com": (Outcome.COMPLIANCE, "STATUS_CLEANED"),
        "waiting@example.com": (Outcome.UPDATED, None),
        "erased@example.com": (Outcome.COMPLIANCE, "FORGOTTEN_EMAIL"),
        "kept@example.com": (Outcome.UPDATED, None),
    }
    assert [fake.member(e)["status"] for e in everyone if e != "erased@example.com"] == [
        "unsubscribed",
        "cleaned",
        "pending",
        "subscribed",
    ]
    assert fake.member("gone@example.com")["merge_fields"]["LNAME"] == "Y"  # data still kept up to date
    assert fake.member("erased@example.com") is None
    operations = [e for e in fake.exchanges if is_batch_operation(e)]
    assert len(operations) == 4 and all(
        "status" not in e.body for e in operations
    )  # erased: create batch only
    assert all(
        "@" not in json.dumps(op["operation_id"])
        for ex in fake.exchanges
        if ex.path.endswith("/batches")
        for op in ex.body["operations"]
    )


def test_a_batch_that_never_finishes_is_retryable_and_deleted(fake: FakeMailchimp) -> None:
    list_id, clock = fake.default_list_id, VirtualClock()
    for i in range(5):
        fake.add_member(f"m{i}@example.com")
    fake.batch_polls_to_finish = 1_000_000
    with client_for(fake, clock) as client:
        with pytest.raises(BatchNotCompleted):
            client.upsert_members(
                list_id, [MemberUpsert(f"m{i}@example.com", {"FNAME": "Z"}) for i in range(5)]
            )
        assert clock.now - 1_000.0 <= POLLING.budget_s
        assert fake.batches.batches == {}  # deleted, so it cannot land after a newer sync
        fake.batch_polls_to_finish = 2
        again = client.upsert_members(
            list_id, [MemberUpsert(f"m{i}@example.com", {"FNAME": "Z"}) for i in range(5)]
        )
    assert outcome_counts(again) == {"updated": 5}
    assert fake.stats()["requests"]["DELETE /3.0/batches/{batch_id}"] == 1


def test_injected_faults_on_batch_calls_are_retried() -> None:
    clock = VirtualClock()
    with FakeMailchimp(fault_rate=0.5, seed=3, fault_kinds=("429", "500")) as fake:
        list_id = fake.default_list_id
        for i in range(60):
            fake.add_member(f"m{i}@example.com")
        with client_for(fake, clock) as client:
            results = client.upsert_members(
                list_id, [MemberUpsert(f"m{i}@example.com", {"FNAME": "F"}) for i in range(60)]
            )
            stats = client.stats()
        faults = sum(fake.stats()["faults_injected"].values())
        state = fake.state()["lists"][list_id]["members"]
    assert outcome_counts(results) == {"updated": 60}
    assert all(m["merge_fields"]["FNAME"] == "F" for m in state.values())
    assert faults > 0 and stats.retries == faults
