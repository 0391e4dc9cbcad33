"""sync-plan's application layer: PlanService.

On SegmentsChanged, ConsentChanged (segflow.consent), ContactsChecked (segflow.sync) or the nightly
{"mode": "all", "reconcile": true}: loads the views of the changed customers (or everyone's), builds each
configured destination's desired state, looks at what every destination told about each contact
(segflow.sync.clearance: an observed opt-out anywhere withholds it everywhere; a contact not yet checked in
every destination is deferred behind check items), diffs it against the recorded SyncState, cuts the plan into
work items stored under sync/<run_id>/, records the run (how many items per destination) and queues one pointer
message per item. Check and read-back items (reconciliation) go ahead of the work. A dry run writes the exact
plan (deferred contacts and checks included) to sync/<run_id>/plan.json and queues nothing. Runs with nothing
to do leave only their sync-log line.

Kept apart from the workers (segflow.sync.service) so the sync-plan function never imports the API clients.
"""


from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol

from segflow.events.schemas import (
    ConsentChanged,
    ContactsChecked,
    CustomerSelection,
    SegmentsChanged,
    parse_detail,
)
from segflow.events.selection import resolve
from segflow.observability import logger
from segflow.store.customers import CONSENT, PROFILE, SCORES, SEGMENTS, CustomerItemStore, merge_view
from segflow.store.objects import ObjectStore
from segflow.sync import runlog
from segflow.sync.clearance import check_calls, clear
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
from segflow.sync.limits import MAILCHIMP
from segflow.sync.planner import NOTE_DUPLICATE_EMAIL, Plan, chunks, estimate_calls, plan
from segflow.sync.ports import SyncStateStore
from segflow.sync.reconcile import unconfirmed_to_scan
from segflow.sync.runs import RunLedger, RunTotals
from segflow.sync.state import SyncState
from segflow.sync.workitems import WorkItemStore, chunk_plan

VIEW_ITEMS = (PROFILE, SCORES, CONSENT, SEGMENTS)
GUARD_ITEMS = (PROFILE, SCORES, CONSENT)  # what the consent checks read, fresh, right before a push
CHUNK_CUSTOMERS = 500  # customers read and planned together
RECONCILE_CONTACTS = {MAILCHIMP: 500, "hubspot": 100}  # contacts read back per reconcile item
SCAN_AUDIENCE = "audience"  # a reconcile message's `scope` when it scans the audience instead of contacts
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
            elif isinstance(detail, ContactsChecked):  # the contacts a run deferred, now checked
                selection, trigger = detail.changed, f"ContactsChecked:{detail.run_id}"
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
        self.unconfirmed = 0  # eligible contacts without a member that only an audience scan tells about
        self.checks: dict[str, str] = {}  # customer id -> address to check before a first push

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
        for chunk in chunks(ids, self.chunk_customers):
            found = self.ports.items.get(chunk, VIEW_ITEMS)
            views = [v for c in chunk if (v := view_of(c, found.get(c, {}))) is not None]
            values = [self._field_values(v) for v in views]  # once per view, for every destination
            chunk_ids = [v["customer_id"] for v in views]
            states_by = {d: self.ports.states.get_states(d, chunk_ids) for d in builders}
            looked = clear(
                views,
                {d: [self._desired(v, d, f) for v, f in zip(views, values, strict=True)] for d in builders},
                states_by,
            )
            for destination, builder in builders.items():
                states, desired = states_by[destination], looked.desired[destination]
                builder.add(desired, states)
                builder.held.update(looked.held[destination])
                builder.checks.update(looked.checks[destination])
                if request.reconcile:
                    builder.known.extend(states.values())
                    builder.unconfirmed += len(unconfirmed_to_scan(destination, desired, states))
        plans = {d: b.result() for d, b in builders.items()}
        queued: dict[str, dict[str, int]] = {}
        if self.dry_run:
            self._dry_run(run_id, request, started, plans, builders)
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

    def _planned(self, the_plan: Plan, checks: int = 0) -> dict[str, Any]:
        """Totals and call estimate, the checks queued ahead of deferred contacts' first push included."""
        calls = estimate_calls(the_plan)
        check = check_calls(the_plan.destination, checks)
        return {
            **the_plan.totals(),
            "checks": checks,
            "estimated_calls": {**calls, "checks": check, "total": calls["total"] + check},
        }

    def _dry_run(
        self,
        run_id: str,
        request: PlanRequest,
        started: datetime,
        plans: Mapping[str, Plan],
        builders: Mapping[str, _PlanBuilder],
    ) -> None:
        planned = {d: self._planned(p, len(builders[d].checks)) for d, p in plans.items()}
        destinations = {
            destination: {
                **render_plan(the_plan),
                "estimated_calls": planned[destination]["estimated_calls"],
                "checks": sorted(builders[destination].checks),  # checked here before their first push
            }
            for destination, the_plan in plans.items()
        }
        document = {
            "run_id": run_id,
            "trigger": request.trigger,
            "dry_run": True,
            "planned_at": started.isoformat(),
            "destinations": destinations,
        }
        self.ports.objects.put_bytes(
            runlog.plan_key(run_id), json.dumps(document, sort_keys=True).encode(), "application/json"
        )
        for destination in plans:
            totals = RunTotals(
                run_id, destination, request.trigger, started.isoformat(), 0, planned=planned[destination]
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
            checks = self._reconcile_items(run_id, destination, builder)
            planned = self._planned(the_plan, len(builder.checks))
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

    def _reconcile_items(self, run_id: str, destination: str, builder: _PlanBuilder) -> list[str]:
        """Read-back messages (ahead of the work items, so corrections land before the pushes): the confirmed
        contacts, read one by one in chunks, and -- when the run has contacts without a member that only the
        audience can tell about (segflow.sync.reconcile) -- one scan of the audience's opt-outs, whatever
        their number (a page of 1000 members per call, not a call per contact).
        Checks of deferred contacts (segflow.sync.clearance): in Mailchimp the scan then reads the whole
        audience's opt-outs (an old opt-out of a new customer is older than any cursor) and marks the contacts
        checked; in HubSpot they are read like confirmed contacts, by address, and marked checked."""
        messages = []
        if destination == MAILCHIMP and builder.checks:
            messages.append(self._audience_scan_item(run_id, destination, builder.checks))
        elif builder.unconfirmed:
            messages.append(self._audience_scan_item(run_id, destination))
        checked = builder.checks if destination != MAILCHIMP else {}
        ids = sorted({s.customer_id for s in builder.known if s.email and s.destination_id} - set(checked))
        size = RECONCILE_CONTACTS.get(destination, 100)
        payloads: list[dict[str, Any]] = [{"customer_ids": list(chunk)} for chunk in chunks(ids, size)]
        payloads += [
            {"customer_ids": list(chunk), "check": {c: checked[c] for c in chunk}}
            for chunk in chunks(sorted(checked), size)
        ]
        for payload in payloads:
            chunk = payload["customer_ids"]
            item_id = hashlib.sha256(json.dumps([run_id, destination, list(chunk)]).encode()).hexdigest()[:32]
            key = runlog.reconcile_key(run_id, destination, item_id)
            self.ports.objects.put_bytes(key, json.dumps(payload).encode(), "application/json")
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

    def _audience_scan_item(
        self, run_id: str, destination: str, checks: Mapping[str, str] | None = None
    ) -> str:
        """A nightly scan needs no payload: the worker pages the audience from its stored cursor. A scan that
        checks deferred contacts reads every opt-out (`full`) and names them in a payload to mark."""
        item_id = hashlib.sha256(json.dumps([run_id, destination, SCAN_AUDIENCE]).encode()).hexdigest()[:32]
        message: dict[str, Any] = {
            "kind": "reconcile",
            "scope": SCAN_AUDIENCE,
            "work_item_id": item_id,
            "run_id": run_id,
            "destination": destination,
            "contacts": len(checks or {}),
        }
        if checks:
            key = runlog.reconcile_key(run_id, destination, f"{item_id}-checks")
            payload = json.dumps({"check": dict(checks)}).encode()
            self.ports.objects.put_bytes(key, payload, "application/json")
            message.update(full=True, bucket=self.ports.objects.bucket, key=key)
        return json.dumps(message, sort_keys=True)

    def _write_log(self, totals: RunTotals, dry_run: bool = False) -> None:
        line = runlog.log_line(totals, self.clock(), dry_run=dry_run)
        self.ports.objects.put_bytes(
            runlog.log_key(totals.run_id, totals.destination),
            json.dumps(line, sort_keys=True).encode(),
            "application/json",
        )
