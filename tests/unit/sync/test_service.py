"""PlanService and WorkerService with in-memory ports: plan -> queue -> apply -> run completion, dry run,
fresh consent, retries, duplicates, superseded items, destination refusals and nightly read-back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from segflow.events.bus import InMemoryPublisher
from segflow.events.schemas import CustomerSelection
from segflow.store.customers import CONSENT, PROFILE, SCORES, SEGMENTS, InMemoryCustomerItems, customer_pk
from segflow.store.objects import LocalObjectStore
from segflow.store.sync_state import InMemorySyncStateStore
from segflow.sync import runlog
from segflow.sync.reconcile import Observation
from segflow.sync.runs import InMemoryRunLedger
from segflow.sync.state import SyncState
from segflow.sync.service import (
    PlanPorts,
    PlanRequest,
    PlanService,
    QueueError,
    RetryLater,
    Target,
    WorkerPorts,
    WorkerService,
)
from segflow.sync.workitems import WorkItemPointer

from tests.unit.sync.builders import CONFIG, MemoryDestination, view

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
QUEUES = {"mailchimp": "queue://mailchimp", "hubspot": "queue://hubspot"}
ITEM_KINDS = {
    PROFILE: ("customer_id", "email", "first_name", "city"),
    SCORES: ("clv_tier", "frequency"),
    CONSENT: ("eligible", "ineligible_reasons", "consent_status", "preference_level"),
    SEGMENTS: ("memberships",),
}


class MemoryQueue:
    def __init__(self, fail_after: int | None = None) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = {url: [] for url in QUEUES.values()}
        self.fail_after = fail_after

    def send(self, queue_url: str, bodies: Sequence[str]) -> None:
        for sent, body in enumerate(bodies):
            if self.fail_after is not None and sent >= self.fail_after:
                raise QueueError("refused", sent)
            self.messages[queue_url].append(json.loads(body))

    def take(self, destination: str) -> list[dict[str, Any]]:
        taken, self.messages[QUEUES[destination]] = self.messages[QUEUES[destination]], []
        return taken


class Ticker:
    """Wall time that moves a millisecond per reading, so run ids are ordered as in production."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 3, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class World:
    def __init__(
        self, root: Path, destinations: Sequence[str] = ("mailchimp", "hubspot"), dry_run: bool = False
    ):
        self.items = InMemoryCustomerItems()
        self.objects = LocalObjectStore(root, bucket="data")
        self.states = InMemorySyncStateStore()
        self.queue = MemoryQueue()
        self.runs = InMemoryRunLedger()
        self.publisher = InMemoryPublisher()
        self.clock = Ticker()
        self.destinations = {d: MemoryDestination(destination=d) for d in ("mailchimp", "hubspot")}
        ports = PlanPorts(self.items, self.objects, self.states, self.queue, self.runs)
        self.planner = PlanService(
            ports, CONFIG, [Target(d, QUEUES[d]) for d in destinations], dry_run=dry_run, clock=self.clock
        )
        self.observed: dict[str, Observation] = {}
        self.handed_over = 0
        self.workers = {
            d: WorkerService(
                WorkerPorts(
                    self.objects, self.items, self.states, self.runs, self.publisher, Identities(self)
                ),
                d,
                lambda config, d=d: self.destinations[d],
                may_push=lambda v: v.get("eligible") is True and v.get("consent_status") != "opted_out",
                may_subscribe_new=lambda v, status: v.get("consent_status") == "opted_in",
                now=lambda: NOW,
                clock=self.clock,
                read_back=lambda adapter, emails: self.observed,
            )
            for d in ("mailchimp", "hubspot")
        }

    def seed(self, *views: dict[str, Any], checked: bool = True) -> None:
        """Customers' items; `checked`: both destinations were already checked for them (what most tests
        start from), so their first plan pushes them."""
        for full in views:
            for kind, names in ITEM_KINDS.items():
                fields = {n: full[n] for n in names if n in full}
                self.items.items[(customer_pk(full["customer_id"]), kind)] = {
                    "customer_id": full["customer_id"],
                    **fields,
                }
            if checked:
                checked_for = {"checked_email": full["email"], "checked_at": NOW.isoformat()}
                self.states.put_states(
                    [SyncState(full["customer_id"], d, version=1, **checked_for) for d in ("mailchimp", "hubspot")]
                )

    def hand_checked_to_planner(self) -> list[Any]:
        """ContactsChecked events the workers published reach sync-plan (as the EventBridge rule does)."""
        events = self.publisher.events[self.handed_over :]
        self.handed_over = len(self.publisher.events)
        return [
            self.planner.handle({"id": f"checked-{self.handed_over}-{n}", **event})
            for n, event in enumerate(events)
            if event["detail-type"] == "ContactsChecked"
        ]

    def consent(self, customer_id: str, **fields: Any) -> None:
        self.items.items[(customer_pk(customer_id), CONSENT)].update(fields)

    def changed(self, *customer_ids: str) -> dict[str, Any]:
        selection = CustomerSelection(count=len(customer_ids), customer_ids=list(customer_ids))
        return {
            "id": f"evt-{self.clock().timestamp()}",
            "detail-type": "SegmentsChanged",
            "source": "segflow.segment",
            "detail": {"run_id": "seg-1", "trigger": "ProfilesScored", "changed": selection.model_dump()},
        }

    def deliver(self, destination: str, receive_count: int = 1) -> list[Any]:
        outcomes = []
        for message in self.queue.take(destination):
            outcomes.append(self.workers[destination].process(message, receive_count))
        return outcomes

    def events(self, detail_type: str) -> list[dict[str, Any]]:
        return [e for e in self.publisher.events if e["detail-type"] == detail_type]

    def log(self, run_id: str, destination: str) -> dict[str, Any]:
        return json.loads(self.objects.get_bytes(runlog.log_key(run_id, destination)))


class Identities:
    """email -> customer id from the seeded profiles (what the audience scan resolves addresses with)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def resolve(self, kind: str, values: Any) -> dict[str, str]:
        wanted = set(values)
        return {
            item["email"]: item["customer_id"]
            for (_, item_kind), item in self.world.items.items.items()
            if item_kind == PROFILE and item.get("email") in wanted
        }


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_plan_queues_pointers_the_workers_apply_and_the_last_item_completes_the_run(world: World) -> None:
    world.seed(view(1, "Champions"), view(2, "At risk", "Big spenders"), view(3))
    planned = world.planner.handle(world.changed("c00001", "c00002", "c00003"))
    # HubSpot waits for Mailchimp's answer to the creates (a forgotten address is told by nothing else)
    assert (
        planned.destinations["mailchimp"]["work_items"] == 1
        and planned.destinations["hubspot"]["work_items"] == 0
        and planned.destinations["hubspot"]["held"] == 3
    )
    assert not world.destinations["mailchimp"].calls  # planning calls no destination
    [pointer] = [WorkItemPointer.from_message(m) for m in world.queue.messages[QUEUES["mailchimp"]]]
    assert (
        pointer.key == f"sync/{planned.run_id}/mailchimp/{pointer.work_item_id}.json"
        and pointer.contacts == 3
    )
    assert runlog.config_from_json(world.objects.get_bytes(runlog.config_key(planned.run_id))) == CONFIG

    [outcome] = world.deliver("mailchimp")
    assert outcome.complete and outcome.run_completed is not None
    [replanned] = world.hand_checked_to_planner()  # the creates were answered: HubSpot's turn
    assert replanned.trigger == f"ContactsChecked:{planned.run_id}" and replanned.customers == 3
    assert replanned.destinations["hubspot"]["work_items"] == 1
    [outcome] = world.deliver("hubspot")
    assert outcome.complete and outcome.run_completed is not None
    assert world.destinations["mailchimp"].member_of("segflow - At risk") == {"user2@example.com"}
    assert set(world.destinations["hubspot"].members) == {
        "user1@example.com",
        "user2@example.com",
        "user3@example.com",
    }

    completed = world.events("SyncCompleted")
    assert sorted(e["detail"]["destination"] for e in completed) == ["hubspot", "mailchimp"]
    assert all(e["source"] == "segflow.sync" and e["detail"]["status"] == "completed" for e in completed)
    line = world.log(planned.run_id, "mailchimp")
    assert line["contacts_pushed"] == 3 and line["work_items"] == 1 and line["outcomes"] == {"pushed": 3}
    assert (
        line["api_calls"] == len(world.destinations["mailchimp"].calls)
        and line["trigger"] == "SegmentsChanged:seg-1"
    )
    assert line["planned"]["creates"] == 3 and line["planned"]["estimated_calls"]["work_items"] == 1
    history = json.loads(
        world.objects.get_bytes(runlog.history_key(planned.run_id, "mailchimp", pointer.work_item_id))
    )
    assert history["attempts"] == 1 and history["last"]["outcomes"] == {"pushed": 3}


def test_an_unchanged_second_plan_queues_nothing_and_logs_a_run_without_calls(world: World) -> None:
    world.seed(view(1, "Champions"), view(2))
    world.planner.handle(world.changed("c00001", "c00002"))
    world.deliver("mailchimp"), world.hand_checked_to_planner(), world.deliver("hubspot")
    calls = {d: len(dest.calls) for d, dest in world.destinations.items()}

    again = world.planner.handle(world.changed("c00001", "c00002"))
    assert world.queue.messages == {url: [] for url in QUEUES.values()}
    assert {d: len(dest.calls) for d, dest in world.destinations.items()} == calls
    line = world.log(again.run_id, "hubspot")
    assert line["status"] == "completed" and line["work_items"] == 0 and line["api_calls"] == 0
    assert line["planned"]["unchanged"] == 2


def test_a_redelivered_message_is_counted_once_and_sync_completed_is_published_once(world: World) -> None:
    world.seed(view(1, "Champions"))
    world.planner.handle(world.changed("c00001"))
    [message] = world.queue.take("mailchimp")
    worker = world.workers["mailchimp"]
    first = worker.process(message)
    calls = len(world.destinations["mailchimp"].calls)
    second = worker.process(message)  # SQS may deliver twice (Powertools idempotency aside)
    assert first.run_completed is not None and second.run_completed is None
    assert len(world.destinations["mailchimp"].calls) == calls
    assert len(world.events("SyncCompleted")) == 1


def test_a_dry_run_writes_the_exact_plan_and_queues_nothing(tmp_path: Path) -> None:
    world = World(tmp_path, dry_run=True)
    world.seed(view(1, "Champions"), view(2, "At risk"))
    planned = world.planner.handle({"mode": "all"})
    assert planned.dry_run and world.queue.messages == {url: [] for url in QUEUES.values()}
    assert not world.runs.items and not any(d.calls for d in world.destinations.values())
    document = json.loads(world.objects.get_bytes(runlog.plan_key(planned.run_id)))
    mailchimp = document["destinations"]["mailchimp"]
    assert mailchimp["totals"]["creates"] == 2 and mailchimp["estimated_calls"]["work_items"] == 1
    assert [c["customer_id"] for c in mailchimp["contacts"]] == ["c00001", "c00002"]
    assert "user1@example.com" not in json.dumps(document)  # emails appear hashed only
    assert world.log(planned.run_id, "hubspot")["status"] == "dry_run"


def test_only_configured_destinations_are_planned(tmp_path: Path) -> None:
    world = World(tmp_path, destinations=("hubspot",))
    world.seed(view(1, "Champions"))
    planned = world.planner.handle(world.changed("c00001"))
    assert list(planned.destinations) == ["hubspot"]
    assert (
        world.queue.messages[QUEUES["mailchimp"]] == [] and len(world.queue.messages[QUEUES["hubspot"]]) == 1
    )


def test_consent_is_read_fresh_before_applying(world: World) -> None:
    world.seed(view(1, "Champions"), view(2, "Champions"))
    world.planner.handle(world.changed("c00001", "c00002"))
    world.consent("c00002", consent_status="opted_out", eligible=False)  # withdrawn after planning
    world.deliver("mailchimp")
    assert set(world.destinations["mailchimp"].members) == {"user1@example.com"}
    assert world.destinations["mailchimp"].member_of("segflow: Champions") == {"user1@example.com"}


def test_retryable_contacts_fail_the_message_until_a_redelivery_finishes_them(world: World) -> None:
    world.seed(view(1, "Champions"), view(2))
    world.destinations["mailchimp"].fail_upsert["user2@example.com"] = "retryable"
    planned = world.planner.handle(world.changed("c00001", "c00002"))
    [message] = world.queue.take("mailchimp")
    worker = world.workers["mailchimp"]
    with pytest.raises(RetryLater):
        worker.process(message, receive_count=1)
    assert world.runs.items[(planned.run_id, "mailchimp")]["remaining"] == 1 and not world.events(
        "SyncCompleted"
    )

    world.destinations["mailchimp"].fail_upsert.clear()
    outcome = worker.process(message, receive_count=2)
    assert outcome.complete and outcome.run_completed is not None
    history = json.loads(
        world.objects.get_bytes(runlog.history_key(planned.run_id, "mailchimp", outcome.work_item_id))
    )
    assert history["attempts"] == 2 and history["pushed_customer_ids"] == ["c00001", "c00002"]
    line = world.log(planned.run_id, "mailchimp")
    assert line["status"] == "completed" and line["contacts_pushed"] == 2


def test_the_last_delivery_is_counted_so_the_run_completes_as_partial(world: World) -> None:
    world.seed(view(1))
    world.destinations["hubspot"].fail_upsert["user1@example.com"] = "retryable"
    world.planner.handle(world.changed("c00001"))
    world.deliver("mailchimp")
    [planned] = world.hand_checked_to_planner()
    world.publisher.events.clear()
    [message] = world.queue.take("hubspot")
    with pytest.raises(RetryLater):  # still failed: SQS moves it to the dead-letter queue
        world.workers["hubspot"].process(message, receive_count=5)
    [completed] = world.events("SyncCompleted")
    assert completed["detail"]["status"] == "partial"
    line = world.log(planned.run_id, "hubspot")
    assert line["retryable_contacts"] == 1 and line["contacts_pushed"] == 0


def test_destination_refusals_become_consent_opt_outs_from_segflow_sync(world: World) -> None:
    world.seed(view(1, "Champions"))
    world.destinations["mailchimp"].fail_upsert["user1@example.com"] = "compliance"
    world.planner.handle(world.changed("c00001"))
    world.deliver("mailchimp")
    [submitted] = world.events("ConsentChanged")
    assert submitted["source"] == "segflow.sync"
    [record] = submitted["detail"]["records"]
    assert record["email"] == "user1@example.com" and record["customer_id"] == "c00001"
    assert record["status"] == "opted_out" and record["source"] == "destination:mailchimp"
    assert world.states.get_states("mailchimp", ["c00001"])["c00001"].status == "unsubscribed"


def test_an_item_planned_before_a_newer_applied_plan_skips_those_contacts(world: World) -> None:
    world.seed(view(1, "Champions"))
    world.planner.handle(world.changed("c00001"))
    [older] = world.queue.take("mailchimp")
    world.items.items[(customer_pk("c00001"), SEGMENTS)]["memberships"] = {}  # left the segment meanwhile
    world.planner.handle(world.changed("c00001"))
    world.deliver("mailchimp")  # the newer plan lands first: a member without the tag
    calls = len(world.destinations["mailchimp"].calls)

    outcome = world.workers["mailchimp"].process(older)  # the stale item must not add the tag back
    assert outcome.record["superseded_customer_ids"] == ["c00001"]
    assert len(world.destinations["mailchimp"].calls) == calls
    assert world.destinations["mailchimp"].member_of("segflow: Champions") == set()


def test_the_nightly_run_reads_back_first_and_records_destination_unsubscribes(world: World) -> None:
    world.seed(view(1, "Champions"), view(2))
    world.planner.handle(world.changed("c00001", "c00002"))
    world.deliver("mailchimp")
    world.observed = {
        "user1@example.com": Observation(True, "101", "unsubscribed"),
        "user2@example.com": Observation(True, "102", "subscribed"),
    }

    nightly = world.planner.handle({"mode": "all", "reconcile": True})
    messages = world.queue.messages[QUEUES["mailchimp"]]
    assert [m.get("kind") for m in messages] == ["reconcile"]  # nothing else changed
    world.deliver("mailchimp")
    state = world.states.get_states("mailchimp", ["c00001"])["c00001"]
    assert state.status == "unsubscribed" and state.last_result["finding"] == "unsubscribed"
    [submitted] = world.events("ConsentChanged")
    assert [r["customer_id"] for r in submitted["detail"]["records"]] == ["c00001"]
    line = world.log(nightly.run_id, "mailchimp")
    assert line["reconcile"] == {"items": 1, "read": 2, "corrections": 1, "opt_outs": 1}
    assert line["status"] == "completed"


def test_unqueued_items_are_released_so_the_run_can_still_complete(world: World) -> None:
    world.seed(*(view(i, "Champions") for i in range(1, 4)))
    world.planner.chunk_customers = 1
    world.queue.fail_after = 0
    with pytest.raises(QueueError):
        world.planner.handle(world.changed("c00001", "c00002", "c00003"))
    [(run_id, destination)] = list(world.runs.items)
    assert world.runs.items[(run_id, destination)]["remaining"] == 0
    assert world.runs.items[(run_id, destination)]["unsent_items"] == 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"mode": "all", "reconcile": True}, PlanRequest("schedule:all", everyone=True, reconcile=True)),
        (
            {"mode": "customers", "customer_ids": ["c2", "c1"]},
            PlanRequest("manual", customer_ids=("c2", "c1")),
        ),
    ],
)
def test_scheduled_and_manual_requests(event: dict[str, Any], expected: PlanRequest) -> None:
    assert PlanRequest.from_event(event) == expected


def test_consent_changed_plans_its_changed_customers_and_manifests_are_resolved(world: World) -> None:
    world.seed(view(1), view(2))
    world.objects.put_bytes("manifests/consent/x.json", json.dumps(["c00002"]).encode())
    selection = CustomerSelection(count=1, customer_ids_key="manifests/consent/x.json")
    event = {
        "id": "e1",
        "detail-type": "ConsentChanged",
        "source": "segflow.consent",
        "detail": {"changed": selection.model_dump()},
    }
    planned = world.planner.handle(event)
    assert planned.customers == 1 and planned.trigger == "ConsentChanged:e1"
    [message] = world.queue.take("mailchimp")
    assert message["contacts"] == 1
    empty = {"id": "e2", "detail-type": "ConsentChanged", "source": "segflow.consent", "detail": {}}
    assert world.planner.handle(empty).destinations == {}
    with pytest.raises(ValueError):
        PlanRequest.from_event({"mode": "sometimes"})


def test_a_message_for_another_destination_is_refused(world: World) -> None:
    world.seed(view(1))
    world.planner.handle(world.changed("c00001"))
    [message] = world.queue.take("mailchimp")
    with pytest.raises(ValueError):
        world.workers["hubspot"].process(message)


def test_an_item_failing_on_its_last_delivery_still_completes_its_run(world: World) -> None:
    world.seed(view(1, "Champions"))
    destination = world.destinations["hubspot"]
    destination.raise_on, destination.error = "prepare", RuntimeError("boom")  # type: ignore[assignment]
    world.planner.handle(world.changed("c00001"))
    world.deliver("mailchimp")
    [planned] = world.hand_checked_to_planner()
    world.publisher.events.clear()
    [message] = world.queue.take("hubspot")
    with pytest.raises(RuntimeError):
        world.workers["hubspot"].process(message, receive_count=5)
    [completed] = world.events("SyncCompleted")
    assert completed["detail"]["status"] == "partial"
    line = world.log(planned.run_id, "hubspot")
    assert line["item_errors"] == ["RuntimeError"] and line["work_items"] == 1


def test_a_read_back_cut_off_after_its_opt_outs_loses_none_of_them(world: World) -> None:
    """Opt-outs are published before the state records the finding: were it the other way round, a crash
    between the two would leave a state that hides the finding from every later read-back."""
    world.seed(view(1, "Champions"))
    world.planner.handle(world.changed("c00001"))
    world.deliver("mailchimp")
    world.observed = {"user1@example.com": Observation(True, "101", "unsubscribed")}
    world.planner.handle({"mode": "all", "reconcile": True})
    [message] = world.queue.take("mailchimp")

    def crash(states: Any) -> list[str]:
        raise RuntimeError("DynamoDB unavailable")

    world.states.put_states = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.workers["mailchimp"].process(message)
    assert world.states.get_states("mailchimp", ["c00001"])["c00001"].status != "unsubscribed"
    [published] = world.events("ConsentChanged")
    assert [r["customer_id"] for r in published["detail"]["records"]] == ["c00001"]
