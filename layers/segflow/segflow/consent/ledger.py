"""The append-only consent ledger of one contact (one person, channel email) and the state it resolves to.

Rules of `current_state` (a pure function of the SET of records, so any arrival order, batching or replay
of the same records gives the same state):
- Records are taken in timestamp order. On equal timestamps an opt-out comes after an opt-in, so the
  opt-out wins a tie; remaining ties are broken by destination opt-outs last, then by record_id.
- The latest record decides the status, except:
- An opt-out learned from a destination (source "destination:<name>") is sticky: later opt-ins are
  ignored until a strictly newer explicit opt-in (status opted_in, lawful_basis consent and, when the
  caller's policy demands it, double_opt_in_confirmed) arrives and lifts it.
- `basis` is "consent" while an explicit opt-in stands (a later opt-in on another basis, such as a checkout
  on legitimate interest, does not weaken it); any opt-out ends the standing opt-in.
- `region` and `preference_level` are the latest values any record stated.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from segflow.consent.models import DESTINATION_PREFIX, ConsentRecord, ConsentState, as_utc

RecordLike = ConsentRecord | Mapping[str, Any]
Ledger = tuple[ConsentRecord, ...]

# Mailchimp member statuses and HubSpot subscription states that mean "this person does not want email".
DESTINATION_OPT_OUT_STATUSES = {
    "mailchimp": {"unsubscribed", "cleaned", "forgotten", "compliance_state"},
    "hubspot": {"unsubscribed", "opt_out", "gdpr_deleted", "blocklisted"},
}


def as_record(value: RecordLike) -> ConsentRecord:
    """A record, or its stored dict form (whose record_id is verified)."""
    return value if isinstance(value, ConsentRecord) else ConsentRecord.model_validate(value)


def sort_key(record: ConsentRecord) -> tuple[Any, ...]:
    """Canonical order: time, then opt-in before opt-out (opt-out wins a tie), destination last, then id."""
    return (record.timestamp, record.status == "opted_out", record.from_destination, record.record_id)


def ledger_sk(record: ConsentRecord) -> str:
    """Sort key of the record's ledger item in the customer's partition."""
    return f"LEDGER#{record.timestamp.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{record.record_id}"


def fresh(records_so_far: Iterable[RecordLike], new_records: Iterable[RecordLike]) -> list[ConsentRecord]:
    """The new records not yet in the ledger (each once), in canonical order: what must be written."""
    known = {as_record(r).record_id for r in records_so_far}
    added: dict[str, ConsentRecord] = {}
    for value in new_records:
        record = as_record(value)
        if record.record_id not in known:
            added.setdefault(record.record_id, record)
    return sorted(added.values(), key=sort_key)


def apply(records_so_far: Iterable[RecordLike], new_records: Iterable[RecordLike]) -> tuple[Ledger, bool]:
    """Append new records to a ledger. Returns the ledger (unique records, canonical order) and whether
    it grew; replayed records are no-ops. Whether the *state* changed is `current_state` before vs after."""
    existing: dict[str, ConsentRecord] = {}
    for value in records_so_far:
        record = as_record(value)
        existing.setdefault(record.record_id, record)
    added = fresh(existing.values(), new_records)
    ledger = tuple(sorted([*existing.values(), *added], key=sort_key))
    return ledger, bool(added)


def current_state(ledger: Iterable[RecordLike], *, lift_requires_double_opt_in: bool = False) -> ConsentState:
    records = sorted({r.record_id: r for r in map(as_record, ledger)}.values(), key=sort_key)
    deciding: ConsentRecord | None = None
    sticky: ConsentRecord | None = None  # the destination opt-out in force
    explicit = double_opt_in = False
    region = preference = None
    for record in records:
        region = record.region or region
        preference = record.preference_level or preference
        if record.status == "opted_out":
            deciding, explicit, double_opt_in = record, False, False
            if record.from_destination:
                sticky = record
            continue
        if sticky is not None:
            newer = record.timestamp > sticky.timestamp
            if not (newer and record.is_explicit_opt_in(lift_requires_double_opt_in)):
                continue
            sticky = None
        deciding = record
        explicit = explicit or record.is_explicit_opt_in()
        double_opt_in = double_opt_in or record.is_explicit_opt_in(require_double_opt_in=True)
    if deciding is None:
        return ConsentState(region=region, preference_level=preference, records=len(records))
    return ConsentState(
        status=deciding.status,
        basis="consent" if explicit else deciding.lawful_basis,
        at=deciding.timestamp,
        source=deciding.source,
        explicit_opt_in=explicit,
        double_opt_in_confirmed=double_opt_in,
        destination_opt_out=sticky is not None,
        destination_opt_out_source=sticky.source if sticky else None,
        destination_opt_out_reason=sticky.reason if sticky else None,
        destination_opt_out_at=sticky.timestamp if sticky else None,
        region=region,
        preference_level=preference,
        decided_by=deciding.record_id,
        records=len(records),
    )


_ROW_FIELDS = ("email", "customer_id", "channel", "status", "timestamp", "source", "lawful_basis",
               "double_opt_in_confirmed", "region", "preference_level")


def from_row(row: Mapping[str, Any], origin: str | None = None) -> ConsentRecord:
    """A row of the clean `consent` dataset -> a record. Other columns are ignored, and empty cells
    (None, "", or values unequal to themselves such as NaN/NaT from a dataframe) are taken as missing."""
    fields = {}
    for name in _ROW_FIELDS:
        value = row.get(name)
        if value is None or value != value or value == "":
            continue
        fields[name] = value
    return ConsentRecord(**fields, origin=origin)


def from_unsubscribe_event(event: Mapping[str, Any]) -> ConsentRecord | None:
    """An `unsubscribe` activity event -> an opt-out record, source "activity:unsubscribe" (None for any
    other event type)."""
    if event.get("event_type") != "unsubscribe":
        return None
    return ConsentRecord(
        email=event.get("email"),
        customer_id=event.get("customer_id"),
        status="opted_out",
        timestamp=as_utc(event.get("timestamp")),  # type: ignore[arg-type]
        source="activity:unsubscribe",
        origin=event.get("event_id"),
    )


def destination_opt_out(
    destination: str,
    *,
    at: Any,
    reason: str,
    email: str | None = None,
    customer_id: str | None = None,
    origin: str | None = None,
) -> ConsentRecord:
    """An opt-out learned from a destination (unsubscribed or cleaned member, compliance-state error, ...)."""
    return ConsentRecord(
        email=email,
        customer_id=customer_id,
        status="opted_out",
        timestamp=as_utc(at),  # type: ignore[arg-type]
        source=f"{DESTINATION_PREFIX}{destination.strip().lower()}",
        reason=reason,
        origin=origin,
    )


def from_destination_status(
    destination: str,
    status: str | None,
    *,
    at: Any,
    email: str | None = None,
    customer_id: str | None = None,
    origin: str | None = None,
) -> ConsentRecord | None:
    """A destination's member status -> an opt-out record when it means "no email", else None.
    Only opt-outs are learned from destinations: a destination's "subscribed" is never taken as consent."""
    normalised = (status or "").strip().lower()
    if normalised not in DESTINATION_OPT_OUT_STATUSES.get(destination.strip().lower(), set()):
        return None
    return destination_opt_out(destination, at=at, reason=normalised, email=email, customer_id=customer_id,
                               origin=origin)
