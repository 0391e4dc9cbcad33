"""Mailchimp opt-outs of contacts segflow holds no member for: the plan queues ONE audience scan for them
(instead of a read per contact), the scan's addresses are matched to live customers, only an opt-out counts,
and the scan's cursor moves only after a settled scan -- with in-memory ports and audience."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from segflow.consent.store import InMemoryIdentities
from segflow.destinations.mailchimp_models import MemberPage
from segflow.store.customers import PROFILE, customer_pk
from segflow.sync.adapters import DestinationAdapter
from segflow.sync.desired import build_desired
from segflow.sync.reconcile import (
    SCAN_OVERLAP,
    Observation,
    match_scanned,
    reconcile,
    unconfirmed,
    unconfirmed_to_scan,
)
from segflow.sync.service import AudienceReader, scan_cursor_key
from segflow.sync.state import SyncState

from tests.unit.sync.builders import CONFIG, view
from tests.unit.sync.test_service import QUEUES, World

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
NO_OPT_IN = {"consent_status": "unknown"}


def state(customer_id: str, **fields: Any) -> SyncState:
    return SyncState(customer_id, "mailchimp", **fields)


def test_unconfirmed_means_no_member_and_no_refusal_recorded() -> None:
    assert unconfirmed(None)
    assert unconfirmed(state("c1", email="a@example.com"))  # a create that never got an answer
    assert not unconfirmed(state("c1", destination_id="h1", status="subscribed"))
    assert not unconfirmed(state("c1", status="compliance"))  # refused: already an opt-out
    assert not unconfirmed(state("c1", status="forgotten"))


def test_the_plan_scans_for_eligible_mailchimp_contacts_it_may_not_subscribe() -> None:
    views = {
        "c00001": view(1, "Champions", **NO_OPT_IN),  # eligible, no opt-in: never created
        "c00002": view(2, "Champions"),  # opted in: a create answers for them
        "c00003": view(3, "Champions", eligible=False, ineligible_reasons=["x"], **NO_OPT_IN),
        "c00004": view(4, "Champions", **NO_OPT_IN),  # already a member
        "c00005": view(5, "Champions", **NO_OPT_IN),  # a refusal already recorded
        "c00006": view(6, "Champions", **NO_OPT_IN),  # a state without a member
    }
    states = {
        "c00004": state("c00004", email="user4@example.com", destination_id="h4", status="subscribed"),
        "c00005": state("c00005", email="user5@example.com", status="unsubscribed"),
        "c00006": state("c00006", email="user6@example.com"),
    }
    for destination in ("mailchimp", "hubspot"):
        desired = [build_desired(v, destination, CONFIG) for v in views.values()]
        expected = ["c00001", "c00006"] if destination == "mailchimp" else []  # HubSpot creates every eligible one
        assert unconfirmed_to_scan(destination, desired, states) == expected


def test_scanned_addresses_count_only_as_a_live_customers_current_address_without_a_member() -> None:
    owners = {"one@example.com": "c1", "two@example.com": "c2", "old@example.com": "c3",
              "four@example.com": "c4", "five@example.com": "c5"}
    current = {"c1": "one@example.com", "c2": "two@example.com", "c3": "new@example.com",
               "c5": "five@example.com"}  # c4: no live profile (erased, merged away)
    recorded = {
        "c2": state("c2", email="older@example.com", version=2),  # a create that never got an answer
        "c5": state("c5", email="five@example.com", destination_id="h5", status="subscribed", version=1),
    }
    scanned = ["one@example.com", "two@example.com", "old@example.com", "four@example.com", "five@example.com",
               "stranger@example.com", "one@example.com"]
    matches = match_scanned("mailchimp", scanned, owners, current, recorded)
    assert [(s.customer_id, s.email, s.version) for s in matches.states] == [
        ("c1", "one@example.com", 0),
        ("c2", "two@example.com", 2),  # under the scanned (current) address
    ]
    assert (matches.unmatched, matches.known) == (3, 1)  # old address, erased, stranger; c5 is read one by one


def test_only_an_opt_out_of_an_unconfirmed_contact_is_recorded() -> None:
    checked = [
        state("c1", email="a@example.com"),
        state("c2", email="b@example.com"),
        state("c3", email="c@example.com"),
        state("c4", email="d@example.com"),
        state("c5", email="e@example.com", version=3),
        state("c6", email="f@example.com"),
    ]
    observed = {
        "a@example.com": Observation(True, "ha", "unsubscribed"),
        "b@example.com": Observation(True, "hb", "subscribed"),  # subscribed elsewhere: still no opt-in here
        "c@example.com": Observation(False),  # never added
        "d@example.com": Observation(True, "hd", "archived"),
        "e@example.com": Observation(True, "he", "cleaned"),
    }
    result = reconcile("mailchimp", checked, observed, NOW)
    assert dict(result.findings) == {"unsubscribed": 1, "cleaned": 1}
    by_id = {s.customer_id: s for s in result.corrections}
    assert sorted(by_id) == ["c1", "c5"]
    assert (by_id["c1"].status, by_id["c1"].destination_id, by_id["c1"].version) == ("unsubscribed", "ha", 1)
    assert by_id["c1"].blocked and by_id["c1"].memberships() == frozenset()  # the planner creates nothing now
    assert by_id["c5"].version == 4 and by_id["c5"].email == "e@example.com"
    assert [(o["customer_id"], o["email"], o["source"], o["reason"]) for o in result.opt_outs] == [
        ("c1", "a@example.com", "destination:mailchimp", "unsubscribed"),
        ("c5", "e@example.com", "destination:mailchimp", "cleaned"),
    ]


@dataclass
class MemoryAudience:
    """An audience served a few members a page, filtered like GET /lists/{id}/members; remembers each read.
    `leaves_after_first_page`: an address that leaves its status once the first page was served;
    `fail_after_pages`: pages served before the next read fails (a delivery cut off)."""

    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> {id, status, last_changed}
    page_size: int = 2
    reads: list[tuple[str, datetime | None, int]] = field(default_factory=list)  # status, since, offset
    leaves_after_first_page: str | None = None
    fail_after_pages: int | None = None

    def add(self, email: str, status: str, last_changed: datetime) -> None:
        self.members[email] = {"id": f"h-{email.split('@')[0]}", "status": status, "last_changed": last_changed}

    def pages(self, status: str, since: datetime | None, offset: int) -> Iterator[MemberPage]:
        while True:
            if self.fail_after_pages is not None and len(self.reads) >= self.fail_after_pages:
                raise TimeoutError("the function ran out of time")
            matching = [
                {"email_address": e, "id": m["id"], "status": m["status"], "last_changed": m["last_changed"]}
                for e, m in self.members.items()
                if m["status"] == status and (since is None or m["last_changed"] > since)
            ]
            self.reads.append((status, since, offset))
            page = matching[offset : offset + self.page_size]
            yield MemberPage(page, offset, len(matching))
            if self.leaves_after_first_page in self.members and offset == 0:
                self.members[self.leaves_after_first_page]["status"] = "subscribed"
            offset += len(page)
            if not page or offset >= len(matching):
                return

    def reader(self, adapter: DestinationAdapter) -> AudienceReader:
        return AudienceReader("list-1", self.pages)


def scanning_world(tmp_path: Path, audience: MemoryAudience, *views: dict[str, Any]) -> World:
    world = World(tmp_path)
    world.seed(*views)
    identities = InMemoryIdentities(world.items.items)
    for seeded in views:
        identities.add("email", seeded["email"], seeded["customer_id"])
    worker = world.workers["mailchimp"]
    worker.ports.identities = identities
    worker.audience = audience.reader
    return world


def cursor(world: World) -> datetime:
    data = json.loads(world.objects.get_bytes(scan_cursor_key("mailchimp", "list-1")))
    return datetime.fromisoformat(data["since_last_changed"])


def test_the_nightly_scan_learns_a_mailchimp_opt_out_of_a_contact_it_never_created(tmp_path: Path) -> None:
    audience = MemoryAudience()
    long_ago = NOW - timedelta(days=400)
    for email, status in (("user2@example.com", "unsubscribed"), ("user5@example.com", "cleaned"),
                          ("stranger@example.com", "unsubscribed"), ("user3@example.com", "unsubscribed"),
                          ("user4@example.com", "unsubscribed"), ("user6@example.com", "subscribed")):
        audience.add(email, status, long_ago)
    world = scanning_world(
        tmp_path, audience, view(1, "Champions"), view(2, "Champions", **NO_OPT_IN),
        view(3, "Champions", **NO_OPT_IN), view(4, "Champions", eligible=False, ineligible_reasons=["x"], **NO_OPT_IN),
        view(5, "Champions", **NO_OPT_IN), view(6, "Champions", **NO_OPT_IN),
    )
    world.planner.handle(world.changed(*(f"c0000{i}" for i in range(1, 7))))
    world.deliver("mailchimp")
    created = {c for c, s in world.states.all_states("mailchimp").items() if s.destination_id}
    assert created == {"c00001"}  # only the opted-in contact was created
    world.observed = {"user1@example.com": Observation(True, "h1", "subscribed")}  # the one-by-one read

    nightly = world.planner.handle({"mode": "all", "reconcile": True})
    messages = world.queue.messages[QUEUES["mailchimp"]]
    assert [(m["kind"], m.get("scope"), m["contacts"]) for m in messages] == [
        ("reconcile", "audience", 0),  # one scan however many contacts have no member
        ("reconcile", None, 1),  # the confirmed member, read one by one
    ]
    world.items.items[(customer_pk("c00003"), PROFILE)]["merged_into"] = "c00001"  # gone before the scan
    started = world.clock.now
    world.deliver("mailchimp")

    assert audience.reads == [("unsubscribed", None, 0), ("unsubscribed", None, 2), ("cleaned", None, 0)]
    learned = world.states.get_states("mailchimp", ["c00002", "c00004", "c00005"])
    assert {c: (s.status, s.destination_id, s.email) for c, s in learned.items()} == {
        "c00002": ("unsubscribed", "h-user2", "user2@example.com"),
        "c00004": ("unsubscribed", "h-user4", "user4@example.com"),  # ineligible too: an opt-out is kept
        "c00005": ("cleaned", "h-user5", "user5@example.com"),
    }
    records = [r for event in world.events("ConsentChanged") for r in event["detail"]["records"]]  # per page
    assert sorted((r["customer_id"], r["status"], r["source"]) for r in records) == [
        ("c00002", "opted_out", "destination:mailchimp"),
        ("c00004", "opted_out", "destination:mailchimp"),
        ("c00005", "opted_out", "destination:mailchimp"),
    ]
    scan = json.loads(world.objects.get_bytes(f"sync/{nightly.run_id}/history/mailchimp/{messages[0]['work_item_id']}.json"))
    assert {k: scan[k] for k in ("read", "pages", "contacts", "unmatched", "known", "opt_outs", "settled")} == {
        "read": 5, "pages": 3, "contacts": 3, "unmatched": 2, "known": 0, "opt_outs": 3, "settled": True}
    assert "stranger@example.com" not in json.dumps(scan)  # counted, never named
    line = world.log(nightly.run_id, "mailchimp")
    assert line["reconcile"] == {"items": 2, "read": 6, "corrections": 3, "opt_outs": 3}
    assert line["status"] == "completed"
    assert started < cursor(world) + SCAN_OVERLAP <= world.clock.now  # the scan's start, minus the overlap

    calls, stored = len(world.destinations["mailchimp"].calls), cursor(world)
    audience.add("user6@example.com", "unsubscribed", NOW)  # changed since: the next scan sees it
    again = world.planner.handle({"mode": "all", "reconcile": True})
    world.deliver("mailchimp")
    assert audience.reads[3:] == [("unsubscribed", stored, 0), ("cleaned", stored, 0)]  # only what changed since
    assert world.log(again.run_id, "mailchimp")["reconcile"]["opt_outs"] == 1
    assert world.states.get_states("mailchimp", ["c00006"])["c00006"].status == "unsubscribed"
    assert len(world.destinations["mailchimp"].calls) == calls  # and never a create for any of them


def test_a_scan_whose_totals_moved_keeps_the_old_cursor(tmp_path: Path) -> None:
    audience = MemoryAudience(leaves_after_first_page="user3@example.com")
    for i in (2, 3, 4):
        audience.add(f"user{i}@example.com", "unsubscribed", NOW)
    world = scanning_world(tmp_path, audience, *(view(i, "Champions", **NO_OPT_IN) for i in (2, 3, 4)))
    world.planner.handle({"mode": "all", "reconcile": True})
    outcomes = world.deliver("mailchimp")

    assert outcomes[0].record["settled"] is False
    assert not world.objects.exists(scan_cursor_key("mailchimp", "list-1"))  # the next scan starts over
    audience.leaves_after_first_page = None
    world.planner.handle({"mode": "all", "reconcile": True})
    world.deliver("mailchimp")
    assert audience.reads[-1][1] is None  # read everything again, and this time it settled
    assert world.objects.exists(scan_cursor_key("mailchimp", "list-1"))
    learned = world.states.get_states("mailchimp", ["c00002", "c00003", "c00004"])
    assert {c: s.status for c, s in learned.items()} == {"c00002": "unsubscribed", "c00003": "unsubscribed",
                                                          "c00004": "unsubscribed"}  # c00004, skipped first


def test_a_scan_without_the_identity_port_fails_instead_of_learning_nothing(tmp_path: Path) -> None:
    audience = MemoryAudience()
    world = scanning_world(tmp_path, audience, view(2, "Champions", **NO_OPT_IN))
    world.workers["mailchimp"].ports.identities = None
    world.planner.handle({"mode": "all", "reconcile": True})
    with pytest.raises(RuntimeError, match="identities"):
        world.deliver("mailchimp")
    assert audience.reads == []


def test_a_scan_cut_off_is_carried_on_by_the_next_delivery_from_the_page_it_reached(tmp_path: Path) -> None:
    audience = MemoryAudience(fail_after_pages=2)
    for i in range(2, 7):
        audience.add(f"user{i}@example.com", "unsubscribed", NOW)
    world = scanning_world(tmp_path, audience, *(view(i, "Champions", **NO_OPT_IN) for i in range(2, 7)))
    world.planner.handle({"mode": "all", "reconcile": True})
    [scan] = world.queue.take("mailchimp")
    with pytest.raises(TimeoutError):
        world.workers["mailchimp"].process(scan, receive_count=1)
    assert not world.objects.exists(scan_cursor_key("mailchimp", "list-1"))

    audience.fail_after_pages = None
    outcome = world.workers["mailchimp"].process(scan, receive_count=2)

    assert [offset for _, _, offset in audience.reads] == [0, 2, 4, 0]  # 0 and 2 are not read again
    assert {k: outcome.record[k] for k in ("read", "pages", "opt_outs", "settled")} == {
        "read": 5, "pages": 4, "opt_outs": 5, "settled": True}  # the tally spans both deliveries
    records = [r for event in world.events("ConsentChanged") for r in event["detail"]["records"]]
    assert sorted(r["customer_id"] for r in records) == [f"c0000{i}" for i in range(2, 7)]  # each once
    assert world.objects.exists(scan_cursor_key("mailchimp", "list-1"))
    assert world.log(outcome.run_id, "mailchimp")["reconcile"] == {"items": 1, "read": 5, "corrections": 5,
                                                                    "opt_outs": 5}
