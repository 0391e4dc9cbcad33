"""A second Mailchimp sync that changes k contacts' fields goes through batch operations: calls stay constant
per work item instead of one PUT per contact, results land per contact (compliance included), and a batch
that does not finish in time leaves its contacts retryable until a redelivery converges."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segflow.destinations.mailchimp_batches import BatchPolling
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.integration.sync.harness import (
    NOW,
    SyncHarness,
    VirtualClock,
    allow,
    check_converged,
    status_sent_to_existing_members,
    successful_writes,
)
from tests.unit.sync.builders import CONFIG, SEGMENTS, view

N = 600  # two Mailchimp work items (500 contacts each)
BATCH = "POST /3.0/batches"
STATUS_READ = "GET /3.0/batches/{batch_id}"
PUT_MEMBER = "PUT /3.0/lists/{list_id}/members/{subscriber_hash}"


@pytest.fixture
def harness() -> Iterator[SyncHarness]:
    clock = VirtualClock()
    with FakeMailchimp() as mailchimp, FakeHubSpot(clock=clock) as hubspot:
        built = SyncHarness(CONFIG, mailchimp, hubspot, clock)
        yield built
        built.close()


def population() -> list[dict]:
    return [view(i, SEGMENTS[i % 4]) for i in range(N)]


def edited(views: list[dict], every: int, city: str) -> list[dict]:
    return [{**v, "city": city} if i % every == 0 else v for i, v in enumerate(views)]


def test_field_changes_cost_a_constant_number_of_calls_per_work_item(harness: SyncHarness) -> None:
    views = population()
    harness.sync(views, "mailchimp", "run-1", allow)
    costs = {}
    for every, city in ((50, "Nice"), (2, "Porto"), (1, "Lille")):  # 12 contacts changed, then 300, then all
        views = edited(views, every, city)
        harness.mailchimp.reset_observations()
        run = harness.sync(views, "mailchimp", f"run-{every}", allow)
        stats = harness.mailchimp.stats()
        changed = len(run.plan.contacts)
        assert changed == len(range(0, N, every))
        assert stats["requests"] == {BATCH: run.deliveries, STATUS_READ: 2 * run.deliveries}
        assert stats["batch_operations"] == {PUT_MEMBER: changed}
        assert stats["archive_downloads"] == run.deliveries
        costs[changed] = run.requests
        check_converged(harness, views, ["mailchimp"])
        assert max(successful_writes(harness.mailchimp.exchanges, "mailchimp").values()) == 1
    assert costs == {12: 3, 300: 3, 600: 6}  # per work item (<= 500 contacts): 1 submit + 2 status reads
    assert {s.fields["CITY"] for s in harness.store.all_states("mailchimp").values()} == {"Lille"}


def test_compliance_inside_a_batch_becomes_a_suppression_and_nothing_is_resubscribed(
    harness: SyncHarness,
) -> None:
    views = [view(i, SEGMENTS[0]) for i in range(10)]
    harness.sync(views, "mailchimp", "run-1", allow)
    harness.mailchimp.set_member_status("user3@example.com", "unsubscribed")  # unsubscribed in Mailchimp
    harness.mailchimp.set_member_status("user4@example.com", "cleaned")
    harness.mailchimp.reset_observations()
    changed = edited(views, 1, "Nice")
    run = harness.sync(changed, "mailchimp", "run-2", allow)
    outcomes = run.reports[0].contacts
    assert outcomes["c00003"].outcome == "compliance" and outcomes["c00004"].outcome == "compliance"
    assert sorted((s.customer_id, s.reason) for s in harness.suppressions.recorded) == [
        ("c00003", "unsubscribed"),
        ("c00004", "cleaned"),
    ]
    assert harness.mailchimp.stats()["requests"].get(PUT_MEMBER, 0) == 0
    assert status_sent_to_existing_members(harness.mailchimp.exchanges) == []
    assert harness.mailchimp.member("user3@example.com")["status"] == "unsubscribed"


def test_a_batch_that_never_finishes_leaves_contacts_retryable_until_a_redelivery(
    harness: SyncHarness,
) -> None:
    views = [view(i, SEGMENTS[0]) for i in range(10)]
    harness.sync(views, "mailchimp", "run-1", allow)
    adapter = harness.adapters["mailchimp"]
    adapter.client.batches.polling = BatchPolling(first_delay_s=0.001, max_delay_s=0.002, budget_s=0.05)
    harness.mailchimp.batch_polls_to_finish = 1_000_000
    changed = edited(views, 1, "Nice")
    from segflow.sync.applier import apply
    from segflow.sync.planner import plan
    from segflow.sync.workitems import chunk_plan

    wanted = harness.desired(changed, "mailchimp")
    the_plan = plan(
        wanted, harness.store.get_states("mailchimp", [d.customer_id for d in wanted]), "mailchimp"
    )
    [item] = chunk_plan(the_plan, "run-2")
    stalled = apply(item, adapter, harness.store, allow, harness.suppressions, NOW)
    assert not stalled.complete and len(stalled.retryable) == 10
    assert "not finished" in (stalled.error or "")
    assert harness.mailchimp.batches.batches == {}  # the late batch was deleted
    harness.mailchimp.batch_polls_to_finish = 2
    redelivered = apply(item, adapter, harness.store, allow, harness.suppressions, NOW)
    assert redelivered.complete
    check_converged(harness, changed, ["mailchimp"])
    assert {s.fields["CITY"] for s in harness.store.all_states("mailchimp").values()} == {"Nice"}
