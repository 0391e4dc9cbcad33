"""Every request a sync sends -- provisioning, batches, member updates, tag / segment / list changes,
enumeration options added with PATCH, unsubscribes -- and every answer of the fakes, validated against the
vendors' OpenAPI descriptions."""

from __future__ import annotations

import pytest
from segflow.destinations.hubspot_models import PropertySpec
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.contract.contract_recorder import SpecBook, api_specs_dir
from tests.integration.sync.harness import SyncHarness, VirtualClock, allow
from tests.unit.sync.builders import CONFIG, SEGMENTS, opted_out, view


@pytest.fixture(scope="module")
def book() -> SpecBook:
    folder = api_specs_dir()
    if folder is None:
        pytest.skip("vendor API specs not found (SEGFLOW_API_SPECS or ../shared/api-specs)")
    return SpecBook(folder)


def test_a_sync_speaks_the_published_contracts(book: SpecBook) -> None:
    clock = VirtualClock()
    with FakeMailchimp() as mailchimp, FakeHubSpot(clock=clock) as hubspot:
        harness = SyncHarness(CONFIG, mailchimp, hubspot, clock)
        mailchimp.add_member("user3@example.com", "unsubscribed")
        client = harness.adapters["hubspot"].client
        client.ensure_property_group("segflow", "segflow")
        client.ensure_properties(
            [PropertySpec("segflow_lifecycle", "Lifecycle", "enumeration", options=("at_risk",))], "segflow"
        )
        views = [
            view(i, SEGMENTS[i % 4], consent_status="unknown" if i == 9 else "opted_in") for i in range(12)
        ]
        for destination in ("mailchimp", "hubspot"):
            harness.sync(views, destination, "run-1", allow)
        later = list(views)
        later[1] = opted_out(1, SEGMENTS[1])
        later[2] = view(2)
        later[4] = view(4, SEGMENTS[0], city="Nice")
        for destination in ("mailchimp", "hubspot"):
            harness.sync(later, destination, "run-2", allow)
        harness.close()
        routes = set(mailchimp.stats()["requests"]) | set(hubspot.stats()["requests"])
        assert "PATCH /crm/v3/properties/{object_type}/{property_name}" in routes
        assert "POST /communication-preferences/v4/statuses/{subscriber}" in routes
        assert "PUT /3.0/lists/{list_id}/members/{subscriber_hash}" in routes
        book.assert_valid("mailchimp", mailchimp.exchanges)
        book.assert_valid("hubspot", hubspot.exchanges)
