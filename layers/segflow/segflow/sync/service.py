"""The sync workers' application layer: WorkerService (sync-mailchimp / sync-hubspot).

One SQS message = one item: skips contacts a newer plan already synced, re-reads consent FRESH for the guard,
applies the item, writes its history, turns destination refusals into consent opt-outs (ConsentChanged from
segflow.sync, which the consent function records), and counts the item in the run once it is finished. The
worker finishing a run's last item writes the sync-log line and publishes SyncCompleted. An item with
contacts left to retry raises RetryLater (SQS redelivers it); on its last delivery it is counted as
unfinished first, so the run still completes (the next plan picks those contacts up again).
Read-back items (reconciliation) are handled here too: contacts read one by one, or one scan of the Mailchimp
audience's opt-outs (see `_scan_audience`). Check items of contacts a plan deferred are read-backs that also
mark the contacts checked; the worker announces them (ContactsChecked) so sync-plan plans them again, as it
does for Mailchimp's answers to first creates (segflow.sync.clearance). The plan side lives in segflow.sync.plan_service (re-exported here
for callers that want both). S3 layout and run ids: segflow.sync.runlog.
"""


from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from segflow.destinations.mailchimp_models import MemberPage
from segflow.events.bus import EventPublisher
from segflow.events.schemas import (
    MAX_INLINE_IDS,
    ConsentInput,
    ContactsChecked,
    CustomerSelection,
    SyncCompleted,
)
from segflow.observability import logger
from segflow.store.customers import PROFILE, CustomerItemStore
from segflow.store.objects import ObjectStore
from segflow.sync import runlog
from segflow.sync.adapters import DestinationAdapter
from segflow.sync.applier import OUTCOME_ORDER, ApplyReport, apply
from segflow.sync.clearance import checked
from segflow.sync.desired import SyncConfig
from segflow.sync.guards import PushCheck, SubscribeCheck, guard_from_views
from segflow.sync.limits import MAILCHIMP
from segflow.sync.plan_service import (  # noqa: F401  (re-exported)
    CHUNK_CUSTOMERS,
    GUARD_ITEMS,
    MAX_CONSENT_RECORDS,
    RECONCILE_CONTACTS,
    RUN_CONFIGS_KEPT,
    SCAN_AUDIENCE,
    VIEW_ITEMS,
    Clock,
    PlanOutcome,
    PlanPorts,
    PlanRequest,
    PlanService,
    QueueError,
    RetryLater,
    SqsWorkQueue,
    SyncConsentChanged,
    Target,
    WorkQueue,
    utc_now,
    view_of,
)
from segflow.sync.planner import chunks
from segflow.sync.ports import RecordingSuppressions, SyncStateStore
from segflow.sync.reconcile import (
    SCAN_STATUSES,
    Observation,
    ScanProgress,
    ScanTally,
    confirmed_elsewhere,
    emails_to_read,
    mark_checked,
    match_scanned,
    observe_hubspot,
    observe_mailchimp,
    reconcile,
    unconfirmed,
)
from segflow.sync.runs import RunLedger, RunTotals
from segflow.sync.state import SyncState, empty_state
from segflow.sync.workitems import WorkItem, WorkItemPointer, WorkItemStore

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


@dataclass(frozen=True)
class AudienceReader:
    """An audience to scan: its id (the scan cursor is kept per audience) and its pages of members in one
    status changed after a time (None: all of them), from an offset."""

    audience_id: str
    pages: Callable[[str, datetime | None, int], Iterable[MemberPage]]


def mailchimp_audience(adapter: DestinationAdapter) -> AudienceReader:
    wrapped: Any = adapter  # MailchimpAdapter: its client and audience
    return AudienceReader(wrapped.list_id, partial(wrapped.client.member_pages, wrapped.list_id))


def scan_cursor_key(destination: str, audience_id: str) -> str:
    """Where the next audience scan starts (under sync/: rewritten every night, so its expiry never bites
    unless the scans stop -- then the next one reads everything again)."""
    return f"{runlog.PREFIX}/reconcile/{destination}/{audience_id}/scan-cursor.json"


class IdentityResolver(Protocol):
    def resolve(self, kind: str, values: Iterable[str]) -> dict[str, str]:
        """{value: customer id} for the identity items found (kind "email": lower-cased addresses)."""
        ...


@dataclass
class WorkerPorts:
    objects: ObjectStore
    items: CustomerItemStore
    states: SyncStateStore
    runs: RunLedger
    publisher: EventPublisher
    identities: IdentityResolver | None = None  # email -> customer id; needed by the Mailchimp audience scan


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
        audience: Callable[[DestinationAdapter], AudienceReader] = mailchimp_audience,
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
        self.audience = audience
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
                self._reconcile(message, receive_count)
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
            self._announce_created(current)
        record = self._item_record(item, report, previous, superseded, len(suppressions.recorded))
        self.ports.objects.put_bytes(
            runlog.history_key(item.run_id, item.destination, item.work_item_id),
            json.dumps(record, sort_keys=True).encode(),
            "application/json",
        )
        complete = report is None or report.complete
        return ItemOutcome(item.work_item_id, item.run_id, "apply", complete, False, record)

    def _announce_created(self, item: WorkItem) -> None:
        """Mailchimp answered these first creates (a member, or a refusal such as a forgotten address, which
        nothing but a create tells): the other destinations' pushes waited for it (segflow.sync.clearance)."""
        created = {c.customer_id: c.email for c in item.contacts if c.action == "create"}
        if self.destination != MAILCHIMP or not created:
            return
        states = self.ports.states.get_states(self.destination, list(created))
        self._publish_checked(
            item.run_id, sorted(c for c, e in created.items() if checked(self.destination, states.get(c), e))
        )

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
                *report.stats.counters().items(),
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

    def _reconcile(self, message: Mapping[str, Any], receive_count: int) -> ItemOutcome:
        if message.get("scope") == SCAN_AUDIENCE:
            return self._scan_audience(message, receive_count)
        run_id, item_id = str(message["run_id"]), str(message["work_item_id"])
        payload = json.loads(self.ports.objects.get_bytes(str(message["key"])))
        ids = payload["customer_ids"]
        # deferred contacts: read by the address to check, whatever is recorded
        checks = {str(c): str(e) for c, e in (payload.get("check") or {}).items()}
        recorded = self.ports.states.get_states(self.destination, ids)
        states = [self._to_check(c, recorded.get(c), checks[c]) for c in checks] + [
            s for c, s in recorded.items() if c not in checks
        ]
        emails = sorted(set(emails_to_read(states)) | set(checks.values()))
        adapter = self.adapter(run_id)
        before = adapter.stats()
        observed = self.read_back(adapter, emails) if emails else {}
        found = reconcile(self.destination, states, observed, self.now())
        writes, moved_opt_outs = mark_checked(
            self.destination, checks, recorded, found.corrections, observed, self.now()
        )
        # Opt-outs first: a state written without its opt-out published would hide the finding from the
        # next read-back, and the opt-out would be lost. The other way round, a retry publishes it again.
        self._publish_opt_outs([(o["customer_id"], o["email"]) for o in found.opt_outs] + moved_opt_outs)
        conflicts = self.ports.states.put_states(writes)
        marked = self._marked(writes, checks, conflicts)
        self._publish_checked(run_id, marked)
        stats = adapter.stats() - before
        record = {
            "kind": "reconcile",
            "work_item_id": item_id,
            "run_id": run_id,
            "destination": self.destination,
            "contacts": len(ids),
            "read": len(emails),
            **found.to_record(),
            "opt_outs": len(found.opt_outs) + len(moved_opt_outs),
            "checked": len(marked),
            "state_conflicts": len(conflicts),
            "attempt_totals": stats.counters(),
        }
        return self._reconciled(record)

    def _to_check(self, customer_id: str, state: SyncState | None, email: str) -> SyncState:
        """The state to reconcile a checked address against: a contact without a member there is read under
        the address to check (as an audience scan match is), one with a member under its recorded address."""
        if state is not None and not unconfirmed(state):
            return state
        return replace(state or empty_state(customer_id, self.destination), email=email)

    @staticmethod
    def _marked(
        writes: Sequence[SyncState], checks: Mapping[str, str], conflicts: Sequence[str]
    ) -> list[str]:
        """The checked contacts whose marker was written (a lost version race: planned again later)."""
        lost = set(conflicts)
        return sorted(
            s.customer_id
            for s in writes
            if s.checked_email == checks.get(s.customer_id) and s.customer_id not in lost
        )

    def _reconciled(self, record: dict[str, Any]) -> ItemOutcome:
        item_id, run_id = str(record["work_item_id"]), str(record["run_id"])
        self.ports.objects.put_bytes(
            runlog.history_key(run_id, self.destination, item_id),
            json.dumps(record, sort_keys=True).encode(),
            "application/json",
        )
        return ItemOutcome(item_id, run_id, "reconcile", True, False, record)

    def _scan_audience(self, message: Mapping[str, Any], receive_count: int) -> ItemOutcome:
        """The audience's unsubscribed and cleaned members changed since the stored cursor (first scan: all),
        a page at a time: each page's addresses are resolved to customers, and those without a member recorded
        get the opt-out and the observed status (so segflow never tries to create them). Progress is kept
        after each page, so a redelivery (e.g. after the function's time ran out) carries on where it was.
        The cursor moves to the scan's start minus SCAN_OVERLAP only once the scan finished with the totals
        unchanged: members moving in or out of a status while the pages were read may have shifted the
        offsets, so the next night covers the same window again; what was learned is then known, not repeated."""
        run_id, item_id = str(message["run_id"]), str(message["work_item_id"])
        if self.ports.identities is None:
            raise RuntimeError("the audience scan needs WorkerPorts.identities (email -> customer id)")
        adapter = self.adapter(run_id)
        audience = self.audience(adapter)
        cursor_key = scan_cursor_key(self.destination, audience.audience_id)
        progress_key = runlog.reconcile_key(run_id, self.destination, item_id)
        full = bool(message.get("full"))  # a check of deferred contacts: every opt-out, whatever its age
        progress = (self._scan_progress(progress_key) if receive_count > 1 else None) or ScanProgress(
            since=None if full else self._scan_cursor(cursor_key), started=self.clock()
        )
        before = adapter.stats()
        for status in SCAN_STATUSES[SCAN_STATUSES.index(progress.status) :]:
            offset = progress.offset if status == progress.status else 0
            for page in audience.pages(status, progress.since, offset):
                self._learn_from_page(page, progress.tally)
                progress.page_done(status, page.offset + len(page.members), page.total_items)
                self.ports.objects.put_bytes(progress_key, progress.to_json().encode(), "application/json")
        if progress.settled:
            cursor = {"since_last_changed": progress.next_since().isoformat(), "run_id": run_id}
            self.ports.objects.put_bytes(cursor_key, json.dumps(cursor, sort_keys=True).encode(), "application/json")
            if message.get("key"):
                checks = json.loads(self.ports.objects.get_bytes(str(message["key"])))["check"]
                checks = {str(c): str(e) for c, e in checks.items()}
                self._mark_scanned(run_id, adapter, checks, progress, progress_key)
        stats, tally = adapter.stats() - before, progress.tally
        record = {
            "kind": "reconcile",
            "scope": SCAN_AUDIENCE,
            "work_item_id": item_id,
            "run_id": run_id,
            "destination": self.destination,
            "contacts": tally.matched,
            "read": tally.read,
            "pages": tally.pages,
            "unmatched": tally.unmatched,
            "known": tally.known,
            "opt_outs": tally.opt_outs,
            "corrections": tally.corrections,
            "findings": dict(tally.findings),
            "state_conflicts": tally.conflicts,
            "since_last_changed": None if progress.since is None else progress.since.isoformat(),
            "settled": progress.settled,
            "checked": progress.checked,
            "attempt_totals": stats.counters(),  # this delivery's calls
        }
        logger.info(
            "audience scanned",
            extra={k: record[k] for k in ("run_id", "read", "pages", "unmatched", "known", "opt_outs", "settled")},
        )
        return self._reconciled(record)

    def _mark_scanned(
        self,
        run_id: str,
        adapter: DestinationAdapter,
        checks: Mapping[str, str],
        progress: ScanProgress,
        progress_key: str,
    ) -> None:
        """After a full, settled scan: the deferred contacts are checked (the scan recorded the opt-outs among
        them). A contact held under another address is not covered by the scan's matches: its new address
        is read member by member. Each chunk is announced to sync-plan and then counted in the progress, so a
        first sync with many contacts that outlasts one delivery is carried on, not started over (a chunk cut
        off before it was counted is marked and announced again, which changes nothing)."""
        ids = sorted(checks)
        size = RECONCILE_CONTACTS[MAILCHIMP]
        for start in range(progress.marked, len(ids), size):
            chunk = {c: checks[c] for c in ids[start : start + size]}
            states = self.ports.states.get_states(self.destination, list(chunk))
            moved = sorted({e for c, e in chunk.items() if confirmed_elsewhere(states.get(c), e)})
            observed = {e: Observation(False) for e in chunk.values()}  # the scan answered for these
            observed.update(self.read_back(adapter, moved) if moved else {})
            writes, opt_outs = mark_checked(self.destination, chunk, states, [], observed, self.now())
            self._publish_opt_outs(opt_outs)
            conflicts = self.ports.states.put_states(writes)
            marked = self._marked(writes, chunk, conflicts)
            self._publish_checked(run_id, marked)
            progress.marked, progress.checked = start + len(chunk), progress.checked + len(marked)
            self.ports.objects.put_bytes(progress_key, progress.to_json().encode(), "application/json")

    def _learn_from_page(self, page: MemberPage, tally: ScanTally) -> None:
        """Opt-outs are published before the states are written: a delivery cut off in between publishes
        them again (a repeated opt-out changes nothing), where the other order could lose them."""
        observed = observe_mailchimp({str(m["email_address"]): m for m in page.members if m.get("email_address")})
        tally.pages += 1
        tally.read += len(page.members)
        owners = self.ports.identities.resolve("email", list(observed)) if observed else {}  # type: ignore[union-attr]
        customer_ids = sorted(set(owners.values()))
        matches = match_scanned(
            self.destination,
            observed,
            owners,
            self._profile_emails(customer_ids),
            self.ports.states.get_states(self.destination, customer_ids) if customer_ids else {},
        )
        found = reconcile(self.destination, matches.states, observed, self.now())
        self._publish_opt_outs([(o["customer_id"], o["email"]) for o in found.opt_outs])
        conflicts = self.ports.states.put_states(found.corrections) if found.corrections else []
        tally.add(matches, found, len(conflicts))

    def _scan_progress(self, key: str) -> ScanProgress | None:
        """An earlier delivery's progress; None when there is none (or it cannot be read: start over)."""
        try:
            return ScanProgress.from_json(self.ports.objects.get_bytes(key))
        except Exception as exc:  # noqa: BLE001 - starting the scan over is always safe
            logger.info("no audience scan progress", extra={"reason": type(exc).__name__})
            return None

    def _scan_cursor(self, key: str) -> datetime | None:
        """Where the last finished scan says to start; None (scan everything) when there is none. Without
        s3:ListBucket a missing object reads as AccessDenied, so any failure to read means "no cursor":
        reading too much is safe, skipping is not."""
        try:
            return datetime.fromisoformat(json.loads(self.ports.objects.get_bytes(key))["since_last_changed"])
        except Exception as exc:  # noqa: BLE001 - a full scan is the safe answer to any doubt
            logger.info("no audience scan cursor", extra={"reason": type(exc).__name__})
            return None

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
                SyncConsentChanged(records=list(chunk), reason="destination_refusal")
                for chunk in chunks(records, MAX_CONSENT_RECORDS)
            ]
        )

    def _publish_checked(self, run_id: str, customer_ids: Sequence[str]) -> None:
        """ContactsChecked for sync-plan (an EventBridge rule), MAX_INLINE_IDS ids an event."""
        if not customer_ids:
            return
        self.ports.publisher.publish(
            [
                ContactsChecked(
                    run_id=run_id,
                    destination=self.destination,  # type: ignore[arg-type]
                    changed=CustomerSelection(count=len(chunk), customer_ids=list(chunk)),
                )
                for chunk in chunks(customer_ids, MAX_INLINE_IDS)
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
