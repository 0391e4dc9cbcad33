"""HubSpotClient against the fake HubSpot server on loopback (real HTTP, rate limits, 207s, GDPR)."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from segflow.destinations.errors import DailyLimitReached, RequestRejected
from segflow.destinations.http import RetryPolicy
from segflow.destinations.hubspot import HubSpotClient
from segflow.destinations.hubspot_models import ContactUpsert, PropertySpec
from segflow.destinations.ratelimit import WindowRateLimiter, budget
from segflow.destinations.results import Outcome, outcome_counts
from segflow_local.fakes import FakeHubSpot

from tests.unit.destinations.doubles import VirtualClock

UPSERT_ROUTE = "POST /crm/v3/objects/contacts/batch/upsert"
PROPERTIES = [
    PropertySpec("segflow_tier", "Tier", "enumeration", options=("gold", "silver")),
    PropertySpec("segflow_clv", "Predicted CLV", "number"),
    PropertySpec("segflow_vip", "VIP", "bool"),
    PropertySpec("segflow_seen", "Last seen", "date"),
]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=time.time())


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as server:
        yield server


def client_for(fake: FakeHubSpot, clock: VirtualClock, limit: int = 100, **options: object) -> HubSpotClient:
    """A client whose waits run on the virtual clock (the fake may share it for its rate windows)."""
    limiter = WindowRateLimiter(budget(limit), 10.0, clock=clock, sleep=clock.sleep)
    return HubSpotClient(fake.token, base_url=fake.base_url, limiter=limiter, sleep=clock.sleep, clock=clock,
                         **options)  # type: ignore[arg-type]


def test_provisioning_is_idempotent(fake: FakeHubSpot, clock: VirtualClock) -> None:
    with client_for(fake, clock) as client:
        client.ensure_property_group("segflow", "Segflow")
        first = client.ensure_properties(PROPERTIES, "segflow")
        list_id = client.ensure_list("High CLV")
        before = dict(fake.stats()["requests"])
        client.ensure_property_group("segflow", "Segflow")
        second = client.ensure_properties(PROPERTIES, "segflow")
        assert client.ensure_list("High CLV") == list_id
    after = fake.stats()["requests"]
    assert first.created == [p.name for p in PROPERTIES]
    assert second.created == [] and second.unchanged == [p.name for p in PROPERTIES]
    for route in ("POST /crm/v3/properties/{object_type}", "POST /crm/v3/properties/{object_type}/groups",
                  "POST /crm/v3/lists"):
        assert after.get(route, 0) == before.get(route, 0)  # the second pass created nothing
    state = fake.state()
    assert state["properties"]["segflow_tier"]["options"] == ["gold", "silver"]
    assert state["properties"]["segflow_vip"]["fieldType"] == "booleancheckbox"
    assert list(state["lists"]) == ["High CLV"] and state["lists"]["High CLV"]["processingType"] == "MANUAL"


def test_missing_enumeration_options_are_added(fake: FakeHubSpot, clock: VirtualClock) -> None:
    with client_for(fake, clock) as client:
        client.ensure_property_group("segflow", "Segflow")
        client.ensure_properties(PROPERTIES[:1], "segflow")
        wider = PropertySpec("segflow_tier", "Tier", "enumeration", options=("gold", "silver", "platinum"))
        try:
            report = client.ensure_properties([wider], "segflow")
        except RequestRejected as exc:
            if exc.status == 405:
                pytest.skip("the fake HubSpot does not implement PATCH /crm/v3/properties/{objectType}/{propertyName}")
            raise
    assert report.options_added == {"segflow_tier": ["platinum"]}
    assert fake.state()["properties"]["segflow_tier"]["options"] == ["gold", "silver", "platinum"]


def test_upsert_dedupes_maps_errors_and_feeds_list_memberships(fake: FakeHubSpot, clock: VirtualClock) -> None:
    with client_for(fake, clock) as client:
        client.ensure_property_group("segflow", "Segflow")
        client.ensure_properties(PROPERTIES, "segflow")
        contacts = [ContactUpsert(f"c{i}@example.com", {"segflow_clv": i * 1.5, "segflow_tier": "gold"})
                    for i in range(250)]
        contacts += [ContactUpsert("C1@Example.com", {"segflow_vip": True}),
                     ContactUpsert("odd@example.com", {"segflow_tier": "platinum"})]
        results = client.upsert_contacts(contacts)
        record_ids = [r.destination_id for r in results if r.outcome is Outcome.CREATED]
        list_id = client.ensure_list("High CLV")
        added = client.add_to_list(list_id, [*record_ids[:120], "999999"])
        removed = client.remove_from_list(list_id, record_ids[:20])
        read = client.read_contacts(["c1@example.com", "missing@example.com"], ["segflow_vip", "segflow_clv"])
    assert outcome_counts(results) == {"created": 250, "skipped": 1, "failed": 1}
    assert fake.stats()["requests"][UPSERT_ROUTE] == 3
    assert added.changed == record_ids[:120] and added.missing == ["999999"]
    assert removed.changed == record_ids[:20]
    assert len(fake.state()["lists"]["High CLV"]["members"]) == 100
    assert read["c1@example.com"]["properties"]["segflow_vip"] == "true"
    assert read["c1@example.com"]["properties"]["segflow_clv"] == "1.5"
    assert read["missing@example.com"] is None


def test_gdpr_delete_and_unsubscribed_contacts_are_compliance(fake: FakeHubSpot, clock: VirtualClock) -> None:
    fake.add_contact("erase@example.com")
    fake.add_contact("optout@example.com")
    fake.set_subscription_status("optout@example.com", "UNSUBSCRIBED")
    with client_for(fake, clock) as client:
        deleted = client.gdpr_delete("Erase@example.com")
        again = client.upsert_contacts([ContactUpsert("erase@example.com", {"firstname": "E"})])
        status = client.subscription_status("optout@example.com")
        fine = client.subscription_status("someone@example.com")
    assert deleted.outcome is Outcome.OK and fake.is_blocklisted("erase@example.com")
    assert again[0].outcome is Outcome.COMPLIANCE
    assert status.outcome is Outcome.COMPLIANCE and status.status == "UNSUBSCRIBED"
    assert fine.outcome is Outcome.OK and fine.status == "NOT_SPECIFIED"


@pytest.mark.parametrize(
    ("client_limit", "low_watermark"),
    [
        pytest.param(20, -1, id="client-limiter-alone"),  # header feedback off
        pytest.param(100, None, id="rate-limit-headers-alone"),  # client believes in a far higher ceiling
        pytest.param(20, None, id="both"),
    ],
)
def test_sustained_throughput_stays_free_of_429s_at_the_configured_ceiling(
    clock: VirtualClock, client_limit: int, low_watermark: int | None
) -> None:
    """60 batch calls against a 20-per-10-s app, the fake and the client sharing a virtual clock."""
    limiter = WindowRateLimiter(budget(client_limit), 10.0, clock=clock, sleep=clock.sleep, low_watermark=low_watermark)
    with FakeHubSpot(rate_limit=20, clock=clock) as fake:
        with HubSpotClient(fake.token, base_url=fake.base_url, limiter=limiter, sleep=clock.sleep, clock=clock) as client:
            started = clock()
            results = []
            for call in range(60):  # small batches: the point is the request rate, not the payload
                results += client.upsert_contacts([ContactUpsert(f"t{call}-{i}@example.com", {"firstname": "T"})
                                                   for i in range(10)])
            elapsed = clock() - started
            throttled_seen = client.stats().throttled
        stats = fake.stats()
    assert outcome_counts(results) == {"created": 600}
    assert stats["throttled"] == 0 == throttled_seen and stats["requests"][UPSERT_ROUTE] == 60
    # at most 20 per 10 s means at least 20 s for 60 calls; 18 per window (90 %) takes 30 s; slack for spacing
    assert 30.0 <= elapsed <= 40.0


def test_daily_limit_stops_the_run_with_the_results_so_far(clock: VirtualClock) -> None:
    with FakeHubSpot(daily_limit=2) as fake, client_for(fake, clock) as client:
        with pytest.raises(DailyLimitReached) as caught:
            client.upsert_contacts([ContactUpsert(f"d{i}@example.com") for i in range(450)])
        calls = fake.stats()["requests"][UPSERT_ROUTE]
    assert calls == 3  # two accepted, the third refused with policy DAILY and not retried
    assert outcome_counts(caught.value.results) == {"created": 200}


def test_twenty_percent_injected_faults_converge_with_retries(clock: VirtualClock) -> None:
    with FakeHubSpot(fault_rate=0.2, seed=5, fault_kinds=("429", "500")) as fake:
        with client_for(fake, clock, policy=RetryPolicy(max_attempts=10, base_delay_s=1.0)) as client:
            client.ensure_property_group("segflow", "Segflow")
            client.ensure_properties(PROPERTIES, "segflow")
            results = client.upsert_contacts([ContactUpsert(f"f{i}@example.com", {"segflow_tier": "silver"})
                                              for i in range(1_000)])
            list_id = client.ensure_list("Faulty")
            added = client.add_to_list(list_id, [r.destination_id for r in results if r.destination_id])
            stats = client.stats()
        faults = fake.stats()["faults_injected"]
        state = fake.state()
    assert outcome_counts(results) == {"created": 1_000}
    assert len(added.changed) == 1_000 and len(state["lists"]["Faulty"]["members"]) == 1_000
    assert sum(faults.values()) > 0 and stats.retries == sum(faults.values())
