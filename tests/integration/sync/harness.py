"""A sync against the fake Mailchimp and HubSpot servers over real HTTP: plan, cut, apply (redelivering items
with retryable contacts, as SQS would), then compare the fakes' state with the desired state."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from segflow.destinations import HubSpotClient, MailchimpClient, RetryPolicy, WindowRateLimiter
from segflow.destinations.hubspot_models import property_value
from segflow.destinations.mailchimp_batches import BatchPolling
from segflow.destinations.mailchimp_models import subscriber_hash
from segflow.destinations.ratelimit import budget
from segflow.store.sync_state import InMemorySyncStateStore
from segflow.sync.adapters import HubSpotAdapter, MailchimpAdapter
from segflow.sync.applier import ApplyReport, apply
from segflow.sync.desired import DesiredContact, SyncConfig, build_desired
from segflow.sync.planner import Plan, estimate_calls, plan
from segflow.sync.ports import Guard, RecordingSuppressions
from segflow.sync.workitems import chunk_plan
from segflow_local.fakes import FakeHubSpot, FakeMailchimp
from segflow_local.fakes.common import Exchange

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
MAILCHIMP_BATCH_PATH = re.compile(r"^/3\.0/lists/[^/]+/?$")
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay_s=0.001, max_delay_s=0.005, max_total_s=30.0)
# The fake finishes a batch after two status reads, whatever the time: poll without really waiting.
FAST_POLLING = BatchPolling(first_delay_s=0.001, max_delay_s=0.002, budget_s=30.0)


class VirtualClock:
    """Monotonic time that moves only when someone sleeps on it; shared by a fake and a client so rate
    windows are exact and nobody really waits."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(seconds, 0.0)


@dataclass
class DestinationRun:
    plan: Plan
    estimate: dict[str, int]
    reports: list[ApplyReport]
    requests: int  # requests the fake received during the run
    deliveries: int  # work item applications, redeliveries included


@dataclass
class SyncHarness:
    config: SyncConfig
    mailchimp: FakeMailchimp
    hubspot: FakeHubSpot
    clock: VirtualClock
    margin: float = 0.95
    policy: RetryPolicy = FAST_RETRY
    batch_polling: BatchPolling = FAST_POLLING
    store: InMemorySyncStateStore = field(default_factory=InMemorySyncStateStore)
    suppressions: RecordingSuppressions = field(default_factory=RecordingSuppressions)
    acquired: list[float] = field(default_factory=list)  # HubSpot limiter grants (virtual time)

    def __post_init__(self) -> None:
        mailchimp_client = MailchimpClient(
            self.mailchimp.api_key,
            base_url=self.mailchimp.base_url,
            policy=self.policy,
            batch_polling=self.batch_polling,
        )
        self.adapters: dict[str, Any] = {
            "mailchimp": MailchimpAdapter(mailchimp_client, self.mailchimp.default_list_id, self.config)
        }
        ceiling = self.hubspot.window.limit
        limiter = WindowRateLimiter(
            budget(ceiling, self.margin), 10.0, clock=self.clock, sleep=self.clock.sleep
        )
        grant = limiter.acquire

        def recording_acquire() -> float:
            granted = grant()
            self.acquired.append(granted)
            return granted

        limiter.acquire = recording_acquire  # type: ignore[method-assign]
        hubspot_client = HubSpotClient(
            self.hubspot.token,
            base_url=self.hubspot.base_url,
            limiter=limiter,
            policy=self.policy,
            sleep=self.clock.sleep,
            clock=self.clock,
        )
        self.adapters["hubspot"] = HubSpotAdapter(hubspot_client, self.config)
        self.fakes: dict[str, Any] = {"mailchimp": self.mailchimp, "hubspot": self.hubspot}

    def close(self) -> None:
        for adapter in self.adapters.values():
            adapter.client.close()

    def desired(self, views: Iterable[dict[str, Any]], destination: str) -> list[DesiredContact]:
        return [build_desired(v, destination, self.config) for v in views]

    def sync(
        self,
        views: Sequence[dict[str, Any]],
        destination: str,
        run_id: str,
        guard: Guard,
        max_deliveries: int = 8,
    ) -> DestinationRun:
        fake = self.fakes[destination]
        wanted = self.desired(views, destination)
        the_plan = plan(
            wanted, self.store.get_states(destination, [d.customer_id for d in wanted]), destination
        )
        before = fake.stats()["total_requests"]
        reports, deliveries = [], 0
        for item in chunk_plan(the_plan, run_id):
            for _ in range(max_deliveries):
                deliveries += 1
                report = apply(item, self.adapters[destination], self.store, guard, self.suppressions, NOW)
                reports.append(report)
                if report.complete:
                    break
            else:
                raise AssertionError(
                    f"work item {item.work_item_id} did not finish in {max_deliveries} deliveries"
                )
        return DestinationRun(
            the_plan, estimate_calls(the_plan), reports, fake.stats()["total_requests"] - before, deliveries
        )


def allow(contact: DesiredContact) -> bool:
    return True


def strict_guard(forbidden: set[str], seen: list[str] | None = None) -> Guard:
    """Refuses the forbidden emails; records every email it was asked about."""

    def guard(contact: DesiredContact) -> bool:
        if seen is not None:
            seen.append(contact.email)
        return contact.email not in forbidden

    return guard


# ---- what the fakes hold --------------------------------------------------------------------------------


def mailchimp_members(fake: FakeMailchimp) -> dict[str, dict[str, Any]]:
    return fake.state()["lists"][fake.default_list_id]["members"]


def hubspot_contacts(fake: FakeHubSpot) -> tuple[dict[str, Any], dict[str, set[str]]]:
    state = fake.state()
    lists: dict[str, set[str]] = {}
    for name, found in state["lists"].items():
        for email in found["members"]:
            lists.setdefault(email, set()).add(name)
    return state["contacts"], lists


def check_converged(
    harness: SyncHarness,
    views: Sequence[dict[str, Any]],
    destinations: Sequence[str] = ("mailchimp", "hubspot"),
) -> None:
    """Destination state == desired state for every contact segflow may reach; nobody else carries segflow's
    tags, segments or lists; withdrawn consents that segflow had pushed are unsubscribed."""
    config = harness.config
    managed_mc = {name for _, name in config.managed("mailchimp")}
    managed_hs = {name for _, name in config.managed("hubspot")}
    members = mailchimp_members(harness.mailchimp)
    contacts, lists = hubspot_contacts(harness.hubspot)
    states = {d: harness.store.all_states(d) for d in ("mailchimp", "hubspot")}
    for desired in harness.desired(views, "mailchimp") if "mailchimp" in destinations else []:
        member, state = members.get(desired.email), states["mailchimp"].get(desired.customer_id)
        tags = set(member["tags"]) & managed_mc if member else set()
        if desired.eligible and desired.subscribe_if_new:
            assert member is not None, desired.customer_id
            assert {k: member["merge_fields"].get(k, "") for k in desired.fields} == dict(desired.fields)
            assert tags == set(desired.tags | desired.segments), desired.customer_id
        else:
            assert not tags, f"{desired.customer_id} keeps segflow tags {tags}"
        if desired.unsubscribe and state is not None and state.destination_id:
            assert member is not None and member["status"] == "unsubscribed", desired.customer_id
    for desired in harness.desired(views, "hubspot") if "hubspot" in destinations else []:
        contact, state = contacts.get(desired.email), states["hubspot"].get(desired.customer_id)
        names = lists.get(desired.email, set()) & managed_hs
        if desired.eligible:
            assert contact is not None, desired.customer_id
            expected = {k: property_value(v) for k, v in desired.fields.items()}
            assert {k: contact["properties"].get(k, "") for k in expected} == expected, desired.customer_id
            assert names == set(desired.lists), desired.customer_id
        else:
            assert not names, f"{desired.customer_id} stays in segflow lists {names}"
        if desired.unsubscribe and state is not None and state.destination_id:
            assert harness.hubspot.subscription_status(desired.email) == "UNSUBSCRIBED", desired.customer_id


# ---- what went over the wire ------------------------------------------------------------------------------


def successful_writes(exchanges: Iterable[Exchange], destination: str) -> Counter[str]:
    """Contact data writes the destination accepted, per email (unsubscribes and membership changes aside)."""
    writes: Counter[str] = Counter()
    for ex in exchanges:
        if ex.status >= 300:
            continue
        if destination == "mailchimp":
            if ex.method == "POST" and MAILCHIMP_BATCH_PATH.match(ex.path):
                writes.update(m["email_address"].lower() for m in ex.response_body.get("new_members", []))
                writes.update(m["email_address"].lower() for m in ex.response_body.get("updated_members", []))
            elif ex.method == "PUT" and "/members/" in ex.path and ex.body.get("status") != "unsubscribed":
                writes[ex.body["email_address"].lower()] += 1
        elif ex.method == "POST" and ex.path.endswith("/batch/upsert"):
            writes.update(r["properties"]["email"] for r in ex.response_body.get("results", []))
    return writes


MEMBER_TAGS_PATH = re.compile(r"/lists/[^/]+/members/([0-9a-f]{32})/tags$")


def requests_made(exchanges: Iterable[Exchange]) -> Iterable[tuple[str, str, Any]]:
    """(method, path, body) of every request. The fake Mailchimp records each operation of a POST /batches
    as an exchange of its own when it runs it, so the batch request itself is skipped (no double count)."""
    for ex in exchanges:
        if not (ex.method == "POST" and ex.path.endswith("/batches")):
            yield ex.method, ex.path, ex.body


def mailchimp_hashes(fake: FakeMailchimp) -> dict[str, str]:
    """subscriber hash -> email of every member the fake holds, in any audience."""
    return {
        subscriber_hash(email): email
        for audience in fake.state()["lists"].values()
        for email in audience["members"]
    }


def known_ids(harness: SyncHarness) -> dict[str, str]:
    """Record ids and subscriber hashes -> emails, for emails_sent_for_adding."""
    return {**record_ids(harness.hubspot), **mailchimp_hashes(harness.mailchimp)}


def emails_sent_for_adding(
    exchanges: Iterable[Exchange], destination: str, email_of_id: dict[str, str]
) -> set[str]:
    """Every email that appeared in a request that writes contact data or adds to a tag, segment or list,
    Mailchimp batch operations included. email_of_id maps HubSpot record ids and Mailchimp subscriber
    hashes to emails (see record_ids, mailchimp_hashes); an unknown one is reported as itself."""
    sent: set[str] = set()
    for method, path, body in requests_made(exchanges):
        if destination == "mailchimp":
            tagged = MEMBER_TAGS_PATH.search(path)
            if isinstance(body, dict) and "members" in body:
                sent.update(m["email_address"].lower() for m in body["members"])
            elif isinstance(body, dict) and body.get("members_to_add"):
                sent.update(e.lower() for e in body["members_to_add"])
            elif tagged and isinstance(body, dict) and any(t.get("status") == "active" for t in body["tags"]):
                sent.add(email_of_id.get(tagged.group(1), tagged.group(1)))
            elif method == "PUT" and isinstance(body, dict) and body.get("status") != "unsubscribed":
                sent.add(body["email_address"].lower())
        else:
            if path.endswith("/batch/upsert"):
                sent.update(i["id"].lower() for i in body["inputs"])
            elif path.endswith("/memberships/add"):
                sent.update(email_of_id.get(r, r) for r in body)
    return sent


def status_sent_to_existing_members(exchanges: Iterable[Exchange]) -> list[str]:
    """Mailchimp requests (batch operations included) that sent a status other than an unsubscribe to a
    member that already existed."""
    problems = []
    exchanges = list(exchanges)
    for ex in exchanges:
        body = ex.body if isinstance(ex.body, dict) else {}
        if "members" in body:
            if body.get("update_existing"):
                problems.append("batch with update_existing")
            problems += [
                f"batch updated {m['email_address']}"
                for m in (ex.response_body or {}).get("updated_members", [])
            ]
    for method, _, body in requests_made(exchanges):
        if method == "PUT" and isinstance(body, dict) and "status" in body and body["status"] != "unsubscribed":
            problems.append(f"PUT status {body['status']}")
    return problems


def record_ids(fake: FakeHubSpot) -> dict[str, str]:
    return {c["id"]: email for email, c in fake.state()["contacts"].items()}


def population_of(n: int, make: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    return [make(i) for i in range(n)]
