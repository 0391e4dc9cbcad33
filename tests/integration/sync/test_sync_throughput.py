"""Sustained request rate against the fake HubSpot's enforced 10-second window: at least 90 % of the ceiling,
no 429. The fake and the client share a virtual clock, so windows are exact and the test never waits; a small
ceiling makes a few thousand contacts span many windows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.integration.sync.harness import SyncHarness, VirtualClock, allow
from tests.unit.sync.builders import CONFIG, SEGMENTS, view

CEILING = 20  # requests per 10 s (a fifth of HubSpot Free/Starter's 100, to cross many windows quickly)
WINDOW_S = 10.0


@pytest.fixture
def harness() -> Iterator[SyncHarness]:
    clock = VirtualClock()
    with FakeMailchimp() as mailchimp, FakeHubSpot(clock=clock, rate_limit=CEILING) as hubspot:
        built = SyncHarness(CONFIG, mailchimp, hubspot, clock, margin=0.95)
        yield built
        built.close()


def sustained_rate(grants: list[float]) -> float:
    """Requests per second between the first and the last grant, the last instant's burst excluded."""
    first, last = grants[0], grants[-1]
    return sum(1 for g in grants if g < last) / (last - first)


def test_hubspot_sync_runs_at_90_percent_of_the_ceiling_without_429(harness: SyncHarness) -> None:
    views = [view(i, *SEGMENTS[: 1 + i % 3]) for i in range(3_000)]
    run = harness.sync(views, "hubspot", "run-1", allow)
    stats = harness.hubspot.stats()
    assert stats["throttled"] == 0 and stats["responses_by_status"].get("429") is None
    assert all(r.complete for r in run.reports) and run.deliveries == run.estimate["work_items"]
    grants = harness.acquired
    assert len(grants) == stats["total_requests"] >= 5 * CEILING  # five windows' worth at least
    rate = sustained_rate(grants)
    assert grants[-1] - grants[0] >= 4 * WINDOW_S and rate >= 0.9 * CEILING / WINDOW_S, rate
    assert rate <= CEILING / WINDOW_S  # never above what the portal allows
