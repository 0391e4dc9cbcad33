"""Look before the first push (issue 5): an opt-out observed in one destination keeps the contact out of every
destination, and nobody is pushed anywhere before every destination was checked for them -- the plan defers
them and queues the checks, the workers mark the checked contacts and announce them (ContactsChecked), and
sync-plan plans them again. Pure rules first, then the plan and the workers with in-memory ports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from segflow.events.schemas import ContactsChecked, parse_detail
from segflow.sync import runlog
from segflow.sync import service as service_module
from segflow.sync.clearance import (
    NOTE_AWAITING_CHECK,
    NOTE_AWAITING_CREATE,
    checked,
    clear,
    explicit_opt_in_after,
)
from segflow.sync.desired import build_desired
from segflow.sync.reconcile import Observation, mark_checked
from segflow.sync.state import SyncState

from tests.unit.sync.builders import CONFIG, view
from tests.unit.sync.test_reconcile_unconfirmed import NO_OPT_IN, MemoryAudience, scanning_world
from tests.unit.sync.test_service import QUEUES, World

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
DESTINATIONS = ("hubspot", "mailchimp")


def looked(*pairs: tuple[dict[str, Any], dict[str, SyncState]]) -> Any:
    views = [v for v, _ in pairs]
    desired = {d: [build_desired(v, d, CONFIG) for v in views] for d in DESTINATIONS}
    states = {d: {v["customer_id"]: s[d] for v, s in pairs if d in s} for d in DESTINATIONS}
    return clear(views, desired, states)


def seen(customer_id: str, destination: str, checked_for: str, **fields: Any) -> SyncState:
    """A state that was checked for the address `checked_for` (besides `fields`)."""
    return SyncState(customer_id, destination, checked_email=checked_for, checked_at=NOW.isoformat(), **fields)


def both_checked(i: int, **mailchimp: Any) -> dict[str, SyncState]:
    email = f"user{i}@example.com"
    return {"hubspot": seen(f"c{i:05d}", "hubspot", email), "mailchimp": seen(f"c{i:05d}", "mailchimp", email, **mailchimp)}


# ---- the rules ------------------------------------------------------------------------------------------


def test_an_opt_out_observed_in_one_destination_withholds_the_contact_everywhere() -> None:
    at = (NOW - timedelta(days=1)).isoformat()
    unsubscribed = {
        "hubspot": SyncState("c00001", "hubspot", email="user1@example.com", destination_id="7",
                             status="unsubscribed", last_result={"at": at}),
        "mailchimp": seen("c00001", "mailchimp", "user1@example.com"),
    }
    result = looked((view(1, "Champions"), unsubscribed))
    assert all(not d[0].eligible and not d[0].memberships() and not d[0].fields for d in result.desired.values())
    assert result.checks == {"hubspot": {}, "mailchimp": {}}  # nothing to check: nothing will be pushed

    # ... a newer explicit opt-in lifts it (the ledger's rule); an older one, or one on another basis, does not
    newer = view(1, "Champions", consent_basis="consent", consent_at=NOW.isoformat())
    assert explicit_opt_in_after(newer, NOW - timedelta(days=1))
    assert looked((newer, unsubscribed)).desired["mailchimp"][0].eligible
    for stale in (view(1, "Champions", consent_basis="consent", consent_at=(NOW - timedelta(days=2)).isoformat()),
                  view(1, "Champions", consent_basis="legitimate_interest", consent_at=NOW.isoformat())):
        assert not looked((stale, unsubscribed)).desired["mailchimp"][0].eligible


def test_a_contact_is_pushed_only_once_every_destination_was_checked() -> None:
    result = looked(
        (view(1, "Champions"), {}),  # never checked anywhere: deferred, both checks queued
        (view(2, "Champions"), {"hubspot": seen("c00002", "hubspot", "user2@example.com")}),
        (view(3, "Champions", email="new3@example.com"), both_checked(3)),  # checked for its old address
        (view(4, "Champions"), both_checked(4)),  # Mailchimp creates it: HubSpot waits for that answer
        (view(5, "Champions"), both_checked(5, email="user5@example.com", destination_id="h5", status="subscribed")),
        (view(6, "Champions", eligible=False, ineligible_reasons=["x"]), {}),  # nothing to push: no check
    )
    assert result.checks == {
        "hubspot": {"c00001": "user1@example.com", "c00003": "new3@example.com"},
        "mailchimp": {"c00001": "user1@example.com", "c00002": "user2@example.com", "c00003": "new3@example.com"},
    }
    assert [d.customer_id for d in result.desired["mailchimp"]] == ["c00004", "c00005", "c00006"]
    assert [d.customer_id for d in result.desired["hubspot"]] == ["c00005", "c00006"]
    assert result.held["hubspot"] == {NOTE_AWAITING_CHECK: 3, NOTE_AWAITING_CREATE: 1}


def test_what_counts_as_checked() -> None:
    email = "a@example.com"
    assert not checked("hubspot", None, email)
    assert not checked("hubspot", SyncState("c", "hubspot", email=email, destination_id="7"), email)  # an upsert
    assert checked("hubspot", SyncState("c", "hubspot", email=email, destination_id="7", status="unsubscribed"), email)
    assert checked("mailchimp", SyncState("c", "mailchimp", email=email, destination_id="h", status="subscribed"), email)
    assert not checked("mailchimp", SyncState("c", "mailchimp", email="old@example.com", destination_id="h"), email)
    assert checked("mailchimp", SyncState("c", "mailchimp", checked_email=email), email)


def test_marking_needs_an_answer_and_an_opt_out_at_a_new_address_is_published_instead() -> None:
    states = {"c2": SyncState("c2", "hubspot", email="old@example.com", destination_id="7", version=3)}
    checks = {"c1": "a@example.com", "c2": "new@example.com", "c3": "c@example.com"}
    observed = {
        "a@example.com": Observation(False),  # no record
        "new@example.com": Observation(True, "8", "unsubscribed"),
        "c@example.com": Observation(True, "9", None, checked=False),  # the status read failed
    }
    writes, opt_outs = mark_checked("hubspot", checks, states, [], observed, NOW)
    assert [(s.customer_id, s.checked_email, s.version) for s in writes] == [("c1", "a@example.com", 1)]
    assert opt_outs == [("c2", "new@example.com")]


# ---- plan and workers -------------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_unchecked_contacts_are_deferred_checked_announced_and_planned_again(tmp_path: Path) -> None:
    audience = MemoryAudience()
    world = scanning_world(tmp_path, audience)
    world.seed(view(1, "Champions"), view(2, "Champions"), view(3, "Champions", **NO_OPT_IN), checked=False)
    world.observed = {
        "user1@example.com": Observation(False),  # HubSpot has no record
        "user2@example.com": Observation(True, "72", "unsubscribed"),  # unsubscribed in HubSpot beforehand
        "user3@example.com": Observation(True, "73", None, checked=False),  # its status read failed
    }
    planned = world.planner.handle(world.changed("c00001", "c00002", "c00003"))
    assert planned.destinations["hubspot"]["held"] == 3 and planned.destinations["hubspot"]["work_items"] == 0
    [scan] = world.queue.messages[QUEUES["mailchimp"]]
    assert scan["scope"] == "audience" and scan["full"] and scan["contacts"] == 3
    [check] = world.queue.messages[QUEUES["hubspot"]]
    assert json.loads(world.objects.get_bytes(check["key"]))["check"] == {
        "c00001": "user1@example.com", "c00002": "user2@example.com", "c00003": "user3@example.com"}
    world.deliver("mailchimp"), world.deliver("hubspot")
    assert audience.reads == [("unsubscribed", None, 0), ("cleaned", None, 0)]  # every opt-out, not a window
    assert not world.destinations["mailchimp"].calls and not world.destinations["hubspot"].calls

    hubspot = world.states.get_states("hubspot", ["c00001", "c00002", "c00003"])
    assert hubspot["c00001"].checked_email == "user1@example.com" and hubspot["c00001"].destination_id is None
    assert (hubspot["c00002"].status, hubspot["c00002"].checked_email) == ("unsubscribed", "user2@example.com")
    assert "c00003" not in hubspot  # nothing known, nothing written: still deferred
    [opt_out] = world.events("ConsentChanged")
    assert [r["customer_id"] for r in opt_out["detail"]["records"]] == ["c00002"]
    announced = {e["detail"]["destination"]: e["detail"]["changed"]["customer_ids"] for e in world.events("ContactsChecked")}
    assert announced == {"mailchimp": ["c00001", "c00002", "c00003"], "hubspot": ["c00001", "c00002"]}
    assert all(isinstance(parse_detail(e), ContactsChecked) and e["source"] == "segflow.sync"
               for e in world.events("ContactsChecked"))

    # planned again at once: c1 is created in Mailchimp first, c2 (unsubscribed in HubSpot) goes nowhere
    for _ in range(4):  # until nothing more is announced
        world.hand_checked_to_planner()
        world.deliver("mailchimp"), world.deliver("hubspot")
    assert set(world.destinations["mailchimp"].members) == {"user1@example.com"}
    assert set(world.destinations["hubspot"].members) == {"user1@example.com"}
    upserted = {e for _, emails in world.destinations["hubspot"].calls if isinstance(emails, list) for e in emails}
    assert "user2@example.com" not in upserted and "user3@example.com" not in upserted


def test_marking_after_a_long_scan_is_carried_on_by_the_next_delivery_not_started_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync of many new customers marks them in chunks after the scan; a delivery that runs out of
    time part-way leaves the marked chunks counted, and the redelivery marks only the rest."""
    monkeypatch.setitem(service_module.RECONCILE_CONTACTS, "mailchimp", 2)  # chunks of 2 instead of 500
    audience = MemoryAudience()
    audience.add("user3@example.com", "unsubscribed", NOW)
    world = scanning_world(tmp_path, audience)
    world.seed(*(view(i, "Champions") for i in range(1, 6)), checked=False)
    for i in range(1, 6):
        world.workers["mailchimp"].ports.identities.add("email", f"user{i}@example.com", f"c0000{i}")
    world.planner.handle(world.changed(*(f"c0000{i}" for i in range(1, 6))))
    [scan] = world.queue.take("mailchimp")
    states = world.workers["mailchimp"].ports.states
    reads: list[list[str]] = []
    real_get = states.get_states
    time_is_up = True

    def get_states(destination: str, customer_ids: list[str]) -> dict[str, SyncState]:
        reads.append(sorted(customer_ids))
        if time_is_up and reads[-1] == ["c00005"]:  # the third chunk: the function's time runs out
            raise TimeoutError("the function ran out of time")
        return real_get(destination, customer_ids)

    monkeypatch.setattr(states, "get_states", get_states)
    with pytest.raises(TimeoutError):
        world.workers["mailchimp"].process(scan, receive_count=1)
    # the scan's page matched c00003, then two chunks were marked before time ran out
    assert reads == [["c00003"], ["c00001", "c00002"], ["c00003", "c00004"], ["c00005"]]
    time_is_up, reads[:] = False, []
    outcome = world.workers["mailchimp"].process(scan, receive_count=2)

    assert reads == [["c00005"]]  # the marked chunks are not marked again
    announced = [c for e in world.events("ContactsChecked") for c in e["detail"]["changed"]["customer_ids"]]
    assert sorted(announced) == [f"c0000{i}" for i in range(1, 6)]  # each once, across both deliveries
    assert outcome.record["checked"] == 5 and outcome.record["settled"]
    marked = world.states.get_states("mailchimp", [f"c0000{i}" for i in range(1, 6)])
    assert all(s.checked_email == f"user{c[-1]}@example.com" for c, s in marked.items()) and len(marked) == 5
    assert marked["c00003"].status == "unsubscribed"  # the opt-out the scan found stays with the mark


def test_a_refused_mailchimp_create_keeps_the_contact_out_of_hubspot(world: World) -> None:
    """A forgotten (or otherwise refused) address is learned only from the create: HubSpot waited for it."""
    world.seed(view(1, "Champions"))
    world.destinations["mailchimp"].fail_upsert["user1@example.com"] = "compliance"
    first = world.planner.handle(world.changed("c00001"))
    assert first.destinations["hubspot"]["work_items"] == 0
    world.deliver("mailchimp")
    [again] = world.hand_checked_to_planner()  # answered (refused): the plan sees the opt-out
    assert again.destinations["hubspot"]["work_items"] == 0
    world.deliver("hubspot")
    assert not world.destinations["hubspot"].members and not world.destinations["hubspot"].calls


def test_a_dry_run_shows_the_deferred_contacts_and_the_checks_in_the_estimate(tmp_path: Path) -> None:
    world = World(tmp_path, dry_run=True)
    world.seed(view(1, "Champions"), view(2, "At risk"), checked=False)
    planned = world.planner.handle({"mode": "all"})
    document = json.loads(world.objects.get_bytes(runlog.plan_key(planned.run_id)))
    for destination in ("mailchimp", "hubspot"):
        shown = document["destinations"][destination]
        assert shown["checks"] == ["c00001", "c00002"] and shown["held"] == {NOTE_AWAITING_CHECK: 2}
        assert shown["contacts"] == [] and shown["estimated_calls"]["checks"] == 2
        assert shown["estimated_calls"]["total"] >= 2
    assert world.log(planned.run_id, "hubspot")["planned"]["checks"] == 2
    assert world.queue.messages == {url: [] for url in QUEUES.values()}
