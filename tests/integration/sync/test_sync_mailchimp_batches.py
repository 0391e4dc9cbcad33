"""A second Mailchimp sync that changes k contacts' fields or memberships goes through batch operations: calls
stay constant per work item instead of one PUT per contact and one call per tag / static segment, results land
per contact (compliance included), and a batch that does not finish in time leaves its contacts retryable
until a redelivery converges. Large membership changes keep one call per tag / static segment."""

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
    emails_sent_for_adding,
    known_ids,
    requests_made,
    status_sent_to_existing_members,
    successful_writes,
)
from tests.unit.sync.builders import CONFIG, SEGMENTS, view

N = 600  # two Mailchimp work items (500 contacts each)
BATCH = "POST /3.0/batches"
STATUS_READ = "GET /3.0/batches/{batch_id}"
PUT_MEMBER = "PUT /3.0/lists/{list_id}/members/{subscriber_hash}"
MEMBER_TAGS = "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"
SEGMENT_MEMBERS = "POST /3.0/lists/{list_id}/segments/{segment_id}"


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


def moved(views: list[dict], every: int, segment: str, offset: int = 0) -> list[dict]:
    """Every `every`-th contact (from `offset`) now in `segment` only: leaves its tag, joins another."""
    return [
        {**v, "memberships": {segment: "2026-10-31T00:00:00+00:00"}} if i % every == offset else v
        for i, v in enumerate(views)
    ]


def test_small_membership_changes_go_in_the_same_batch_as_the_updates(harness: SyncHarness) -> None:
    views = population()  # SEGMENTS[i % 4]: Champions, At risk, High CLV, Big spenders
    harness.sync(views, "mailchimp", "run-1", allow)
    # 12 contacts move to At risk (tag + static segment), 12 others get a new city
    views = edited(moved(views, 50, "At risk", offset=2), 50, "Nice")
    harness.mailchimp.reset_observations()
    run = harness.sync(views, "mailchimp", "run-2", allow)
    stats = harness.mailchimp.stats()
    assert len(run.plan.contacts) == 24 and run.deliveries == 1
    assert stats["requests"] == {BATCH: 1, STATUS_READ: 2}  # one batch for the work item, nothing else
    assert stats["batch_operations"] == {PUT_MEMBER: 12, MEMBER_TAGS: 12, SEGMENT_MEMBERS: 1}
    assert run.requests == run.estimate["contact_calls"] == 3
    check_converged(harness, views, ["mailchimp"])
    assert status_sent_to_existing_members(harness.mailchimp.exchanges) == []
    sent = requests_made(harness.mailchimp.exchanges)
    tags_sent = [body for _, path, body in sent if path.endswith("/tags")]
    assert len(tags_sent) == 12
    assert all(body["is_syncing"] is False and len(body["tags"]) == 2 for body in tags_sent)
    moved_in = {v["email"] for i, v in enumerate(views) if i % 50 == 2}
    assert moved_in <= emails_sent_for_adding(harness.mailchimp.exchanges, "mailchimp", known_ids(harness))


def test_large_membership_changes_keep_one_call_per_tag_and_segment(harness: SyncHarness) -> None:
    views = population()
    harness.sync(views, "mailchimp", "run-1", allow)
    views = moved(views, 1, "High CLV")  # 450 contacts leave their tag (and segment) and join High CLV
    harness.mailchimp.reset_observations()
    run = harness.sync(views, "mailchimp", "run-2", allow)
    stats = harness.mailchimp.stats()
    assert len(run.plan.contacts) == 450 and not stats.get("batch_operations")
    # 3 tags left, 1 static segment left, 1 tag joined: one call each
    assert stats["requests"] == {SEGMENT_MEMBERS: 5} and run.estimate["contact_calls"] == 5
    check_converged(harness, views, ["mailchimp"])


def test_one_bad_contact_or_a_compliance_refusal_never_fails_the_shared_batch(harness: SyncHarness) -> None:
    views = [view(i, SEGMENTS[0]) for i in range(10)]
    harness.sync(views, "mailchimp", "run-1", allow)
    harness.mailchimp.forget_member("user1@example.com")  # erased in Mailchimp: cannot be tagged
    harness.mailchimp.set_member_status("user2@example.com", "unsubscribed")  # a field update is refused
    changed = moved(views, 1, "At risk")
    changed = [{**v, "city": "Nice"} if i in (2, 3, 4) else v for i, v in enumerate(changed)]
    harness.mailchimp.reset_observations()
    run = harness.sync(changed, "mailchimp", "run-2", allow)
    outcomes = run.reports[0].contacts
    requests = harness.mailchimp.stats()["requests"]
    assert requests[BATCH] == 1 and requests[STATUS_READ] == 2 and SEGMENT_MEMBERS not in requests
    assert outcomes["c00001"].outcome == "failed" and outcomes["c00001"].error_code == "MEMBER_NOT_FOUND"
    assert outcomes["c00002"].outcome == "compliance" and not run.reports[0].retryable
    assert [(s.customer_id, s.reason) for s in harness.suppressions.recorded] == [("c00002", "unsubscribed")]
    assert {c for c, o in outcomes.items() if o.outcome == "pushed"} == {f"c{i:05d}" for i in range(10)} - {
        "c00001",
        "c00002",
    }
    assert harness.mailchimp.member("user2@example.com")["status"] == "unsubscribed"
    assert status_sent_to_existing_members(harness.mailchimp.exchanges) == []
    states = harness.store.all_states("mailchimp")
    assert states["c00001"].tags == {"segflow: Champions"}  # nothing confirmed: the next sync tries again
    assert states["c00002"].status == "unsubscribed"
    assert states["c00002"].tags == {"segflow: At risk"}  # the destination holds it: the next plan removes it
    harness.mailchimp.reset_observations()
    harness.sync(changed, "mailchimp", "run-3", allow)
    assert "segflow: At risk" not in harness.mailchimp.member("user2@example.com")["tags"]
