"""Read-back against the fakes: manual unsubscribes, bounces, deletions, archives and HubSpot merges, and
Mailchimp opt-outs of contacts segflow never added there (learned by one paged scan of the audience)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from segflow.consent.models import ConsentRecord
from segflow.consent.store import InMemoryIdentities
from segflow.events.bus import InMemoryPublisher
from segflow.store.customers import PROFILE, InMemoryCustomerItems, customer_pk
from segflow.store.objects import LocalObjectStore
from segflow.sync import runlog
from segflow.sync.reconcile import emails_to_read, observe_mailchimp, reconcile
from segflow.sync.runs import InMemoryRunLedger
from segflow.sync.service import WorkerPorts, WorkerService, read_back
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


UNCONFIRMED = 1500  # contacts segflow holds no Mailchimp member for (no opt-in there)
UNSUBSCRIBED = 1200  # of them, unsubscribed in the audience through another form
SCAN_RUN = "20261101T030000000000Z-scan"


def scanning_worker(harness: SyncHarness, root: Path) -> tuple[WorkerService, InMemoryPublisher]:
    """The Mailchimp worker over the harness's real client, with the unconfirmed customers' profiles and
    identity items in memory."""
    items, publisher = InMemoryCustomerItems(), InMemoryPublisher()
    identities = InMemoryIdentities(items.items)
    people = [(v["customer_id"], v["email"]) for v in VIEWS]  # synced: segflow holds their members
    people += [(f"c9{i:04d}", f"outside{i}@example.com") for i in range(UNCONFIRMED)]
    for customer_id, email in people:
        items.items[(customer_pk(customer_id), PROFILE)] = {"customer_id": customer_id, "email": email}
        identities.add("email", email, customer_id)
    objects = LocalObjectStore(root, bucket="data")
    objects.put_bytes(runlog.config_key(SCAN_RUN), runlog.config_to_json(CONFIG).encode())
    ports = WorkerPorts(objects, items, harness.store, InMemoryRunLedger(), publisher, identities)
    worker = WorkerService(ports, "mailchimp", lambda config: harness.adapters["mailchimp"],
                           may_push=lambda view: True, now=lambda: NOW)
    return worker, publisher


def scan_message(item_id: str) -> dict[str, Any]:
    return {"kind": "reconcile", "scope": "audience", "work_item_id": item_id, "run_id": SCAN_RUN,
            "destination": "mailchimp", "contacts": 0}


def test_one_audience_scan_learns_the_opt_outs_of_contacts_segflow_never_added(
    harness: SyncHarness, tmp_path: Path
) -> None:
    fake = harness.mailchimp
    for i in range(UNSUBSCRIBED):  # joined and left through another form
        fake.add_member(f"outside{i}@example.com", "unsubscribed")
    fake.add_member(f"outside{UNSUBSCRIBED}@example.com", "cleaned")
    fake.add_member(f"outside{UNSUBSCRIBED + 1}@example.com", "subscribed")  # no opt-out: nothing to learn
    fake.add_member("stranger@example.com", "unsubscribed")  # no customer of segflow's
    fake.set_member_status("user1@example.com", "unsubscribed")  # confirmed: left to the one-by-one read
    worker, publisher = scanning_worker(harness, tmp_path)
    fake.reset_observations()

    record = worker.process(scan_message("scan-1")).record

    # Per contact, this was one GET /members/{hash} for each of the 1,500; now two pages of unsubscribed
    # members (1,202 of them) and one of cleaned ones.
    assert [(e.method, e.path, e.query["offset"]) for e in fake.exchanges] == [
        ("GET", f"/3.0/lists/{fake.default_list_id}/members", ["0"]),
        ("GET", f"/3.0/lists/{fake.default_list_id}/members", ["1000"]),
        ("GET", f"/3.0/lists/{fake.default_list_id}/members", ["0"]),
    ]
    assert {k: record[k] for k in ("read", "pages", "contacts", "unmatched", "known", "opt_outs", "settled")} == {
        "read": 1203, "pages": 3, "contacts": UNSUBSCRIBED + 1, "unmatched": 1, "known": 1, "opt_outs": 1201,
        "settled": True}
    assert record["findings"] == {"unsubscribed": UNSUBSCRIBED, "cleaned": 1}
    assert record["attempt_totals"]["api_calls"] == 3
    records = [r for e in publisher.events for r in e["detail"]["records"]]
    assert len(records) == UNSUBSCRIBED + 1
    assert {(r["source"], r["status"]) for r in records} == {("destination:mailchimp", "opted_out")}
    learned = harness.store.get_states("mailchimp", ["c90000", f"c9{UNSUBSCRIBED:04d}", f"c9{UNSUBSCRIBED + 1:04d}"])
    assert {c: s.status for c, s in learned.items()} == {"c90000": "unsubscribed", f"c9{UNSUBSCRIBED:04d}": "cleaned"}

    opted_in_now = view(90000, "Champions", email="outside0@example.com")  # consent says yes, Mailchimp no
    run = harness.sync([*VIEWS, opted_in_now], "mailchimp", "run-2", allow)
    assert "c90000" not in {c.customer_id for c in run.plan.contacts}  # blocked: never a create
    assert fake.member("outside0@example.com")["status"] == "unsubscribed"

    fake.reset_observations()
    again = worker.process(scan_message("scan-2")).record  # from the cursor; what it finds is known now
    assert again["since_last_changed"] is not None and again["opt_outs"] == 0
    assert again["known"] == UNSUBSCRIBED + 2 and len(fake.exchanges) == 3
