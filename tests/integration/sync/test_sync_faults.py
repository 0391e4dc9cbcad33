"""With 20 % of requests failing (429, 500, slow), every sync converges: destination state == desired state,
no contact lost, none written twice, and no opted-out contact ever sent (strict guard, random opt-outs)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from segflow.destinations import RetryPolicy
from segflow_local.fakes import FakeHubSpot, FakeMailchimp

from tests.integration.sync.harness import (
    SyncHarness,
    VirtualClock,
    check_converged,
    emails_sent_for_adding,
    known_ids,
    status_sent_to_existing_members,
    strict_guard,
    successful_writes,
)
from tests.unit.sync.builders import CONFIG, SEGMENTS, opted_out, view

N = 400
ROUNDS = 3


# (seed, attempts per request): two attempts make the client give up often, so whole items are redelivered
@pytest.fixture(params=[(11, 6), (29, 2)], ids=["client-retries", "item-redeliveries"])
def harness(request: pytest.FixtureRequest) -> Iterator[SyncHarness]:
    seed, attempts = request.param
    clock = VirtualClock()
    faults = {"fault_rate": 0.2, "seed": seed, "fault_delay_s": 0.01}
    policy = RetryPolicy(max_attempts=attempts, base_delay_s=0.001, max_delay_s=0.005, max_total_s=30.0)
    with FakeMailchimp(**faults) as mailchimp, FakeHubSpot(clock=clock, **faults) as hubspot:
        built = SyncHarness(CONFIG, mailchimp, hubspot, clock, policy=policy)
        built.seed = seed  # type: ignore[attr-defined]
        yield built
        built.close()


def evolve(views: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """A night's changes: segment moves, field edits, preferences, ineligibility, opt-outs, newcomers."""
    out = []
    for current in views:
        i = int(current["customer_id"][1:])
        roll = rng.random()
        if current["consent_status"] == "opted_out" or roll > 0.25:
            out.append(current)
        elif roll < 0.05:
            out.append(opted_out(i, *current["memberships"]))
        elif roll < 0.09:
            out.append(view(i, *current["memberships"], eligible=False, ineligible_reasons=["inactive"]))
        elif roll < 0.13:
            out.append(
                view(i, *current["memberships"], preference_level=rng.choice(["basic", "none", "full"]))
            )
        else:
            out.append(
                view(i, *rng.sample(SEGMENTS, rng.randint(0, 3)), city=rng.choice(["Nice", "Lille", "Lyon"]))
            )
    start = len(views)
    out += [view(start + j, rng.choice(SEGMENTS)) for j in range(rng.randint(5, 20))]
    return out


def test_every_sync_converges_under_faults(harness: SyncHarness) -> None:
    rng = random.Random(harness.seed)  # type: ignore[attr-defined]
    views = [view(i, *rng.sample(SEGMENTS, rng.randint(0, 2))) for i in range(N)]
    ever_opted_out: set[str] = set()
    retries = redeliveries = 0
    for round_no in range(ROUNDS):
        ever_opted_out |= {v["email"] for v in views if v["consent_status"] == "opted_out"}
        for destination in ("mailchimp", "hubspot"):
            fake = harness.fakes[destination]
            fake.reset_observations()
            run = harness.sync(views, destination, f"run-{round_no}", strict_guard(ever_opted_out))
            retries += sum(r.stats.retries for r in run.reports)
            redeliveries += run.deliveries - run.estimate["work_items"]
            writes = successful_writes(fake.exchanges, destination)
            assert not writes or max(writes.values()) == 1, [e for e, n in writes.items() if n > 1]
            planned = {c.email for c in run.plan.contacts if c.upserts}
            assert set(writes) == planned  # no contact lost, none written twice
            sent = emails_sent_for_adding(fake.exchanges, destination, known_ids(harness))
            assert not sent & ever_opted_out
            assert fake.stats()["faults_injected"], "the faults did not fire"
            if destination == "mailchimp":
                assert status_sent_to_existing_members(fake.exchanges) == []
        check_converged(harness, views)
        views = evolve(views, rng)
    assert not harness.suppressions.recorded  # no compliance refusals were staged here
    assert retries > 0
    if harness.policy.max_attempts == 2:
        assert redeliveries > 0, "no item needed a second delivery"
