"""The applier against an in-memory destination: idempotency, guard, compliance, quotas, partial failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
from segflow.destinations.errors import DailyLimitReached, ProvisioningConflict, RetriesExhausted
from segflow.store.sync_state import InMemorySyncStateStore
from segflow.sync.adapters import MembershipChange, MembershipWrites, UpsertRequest
from segflow.sync.applier import apply
from segflow.sync.desired import DesiredContact, build_desired
from segflow.sync.planner import plan
from segflow.sync.ports import RecordingSuppressions
from segflow.sync.workitems import WorkItem, chunk_plan

from tests.unit.sync.builders import CONFIG, MemoryDestination, opted_out, view

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def allow_all(contact: DesiredContact) -> bool:
    return True


def item_for(
    views: list[dict[str, Any]],
    store: InMemorySyncStateStore,
    destination: str = "mailchimp",
    run_id: str = "run-1",
) -> WorkItem:
    desired = [build_desired(v, destination, CONFIG) for v in views]
    items = chunk_plan(plan(desired, store.all_states(destination)), run_id, contacts_per_item=1_000)
    assert len(items) <= 1
    return items[0] if items else WorkItem.build(run_id, destination, [])


def test_apply_pushes_records_confirmed_state_and_a_second_apply_changes_nothing() -> None:
    store, destination = InMemorySyncStateStore(), MemoryDestination()
    item = item_for([view(1, "Champions", "At risk"), view(2, "Big spenders")], store)
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.complete and report.counts() == {"pushed": 2} and not report.stop_run
    assert [c[0] for c in destination.calls] == ["prepare", "upsert", "change", "change", "change", "change"]
    assert destination.member_of("segflow - At risk") == {"user1@example.com"}
    state = store.get_states("mailchimp", ["c00001"])["c00001"]
    assert state.tags == {"segflow: Champions", "segflow: At risk"} and state.segments == {
        "segflow - At risk"
    }
    assert state.fields["FNAME"] == "Name1" and state.status == "subscribed" and state.version == 1
    assert state.last_result["outcome"] == "pushed" and state.synced_at == NOW.isoformat()

    calls, writes = len(destination.calls), len(destination.writes)
    again = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)  # a redelivered message
    assert again.counts() == {"unchanged": 2} and again.stats.calls == 0
    assert len(destination.calls) == calls and len(destination.writes) == writes
    assert store.get_states("mailchimp", ["c00001"])["c00001"].version == 1


def test_guard_is_the_last_check_before_every_write_and_a_refusal_only_reduces() -> None:
    store, destination = InMemorySyncStateStore(), MemoryDestination()
    apply(
        item_for([view(1, "Champions"), view(2, "Champions")], store),
        destination,
        store,
        allow_all,
        RecordingSuppressions(),
        NOW,
    )
    log: list[tuple[str, str, bool]] = []
    refused = {"user2@example.com", "user3@example.com"}

    def strict(contact: DesiredContact) -> bool:
        log.append(("guard", contact.email, contact.email not in refused))
        return contact.email not in refused

    original_upsert, original_change = destination.upsert, destination.change

    def upsert(requests: Any) -> Any:
        log.extend(("write", r.email, True) for r in requests)
        return original_upsert(requests)

    def change(membership: Any, add: Any, remove: Any) -> Any:
        log.extend(("write", ref, True) for ref in add)
        return original_change(membership, add, remove)

    destination.upsert, destination.change = upsert, change  # type: ignore[method-assign]
    views = [
        view(1, "Champions", "At risk", city="Nice"),
        view(2, "Champions", "At risk", city="Nice"),
        view(3, "Champions"),
    ]
    report = apply(item_for(views, store), destination, store, strict, RecordingSuppressions(), NOW)
    for index, (kind, email, _) in enumerate(log):
        if kind == "write":
            checks = [ok for k, e, ok in log[:index] if k == "guard" and e == email]
            assert checks and checks[-1], f"{email} written without a passing guard check"
    written = {email for kind, email, _ in log if kind == "write"}
    assert not written & refused
    assert report.contacts["c00002"].outcome == "blocked" and report.contacts["c00003"].outcome == "blocked"
    assert destination.member_of("segflow: Champions") == {"user1@example.com"}  # c2's recorded tag removed
    assert store.get_states("mailchimp", ["c00002"])["c00002"].tags == frozenset()
    assert "c00003" in store.all_states("mailchimp")  # blocked is recorded as the last result
    assert store.get_states("mailchimp", ["c00003"])["c00003"].last_result["outcome"] == "blocked"


def test_a_guard_that_raises_refuses() -> None:
    store, destination = InMemorySyncStateStore(), MemoryDestination()

    def broken(contact: DesiredContact) -> bool:
        raise RuntimeError("consent store unreachable")

    report = apply(
        item_for([view(1, "Champions")], store), destination, store, broken, RecordingSuppressions(), NOW
    )
    assert report.counts() == {"blocked": 1} and destination.writes == []


def test_compliance_refusal_becomes_a_suppression_and_a_blocking_status_never_a_retry() -> None:
    store = InMemorySyncStateStore()
    destination = MemoryDestination(fail_upsert={"user1@example.com": "compliance"})
    suppressions = RecordingSuppressions()
    report = apply(
        item_for([view(1, "Champions"), view(2)], store), destination, store, allow_all, suppressions, NOW
    )
    assert report.contacts["c00001"].outcome == "compliance" and not report.retryable
    assert [(s.customer_id, s.destination, s.reason) for s in suppressions.recorded] == [
        ("c00001", "mailchimp", "unsubscribed")
    ]
    assert store.get_states("mailchimp", ["c00001"])["c00001"].status == "unsubscribed"
    assert destination.member_of("segflow: Champions") == set()  # no adds after a refusal
    follow_up = item_for([view(1, "Champions", city="Nice"), view(2)], store)
    assert follow_up.contacts == ()  # nothing planned for an unsubscribed member


def test_failed_and_retryable_upserts() -> None:
    store = InMemorySyncStateStore()
    destination = MemoryDestination(
        fail_upsert={"user1@example.com": "failed", "user2@example.com": "retryable"}
    )
    item = item_for([view(1, "Champions"), view(2, "Champions"), view(3, "Champions")], store)
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.contacts["c00001"].outcome == "failed" and not report.contacts["c00001"].retryable
    assert report.retryable == ["c00002"] and report.contacts["c00003"].outcome == "pushed"
    assert store.get_states("mailchimp", ["c00001"])["c00001"].last_result["error_code"] == "BOOM"
    destination.fail_upsert.clear()
    writes = len(destination.writes)
    again = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)  # SQS redelivery
    assert again.complete and again.contacts["c00003"].outcome == "unchanged"
    assert destination.writes[writes:].count("user3@example.com") == 0  # finished contacts are not rewritten


def test_daily_quota_stops_the_run_and_returns_unfinished_contacts() -> None:
    store = InMemorySyncStateStore()
    destination = MemoryDestination(
        destination="hubspot",
        raise_on="upsert-midway",
        error=DailyLimitReached("hubspot", "POST upsert", "daily", status=429),
    )
    item = item_for([view(i, "Champions") for i in range(10)], store, destination="hubspot")
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.stop_run and len(report.remaining) == 10  # memberships still pending for everyone
    assert report.retryable == report.remaining and report.error
    upserted = store.all_states("hubspot")
    assert len(upserted) == 5 and all(s.destination_id and not s.lists for s in upserted.values())
    again = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)  # after the quota reset
    assert again.complete and not again.stop_run
    assert sorted(destination.writes[:5]) == sorted(set(destination.writes[:5]))
    assert len([w for w in destination.writes if "@" in w]) == 10  # each contact upserted exactly once
    assert destination.member_of("segflow - Champions") == {
        destination.members[e]["id"] for e in destination.members
    }


def test_transient_failure_in_memberships_leaves_contacts_retryable_and_convergent() -> None:
    store = InMemorySyncStateStore()
    destination = MemoryDestination(
        raise_on="change", error=RetriesExhausted("mailchimp", "POST segment", "gave up")
    )
    item = item_for([view(1, "Champions"), view(2, "Champions")], store)
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.retryable == ["c00001", "c00002"] and not report.stop_run
    assert all(s.fields for s in store.all_states("mailchimp").values())  # the upserts were recorded
    again = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert again.complete and [c[0] for c in destination.calls].count("upsert") == 1
    assert destination.member_of("segflow: Champions") == {"user1@example.com", "user2@example.com"}


def test_provisioning_conflict_fails_the_item_without_retry() -> None:
    store = InMemorySyncStateStore()
    destination = MemoryDestination(raise_on="prepare")
    destination.error = None

    def conflict(*args: Any) -> None:
        raise ProvisioningConflict("merge field CITY is of type number, segflow needs text")

    destination.prepare = conflict  # type: ignore[method-assign]
    report = apply(
        item_for([view(1, "Champions")], store), destination, store, allow_all, RecordingSuppressions(), NOW
    )
    assert report.counts() == {"failed": 1} and not report.retryable and "CITY" in (report.error or "")


def test_unsubscribe_propagates_withdrawn_consent_and_removes_tags() -> None:
    store, destination = InMemorySyncStateStore(), MemoryDestination()
    apply(
        item_for([view(1, "Champions")], store), destination, store, allow_all, RecordingSuppressions(), NOW
    )
    guard_seen: list[str] = []
    report = apply(
        item_for([opted_out(1, "Champions")], store),
        destination,
        store,
        lambda c: guard_seen.append(c.email) or False,
        RecordingSuppressions(),
        NOW,
    )
    assert report.counts() == {"pushed": 1} and guard_seen == []  # reductions need no permission
    assert destination.members["user1@example.com"]["status"] == "unsubscribed"
    assert destination.member_of("segflow: Champions") == set()
    state = store.get_states("mailchimp", ["c00001"])["c00001"]
    assert state.status == "unsubscribed" and state.tags == frozenset()


def test_hubspot_memberships_use_record_ids_and_an_email_change_moves_them() -> None:
    store, destination = InMemorySyncStateStore(), MemoryDestination(destination="hubspot")
    apply(
        item_for([view(1, "Champions")], store, "hubspot"),
        destination,
        store,
        allow_all,
        RecordingSuppressions(),
        NOW,
    )
    old_id = destination.members["user1@example.com"]["id"]
    assert destination.member_of("segflow - Champions") == {old_id}
    moved = item_for([view(1, "Champions", email="new1@example.com")], store, "hubspot", run_id="run-2")
    report = apply(moved, destination, store, allow_all, RecordingSuppressions(), NOW)
    new_id = destination.members["new1@example.com"]["id"]
    assert report.complete and destination.member_of("segflow - Champions") == {new_id} and new_id != old_id
    state = store.get_states("hubspot", ["c00001"])["c00001"]
    assert state.email == "new1@example.com" and state.destination_id == new_id
    assert state.lists == {"segflow - Champions"}


def test_a_concurrent_state_write_makes_the_contact_retryable() -> None:
    store, destination = InMemorySyncStateStore(), MemoryDestination()
    item = item_for([view(1, "Champions")], store)
    original = store.put_states

    def racing(states: Any) -> list[str]:
        original([s.__class__(s.customer_id, s.destination, version=1) for s in states])  # someone else first
        return original(states)

    store.put_states = racing  # type: ignore[method-assign]
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.state_conflicts == ["c00001"] and report.retryable == ["c00001"]


def test_adapter_for_another_destination_is_refused() -> None:
    store = InMemorySyncStateStore()
    with pytest.raises(ValueError, match="adapter"):
        apply(
            item_for([view(1)], store, "hubspot"),
            MemoryDestination(),
            store,
            allow_all,
            RecordingSuppressions(),
            NOW,
        )


# ---- all memberships at once, updates bundled with them (the Mailchimp batch path) -------------------------


@dataclass
class BundlingDestination(MemoryDestination):
    """Takes an item's updates together with all its membership changes in one call (like one Mailchimp
    batch), when `bundle` says so; `unreported` emails get no update result, `retry_refs` fail retryably."""

    bundle: bool = True
    unreported: set[str] = field(default_factory=set)
    retry_refs: set[str] = field(default_factory=set)
    offered: list[tuple[int, list[Any]]] = field(default_factory=list)

    def bundles_updates(self, updates: int, changes: Sequence[MembershipChange]) -> bool:
        self.offered.append((updates, list(changes)))
        return self.bundle

    def change_all(
        self, changes: Sequence[MembershipChange], updates: Sequence[UpsertRequest] = ()
    ) -> MembershipWrites:
        assert not any(r.create for r in updates)
        self.calls.append(("change_all", ([r.email for r in updates], [c.membership for c in changes])))
        calls = len(self.calls)
        upserts = [r for r in self.upsert([u for u in updates if u.email not in self.unreported])]
        writes = MembershipWrites(upserts=upserts)
        for change in changes:
            outcome = self.change(change.membership, [r for r in change.add if r not in self.retry_refs],
                                  change.remove)
            for ref in set(change.add) & self.retry_refs:
                outcome.fail(ref, "HTTP_503", retryable=True)
            writes.memberships[change.membership] = outcome
        del self.calls[calls:]  # one call in all
        return writes


def _moved(views: list[dict[str, Any]], **changed: Any) -> list[dict[str, Any]]:
    return [{**v, "memberships": {"At risk": "2026-10-31T00:00:00+00:00"}, **changed} for v in views]


def test_updates_go_with_all_memberships_in_one_call_and_creates_first() -> None:
    store, destination = InMemorySyncStateStore(), BundlingDestination()
    first = [view(1, "Champions"), view(2, "Champions")]
    apply(item_for(first, store), destination, store, allow_all, RecordingSuppressions(), NOW)
    assert [c[0] for c in destination.calls] == ["prepare", "upsert", "change_all"]  # creates first
    assert destination.calls[-1][1][0] == []  # nothing to update: new members were created
    destination.calls.clear()
    item = item_for(_moved(first, city="Nice") + [view(3, "At risk")], store)
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.complete and report.counts() == {"pushed": 3}
    assert [c[0] for c in destination.calls] == ["prepare", "upsert", "change_all"]
    assert destination.calls[1][1] == ["user3@example.com"]  # the create, alone
    updated, pairs = destination.calls[2][1]
    assert updated == ["user1@example.com", "user2@example.com"]
    assert pairs == [
        ("segment", "segflow - At risk"),
        ("tag", "segflow: At risk"),
        ("tag", "segflow: Champions"),
    ]
    assert destination.offered[-1][0] == 2  # priced with the updates and the planned changes
    assert destination.member_of("segflow: At risk") == {f"user{i}@example.com" for i in (1, 2, 3)}
    assert destination.member_of("segflow: Champions") == set()
    states = store.all_states("mailchimp")
    assert {s.fields["CITY"] for k, s in states.items() if k != "c00003"} == {"Nice"}
    assert all(s.tags == {"segflow: At risk"} for s in states.values())
    again = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)  # a redelivery
    assert again.counts() == {"unchanged": 3} and len(destination.calls) == 3


def test_without_bundling_updates_go_first_and_memberships_all_at_once() -> None:
    store, destination = InMemorySyncStateStore(), BundlingDestination(bundle=False)
    first = [view(1, "Champions"), view(2, "Champions")]
    apply(item_for(first, store), destination, store, allow_all, RecordingSuppressions(), NOW)
    destination.calls.clear()
    apply(item_for(_moved(first, city="Nice"), store), destination, store, allow_all,
          RecordingSuppressions(), NOW)
    assert [c[0] for c in destination.calls] == ["prepare", "upsert", "change_all"]
    assert destination.calls[2][1][0] == []


def test_a_bundled_update_refused_for_compliance_becomes_a_suppression_and_its_add_is_recorded() -> None:
    store, destination = InMemorySyncStateStore(), BundlingDestination()
    first = [view(1, "Champions"), view(2, "Champions")]
    apply(item_for(first, store), destination, store, allow_all, RecordingSuppressions(), NOW)
    destination.fail_upsert["user1@example.com"] = "compliance"  # unsubscribed in the destination meanwhile
    suppressions = RecordingSuppressions()
    report = apply(item_for(_moved(first, city="Nice"), store), destination, store, allow_all, suppressions,
                   NOW)
    assert report.contacts["c00001"].outcome == "compliance" and not report.retryable
    assert [(s.customer_id, s.reason) for s in suppressions.recorded] == [("c00001", "unsubscribed")]
    state = store.get_states("mailchimp", ["c00001"])["c00001"]
    # the add went in the same request: recorded, because the destination holds it
    assert state.status == "unsubscribed" and state.tags == {"segflow: At risk"}
    follow_up = item_for(_moved(first, city="Nice"), store, run_id="run-2")
    (contact,) = follow_up.contacts
    assert contact.customer_id == "c00001" and contact.action == "none" and not contact.adds
    assert ("tag", "segflow: At risk") in contact.removes  # the blocked member loses it next time
    apply(follow_up, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert destination.member_of("segflow: At risk") == {"user2@example.com"}


def test_the_guard_is_asked_again_right_before_the_bundled_call() -> None:
    store, destination = InMemorySyncStateStore(), BundlingDestination()
    first = [view(1, "Champions"), view(2, "Champions")]
    apply(item_for(first, store), destination, store, allow_all, RecordingSuppressions(), NOW)
    refused: set[str] = set()
    original = destination.bundles_updates

    def withdraw_meanwhile(updates: int, changes: Sequence[MembershipChange]) -> bool:
        refused.add("user2@example.com")  # consent withdrawn after the upsert check, before the write
        return original(updates, changes)

    destination.bundles_updates = withdraw_meanwhile  # type: ignore[method-assign]
    report = apply(item_for(_moved(first, city="Nice"), store), destination, store,
                   lambda c: c.email not in refused, RecordingSuppressions(), NOW)
    (bundled,) = [args for name, args in destination.calls if name == "change_all"][1:]
    assert bundled[0] == ["user1@example.com"]  # user2 was neither updated nor added
    assert report.contacts["c00002"].outcome == "blocked"
    assert destination.member_of("segflow: At risk") == {"user1@example.com"}
    assert destination.member_of("segflow: Champions") == set()  # removals still go ahead
    assert store.get_states("mailchimp", ["c00002"])["c00002"].tags == frozenset()


def test_retryable_membership_failures_and_unreported_updates_leave_contacts_retryable() -> None:
    store, destination = InMemorySyncStateStore(), BundlingDestination()
    first = [view(1, "Champions"), view(2, "Champions"), view(3, "Champions")]
    apply(item_for(first, store), destination, store, allow_all, RecordingSuppressions(), NOW)
    destination.retry_refs, destination.unreported = {"user1@example.com"}, {"user2@example.com"}
    item = item_for(_moved(first, city="Nice"), store)
    report = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)
    assert report.retryable == ["c00001", "c00002"] and report.contacts["c00003"].outcome == "pushed"
    assert report.contacts["c00001"].error_code == "HTTP_503"
    destination.retry_refs, destination.unreported = set(), set()
    again = apply(item, destination, store, allow_all, RecordingSuppressions(), NOW)  # SQS redelivery
    assert again.complete
    updated, pairs = destination.calls[-1][1]
    assert updated == ["user2@example.com"]  # user1 was updated: only its adds are tried again
    assert pairs == [("segment", "segflow - At risk"), ("tag", "segflow: At risk")]
    assert all(s.tags == {"segflow: At risk"} and s.fields["CITY"] == "Nice"
               for s in store.all_states("mailchimp").values())
