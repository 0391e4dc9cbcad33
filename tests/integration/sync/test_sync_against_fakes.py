"""Full syncs against the fake Mailchimp and HubSpot servers (real HTTP): batch counts, exact estimates,
incremental cost, segment exits, ineligibility, unsubscribes, and never a status for an existing member."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from segflow.sync.adapters import HubSpotAdapter, MailchimpAdapter
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.integration.sync.harness import (
    SyncHarness,
    VirtualClock,
    allow,
    check_converged,
    emails_sent_for_adding,
    known_ids,
    hubspot_contacts,
    status_sent_to_existing_members,
    strict_guard,
    successful_writes,
)
from tests.unit.sync.builders import CONFIG, SEGMENTS, opted_out, view

N = 1_050
BATCH = "POST /3.0/lists/{list_id}"
PUT_MEMBER = "PUT /3.0/lists/{list_id}/members/{subscriber_hash}"
SEGMENT_CHANGE = "POST /3.0/lists/{list_id}/segments/{segment_id}"
UPSERT = "POST /crm/v3/objects/contacts/batch/upsert"


@pytest.fixture
def harness() -> Iterator[SyncHarness]:
    clock = VirtualClock()
    with FakeMailchimp() as mailchimp, FakeHubSpot(clock=clock) as hubspot:
        built = SyncHarness(CONFIG, mailchimp, hubspot, clock)
        yield built
        built.close()


def population() -> list[dict]:
    """Mostly opted-in contacts in one or two segments; every 10th not opted in (HubSpot only)."""
    return [
        view(
            i,
            SEGMENTS[i % 4],
            *([SEGMENTS[(i + 1) % 4]] if i % 3 == 0 else []),
            consent_status="unknown" if i % 10 == 0 else "opted_in",
        )
        for i in range(N)
    ]


def requests_of(fake: object) -> dict[str, int]:
    return dict(fake.stats()["requests"])  # type: ignore[attr-defined]


def test_first_sync_batches_and_matches_its_estimate_then_an_unchanged_sync_costs_nothing(
    harness: SyncHarness,
) -> None:
    views = population()
    subscribable = sum(v["consent_status"] == "opted_in" for v in views)
    mailchimp = harness.sync(views, "mailchimp", "run-1", allow)
    hubspot = harness.sync(views, "hubspot", "run-1", allow)
    check_converged(harness, views)

    mc, hs = requests_of(harness.mailchimp), requests_of(harness.hubspot)
    assert mc[BATCH] == math.ceil(subscribable / 500) == mailchimp.estimate["upsert_batches"]
    assert mc.get(PUT_MEMBER, 0) == 0
    assert mc[SEGMENT_CHANGE] == mailchimp.estimate["membership"]
    assert hs[UPSERT] == math.ceil(N / 100) == hubspot.estimate["upsert_batches"]
    hs_membership = sum(n for route, n in hs.items() if "/memberships/" in route)
    assert hs_membership == hubspot.estimate["membership"]
    for run in (mailchimp, hubspot):  # exact for contact calls; provisioning within its bound
        assert run.deliveries == run.estimate["work_items"]
        provisioning = run.requests - run.estimate["contact_calls"]
        assert run.estimate["provisioning_reads"] <= provisioning
        assert (
            provisioning <= run.estimate["provisioning_reads"] + run.estimate["provisioning_creates_at_most"]
        )
    assert mailchimp.plan.held == {"not_subscribable": N - subscribable}

    again = [harness.sync(views, d, "run-2", allow) for d in ("mailchimp", "hubspot")]
    assert [r.requests for r in again] == [0, 0] and all(r.plan.unchanged == N for r in again[1:])


def test_changes_cost_calls_in_proportion_and_land_exactly(harness: SyncHarness) -> None:
    views = population()
    first = {d: harness.sync(views, d, "run-1", allow).requests for d in ("mailchimp", "hubspot")}
    changed = list(views)
    changed[1] = view(1, SEGMENTS[1], city="Nice")  # a field changes
    changed[2] = view(2)  # leaves its segment
    changed[3] = view(3, SEGMENTS[3], SEGMENTS[0], SEGMENTS[2])  # joins one more
    changed[4] = view(4, SEGMENTS[0], eligible=False, ineligible_reasons=["inactive"])  # no longer eligible
    changed[5] = opted_out(5, SEGMENTS[1])  # withdraws consent
    changed[6] = view(6, SEGMENTS[2], preference_level="basic")  # behavioural fields withdrawn
    changed[7] = view(7, SEGMENTS[3], email="moved7@example.com")  # new address
    changed.append(view(N, SEGMENTS[0]))  # a new customer
    harness.mailchimp.reset_observations()
    harness.hubspot.reset_observations()
    second = {d: harness.sync(changed, d, "run-2", allow) for d in ("mailchimp", "hubspot")}
    check_converged(harness, changed)

    for destination, run in second.items():
        # adapters already provisioned: the estimate is the exact cost, bounded by the changed contacts
        assert run.requests == run.estimate["contact_calls"], destination
        per_contact = sum(1 + len(c.adds) + len(c.removes) + c.unsubscribe for c in run.plan.contacts)
        assert len(run.plan.contacts) == 8 and run.requests <= per_contact < first[destination]
    mc = harness.mailchimp
    assert status_sent_to_existing_members(mc.exchanges) == []
    assert mc.member("user5@example.com")["status"] == "unsubscribed"
    assert mc.member("user4@example.com")["status"] == "subscribed"  # ineligible is not an unsubscribe
    assert mc.member("user4@example.com")["tags"] == []
    assert {t["name"] for t in mc.member("moved7@example.com")["tags"]} == {"segflow: Big spenders"}
    assert mc.member("user7@example.com")["tags"] == []  # the old address left segflow's tag
    assert mc.member("user6@example.com")["merge_fields"]["CLVTIER"] == ""  # cleared, not left behind
    assert harness.hubspot.subscription_status("user5@example.com") == "UNSUBSCRIBED"
    assert harness.hubspot.subscription_status("user4@example.com") == "NOT_SPECIFIED"
    for destination in ("mailchimp", "hubspot"):
        writes = successful_writes(harness.fakes[destination].exchanges, destination)
        assert max(writes.values()) == 1
        sent = emails_sent_for_adding(
            harness.fakes[destination].exchanges, destination, known_ids(harness)
        )
        assert "user5@example.com" not in sent and "user4@example.com" not in sent


def test_unsubscribed_in_the_destination_is_never_resubscribed_and_becomes_a_suppression(
    harness: SyncHarness,
) -> None:
    views = [view(i, SEGMENTS[0]) for i in range(20)]
    harness.mailchimp.add_member("user3@example.com", "unsubscribed")  # unsubscribed before segflow came
    harness.mailchimp.forget_member(harness.mailchimp.add_member("user4@example.com"))  # erased for good
    run = harness.sync(views, "mailchimp", "run-1", allow)
    assert run.reports[0].contacts["c00003"].outcome == "compliance"
    assert run.reports[0].contacts["c00004"].outcome == "compliance"
    assert harness.mailchimp.member("user3@example.com")["status"] == "unsubscribed"
    assert harness.mailchimp.member("user3@example.com")["tags"] == []
    assert not harness.mailchimp.member("user4@example.com")
    assert sorted((s.customer_id, s.reason) for s in harness.suppressions.recorded) == [
        ("c00003", "unsubscribed"),
        ("c00004", "forgotten"),
    ]
    assert status_sent_to_existing_members(harness.mailchimp.exchanges) == []
    harness.mailchimp.reset_observations()
    later = harness.sync(
        [view(3, SEGMENTS[0], city="Nice"), view(4, SEGMENTS[1])], "mailchimp", "run-2", allow
    )
    assert later.requests == 0 and later.plan.held == {
        "destination_status:unsubscribed": 1,
        "destination_status:forgotten": 1,
    }


def test_hubspot_enumeration_options_are_added_for_new_segment_values(harness: SyncHarness) -> None:
    harness.hubspot.add_contact("seed@example.com")
    client = harness.adapters["hubspot"].client
    client.ensure_property_group("segflow", "segflow")
    from segflow.destinations.hubspot_models import PropertySpec

    client.ensure_properties(
        [PropertySpec("segflow_lifecycle", "Lifecycle", "enumeration", options=("at_risk",))], "segflow"
    )
    harness.sync([view(1, "High CLV"), view(2, "At risk")], "hubspot", "run-1", allow)
    state = harness.hubspot.state()
    assert state["properties"]["segflow_lifecycle"]["options"] == ["at_risk", "high_value"]
    assert state["contacts"]["user1@example.com"]["properties"]["segflow_lifecycle"] == "high_value"


def test_strict_guard_keeps_refused_contacts_out_of_both_destinations(harness: SyncHarness) -> None:
    views = [view(i, SEGMENTS[i % 4]) for i in range(60)]
    refused = {f"user{i}@example.com" for i in range(0, 60, 7)}
    asked: list[str] = []
    for destination in ("mailchimp", "hubspot"):
        harness.sync(views, destination, "run-1", strict_guard(refused, asked))
        sent = emails_sent_for_adding(
            harness.fakes[destination].exchanges, destination, known_ids(harness)
        )
        assert not sent & refused and sent == {v["email"] for v in views} - refused
    assert refused <= set(asked)


def test_a_guard_refusal_on_a_fresh_adapter_still_removes_what_was_recorded(harness: SyncHarness) -> None:
    views = [view(i, SEGMENTS[0]) for i in range(10)]
    for destination in ("mailchimp", "hubspot"):
        harness.sync(views, destination, "run-1", allow)
    # a new Lambda container: adapters that have looked nothing up yet
    harness.adapters["mailchimp"] = MailchimpAdapter(
        harness.adapters["mailchimp"].client, harness.mailchimp.default_list_id, CONFIG
    )
    harness.adapters["hubspot"] = HubSpotAdapter(harness.adapters["hubspot"].client, CONFIG)
    edited = [view(i, SEGMENTS[0], city="Nice") for i in range(10)]  # only a field changes
    for destination in ("mailchimp", "hubspot"):
        harness.sync(edited, destination, "run-2", strict_guard({"user3@example.com"}))
    member = harness.mailchimp.member("user3@example.com")
    assert member["tags"] == [] and member["merge_fields"]["CITY"] == "Lyon"
    assert harness.mailchimp.member("user4@example.com")["merge_fields"]["CITY"] == "Nice"
    contacts, lists = hubspot_contacts(harness.hubspot)
    assert "user3@example.com" not in lists and lists["user4@example.com"] == {"segflow - Champions"}
    assert contacts["user3@example.com"]["properties"]["segflow_city"] == "Lyon"
