"""The consent use case: ledger appends, eligibility evaluation, erasure; one entry point per trigger.

- `submit(records)`: consent facts (a `consent` drop, ConsentChanged records from other producers, an
  `unsubscribe` activity) are appended to the ledger once each (replays change nothing); records of an
  erased person are refused unless a new explicit opt-in, dated after the erasure, lifts the tombstone.
- `evaluate(customer_ids)`: consent state + policy + eligibility -> the customer's CONSENT#email item,
  written only when its derived fields changed (ordered by `evaluated_at`, a wall-clock time, so a late,
  older evaluation never overwrites a newer one).
- `erase(request)`: tombstones, destinations, files, items (see `consent.erasure.run_erasure`), an erasure
  report in S3 (no email) and ErasureCompleted; a replayed request whose report is complete does nothing.
Customers whose CONSENT item changed are announced in one ConsentChanged (source segflow.consent).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from pydantic import ValidationError

from segflow.consent.eligibility import EligibilityConfig, consent_state, evaluate, profile_fields
from segflow.consent.erasure import (
    ErasureInventory,
    ErasurePorts,
    ErasureRequest,
    RowMatch,
    Tombstone,
    admissible,
    plan_erasure,
    run_erasure,
    tombstone,
)
from segflow.consent.ledger import fresh, from_row
from segflow.consent.models import ConsentRecord
from segflow.consent.store import (
    LedgerArchive,
    LedgerStore,
    TombstoneStore,
    ledger_pk_for_email,
    ledger_pk_for_id,
)
from segflow.events.bus import EventPublisher
from segflow.events.schemas import (
    ConsentChanged,
    CustomerActivity,
    DataIngested,
    ErasureCompleted,
    ErasureRequested,
    ProfilesScored,
    parse_detail,
)
from segflow.events.selection import resolve, select
from segflow.observability import logger, pii_hash
from segflow.store.customers import CONSENT, PROFILE, SCORES, CustomerItemStore
from segflow.store.objects import ObjectStore
from segflow.store.profiles import from_dynamo, to_dynamo

EVALUATE_CHUNK = 100
ACTIVITY_SOURCE = "activity:unsubscribe"
# Suppression kinds for a destination opt-out still in force (eligibility reports the same codes).
_SUPPRESSION = {"cleaned": "bounce", "bounce": "bounce", "abuse": "complaint", "complaint": "complaint"}


class Identities(Protocol):
    def resolve(self, kind: str, values: Iterable[str]) -> dict[str, str]: ...


class ErasureBackend(Protocol):
    skipped_destinations: list[str]

    def inventory(self, request: ErasureRequest) -> ErasureInventory: ...
    def ports(self) -> ErasurePorts: ...


class ErasureIncomplete(RuntimeError):
    """Some step failed; the report is stored and the event is retried (the run is safe to repeat)."""


@dataclass
class ConsentPorts:
    objects: ObjectStore
    items: CustomerItemStore
    identities: Identities
    ledger: LedgerStore
    tombstones: TombstoneStore
    publisher: EventPublisher
    erasure: ErasureBackend
    salt: Callable[[], str]  # the erasure salt, read on first use
    archive: LedgerArchive | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # orders CONSENT item writes


@dataclass
class ConsentOutcome:
    trigger: str
    records_in: int = 0
    appended: int = 0
    refused_erased: int = 0
    invalid: int = 0
    evaluated: int = 0
    changed: list[str] = field(default_factory=list)
    erasures: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts and ids only (no personal data): what the handler returns and logs."""
        return {
            "trigger": self.trigger, "records_in": self.records_in, "appended": self.appended,
            "refused_erased": self.refused_erased, "invalid": self.invalid, "evaluated": self.evaluated,
            "changed": len(self.changed),
            "erasures": [{k: e[k] for k in ("request_id", "complete")} for e in self.erasures],
        }


def _normalised(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The form an item has once stored (None and "" dropped, numbers as DynamoDB gives them back)."""
    return from_dynamo(to_dynamo(dict(fields)))


class ConsentService:
    def __init__(self, ports: ConsentPorts, *, now: Callable[[], datetime],
                 config: EligibilityConfig | None = None) -> None:
        self.ports = ports
        self.now = now  # "now" for policy decisions (fixed in replays and tests)
        self.config = config or EligibilityConfig()

    # ---- entry point -------------------------------------------------------------------------------------
    def handle(self, event: Mapping[str, Any]) -> ConsentOutcome:
        detail = parse_detail(dict(event))
        origin = event.get("id")
        if isinstance(detail, DataIngested):
            return self.on_ingested(detail)
        if isinstance(detail, ProfilesScored):
            ids = self.ports.items.customer_ids() if detail.changed.everyone else resolve(self.ports.objects, detail.changed)
            return self.evaluate(ids, trigger="ProfilesScored")
        if isinstance(detail, ConsentChanged):
            records, invalid = [], 0
            for value in detail.records:
                try:
                    records.append(ConsentRecord(**value.model_dump(), origin=origin))
                except ValidationError:
                    invalid += 1
            outcome = self.submit(records, trigger="ConsentChanged")
            outcome.invalid += invalid
            return outcome
        if isinstance(detail, ErasureRequested):
            request = ErasureRequest(email=detail.email, customer_id=detail.customer_id, requested_at=detail.requested_at)
            return self._erasures([request], trigger="ErasureRequested")
        if isinstance(detail, CustomerActivity):
            if detail.event_type != "unsubscribe" or not (detail.email or detail.customer_id):
                return ConsentOutcome(trigger="CustomerActivity")
            record = ConsentRecord(email=detail.email, customer_id=detail.customer_id, status="opted_out",
                                   timestamp=detail.timestamp, source=ACTIVITY_SOURCE, origin=detail.event_id)
            return self.submit([record], trigger="CustomerActivity")
        logger.warning("event type not handled by consent", extra={"detail_type": event.get("detail-type")})
        return ConsentOutcome(trigger=str(event.get("detail-type")))

    def on_ingested(self, detail: DataIngested) -> ConsentOutcome:
        trigger = f"DataIngested:{detail.dataset}"
        if detail.dataset == "customers":
            ids = resolve(self.ports.objects, _selection(detail))
            return self.evaluate(ids, trigger=trigger)
        rows = self._clean_rows(detail.clean_key)
        if detail.dataset == "consent":
            records, invalid = [], 0
            for row in rows:
                # The id the source stated, not the one ingest resolved: the same fact must hash the same
                # whether or not its customer was known when it arrived.
                if "source_customer_id" in row:
                    row = {**row, "customer_id": row["source_customer_id"]}
                try:
                    records.append(from_row(row, origin=detail.drop_id))
                except ValidationError:
                    invalid += 1
            outcome = self.submit(records, trigger=trigger, clean_key=detail.clean_key)
            outcome.invalid += invalid
            return outcome
        if detail.dataset == "erasure":
            requests, invalid = [], 0
            for row in rows:
                try:
                    requests.append(ErasureRequest(email=row.get("email"), customer_id=row.get("customer_id"),
                                                   requested_at=row.get("requested_at")))
                except ValidationError:
                    invalid += 1
            outcome = self._erasures(requests, trigger=trigger)
            outcome.invalid = invalid
            return outcome
        return ConsentOutcome(trigger=trigger)

    def _clean_rows(self, key: str | None) -> list[dict[str, Any]]:
        """The drop's rows: from ingest's JSON Lines copy when there is one, else from the Parquet file.
        None when the file is gone (a redelivered event whose file an erasure has since removed)."""
        if not key:
            return []
        for candidate in _clean_copies(key):
            if self.ports.objects.exists(candidate):
                data = self.ports.objects.get_bytes(candidate)
                if candidate.endswith(".jsonl"):
                    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
                from segflow.store.parquet_rows import read_rows  # data layer: drops older than their JSONL copy

                return read_rows(data)
        return []

    # ---- the ledger ----------------------------------------------------------------------------------------
    def submit(self, records: Sequence[ConsentRecord], *, trigger: str, clean_key: str | None = None) -> ConsentOutcome:
        outcome = ConsentOutcome(trigger=trigger, records_in=len(records))
        if not records:
            return outcome
        by_email = self.ports.identities.resolve("email", {r.email for r in records if r.email})
        by_id = self.ports.identities.resolve("id", {r.customer_id for r in records if r.customer_id})
        customer_of = {}
        for record in records:
            customer_of[record.record_id] = (by_id.get(record.customer_id or "") or by_email.get(record.email or ""))
        emails = self._profile_emails({c for c in customer_of.values() if c})

        admitted, refused = self._admit(records, customer_of)
        outcome.refused_erased = len(refused)
        entries: dict[str, list[ConsentRecord]] = {}
        for record in admitted:
            customer = customer_of[record.record_id]
            email = record.email or (emails.get(customer) if customer else None)
            pk = ledger_pk_for_email(email) if email else ledger_pk_for_id(record.customer_id)  # type: ignore[arg-type]
            entries.setdefault(pk, []).append(record)
        existing = self.ports.ledger.records(entries)
        new = [(pk, r) for pk, batch in entries.items() for r in fresh(existing.get(pk, []), batch)]
        if new:
            learned_at = self.ports.clock()
            self.ports.ledger.append(new, learned_at)
            if self.ports.archive is not None:
                self.ports.archive.append(new, learned_at)
        outcome.appended = len(new)
        new_ids = {r.record_id for _, r in new}
        touched = sorted({c for r in admitted if r.record_id in new_ids and (c := customer_of[r.record_id])})
        if refused and clean_key:
            self._forget_refused(clean_key, refused)
        evaluated = self.evaluate(touched, trigger=trigger, publish=False)
        outcome.evaluated, outcome.changed = evaluated.evaluated, evaluated.changed
        self._announce(outcome.changed, trigger)
        logger.info("consent records handled", extra=outcome.summary())
        return outcome

    def _profile_emails(self, customer_ids: set[str]) -> dict[str, str]:
        profiles = self.ports.items.get(customer_ids, kinds=(PROFILE,))
        return {c: p[PROFILE]["email"] for c, p in profiles.items() if p.get(PROFILE, {}).get("email")}

    def _admit(self, records: Sequence[ConsentRecord], customer_of: Mapping[str, str | None]
               ) -> tuple[list[ConsentRecord], list[ConsentRecord]]:
        """Records of erased people are refused, unless a new explicit opt-in after the erasure lifts it."""
        salt = self.ports.salt()
        digests: dict[str, list[str]] = {}
        for record in records:
            values = [("email", record.email), ("customer_id", record.customer_id),
                      ("customer_id", customer_of.get(record.record_id))]
            digests[record.record_id] = [tombstone(v, salt, k) for k, v in values if v]  # type: ignore[arg-type]
        stones = {d: s for d, s in self.ports.tombstones.get({d for ds in digests.values() for d in ds}).items()
                  if s.blocking}
        if not stones:
            return list(records), []
        admitted, refused, lifted = [], [], set()
        by_stone: dict[str, list[ConsentRecord]] = {}
        for record in records:
            for digest in digests[record.record_id]:
                if digest in stones:
                    by_stone.setdefault(digest, []).append(record)
        allowed: dict[str, set[str]] = {}
        for digest, batch in by_stone.items():
            stone: Tombstone = stones[digest].stone
            allowed[digest] = {r.record_id for r in admissible(stone, batch)}
            if allowed[digest]:
                lifted.add(digest)
        for record in records:
            blocking = [d for d in digests[record.record_id] if d in stones]
            if all(record.record_id in allowed[d] for d in blocking):
                admitted.append(record)
            else:
                refused.append(record)
        if lifted:
            self.ports.tombstones.lift(lifted, self.ports.clock())
            logger.info("erasure tombstones lifted by a new explicit opt-in", extra={"count": len(lifted)})
        return admitted, refused

    def _forget_refused(self, clean_key: str, refused: Sequence[ConsentRecord]) -> None:
        """An erased person's consent rows must not stay in the clean drop either."""
        match = RowMatch(customer_ids=tuple({r.customer_id for r in refused if r.customer_id}),
                         emails=tuple({r.email for r in refused if r.email}))
        files = self.ports.erasure.ports().files
        for key in _clean_copies(clean_key):
            files.rewrite_without(key, match)

    # ---- evaluation ----------------------------------------------------------------------------------------
    def evaluate(self, customer_ids: Iterable[str], *, trigger: str, publish: bool = True) -> ConsentOutcome:
        outcome = ConsentOutcome(trigger=trigger)
        ids = list(dict.fromkeys(customer_ids))
        for start in range(0, len(ids), EVALUATE_CHUNK):
            changed, evaluated = self._evaluate_chunk(ids[start : start + EVALUATE_CHUNK])
            outcome.changed += changed
            outcome.evaluated += evaluated
        if publish:
            self._announce(outcome.changed, trigger)
            logger.info("consent evaluated", extra=outcome.summary())
        return outcome

    def _evaluate_chunk(self, ids: list[str]) -> tuple[list[str], int]:
        views = self.ports.items.get(ids, kinds=(PROFILE, SCORES, CONSENT))
        profiles = {c: v[PROFILE] for c, v in views.items() if PROFILE in v and not v[PROFILE].get("merged_into")}
        pks_of = {c: _ledger_pks(c, p) for c, p in profiles.items()}
        ledgers = self.ports.ledger.records({pk for pks in pks_of.values() for pk in pks})
        now = self.now()
        writes: dict[str, dict[str, Any]] = {}
        for customer_id, profile in profiles.items():
            records = [r for pk in pks_of[customer_id] for r in ledgers.get(pk, [])]
            fields = self.derive(profile, views[customer_id].get(SCORES, {}), records, now)
            fields["customer_id"] = customer_id
            current = _normalised({k: v for k, v in views[customer_id].get(CONSENT, {}).items()
                                   if k not in ("pk", "sk", "evaluated_at")})
            if _normalised(fields) != current:
                writes[customer_id] = {**fields, "evaluated_at": self.ports.clock().isoformat()}
        stale = set(self.ports.items.put_if_newer(CONSENT, writes, "evaluated_at")) if writes else set()
        return sorted(set(writes) - stale), len(profiles)

    def derive(self, profile: Mapping[str, Any], scores: Mapping[str, Any], records: Sequence[ConsentRecord],
               now: datetime) -> dict[str, Any]:
        """The CONSENT#email fields of one customer (a pure function of its profile, scores and ledger)."""
        state, _ = consent_state(records, profile.get("country"), self.config.policy)
        view = {**{k: v for k, v in profile.items() if k not in ("pk", "sk")},
                **{k: v for k, v in scores.items() if k not in ("pk", "sk")}}
        eligibility = evaluate(view, state, None, now, self.config)
        fields = profile_fields(state, eligibility)
        fields.update({
            "consent_records": state.records,
            "consent_decided_by": state.decided_by,
            "suppressed": state.destination_opt_out,
            "suppression_reason": (_SUPPRESSION.get(state.destination_opt_out_reason or "", "destination_unsubscribe")
                                   if state.destination_opt_out else None),
        })
        return fields

    def _announce(self, changed: Sequence[str], trigger: str) -> None:
        if not changed:
            return
        key = f"manifests/consent/{pii_hash(','.join(sorted(changed)))}.customers.json"
        selection = select(self.ports.objects, list(changed), key)
        self.ports.publisher.publish([ConsentChanged(changed=selection, reason=trigger)])

    # ---- erasure -------------------------------------------------------------------------------------------
    def _erasures(self, requests: Sequence[ErasureRequest], *, trigger: str) -> ConsentOutcome:
        outcome = ConsentOutcome(trigger=trigger, records_in=len(requests))
        incomplete = 0
        for request in requests:
            report = self.erase(request)
            outcome.erasures.append(report)
            incomplete += not report["complete"]
        logger.info("erasure requests handled", extra=outcome.summary())
        if incomplete:
            raise ErasureIncomplete(f"{incomplete} erasure(s) incomplete; see reports/erasure/")
        return outcome

    def erase(self, request: ErasureRequest) -> dict[str, Any]:
        """Runs one erasure (or returns the stored report of an already completed one)."""
        salt, now = self.ports.salt(), self.now()
        inventory = self.ports.erasure.inventory(request)
        plan = plan_erasure(request, inventory, salt=salt, now=now)
        report_key = f"reports/erasure/{plan.request_id}.json"
        if self.ports.objects.exists(report_key):
            stored = json.loads(self.ports.objects.get_bytes(report_key))
            if stored.get("complete") and not _anything_left(inventory):
                logger.info("erasure already completed", extra={"request_id": plan.request_id})
                return stored
        report = run_erasure(plan, self.ports.erasure.ports(), now=now)
        document = {**report.model_dump(mode="json"), "report_key": report_key,
                    "skipped_destinations": list(self.ports.erasure.skipped_destinations)}
        self.ports.objects.put_bytes(report_key, json.dumps(document, indent=2).encode("utf-8"), "application/json")
        logger.info("erasure run", extra={"request_id": plan.request_id, "complete": report.complete,
                                          "removed": report.removed, "failures": report.failures})
        if report.complete:
            self.ports.publisher.publish([ErasureCompleted(
                request_id=plan.request_id, subject_hash=plan.subject_hash, counts=report.removed,
                report_key=report_key, completed_at=report.completed_at,
            )])
        return document


def _anything_left(inventory: ErasureInventory) -> bool:
    return bool(inventory.items or inventory.clean_files or inventory.quarantine_files or inventory.pending_files
                or inventory.report_files or inventory.ledger_files or inventory.raw_objects)


def _clean_copies(clean_key: str) -> list[str]:
    """The JSON Lines copy ingest writes beside a consent/erasure drop's Parquet file, then the Parquet."""
    stem = clean_key.removesuffix(".parquet")
    return [f"{stem}.jsonl", clean_key] if stem != clean_key else [clean_key]


def _ledger_pks(customer_id: str, profile: Mapping[str, Any]) -> list[str]:
    emails = [e for e in [profile.get("email"), *(profile.get("alternate_emails") or [])] if e]
    ids = [customer_id, *(profile.get("alias_ids") or [])]
    return [*(ledger_pk_for_email(e) for e in emails), *(ledger_pk_for_id(i) for i in ids)]


def _selection(detail: DataIngested) -> Any:
    from segflow.events.schemas import CustomerSelection

    return CustomerSelection(count=detail.customers_touched, customer_ids=detail.customer_ids,
                             customer_ids_key=detail.customer_ids_key)
