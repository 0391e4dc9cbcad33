"""Every request segflow's destination clients make in a full sync scenario, validated against the vendors'
OpenAPI descriptions (and the documented rules the spec copies lost) by the fakes' exchange recorder.

The `checked_*` fixtures validate all recorded exchanges when each test ends; the tests skip when
../shared/api-specs is absent.
"""
from __future__ import annotations

from datetime import datetime, timezone

from segflow.destinations.errors import RequestRejected
from segflow.destinations.hubspot import HubSpotClient
from segflow.destinations.hubspot_models import ContactUpsert, PropertySpec
from segflow.destinations.mailchimp import MailchimpClient
from segflow.destinations.mailchimp_models import MemberUpsert, MergeFieldSpec, TagUpdate
from segflow.destinations.ratelimit import WindowRateLimiter
from segflow.destinations.results import Outcome
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.contract.contract_recorder import SpecBook
from tests.unit.destinations.doubles import VirtualClock


def test_mailchimp_client_requests_match_the_spec(checked_mailchimp: FakeMailchimp) -> None:
    fake = checked_mailchimp
    list_id = fake.default_list_id
    fake.add_member("gone@example.com", "unsubscribed")
    fake.add_member("old@example.com", "subscribed")
    with MailchimpClient(fake.api_key, base_url=fake.base_url) as client:
        tags = client.ensure_merge_fields(list_id, [
            MergeFieldSpec("CHURN", "Churn risk", "number"),
            MergeFieldSpec("TIER", "Tier", "dropdown", ("gold", "silver")),
            MergeFieldSpec("SEEN", "Last seen", "date"),
        ])
        members = [
            MemberUpsert("new@example.com", {"CHURN": 0.2, "TIER": "gold", "SEEN": "2026-10-01"}, subscribe_if_new=True,
                         language="en", vip=True),
            MemberUpsert("gone@example.com", {"CHURN": 0.9}, subscribe_if_new=True),
            MemberUpsert("old@example.com", {"TIER": "silver"}),
        ]
        results = {r.email: r.outcome for r in client.upsert_members(list_id, members)}
        client.update_tags_many(list_id, [TagUpdate("new@example.com", {"High CLV": True, "Lapsed": False})])
        segment = client.ensure_static_segment(list_id, "Churn risk")
        client.update_segment_members(list_id, segment, add=["new@example.com", "old@example.com"],
                                      remove=["gone@example.com"])
        client.member_statuses(list_id, ["new@example.com", "nobody@example.com"])
        since = datetime(2020, 1, 1, tzinfo=timezone.utc)
        scanned = [m for status in ("unsubscribed", "cleaned") for p in client.member_pages(list_id, status, since)
                   for m in p.members]
        client.delete_permanently(list_id, "old@example.com")
    assert tags == {"CHURN": "CHURN", "TIER": "TIER", "SEEN": "SEEN"}
    assert [(m["email_address"], m["status"]) for m in scanned] == [("gone@example.com", "unsubscribed")]
    assert results == {"new@example.com": Outcome.CREATED, "gone@example.com": Outcome.COMPLIANCE,
                       "old@example.com": Outcome.UPDATED}
    methods = {(e.method, e.status) for e in fake.exchanges}
    assert ("PUT", 200) in methods and ("POST", 204) in methods  # updates and tags were exercised


def test_hubspot_client_requests_match_the_spec(checked_hubspot: FakeHubSpot) -> None:
    fake = checked_hubspot
    fake.add_contact("optout@example.com")
    fake.set_subscription_status("optout@example.com", "UNSUBSCRIBED")
    clock = VirtualClock()
    limiter = WindowRateLimiter(90, 10.0, clock=clock, sleep=clock.sleep)
    with HubSpotClient(fake.token, base_url=fake.base_url, limiter=limiter, sleep=clock.sleep, clock=clock) as client:
        client.ensure_property_group("segflow", "Segflow")
        properties = [
            PropertySpec("segflow_tier", "Tier", "enumeration", options=("gold", "silver")),
            PropertySpec("segflow_clv", "Predicted CLV", "number"),
            PropertySpec("segflow_vip", "VIP", "bool"),
        ]
        client.ensure_properties(properties, "segflow")
        try:  # adding an option: the request is validated even where the fake cannot serve it yet
            client.ensure_properties([PropertySpec("segflow_tier", "Tier", "enumeration",
                                                   options=("gold", "silver", "platinum"))], "segflow")
        except RequestRejected as exc:
            assert exc.status == 405
        results = client.upsert_contacts([
            ContactUpsert("a@example.com", {"segflow_tier": "gold", "segflow_clv": 12.5, "segflow_vip": True}),
            ContactUpsert("A@example.com", {"firstname": "Ana"}),
            ContactUpsert("b@example.com", {"segflow_tier": "unknown"}),
        ])
        client.read_contacts(["a@example.com", "zz@example.com"], ["segflow_tier"])
        list_id = client.ensure_list("segflow High CLV")
        record_ids = [r.destination_id for r in results if r.destination_id]
        client.add_to_list(list_id, record_ids)
        client.remove_from_list(list_id, record_ids)
        assert client.subscription_status("optout@example.com").outcome is Outcome.COMPLIANCE
        statuses = client.subscription_statuses(["Optout@example.com", "b@example.com", "not-an-email"], 1)
        assert {e: r.outcome for e, r in statuses.items()} == {
            "optout@example.com": Outcome.COMPLIANCE, "b@example.com": Outcome.OK, "not-an-email": Outcome.FAILED}
        client.gdpr_delete("a@example.com")
    assert sorted(r.outcome.value for r in results) == ["created", "failed", "skipped"]
    assert len(fake.exchanges) >= 12


def test_the_contract_checker_catches_a_status_sent_without_email(spec_book: SpecBook) -> None:
    """Guard: the recorder really flags a batch member that breaks the documented rules."""
    with FakeMailchimp() as fake:
        from requests import Session

        with Session() as session:
            session.auth = ("segflow", fake.api_key)
            session.post(f"{fake.base_url}/lists/{fake.default_list_id}", json={"members": [{"status": "subscribed"}]})
        problems = spec_book.problems("mailchimp", fake.exchanges)
    assert any("lacks email_address" in p for p in problems)

