"""Read-back against the fakes: manual unsubscribes, bounces, deletions, archives and HubSpot merges, and
Mailchimp opt-outs of contacts segflow never added there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segflow.consent.models import ConsentRecord
from segflow.sync.reconcile import addresses, emails_to_read, observe_mailchimp, reconcile, states_to_check
from segflow.sync.service import read_back
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.integration.sync.harness import NOW, SyncHarness, VirtualClock, allow
from tests.unit.sync.builders import CONFIG, view

VIEWS = [view(i, "Champions") for i in range(6)]


@pytest.fixture
def harness() -> Iterator[SyncHarness]:
    clock = VirtualClock()
    with FakeMailchimp() as mailchimp, FakeHubSpot(clock=clock) as hubspot:
        built = SyncHarness(CONFIG, mailchimp, hubspot, clock)
        for destination in ("mailchimp", "hubspot"):
            built.sync(VIEWS, destination, "run-1", allow)
        yield built
        built.close()


def test_mailchimp_manual_changes_become_opt_outs_and_state_corrections(harness: SyncHarness) -> None:
    fake = harness.mailchimp
    fake.set_member_status("user1@example.com", "unsubscribed")
    fake.set_member_status("user2@example.com", "cleaned")
    fake.forget_member("user3@example.com")
    fake.set_member_status("user4@example.com", "archived")
    states = harness.store.all_states("mailchimp")
    client = harness.adapters["mailchimp"].client
    members = client.get_members(fake.default_list_id, emails_to_read(states.values()))
    result = reconcile("mailchimp", states.values(), observe_mailchimp(members), NOW)

    assert result.findings == {"unsubscribed": 1, "cleaned": 1, "deleted": 1, "archived": 1}
    records = [ConsentRecord.model_validate(r) for r in result.opt_outs]  # ready for the consent ledger
    assert sorted((r.customer_id, r.reason, r.source, r.status) for r in records) == [
        ("c00001", "unsubscribed", "destination:mailchimp", "opted_out"),
        ("c00002", "cleaned", "destination:mailchimp", "opted_out"),
    ]
    assert harness.store.put_states(result.corrections) == []
    corrected = harness.store.all_states("mailchimp")
    assert corrected["c00003"].destination_id is None and corrected["c00003"].tags == frozenset()
    assert corrected["c00004"].status == "archived"

    fake.reset_observations()
    edited = [view(i, "Champions", "Big spenders", city="Nice") for i in range(6)]
    run = harness.sync(edited, "mailchimp", "run-2", allow)
    touched = {c.customer_id for c in run.plan.contacts if c.upserts or c.adds}
    assert touched == {"c00000", "c00005"}  # nobody unsubscribed, bounced, deleted or archived is written to
    assert fake.member("user1@example.com")["status"] == "unsubscribed"
    assert fake.member("user3@example.com") is None  # not re-created
    again = reconcile(
        "mailchimp",
        harness.store.all_states("mailchimp").values(),
        observe_mailchimp(
            client.get_members(fake.default_list_id, [f"user{i}@example.com" for i in range(6)])
        ),
        NOW,
    )
    assert again.opt_outs == [] and again.corrections == []  # nothing new to learn the second time


def test_hubspot_unsubscribes_deletions_and_merges(harness: SyncHarness) -> None:
    fake = harness.hubspot
    fake.set_subscription_status("user1@example.com", "UNSUBSCRIBED")
    with fake._lock:  # a contact deleted by hand, and one merged into a record with another id
        for email in ("user2@example.com", "user3@example.com"):
            contact = fake.store.contact_by_email(email)
            del fake.store.contacts[contact.id]
            fake.store.by_email.pop(email)
            for hs_list in fake.store.lists.values():
                hs_list.members.pop(contact.id, None)
    merged_id = fake.add_contact("user3@example.com")
    states = harness.store.all_states("hubspot")
    client = harness.adapters["hubspot"].client
    emails = emails_to_read(states.values())
    fake.reset_observations()
    result = reconcile("hubspot", states.values(), read_back(harness.adapters["hubspot"], emails), NOW)

    paths = [e.path for e in fake.exchanges]
    assert paths == ["/crm/v3/objects/contacts/batch/read", "/communication-preferences/v4/statuses/batch/read"]
    assert result.findings == {"unsubscribed": 1, "deleted": 1, "merged": 1}
    assert [(r["customer_id"], r["source"]) for r in result.opt_outs] == [("c00001", "destination:hubspot")]
    harness.store.put_states(result.corrections)
    assert harness.store.all_states("hubspot")["c00003"].destination_id == merged_id

    run = harness.sync(VIEWS, "hubspot", "run-2", allow)
    planned = {c.customer_id: c for c in run.plan.contacts}
    assert set(planned) == {"c00001", "c00003"}
    assert planned["c00003"].adds == {("list", "segflow - Champions")}  # re-added under the surviving record
    assert planned["c00001"].removes == {("list", "segflow - Champions")} and not planned["c00001"].upserts
    lists = fake.state()["lists"]["segflow - Champions"]["members"]
    assert (
        "user3@example.com" in lists and "user2@example.com" not in lists and "user1@example.com" not in lists
    )


def test_a_mailchimp_opt_out_of_a_contact_segflow_never_added_is_learned(harness: SyncHarness) -> None:
    fake = harness.mailchimp
    fake.add_member("outside@example.com", "unsubscribed")  # joined and left through another form
    fake.add_member("bounced@example.com", "cleaned")
    fake.add_member("fan@example.com", "subscribed")
    recorded = harness.store.all_states("mailchimp")
    ids = [*recorded, "c90001", "c90002", "c90003", "c90004"]
    emails = {"c90001": "outside@example.com", "c90002": "bounced@example.com", "c90003": "fan@example.com",
              "c90004": "nobody@example.com"}
    states = states_to_check("mailchimp", ids, recorded, emails)
    fake.reset_observations()
    result = reconcile("mailchimp", states, read_back(harness.adapters["mailchimp"], addresses(states)), NOW)

    assert len(fake.exchanges) == len(VIEWS) + 4  # one GET per address
    assert result.findings == {"unsubscribed": 1, "cleaned": 1}
    assert sorted((r["customer_id"], r["source"]) for r in result.opt_outs) == [
        ("c90001", "destination:mailchimp"), ("c90002", "destination:mailchimp")]
    assert harness.store.put_states(result.corrections) == []
    opted_in_now = view(90001, "Champions", email="outside@example.com")  # consent says yes, Mailchimp no
    run = harness.sync([*VIEWS, opted_in_now], "mailchimp", "run-2", allow)
    assert "c90001" not in {c.customer_id for c in run.plan.contacts}  # blocked: never a create
    assert fake.member("outside@example.com")["status"] == "unsubscribed"
