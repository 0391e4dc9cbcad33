"""Apply one work item to its destination and record what the destination confirmed.

Order per item: read the contacts' current sync states and re-plan each contact against them (so a
redelivered or stale item only does what is still missing: applying an item twice leaves the same
destination and state), provision what the item needs, upsert, change tags / static segments / lists,
propagate unsubscribes, then write the new states -- built only from confirmed results.

Memberships: all of the item's tag / static segment / list changes go to the adapter at once. When the
adapter says so (Mailchimp, small changes: one batch operations request is cheaper than one call per name),
the updates of existing members wait and go in the same request, ahead of the membership operations; their
adds are sent before the update is confirmed, so an add the destination confirmed is recorded even when the
update was refused (the state stays what the destination holds, and a later plan removes it if needed).
Creates always go first: only a confirmed create is ever added anywhere.

Safety:
- the guard is asked right before every write (upsert or add) for every contact; a refusal turns the
  contact into an ineligible one (its segflow memberships are removed, nothing is pushed);
- compliance refusals become suppressions and a blocking state status, never retries;
- HubSpot's daily quota ends the item with stop_run=True; the contacts not finished are returned for later;
- other destination failures leave the unfinished contacts retryable (SQS redelivers the item).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from segflow.destinations.errors import (
    DailyLimitReached,
    DestinationError,
    ProvisioningConflict,
    RequestRejected,
)
from segflow.destinations.mailchimp_models import email_key
from segflow.destinations.results import CallStats, ContactResult, Outcome
from segflow.observability import logger
from segflow.sync.adapters import (
    DestinationAdapter,
    MembershipChange,
    MembershipResult,
    MembershipWrites,
    UpsertRequest,
    change_each,
)
from segflow.sync.desired import DesiredContact, Membership, withheld
from segflow.sync.planner import ContactPlan, plan_contact
from segflow.sync.ports import Guard, SuppressionSink, SyncStateStore
from segflow.sync.state import GONE_STATUSES, SyncState, empty_state
from segflow.sync.workitems import WorkItem

CONFIRMED = (Outcome.OK, Outcome.CREATED, Outcome.UPDATED)
Phase = tuple[str, ...]  # ("upsert",), ("add", kind, name), ("remove", kind, name), ("unsubscribe",)
UPSERT: Phase = ("upsert",)
UNSUBSCRIBE: Phase = ("unsubscribe",)
# outcome of a contact in a report, most telling first
OUTCOME_ORDER = ("deferred", "failed", "compliance", "blocked", "pushed", "unchanged")
_STATUS_BY_CODE = {
    "STATUS_UNSUBSCRIBED": "unsubscribed",
    "STATUS_CLEANED": "cleaned",
    "FORGOTTEN_EMAIL": "forgotten",
    "GDPR_BLOCKLISTED": "blocklisted",
    "UNSUBSCRIBED": "unsubscribed",
}


def compliance_status(result: ContactResult) -> str:
    """The blocking status a compliance refusal means (see state.BLOCKING_STATUSES)."""
    if result.status and result.status.lower() in ("unsubscribed", "cleaned"):
        return result.status.lower()
    return _STATUS_BY_CODE.get(result.error_code or "", "compliance")


@dataclass
class ContactOutcome:
    customer_id: str
    outcome: str = "unchanged"
    operations: list[ContactResult] = field(default_factory=list)  # the destination's answers, in order
    error_code: str | None = None
    retryable: bool = False

    def to_record(self) -> dict[str, Any]:
        """JSON-ready, without the email address."""
        return {
            "customer_id": self.customer_id,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "retryable": self.retryable,
            "operations": [r.to_record() for r in self.operations],
        }


@dataclass
class ApplyReport:
    work_item_id: str
    run_id: str
    destination: str
    contacts: dict[str, ContactOutcome]
    stats: CallStats
    duration_s: float
    stop_run: bool = False
    error: str | None = None  # the failure that ended the item early
    state_conflicts: list[str] = field(default_factory=list)

    @property
    def retryable(self) -> list[str]:
        """Contacts to try again: the whole item may be redelivered, finished contacts are then skipped."""
        return sorted(c.customer_id for c in self.contacts.values() if c.retryable)

    @property
    def remaining(self) -> list[str]:
        return sorted(c.customer_id for c in self.contacts.values() if c.outcome == "deferred")

    @property
    def complete(self) -> bool:
        return not self.retryable

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.outcome for c in self.contacts.values()))

    def to_record(self) -> dict[str, Any]:
        return {
            "work_item_id": self.work_item_id,
            "run_id": self.run_id,
            "destination": self.destination,
            "contacts": len(self.contacts),
            "outcomes": self.counts(),
            **self.stats.counters(),
            "duration_s": round(self.duration_s, 3),
            "stop_run": self.stop_run,
            "error": self.error,
            "retryable": self.retryable,
            "state_conflicts": self.state_conflicts,
        }


class _Contact:
    """One contact's progress through an item: what is planned, what the destination confirmed."""

    def __init__(self, plan: ContactPlan, recorded: SyncState | None) -> None:
        self.plan = plan
        self.recorded = recorded
        self.state = recorded or empty_state(plan.customer_id, plan.destination)
        self.memberships = set(self.state.memberships())  # confirmed so far (kept apart: changes often)
        self.pending: set[Phase] = set()  # what is still to do
        if plan.upserts:
            self.pending.add(UPSERT)
        self.pending.update(("add", *pair) for pair in plan.adds)
        self.pending.update(("remove", *pair) for pair in plan.removes)
        if plan.unsubscribe:
            self.pending.add(UNSUBSCRIBE)
        self.wrote = False  # the destination confirmed a change
        self.corrected = False  # the state changed without a call (e.g. a removal from a list never joined)
        self.blocked = False
        self.compliance = False
        self.error_code: str | None = None
        self.retryable = False
        self.deferred = False
        self.upsert_ok = not plan.upserts
        self.bundled = False  # its update goes to the adapter together with the memberships
        self.results: list[ContactResult] = []

    @property
    def customer_id(self) -> str:
        return self.plan.customer_id

    def current_state(self) -> SyncState:
        return self.state.with_memberships(self.memberships)

    def done(self, phase: Phase) -> None:
        self.pending.discard(phase)

    def fail(self, result: ContactResult | None, code: str | None = None, retryable: bool = False) -> None:
        self.error_code = code or (result.error_code if result else None) or "FAILED"
        self.retryable = self.retryable or retryable or bool(result and result.retryable)

    def outcome(self) -> str:
        flags = {
            "deferred": self.deferred,
            "failed": self.error_code is not None and not self.compliance,
            "compliance": self.compliance,
            "blocked": self.blocked,
            "pushed": self.wrote,
        }
        return next((name for name in OUTCOME_ORDER if flags.get(name)), "unchanged")

    @property
    def touched(self) -> bool:
        return self.wrote or self.corrected or self.blocked or self.compliance or self.error_code is not None


def _allowed(guard: Guard, desired: DesiredContact) -> bool:
    try:
        return guard(desired) is True
    except Exception:  # a guard that cannot decide refuses
        return False


def _bundles_updates(adapter: DestinationAdapter, updates: int, changes: list[MembershipChange]) -> bool:
    bundles = getattr(adapter, "bundles_updates", None)  # adapters with change() only never bundle
    return bool(bundles and bundles(updates, changes))


def _change_all(
    adapter: DestinationAdapter, changes: list[MembershipChange], updates: list[UpsertRequest]
) -> MembershipWrites:
    change_all = getattr(adapter, "change_all", None)
    if change_all is not None:
        return change_all(changes, updates)  # type: ignore[no-any-return]
    if updates:
        raise ValueError(f"{adapter.destination} adapter cannot take updates with its memberships")
    return change_each(adapter, changes)


def _request(contact: _Contact) -> UpsertRequest:
    plan = contact.plan
    return UpsertRequest(
        contact.customer_id, plan.email, plan.fields, plan.action == "create", plan.desired.subscribe_if_new
    )


Pairs = dict[Membership, dict[str, _Contact]]  # membership -> member reference -> contact


class _Run:
    def __init__(
        self,
        item: WorkItem,
        adapter: DestinationAdapter,
        guard: Guard,
        suppressions: SuppressionSink,
        states: dict[str, SyncState],
    ) -> None:
        self.item = item
        self.adapter = adapter
        self.guard = guard
        self.suppressions = suppressions
        self.contacts = [
            _Contact(plan_contact(c.desired, states.get(c.customer_id)), states.get(c.customer_id))
            for c in item.contacts
        ]

    # ---- guard -----------------------------------------------------------------------------------

    def block(self, contact: _Contact) -> None:
        """The guard said no: from now on only reductions (removals, unsubscribe) for this contact."""
        contact.blocked = True
        contact.upsert_ok = False
        reduced = plan_contact(withheld(contact.plan.desired), contact.current_state())
        contact.plan = replace(
            contact.plan,
            action="none",
            fields={},
            adds=frozenset(),
            removes=reduced.removes,
            unsubscribe=reduced.unsubscribe,
            previous_email=reduced.previous_email,  # what the destination holds now, for the removals
            destination_id=reduced.destination_id,
        )
        contact.pending = {("remove", *pair) for pair in reduced.removes}
        if reduced.unsubscribe:
            contact.pending.add(UNSUBSCRIBE)

    # ---- phases -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        adds = {pair for c in self.contacts for pair in c.plan.adds}
        removes = {pair for c in self.contacts for pair in c.plan.removes}
        upserting = any(c.plan.upserts for c in self.contacts)
        if upserting or adds or removes:
            self.adapter.prepare(upserting, adds, removes)

    def upserts(self) -> None:
        wanted = [c for c in self.contacts if UPSERT in c.pending]
        for contact in wanted:
            if not _allowed(self.guard, contact.plan.desired):  # the last check before the write
                self.block(contact)
        sending = [c for c in wanted if not c.blocked]
        updates = [c for c in sending if c.plan.action == "update"]
        if updates and _bundles_updates(self.adapter, len(updates), self._planned_changes()):
            for contact in updates:
                contact.bundled = True  # sent by memberships(), after one more guard check
            sending = [c for c in sending if not c.bundled]
        if not sending:
            return
        by_email = {email_key(c.plan.email): c for c in sending}
        try:
            results = self.adapter.upsert([_request(c) for c in sending])
        except DestinationError as exc:
            self._upsert_results(exc.results, by_email)
            raise
        self._upsert_results(results, by_email)

    def _planned_changes(self) -> list[MembershipChange]:
        """The membership changes still pending, as if every upsert succeeds (to price the item)."""
        adding: dict[Membership, list[str]] = {}
        removing: dict[Membership, list[str]] = {}
        for contact in self.contacts:
            for phase in contact.pending:
                if phase[0] in ("add", "remove"):
                    ref = self._member_ref(contact, adding=phase[0] == "add")
                    found = adding if phase[0] == "add" else removing
                    if ref is not None:
                        found.setdefault((phase[1], phase[2]), []).append(ref)
        pairs = sorted(adding.keys() | removing.keys())
        return [MembershipChange(p, tuple(adding.get(p, ())), tuple(removing.get(p, ()))) for p in pairs]

    def _upsert_results(self, results: Iterable[ContactResult], by_email: dict[str, _Contact]) -> None:
        for result in results:
            contact = by_email.get(email_key(result.email))
            if contact is None or UPSERT not in contact.pending:
                continue
            contact.done(UPSERT)
            contact.results.append(result)
            if result.outcome in CONFIRMED:
                self._confirm_upsert(contact, result)
            elif result.outcome == Outcome.COMPLIANCE:
                self._compliance(contact, result)
            else:
                contact.fail(result)

    def _confirm_upsert(self, contact: _Contact, result: ContactResult) -> None:
        plan, state = contact.plan, contact.state
        pushed = dict(plan.fields) if plan.action == "create" else {**state.fields, **plan.fields}
        status = (
            result.status.lower() if result.status else (state.status if plan.action == "update" else None)
        )
        contact.state = replace(
            state.with_fields(pushed),
            email=plan.email,
            status=status,
            destination_id=result.destination_id or state.destination_id,
        )
        if plan.action == "create" and plan.previous_email != plan.email:
            # a new member / record: what was recorded belongs to the old address (removals still pending)
            contact.state = replace(contact.state, destination_id=result.destination_id)
        contact.upsert_ok = True
        contact.wrote = True

    def _compliance(self, contact: _Contact, result: ContactResult) -> None:
        status = compliance_status(result)
        contact.compliance = True
        contact.upsert_ok = False
        contact.error_code = result.error_code or "COMPLIANCE"
        contact.state = replace(contact.state, status=status, email=contact.plan.email)
        if status in GONE_STATUSES:  # no member left: nothing to remove from either
            contact.state = replace(contact.state, destination_id=None)
            contact.memberships.clear()
            contact.pending.clear()
        else:  # still there: removals go ahead, adds and the unsubscribe are moot
            contact.pending = {p for p in contact.pending if p[0] == "remove"}
        self.suppressions.record(contact.customer_id, contact.plan.email, self.item.destination, status)

    def memberships(self) -> None:
        """All tag / static segment / list changes of the item to the adapter at once (with the bundled
        updates). Loops because a guard refusal turns that contact's adds into removals."""
        while True:
            self._check_writers()
            adding, removing = self._collect()
            bundled = [c for c in self.contacts if c.bundled and UPSERT in c.pending]
            if not adding and not removing and not bundled:
                return
            pairs = sorted(adding.keys() | removing.keys())
            changes = [
                MembershipChange(p, tuple(sorted(adding.get(p, {}))), tuple(sorted(removing.get(p, {}))))
                for p in pairs
            ]
            by_email = {email_key(c.plan.email): c for c in bundled}
            try:
                writes = _change_all(self.adapter, changes, [_request(c) for c in bundled])
            except DestinationError as exc:
                self._upsert_results([r for r in exc.results if r.operation == "upsert"], by_email)
                raise
            self._upsert_results(writes.upserts, by_email)  # first: a compliance refusal drops the adds
            for contact in bundled:
                contact.bundled = False
                if UPSERT in contact.pending:  # not reported: try again on redelivery
                    contact.done(UPSERT)
                    contact.fail(None, "NOT_CONFIRMED", retryable=True)
            for pair in pairs:
                outcome = writes.memberships.get(pair) or MembershipResult()
                self._membership(pair, adding.get(pair, {}), removing.get(pair, {}), outcome)

    def _check_writers(self) -> None:
        """The guard, right before the call that writes: every contact about to be added or updated."""
        for contact in self.contacts:
            writing = (contact.bundled and UPSERT in contact.pending) or (
                (contact.upsert_ok or contact.bundled) and any(p[0] == "add" for p in contact.pending)
            )
            if writing and not _allowed(self.guard, contact.plan.desired):
                contact.bundled = False
                self.block(contact)

    def _collect(self) -> tuple[Pairs, Pairs]:
        adding: Pairs = {}
        removing: Pairs = {}
        for contact in self.contacts:
            for phase in sorted(p for p in contact.pending if p[0] in ("add", "remove")):
                pair = (phase[1], phase[2])
                if phase[0] == "remove":
                    ref = self._member_ref(contact, adding=False)
                    if ref is None:  # never confirmed in the destination: nothing to remove
                        self._confirm(contact, phase, called=False)
                    else:
                        removing.setdefault(pair, {})[ref] = contact
                elif not (contact.upsert_ok or contact.bundled):
                    contact.done(phase)  # not (properly) in the destination: nothing to add
                elif (ref := self._member_ref(contact, adding=True)) is None:
                    contact.done(phase)
                    contact.fail(None, "NO_DESTINATION_ID")
                else:
                    adding.setdefault(pair, {})[ref] = contact
        return adding, removing

    def _member_ref(self, contact: _Contact, adding: bool) -> str | None:
        if self.adapter.uses_record_ids:  # adds: the record just upserted; removals: the recorded one
            return contact.state.destination_id if adding else contact.plan.destination_id
        return email_key(contact.plan.email if adding else contact.plan.removal_email)

    def _membership(
        self,
        pair: Membership,
        adding: dict[str, _Contact],
        removing: dict[str, _Contact],
        outcome: MembershipResult,
    ) -> None:
        add_phase, remove_phase = ("add", *pair), ("remove", *pair)
        # removals first: after an email change the old address leaves and the new one joins the same pair
        for refs, confirmed, phase in (
            (removing, outcome.removed, remove_phase),
            (adding, outcome.added, add_phase),
        ):
            for ref, contact in refs.items():
                if ref in confirmed:  # recorded even when moot (a bundled update refused): it is in there
                    self._confirm(contact, phase)
                elif phase in contact.pending:
                    contact.done(phase)
                    contact.fail(
                        None, outcome.failed.get(ref, "NOT_CONFIRMED"), retryable=ref in outcome.retryable
                    )
        for result in outcome.results:
            owner = adding.get(email_key(result.email)) or removing.get(email_key(result.email))
            if owner is not None:
                owner.results.append(result)

    @staticmethod
    def _confirm(contact: _Contact, phase: Phase, called: bool = True) -> None:
        pair = (phase[1], phase[2])
        if phase[0] == "add":
            contact.memberships.add(pair)
        else:
            contact.memberships.discard(pair)
        contact.done(phase)
        contact.wrote = contact.wrote or called
        contact.corrected = contact.corrected or not called

    def unsubscribes(self) -> None:
        for contact in self.contacts:
            if UNSUBSCRIBE not in contact.pending:
                continue
            result = self.adapter.unsubscribe(contact.plan.removal_email)
            contact.done(UNSUBSCRIBE)
            contact.results.append(result)
            if result.outcome in CONFIRMED:
                contact.state = replace(contact.state, status="unsubscribed")
                contact.wrote = True
            elif result.outcome == Outcome.COMPLIANCE:  # already out for good (forgotten / GDPR-deleted)
                status = compliance_status(result)
                contact.state = replace(contact.state, status=status, destination_id=None)
                contact.memberships.clear()
            else:
                contact.fail(result)

    # ---- ending ---------------------------------------------------------------------------------------

    def stop(self, exc: Exception) -> None:
        """Whatever is still pending is retried later (deferred when the daily quota ran out)."""
        for contact in self.contacts:
            if contact.pending:
                contact.retryable = True
                contact.deferred = isinstance(exc, DailyLimitReached)

    def fail_all(self, code: str) -> None:
        for contact in self.contacts:
            if contact.pending:
                contact.pending.clear()
                contact.fail(None, code)

    def new_states(self, run_id: str, now: datetime) -> list[SyncState]:
        states = []
        for contact in self.contacts:
            if not contact.touched:
                continue
            last = {
                "outcome": contact.outcome(),
                "at": now.isoformat(),
                "run_id": run_id,
                "work_item_id": self.item.work_item_id,
            }
            if contact.error_code:
                last["error_code"] = contact.error_code
            synced_at = now.isoformat() if contact.wrote else contact.state.synced_at
            version = (contact.recorded.version if contact.recorded else 0) + 1
            states.append(
                replace(contact.current_state(), last_result=last, synced_at=synced_at, version=version)
            )
        return states


def apply(
    work_item: WorkItem,
    client: DestinationAdapter,
    state_store: SyncStateStore,
    guard: Guard,
    suppressions: SuppressionSink,
    now: datetime,
    *,
    clock: Any = time.monotonic,
) -> ApplyReport:
    """Apply one work item through a destination adapter (MailchimpAdapter / HubSpotAdapter)."""
    if client.destination != work_item.destination:
        raise ValueError(f"work item for {work_item.destination} given a {client.destination} adapter")
    started, stats_before = clock(), client.stats()
    states = state_store.get_states(work_item.destination, work_item.customer_ids)
    run = _Run(work_item, client, guard, suppressions, states)
    stop_run, error = False, None
    try:
        run.prepare()
        run.upserts()
        run.memberships()
        run.unsubscribes()
    except DestinationError as exc:  # RetriesExhausted, DailyLimitReached, a rejected provisioning call
        stop_run, error = isinstance(exc, DailyLimitReached), str(exc)
        if isinstance(exc, RequestRejected):
            run.fail_all(f"HTTP_{exc.status}")
        else:
            run.stop(exc)
    except (
        ProvisioningConflict
    ) as exc:  # the destination holds a definition segflow cannot use: needs a human
        error = str(exc)
        run.fail_all("PROVISIONING_CONFLICT")
    finally:
        conflicts = state_store.put_states(run.new_states(work_item.run_id, now))
    for contact in run.contacts:
        if contact.customer_id in conflicts:
            contact.retryable = True  # someone else wrote the state meanwhile: re-check on redelivery
    report = ApplyReport(
        work_item_id=work_item.work_item_id,
        run_id=work_item.run_id,
        destination=work_item.destination,
        contacts={
            c.customer_id: ContactOutcome(c.customer_id, c.outcome(), c.results, c.error_code, c.retryable)
            for c in run.contacts
        },
        stats=client.stats() - stats_before,
        duration_s=clock() - started,
        stop_run=stop_run,
        error=error,
        state_conflicts=sorted(conflicts),
    )
    logger.info("sync work item applied", extra=report.to_record())
    return report


def apply_all(
    items: Sequence[WorkItem],
    client: DestinationAdapter,
    state_store: SyncStateStore,
    guard: Guard,
    suppressions: SuppressionSink,
    now: datetime,
) -> list[ApplyReport]:
    """Apply items in order (local runs and tests); stops after a report with stop_run."""
    reports = []
    for item in items:
        reports.append(apply(item, client, state_store, guard, suppressions, now))
        if reports[-1].stop_run:
            break
    return reports
