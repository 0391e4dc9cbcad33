"""Read-back of contacts segflow holds no confirmed member for: which ones are read, what an observation there
means (only an opt-out counts), and the nightly run end to end with in-memory ports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from segflow.store.customers import PROFILE, customer_pk
from segflow.sync.adapters import DestinationAdapter
from segflow.sync.desired import build_desired
from segflow.sync.reconcile import (
    Observation,
    addresses,
    reconcile,
    states_to_check,
    unconfirmed,
    unconfirmed_to_read,
)
from segflow.sync.state import SyncState

from tests.unit.sync.builders import CONFIG, view
from tests.unit.sync.test_service import QUEUES, World

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def state(customer_id: str, **fields: Any) -> SyncState:
    return SyncState(customer_id, "mailchimp", **fields)


def test_unconfirmed_means_no_member_and_no_refusal_recorded() -> None:
    assert unconfirmed(None)
    assert unconfirmed(state("c1", email="a@example.com"))  # a create that never got an answer
    assert not unconfirmed(state("c1", destination_id="h1", status="subscribed"))
    assert not unconfirmed(state("c1", status="compliance"))  # refused: already an opt-out
    assert not unconfirmed(state("c1", status="forgotten"))


def test_the_plan_reads_back_eligible_mailchimp_contacts_it_may_not_subscribe() -> None:
    views = {
        "c00001": view(1, "Champions", consent_status="unknown"),  # eligible, no opt-in: never created
        "c00002": view(2, "Champions"),  # opted in: a create answers for them
        "c00003": view(3, "Champions", consent_status="unknown", eligible=False, ineligible_reasons=["x"]),
        "c00004": view(4, "Champions", consent_status="unknown"),  # already a member
        "c00005": view(5, "Champions", consent_status="unknown"),  # a refusal already recorded
        "c00006": view(6, "Champions", consent_status="unknown"),  # a state without a member
    }
    states = {
        "c00004": state("c00004", email="user4@example.com", destination_id="h4", status="subscribed"),
        "c00005": state("c00005", email="user5@example.com", status="unsubscribed"),
        "c00006": state("c00006", email="user6@example.com"),
    }
    for destination in ("mailchimp", "hubspot"):
        desired = [build_desired(v, destination, CONFIG) for v in views.values()]
        expected = ["c00001", "c00006"] if destination == "mailchimp" else []  # HubSpot creates every eligible one
        assert unconfirmed_to_read(destination, desired, states) == expected


def test_unconfirmed_contacts_are_checked_under_their_profile_address() -> None:
    recorded = {
        "c1": state("c1", email="one@example.com", destination_id="h1", status="subscribed", version=4),
        "c2": state("c2", email="old@example.com", version=2),
        "c5": state("c5", email="five@example.com", status="cleaned", destination_id="h5", version=1),
    }
    emails = {"c2": "two@example.com", "c3": "three@example.com"}  # c4: no live profile (erased, merged)
    checked = states_to_check("mailchimp", ["c1", "c2", "c3", "c4", "c5", "c3"], recorded, emails)
    assert [(s.customer_id, s.email, s.version) for s in checked] == [
        ("c1", "one@example.com", 4),
        ("c2", "two@example.com", 2),
        ("c3", "three@example.com", 0),
        ("c5", "five@example.com", 1),
    ]
    assert addresses(checked) == sorted(["one@example.com", "two@example.com", "three@example.com",
                                         "five@example.com"])


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


class Recorder:
    """read_back that answers from a table and remembers which addresses it was asked for."""

    def __init__(self, observed: Mapping[str, Observation]) -> None:
        self.observed = dict(observed)
        self.asked: list[list[str]] = []

    def __call__(self, adapter: DestinationAdapter, emails: Sequence[str]) -> Mapping[str, Observation]:
        self.asked.append(list(emails))
        return {e: self.observed[e] for e in emails if e in self.observed}


def test_the_nightly_run_learns_a_mailchimp_unsubscribe_of_a_contact_it_never_created(tmp_path: Path) -> None:
    world = World(tmp_path)
    no_opt_in = {"consent_status": "unknown"}
    world.seed(view(1, "Champions"), view(2, "Champions", **no_opt_in), view(3, "Champions", **no_opt_in),
               view(4, "Champions", eligible=False, ineligible_reasons=["inactive"], **no_opt_in))
    world.planner.handle(world.changed("c00001", "c00002", "c00003", "c00004"))
    world.deliver("mailchimp")
    assert set(world.states.all_states("mailchimp")) == {"c00001"}  # only the opted-in contact was created
    recorder = Recorder({"user2@example.com": Observation(True, "h2", "unsubscribed"),
                         "user1@example.com": Observation(True, "h1", "subscribed")})
    world.workers["mailchimp"].read_back = recorder

    nightly = world.planner.handle({"mode": "all", "reconcile": True})
    messages = world.queue.messages[QUEUES["mailchimp"]]
    assert [(m.get("kind"), m.get("contacts")) for m in messages] == [("reconcile", 3)]
    world.items.items[(customer_pk("c00003"), PROFILE)]["merged_into"] = "c00001"  # gone before the read
    world.deliver("mailchimp")

    assert recorder.asked == [["user1@example.com", "user2@example.com"]]  # not the ineligible, not the merged
    learned = world.states.get_states("mailchimp", ["c00002"])["c00002"]
    assert (learned.status, learned.destination_id, learned.email) == ("unsubscribed", "h2", "user2@example.com")
    [submitted] = world.events("ConsentChanged")
    assert [(r["customer_id"], r["status"], r["source"]) for r in submitted["detail"]["records"]] == [
        ("c00002", "opted_out", "destination:mailchimp")
    ]
    line = world.log(nightly.run_id, "mailchimp")
    assert line["reconcile"] == {"items": 1, "read": 2, "corrections": 1, "opt_outs": 1}

    calls = len(world.destinations["mailchimp"].calls)
    again = world.planner.handle({"mode": "all", "reconcile": True})  # a known opt-out: read, nothing new
    assert [m.get("kind") for m in world.queue.messages[QUEUES["mailchimp"]]] == ["reconcile"]
    world.deliver("mailchimp")
    assert world.log(again.run_id, "mailchimp")["reconcile"]["opt_outs"] == 0
    assert len(world.destinations["mailchimp"].calls) == calls  # and never a create for them
