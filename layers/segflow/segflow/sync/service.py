"""The sync application layer: PlanService (sync-plan) and WorkerService (sync-mailchimp / sync-hubspot).

PlanService, on SegmentsChanged, ConsentChanged (segflow.consent) or the nightly {"mode": "all", "reconcile":
true}: loads the views of the changed customers (or everyone's), builds each configured destination's desired
state, diffs it against the recorded SyncState, cuts the plan into work items stored under sync/<run_id>/,
records the run (how many items per destination) and queues one pointer message per item. A nightly run also
queues read-back items (reconciliation) ahead of the work. A dry run writes the exact plan to
sync/<run_id>/plan.json and queues nothing. Runs with nothing to do leave only their sync-log line.

WorkerService, one SQS message = one item: skips contacts a newer plan already synced, re-reads consent FRESH
for the guard, applies the item, writes its history, turns destination refusals into consent opt-outs
(ConsentChanged from segflow.sync, which the consent function records), and counts the item in the run once
it is finished. The worker finishing a run's last item writes the sync-log line and publishes SyncCompleted.
An item with contacts left to retry raises RetryLater (SQS redelivers it); on its last delivery it is counted
as unfinished first, so the run still completes (the next plan picks those contacts up again).
S3 layout and run ids: segflow.sync.runlog.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol

from segflow.events.bus import EventPublisher
from segflow.events.schemas import (
    ConsentChanged,
    ConsentInput,
    CustomerSelection,
    SegmentsChanged,
    SyncCompleted,
    parse_detail,
)
from segflow.events.selection import resolve
from segflow.observability import logger
from segflow.store.customers import CONSENT, PROFILE, SCORES, SEGMENTS, CustomerItemStore, merge_view
from segflow.store.objects import ObjectStore
from segflow.sync import runlog
from segflow.sync.adapters import DestinationAdapter
from segflow.sync.applier import OUTCOME_ORDER, ApplyReport, apply
from segflow.sync.desired import (
    DesiredContact,
    FieldValues,
    SyncConfig,
    ViewCheck,
    build_desired,
    default_eligible,
    default_subscribable,
)
from segflow.sync.dryrun import render_plan
from segflow.sync.guards import PushCheck, SubscribeCheck, guard_from_views
from segflow.sync.limits import MAILCHIMP
from segflow.sync.planner import NOTE_DUPLICATE_EMAIL, Plan, estimate_calls, plan
from segflow.sync.ports import RecordingSuppressions, SyncStateStore
from segflow.sync.reconcile import (
    Observation,
    addresses,
    observe_hubspot,
    observe_mailchimp,
    reconcile,
    states_to_check,
    unconfirmed,
    unconfirmed_to_read,
)
from segflow.sync.runs import RunLedger, RunTotals
from segflow.sync.state import SyncState
from segflow.sync.workitems import WorkItem, WorkItemPointer, WorkItemStore, chunk_plan

VIEW_ITEMS = (PROFILE, SCORES, CONSENT, SEGMENTS)
GUARD_ITEMS = (PROFILE, SCORES, CONSENT)  # what the consent checks read, fresh, right before a push
CHUNK_CUSTOMERS = 500  # customers read and planned together
RECONCILE_CONTACTS = {MAILCHIMP: 500, "hubspot": 100}  # contacts read back per reconcile item
MAX_CONSENT_RECORDS = 500  # ConsentChanged.records' limit
RUN_CONFIGS_KEPT = 256  # run id -> config hash entries a worker container remembers
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class QueueError(RuntimeError):
    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent  # bodies confirmed queued before the failure


class WorkQueue(Protocol):
    def send(self, queue_url: str, bodies: Sequence[str]) -> None:
        """Queue every body in order, or raise QueueError telling how many were confirmed."""
        ...


class SqsWorkQueue:
    """Pointer messages to a standard queue, ten per call, resending the entries SQS refused."""

    def __init__(self, client: Any, attempts: int = 3) -> None:
        self._client = client
        self._attempts = attempts

    def send(self, queue_url: str, bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), 10):
            pending = {str(i): body for i, body in enumerate(bodies[start : start + 10])}
            try:
                for _ in range(self._attempts):
                    entries = [{"Id": i, "MessageBody": body} for i, body in pending.items()]
                    response = self._client.send_message_batch(QueueUrl=queue_url, Entries=entries)
                    pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
                    if not pending:
                        break
            except Exception as exc:
                raise QueueError(f"queueing sync work failed: {type(exc).__name__}", start) from exc
            if pending:
                raise QueueError(f"{len(pending)} sync message(s) refused by the queue", start)


class SyncConsentChanged(ConsentChanged):
    """Destination opt-outs submitted to the consent function (any source but segflow.consent reaches it)."""

    source: ClassVar[str] = "segflow.sync"


class RetryLater(RuntimeError):
    """The item has contacts to retry: fail the message so SQS delivers it again."""


def view_of(customer_id: str, items: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The merged view of a live customer; None when the profile is gone or merged into another one."""
    profile = items.get(PROFILE)
    if not profile or profile.get("merged_into"):
        return None
    view = merge_view(items)
    view.setdefault("customer_id", customer_id)
    return view


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# ---- sync-plan -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    destination: str
    queue_url: str


@dataclass
class PlanPorts:
    items: CustomerItemStore
    objects: ObjectStore
    states: SyncStateStore
    queue: WorkQueue
    runs: RunLedger


@dataclass(frozen=True)
class PlanRequest:
    trigger: str  # what caused the run, e.g. "SegmentsChanged:<segment run id>"
    everyone: bool = False
    selection: CustomerSelection | None = None
    customer_ids: tuple[str, ...] = ()
    reconcile: bool = False
    seed: str | None = None  # the triggering event id, mixed into the run id

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> PlanRequest:
        if "detail-type" in event:
            detail = parse_detail(dict(event))
            if isinstance(detail, SegmentsChanged):
                selection, trigger = detail.changed, f"SegmentsChanged:{detail.run_id}"
            elif isinstance(detail, ConsentChanged):
                selection = detail.changed or CustomerSelection(count=0)
                trigger = f"ConsentChanged:{event.get('id', '')}"
            else:
                raise ValueError(f"sync-plan does not handle {event.get('detail-type')!r} events")
            return cls(trigger, everyone=selection.everyone, selection=selection, seed=event.get("id"))
        mode = event.get("mode")
        if mode == "all":
            return cls("schedule:all", everyone=True, reconcile=bool(event.get("reconcile")))
        if mode == "customers":
            return cls(
                "manual",
                customer_ids=tuple(str(c) for c in event.get("customer_ids") or ()),
                reconcile=bool(event.get("reconcile")),
            )
        raise ValueError(f"unknown sync-plan request {sorted(event)!r}")


@dataclass
class PlanOutcome:
    run_id: str
    trigger: str
    customers: int
    dry_run: bool
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "trigger": self.trigger,
            "customers": self.customers,
            "dry_run": self.dry_run,
            "destinations": self.destinations,
        }


class _PlanBuilder:
    """One destination's plan, built chunk by chunk in customer-id order (an email shared by several
    customers goes to the first of them across all chunks, as `plan` does within one)."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.contacts: list[Any] = []
        self.unchanged = 0
        self.held: Counter[str] = Counter()
        self.owners: dict[str, str] = {}
        self.known: list[SyncState] = []  # recorded states, for reconciliation
        self.unconfirmed: list[str] = []  # customer ids to read back without a confirmed member

    def add(self, desired: Sequence[DesiredContact], states: Mapping[str, SyncState]) -> None:
        kept = []
        for wanted in sorted(desired, key=lambda d: d.customer_id):
            if (
                wanted.email
                and self.owners.setdefault(wanted.email, wanted.customer_id) != wanted.customer_id
            ):
                self.held[NOTE_DUPLICATE_EMAIL] += 1
                continue
            kept.append(wanted)
        chunk = plan(kept, states, self.destination)
        self.contacts.extend(chunk.contacts)
        self.unchanged += chunk.unchanged
        self.held.update(chunk.held)

    def result(self) -> Plan:
        return Plan(self.destination, tuple(self.contacts), self.unchanged, dict(self.held))


class PlanService:
    def __init__(
        self,
        ports: PlanPorts,
        config: SyncConfig,
        targets: Sequence[Target],
        *,
        field_values: FieldValues | None = None,
        eligible: ViewCheck = default_eligible,
        subscribable: ViewCheck = default_subscribable,
        dry_run: bool = False,
        clock: Clock = utc_now,
        chunk_customers: int = CHUNK_CUSTOMERS,
    ) -> None:
        self.ports = ports
        self.config = config
        self.targets = list(targets)
        self.field_values = field_values
        self.eligible = eligible
        self.subscribable = subscribable
        self.dry_run = dry_run
        self.clock = clock
        self.chunk_customers = chunk_customers
        self.work_items = WorkItemStore(ports.objects, prefix=runlog.PREFIX)

    def handle(self, event: Mapping[str, Any]) -> PlanOutcome:
        return self.run(PlanRequest.from_event(event))

    def customer_ids(self, request: PlanRequest) -> list[str]:
        if request.everyone:
            return sorted(self.ports.items.customer_ids())
        ids = list(request.customer_ids)
        if request.selection is not None:
            ids += resolve(self.ports.objects, request.selection)
        return sorted(set(ids))

    def run(self, request: PlanRequest) -> PlanOutcome:
        started = self.clock()
        run_id = runlog.new_run_id(started, request.seed or uuid.uuid4().hex)
        ids = self.customer_ids(request)
        outcome = PlanOutcome(run_id, request.trigger, len(ids), self.dry_run)
        if not self.targets:
            logger.warning("sync-plan has no configured destination", extra={"run_id": run_id})
            return outcome
        if not ids:
            return outcome
        builders = {t.destination: _PlanBuilder(t.destination) for t in self.targets}
        for chunk in _chunks(ids, self.chunk_customers):
            found = self.ports.items.get(chunk, VIEW_ITEMS)
            views = [v for c in chunk if (v := view_of(c, found.get(c, {}))) is not None]
            values = [self._field_values(v) for v in views]  # once per view, for every destination
            for destination, builder in builders.items():
                states = self.ports.states.get_states(destination, [v["customer_id"] for v in views])
                desired = [self._desired(v, destination, f) for v, f in zip(views, values, strict=True)]
                builder.add(desired, states)
                if request.reconcile:
                    builder.known.extend(states.values())
                    builder.unconfirmed.extend(unconfirmed_to_read(destination, desired, states))
        plans = {d: b.result() for d, b in builders.items()}
        queued: dict[str, dict[str, int]] = {}
        if self.dry_run:
            self._dry_run(run_id, request, started, plans)
        else:
            queued = self._queue(run_id, request, started, plans, builders)
        for destination, the_plan in plans.items():
            outcome.destinations[destination] = {**the_plan.totals(), **queued.get(destination, {})}
        logger.info("sync planned", extra=outcome.as_dict())
        return outcome

    def _field_values(self, view: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return None if self.field_values is None else self.field_values(view)

    def _desired(
        self, view: Mapping[str, Any], destination: str, values: Mapping[str, Any] | None
    ) -> DesiredContact:
        return build_desired(
            view,
            destination,
            self.config,
            field_values=None if values is None else (lambda _view: values),
            eligible=self.eligible,
            subscribable=self.subscribable,
        )

    def _planned(self, the_plan: Plan) -> dict[str, Any]:
        return {**the_plan.totals(), "estimated_calls": estimate_calls(the_plan)}

    def _dry_run(
        self, run_id: str, request: PlanRequest, started: datetime, plans: Mapping[str, Plan]
    ) -> None:
        document = {
            "run_id": run_id,
            "trigger": request.trigger,
            "dry_run": True,
            "planned_at": started.isoformat(),
            "destinations": {d: render_plan(p) for d, p in plans.items()},
        }
        self.ports.objects.put_bytes(
            runlog.plan_key(run_id), json.dumps(document, sort_keys=True).encode(), "application/json"
        )
        for destination, the_plan in plans.items():
            totals = RunTotals(
                run_id, destination, request.trigger, started.isoformat(), 0, planned=self._planned(the_plan)
            )
            self._write_log(totals, dry_run=True)

    def _queue(
        self,
        run_id: str,
        request: PlanRequest,
        started: datetime,
        plans: Mapping[str, Plan],
        builders: Mapping[str, _PlanBuilder],
    ) -> dict[str, dict[str, int]]:
        """Store and queue each destination's items; {destination: {"work_items", "reconcile_items"}}."""
        queues = {t.destination: t.queue_url for t in self.targets}
        summary: dict[str, dict[str, int]] = {}
        config_written = False
        for destination, the_plan in plans.items():
            items = chunk_plan(the_plan, run_id)
            builder = builders[destination]
            checks = self._reconcile_items(run_id, destination, builder.known, builder.unconfirmed)
            planned = self._planned(the_plan)
            summary[destination] = {"work_items": 0, "reconcile_items": 0}
            if not items and not checks:
                self._write_log(
                    RunTotals(run_id, destination, request.trigger, started.isoformat(), 0, planned=planned)
                )
                continue
            if not config_written:
                self.ports.objects.put_bytes(
                    runlog.config_key(run_id), runlog.config_to_json(self.config).encode(), "application/json"
                )
                config_written = True
            self.ports.runs.start(
                run_id, destination, len(items) + len(checks), request.trigger, started, planned
            )
            bodies = checks + [self.work_items.put(item).to_message() for item in items]
            try:
                self.ports.queue.send(queues[destination], bodies)
            except QueueError as exc:
                # What was not confirmed is not waited for, so the run can still complete (the retried
                # invocation plans those contacts again under a new run).
                self.ports.runs.release(run_id, destination, len(bodies) - exc.sent)
                raise
            summary[destination] = {"work_items": len(items), "reconcile_items": len(checks)}
        return summary

    def _reconcile_items(
        self, run_id: str, destination: str, states: Sequence[SyncState], unconfirmed_ids: Sequence[str]
    ) -> list[str]:
        """Read-back messages (ahead of the work items, so corrections land before the pushes): the confirmed
        contacts and those to look up without a member (segflow.sync.reconcile says which)."""
        confirmed = {s.customer_id for s in states if s.email and s.destination_id}
        ids = sorted(confirmed | set(unconfirmed_ids))
        messages = []
        for chunk in _chunks(ids, RECONCILE_CONTACTS.get(destination, 100)):
            item_id = hashlib.sha256(json.dumps([run_id, destination, list(chunk)]).encode()).hexdigest()[:32]
            key = runlog.reconcile_key(run_id, destination, item_id)
            self.ports.objects.put_bytes(
                key, json.dumps({"customer_ids": list(chunk)}).encode(), "application/json"
            )
            messages.append(
                json.dumps(
                    {
                        "kind": "reconcile",
                        "bucket": self.ports.objects.bucket,
                        "key": key,
                        "work_item_id": item_id,
                        "run_id": run_id,
                        "destination": destination,
                        "contacts": len(chunk),
                    },
                    sort_keys=True,
                )
            )
        return messages

    def _write_log(self, totals: RunTotals, dry_run: bool = False) -> None:
        line = runlog.log_line(totals, self.clock(), dry_run=dry_run)
        self.ports.objects.put_bytes(
            runlog.log_key(totals.run_id, totals.destination),
            json.dumps(line, sort_keys=True).encode(),
            "application/json",
        )


# ---- sync-mailchimp / sync-hubspot ----------------------------------------------------------------------


ReadBack = Callable[[DestinationAdapter, Sequence[str]], Mapping[str, Observation]]


def read_back(adapter: DestinationAdapter, emails: Sequence[str]) -> Mapping[str, Observation]:
    """What the destination holds now for these addresses. Mailchimp: one GET per member (in parallel, up to
    the client's connection limit). HubSpot: the records and the email subscription statuses, each in batch
    reads of 100 (2 calls per 100 contacts), so an unsubscribe made in HubSpot reaches the consent ledger."""
    wrapped: Any = adapter  # MailchimpAdapter / HubSpotAdapter: the client they wrap (and the audience)
    if adapter.destination == MAILCHIMP:
        return observe_mailchimp(wrapped.client.get_members(wrapped.list_id, emails))
    records = wrapped.client.read_contacts(emails)
    present = [e for e, record in records.items() if record is not None and not record.get("archived")]
    statuses = wrapped.client.subscription_statuses(present, wrapped.subscription_id) if present else {}
    return observe_hubspot(records, statuses)


@dataclass
class WorkerPorts:
    objects: ObjectStore
    items: CustomerItemStore
    states: SyncStateStore
    runs: RunLedger
    publisher: EventPublisher


@dataclass
class ItemOutcome:
    work_item_id: str
    run_id: str
    kind: str
    complete: bool
    final: bool
    record: dict[str, Any]
    run_completed: dict[str, Any] | None = None  # the sync-log line when this item finished its run

    def as_dict(self) -> dict[str, Any]:
        return {
            "work_item_id": self.work_item_id,
            "run_id": self.run_id,
            "kind": self.kind,
            "complete": self.complete,
            "final": self.final,
            "run_status": None if self.run_completed is None else self.run_completed["status"],
        }


class WorkerService:
    def __init__(
        self,
        ports: WorkerPorts,
        destination: str,
        adapter_for: Callable[[SyncConfig], DestinationAdapter],
        *,
        may_push: PushCheck,
        may_subscribe_new: SubscribeCheck | None = None,
        now: Clock = utc_now,
        clock: Clock = utc_now,
        max_receive_count: int = 5,
        read_back: ReadBack = read_back,
    ) -> None:
        self.ports = ports
        self.destination = destination
        self.adapter_for = adapter_for
        self.may_push = may_push
        self.may_subscribe_new = may_subscribe_new
        self.now = now  # the business time (SEGFLOW_AS_OF locally)
        self.clock = clock  # wall time, for run bookkeeping
        self.max_receive_count = max_receive_count
        self.read_back = read_back
        self.work_items = WorkItemStore(ports.objects, prefix=runlog.PREFIX)
        self._adapters: dict[str, DestinationAdapter] = {}  # by config hash: provisioning is done once each
        self._run_configs: dict[str, str] = {}  # run id -> config hash

    # ---- entry ---------------------------------------------------------------------------------------

    def process(self, message: Mapping[str, Any], receive_count: int = 1) -> ItemOutcome:
        if message.get("destination") != self.destination:
            raise ValueError(
                f"a {message.get('destination')!r} message reached the {self.destination} worker"
            )
        final_delivery = receive_count >= self.max_receive_count
        reconciling = message.get("kind") == "reconcile"
        try:
            outcome = (
                self._reconcile(message)
                if reconciling
                else self._apply(WorkItemPointer.from_message(message), receive_count)
            )
        except Exception as exc:
            if final_delivery:  # the dead-letter queue keeps the message; the run must still complete
                self._give_up(message, reconciling, exc)
            raise
        outcome.final = outcome.complete or final_delivery
        if outcome.final:
            self._finish(outcome)
        logger.info("sync item processed", extra=outcome.as_dict())
        if not outcome.complete:
            raise RetryLater(f"work item {outcome.work_item_id} has contacts left to retry")
        return outcome

    def adapter(self, run_id: str) -> DestinationAdapter:
        """The adapter for the config the run was planned with (one per config: provisioning is cached)."""
        if run_id not in self._run_configs:
            if len(self._run_configs) >= RUN_CONFIGS_KEPT:
                self._run_configs.clear()
            config = runlog.config_from_json(self.ports.objects.get_bytes(runlog.config_key(run_id)))
            key = runlog.config_hash(config)
            if key not in self._adapters:
                self._adapters[key] = self.adapter_for(config)
            self._run_configs[run_id] = key
        return self._adapters[self._run_configs[run_id]]

    # ---- work items -----------------------------------------------------------------------------------

    def _apply(self, pointer: WorkItemPointer, receive_count: int) -> ItemOutcome:
        item = self.work_items.get(pointer)
        states = self.ports.states.get_states(item.destination, item.customer_ids)
        superseded = sorted(
            c
            for c, s in states.items()
            if s.last_result and runlog.planned_after(str(s.last_result.get("run_id") or ""), item.run_id)
        )
        current = replace(item, contacts=tuple(c for c in item.contacts if c.customer_id not in superseded))
        previous = self._history(item, receive_count)
        report: ApplyReport | None = None
        suppressions = RecordingSuppressions()
        if current.contacts:
            found = self.ports.items.get(current.customer_ids, GUARD_ITEMS)
            views = {c: v for c in current.customer_ids if (v := view_of(c, found.get(c, {}))) is not None}
            guard = guard_from_views(views, self.may_push, self.may_subscribe_new, states)
            report = apply(
                current, self.adapter(item.run_id), self.ports.states, guard, suppressions, self.now()
            )
            self._publish_opt_outs([(s.customer_id, s.email) for s in suppressions.recorded])
        record = self._item_record(item, report, previous, superseded, len(suppressions.recorded))
        self.ports.objects.put_bytes(
            runlog.history_key(item.run_id, item.destination, item.work_item_id),
            json.dumps(record, sort_keys=True).encode(),
            "application/json",
        )
        complete = report is None or report.complete
        return ItemOutcome(item.work_item_id, item.run_id, "apply", complete, False, record)

    def _history(self, item: WorkItem, receive_count: int) -> dict[str, Any]:
        """The previous attempts' record; none on a first delivery. Without s3:ListBucket a missing object
        reads as AccessDenied, not NoSuchKey, so any failure to read means "no earlier attempt recorded"."""
        if receive_count <= 1:
            return {}
        try:
            key = runlog.history_key(item.run_id, item.destination, item.work_item_id)
            return json.loads(self.ports.objects.get_bytes(key))
        except Exception as exc:  # noqa: BLE001 - bookkeeping only: the sums then start from this attempt
            logger.info(
                "no earlier attempt recorded",
                extra={"work_item_id": item.work_item_id, "reason": type(exc).__name__},
            )
            return {}

    def _item_record(
        self,
        item: WorkItem,
        report: ApplyReport | None,
        previous: Mapping[str, Any],
        superseded: Sequence[str],
        suppressions: int,
    ) -> dict[str, Any]:
        """This attempt's report, with calls summed and pushed contacts united over all attempts."""
        sums = dict(previous.get("attempt_totals") or {})
        pushed = set(previous.get("pushed_customer_ids") or ())
        if report is not None:
            for name, value in (
                ("api_calls", report.stats.calls),
                ("retries", report.stats.retries),
                ("throttled", report.stats.throttled),
                ("errors", report.stats.errors),
                ("duration_ms", int(report.duration_s * 1000)),
                ("suppressions", suppressions),
            ):
                sums[name] = sums.get(name, 0) + value
            pushed |= {c.customer_id for c in report.contacts.values() if c.outcome == "pushed"}
        return {
            "kind": "apply",
            "work_item_id": item.work_item_id,
            "run_id": item.run_id,
            "destination": item.destination,
            "contacts": len(item.contacts),
            "attempts": int(previous.get("attempts", 0)) + 1,
            "attempt_totals": sums,
            "pushed_customer_ids": sorted(pushed),
            "superseded_customer_ids": list(superseded),
            "last": report.to_record() if report is not None else None,
        }

    # ---- reconciliation ------------------------------------------------------------------------------

    def _reconcile(self, message: Mapping[str, Any]) -> ItemOutcome:
        run_id, item_id = str(message["run_id"]), str(message["work_item_id"])
        ids = json.loads(self.ports.objects.get_bytes(str(message["key"])))["customer_ids"]
        recorded = self.ports.states.get_states(self.destination, ids)
        # contacts without a confirmed member are read under the profile's current address
        unknown = [c for c in ids if unconfirmed(recorded.get(c))]
        states = states_to_check(self.destination, ids, recorded, self._profile_emails(unknown))
        emails = addresses(states)
        adapter = self.adapter(run_id)
        before = adapter.stats()
        found = reconcile(
            self.destination, states, self.read_back(adapter, emails) if emails else {}, self.now()
        )
        conflicts = self.ports.states.put_states(found.corrections)
        self._publish_opt_outs([(o["customer_id"], o["email"]) for o in found.opt_outs])
        stats = adapter.stats() - before
        record = {
            "kind": "reconcile",
            "work_item_id": item_id,
            "run_id": run_id,
            "destination": self.destination,
            "contacts": len(ids),
            "read": len(emails),
            **found.to_record(),
            "state_conflicts": len(conflicts),
            "attempt_totals": {
                "api_calls": stats.calls,
                "retries": stats.retries,
                "throttled": stats.throttled,
                "errors": stats.errors,
            },
        }
        self.ports.objects.put_bytes(
            runlog.history_key(run_id, self.destination, item_id),
            json.dumps(record, sort_keys=True).encode(),
            "application/json",
        )
        return ItemOutcome(item_id, run_id, "reconcile", True, False, record)

    def _profile_emails(self, customer_ids: Sequence[str]) -> dict[str, str]:
        """{customer id: email} of live profiles (an erased or merged-away customer has none)."""
        if not customer_ids:
            return {}
        found = self.ports.items.get(customer_ids, (PROFILE,))
        emails: dict[str, str] = {}
        for customer_id in customer_ids:
            view = view_of(customer_id, found.get(customer_id, {}))
            email = str((view or {}).get("email") or "").strip().lower()
            if email:
                emails[customer_id] = email
        return emails

    # ---- consent and run bookkeeping -----------------------------------------------------------------

    def _publish_opt_outs(self, contacts: Sequence[tuple[str, str]]) -> None:
        if not contacts:
            return
        at = self.now()
        records = [
            ConsentInput(
                email=email,
                customer_id=customer_id,
                status="opted_out",
                timestamp=at,
                source=f"destination:{self.destination}",
            )
            for customer_id, email in contacts
        ]
        self.ports.publisher.publish(
            [
                SyncConsentChanged(
                    records=records[start : start + MAX_CONSENT_RECORDS], reason="destination_refusal"
                )
                for start in range(0, len(records), MAX_CONSENT_RECORDS)
            ]
        )

    def _finish(self, outcome: ItemOutcome) -> None:
        record = outcome.record
        counters = {k: int(v) for k, v in (record.get("attempt_totals") or {}).items()}
        if outcome.kind == "reconcile":
            counters.update(
                reconcile_items=1,
                reconcile_read=record["read"],
                reconcile_corrections=record["corrections"],
                reconcile_opt_outs=record["opt_outs"],
            )
        else:
            last = record.get("last") or {}
            outcomes = last.get("outcomes") or {}
            counters.update(
                work_items=1,
                contacts=record["contacts"],
                contacts_pushed=len(record["pushed_customer_ids"]),
                superseded=len(record["superseded_customer_ids"]),
                failed_contacts=int(outcomes.get("failed", 0)),
                retryable_contacts=len(last.get("retryable") or ()),
                state_conflicts=len(last.get("state_conflicts") or ()),
                stopped_items=int(bool(last.get("stop_run"))),
                failed_items=int(not outcome.complete),
                **{f"{runlog.OUTCOME_PREFIX}{name}": int(outcomes.get(name, 0)) for name in OUTCOME_ORDER},
            )
        error = (record.get("last") or {}).get("error")
        totals = self.ports.runs.finish_item(
            outcome.run_id, self.destination, outcome.work_item_id, counters, error
        )
        if totals is not None:
            outcome.run_completed = self.complete_run(totals)

    def _give_up(self, message: Mapping[str, Any], reconciling: bool, exc: Exception) -> None:
        """An item failing on its last delivery is counted as failed, so its run still completes."""
        kind = "reconcile_items" if reconciling else "work_items"
        counters = {kind: 1, "failed_items": 1, "contacts": int(message.get("contacts") or 0)}
        totals = self.ports.runs.finish_item(
            str(message["run_id"]),
            self.destination,
            str(message["work_item_id"]),
            counters,
            type(exc).__name__,
        )
        if totals is not None:
            self.complete_run(totals)

    def complete_run(self, totals: RunTotals) -> dict[str, Any]:
        """The run's last item is done: write its sync-log line and announce it."""
        line = runlog.log_line(totals, self.clock())
        self.ports.objects.put_bytes(
            runlog.log_key(totals.run_id, totals.destination),
            json.dumps(line, sort_keys=True).encode(),
            "application/json",
        )
        self.ports.publisher.publish(
            [
                SyncCompleted(
                    run_id=totals.run_id,
                    destination=totals.destination,  # type: ignore[arg-type]
                    status=line["status"],
                    contacts_pushed=line["contacts_pushed"],
                    api_calls=line["api_calls"],
                    retries=line["retries"],
                    errors=line["errors"],
                    duration_s=line["duration_s"],
                )
            ]
        )
        logger.info(
            "sync run completed",
            extra={k: line[k] for k in ("run_id", "destination", "status", "contacts_pushed", "api_calls")},
        )
        return line
