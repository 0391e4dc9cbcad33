"""Right to erasure: salted-hash tombstones, the plan of what to remove where, running it through ports,
and the report that remains (hashes and counts, never the email).

- A tombstone is HMAC-SHA256(salt, "<kind>:<normalised value>") of each erased email and customer id.
  It blocks any later drop from bringing the person back until a NEW explicit opt-in (dated after the
  erasure request) arrives; consent records dated before the request are never re-admitted.
- `plan_erasure` turns a request and what the stores hold for the person (`ErasureInventory`, found by the
  adapters) into an `ErasurePlan`. The plan holds the identifiers it must match, so it is transient: never
  log or persist it (its personal fields are left out of repr). The `ErasureReport` is what is kept.
- `run_erasure` executes a plan in a retry-safe order: tombstones first (a racing ingest is already
  blocked), destinations next, then Parquet/JSONL rewrites (clean, quarantine, pending, reports, the S3
  ledger), whole-object deletes (raw drops, per-person ledger objects), and the DynamoDB items last
  and only when everything before succeeded, so a failed run can be retried from the same profile.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Literal, Mapping, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from segflow.consent.ledger import RecordLike, as_record
from segflow.consent.models import ConsentRecord, as_utc, to_utc
from segflow.store.profiles import identity_key, profile_key

IdKind = Literal["email", "customer_id"]
MIN_SALT_BYTES = 16


# ---- tombstones ---------------------------------------------------------------------------------------

def _normalise(value: str, kind: IdKind) -> str:
    return value.strip().lower() if kind == "email" else value.strip()


def _kind_of(value: str, kind: IdKind | None) -> IdKind:
    return kind or ("email" if "@" in value else "customer_id")


def _salt_key(salt: str | bytes) -> bytes:
    key = salt.encode("utf-8") if isinstance(salt, str) else salt
    if len(key) < MIN_SALT_BYTES:
        raise ValueError(f"the erasure salt must be a secret of at least {MIN_SALT_BYTES} bytes")
    return key


def tombstone(value: str, salt: str | bytes, kind: IdKind | None = None) -> str:
    """HMAC-SHA256 of an email or customer id (kind inferred from "@" when not given), hex."""
    key = _salt_key(salt)
    resolved = _kind_of(value, kind)
    message = f"{resolved}:{_normalise(value, resolved)}".encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Tombstone(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: IdKind
    requested_at: datetime
    request_id: str

    @field_validator("requested_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return to_utc(value) if value is not None else None


def tombstone_key(digest: str) -> dict[str, str]:
    return {"pk": f"TOMB#{digest}", "sk": "TOMBSTONE"}


def is_tombstoned(value: str, salt: str | bytes, tombstones: Iterable[str] | Mapping[str, Any],
                  kind: IdKind | None = None) -> bool:
    """Whether an email or customer id is among the tombstone digests (a set, or a mapping keyed by them)."""
    digests = tombstones if isinstance(tombstones, (Mapping, set, frozenset)) else set(tombstones)
    return tombstone(value, salt, kind) in digests


def _matches(stone: Tombstone, record: ConsentRecord, salt: str | bytes) -> bool:
    value = record.email if stone.kind == "email" else record.customer_id
    return value is not None and hmac.compare_digest(tombstone(value, salt, stone.kind), stone.digest)


def blocks_reingest(
    stone: Tombstone,
    later_records: Iterable[RecordLike],
    *,
    salt: str | bytes | None = None,
    require_double_opt_in: bool = False,
) -> bool:
    """True unless an explicit opt-in dated strictly after the erasure request is among the records
    (with `salt`, only records of the tombstoned person count)."""
    for record in map(as_record, later_records):
        if salt is not None and not _matches(stone, record, salt):
            continue
        if record.timestamp > stone.requested_at and record.is_explicit_opt_in(require_double_opt_in):
            return False
    return True


def admissible(stone: Tombstone, records: Iterable[RecordLike], *, require_double_opt_in: bool = False
               ) -> list[ConsentRecord]:
    """The consent records of a tombstoned person that may enter a new ledger: none while the tombstone
    blocks, and only those dated after the erasure request once a new explicit opt-in lifted it."""
    candidates = [as_record(r) for r in records]
    if blocks_reingest(stone, candidates, require_double_opt_in=require_double_opt_in):
        return []
    return [r for r in candidates if r.timestamp > stone.requested_at]


# ---- the plan -----------------------------------------------------------------------------------------

class ErasureRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    email: str | None = None
    customer_id: str | None = None
    requested_at: datetime | None = None

    @field_validator("email", "customer_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @field_validator("requested_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return to_utc(value) if value is not None else None

    @model_validator(mode="after")
    def _has_identity(self) -> "ErasureRequest":
        if not self.email and not self.customer_id:
            raise ValueError("an erasure request needs an email or a customer_id")
        return self


class ItemKey(BaseModel):
    model_config = ConfigDict(frozen=True)
    pk: str
    sk: str


class FileHit(BaseModel):
    """An S3 object (clean Parquet or quarantine JSONL) holding `rows` rows of the person."""
    model_config = ConfigDict(frozen=True)
    key: str
    rows: int = Field(ge=0)


class DestinationTarget(BaseModel):
    """Where the person may exist: a Mailchimp audience (member_id = subscriber hash when known) or
    HubSpot (member_id = record id when known, from the SYNC# item)."""
    model_config = ConfigDict(frozen=True)
    destination: Literal["mailchimp", "hubspot"]
    audience_id: str | None = None
    member_id: str | None = None

    @model_validator(mode="after")
    def _audience(self) -> "DestinationTarget":
        if self.destination == "mailchimp" and not self.audience_id:
            raise ValueError("a Mailchimp target needs its audience_id")
        return self


class ErasureInventory(BaseModel):
    """What the adapters found for the person (canonical id and aliases, every email and phone)."""
    customer_ids: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list, repr=False)
    phones: list[str] = Field(default_factory=list, repr=False)
    items: list[ItemKey] = Field(default_factory=list)  # everything in the person's partitions
    clean_files: list[FileHit] = Field(default_factory=list)
    quarantine_files: list[FileHit] = Field(default_factory=list)
    pending_files: list[FileHit] = Field(default_factory=list)  # rows kept aside for an unknown customer
    report_files: list[FileHit] = Field(default_factory=list)  # reports/ and manifests/ naming the person
    ledger_files: list[FileHit] = Field(default_factory=list)  # S3 ledger batches shared with others
    ledger_objects: list[str] = Field(default_factory=list)  # S3 objects holding only this person's ledger
    raw_objects: list[str] = Field(default_factory=list)  # already ingested raw drops that held the person
    destinations: list[DestinationTarget] = Field(default_factory=list)


class RowMatch(BaseModel):
    """Rows to drop from a data file: any row whose customer_id, email or phone is one of these."""
    model_config = ConfigDict(frozen=True)
    customer_ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = Field(default=(), repr=False)
    phones: tuple[str, ...] = Field(default=(), repr=False)


class DestinationCall(BaseModel):
    model_config = ConfigDict(frozen=True)
    destination: Literal["mailchimp", "hubspot"]
    action: Literal["delete_permanent", "gdpr_delete"]
    audience_id: str | None = None
    id_property: Literal["subscriber_hash", "hs_object_id", "email"]
    member_ref: str = Field(repr=False)


class ErasurePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    subject_hash: str
    requested_at: datetime
    tombstones: list[Tombstone]
    identity_items: list[ItemKey]
    profile_items: list[ItemKey]
    clean_files: list[FileHit]
    quarantine_files: list[FileHit]
    match: RowMatch
    ledger_objects: list[str]
    destination_calls: list[DestinationCall]
    pending_files: list[FileHit] = Field(default_factory=list)
    report_files: list[FileHit] = Field(default_factory=list)
    ledger_files: list[FileHit] = Field(default_factory=list)
    raw_objects: list[str] = Field(default_factory=list)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased email (an identifier, not a security measure)."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def _destination_calls(targets: Sequence[DestinationTarget], emails: Sequence[str]) -> list[DestinationCall]:
    calls: dict[tuple[str, str | None, str, str], DestinationCall] = {}

    def add(call: DestinationCall) -> None:
        calls.setdefault((call.destination, call.audience_id, call.id_property, call.member_ref), call)

    for target in targets:
        if target.destination == "mailchimp":
            hashes = [target.member_id] if target.member_id else []
            for member in [*hashes, *map(subscriber_hash, emails)]:
                add(DestinationCall(destination="mailchimp", action="delete_permanent",
                                    audience_id=target.audience_id, id_property="subscriber_hash",
                                    member_ref=member))
        elif target.member_id:
            add(DestinationCall(destination="hubspot", action="gdpr_delete", id_property="hs_object_id",
                                member_ref=target.member_id))
        else:
            for email in emails:
                add(DestinationCall(destination="hubspot", action="gdpr_delete", id_property="email",
                                    member_ref=email))
    return list(calls.values())


def plan_erasure(
    request: ErasureRequest, inventory: ErasureInventory, *, salt: str | bytes, now: datetime
) -> ErasurePlan:
    requested_at = request.requested_at or as_utc(now)
    emails = [_normalise(e, "email") for e in [request.email or "", *inventory.emails] if e.strip()]
    emails = list(dict.fromkeys(emails))
    ids = list(dict.fromkeys(i.strip() for i in [request.customer_id or "", *inventory.customer_ids] if i))
    if request.email:
        subject = tombstone(request.email, salt, "email")
    else:
        subject = tombstone(ids[0], salt, "customer_id")
    request_id = hmac.new(
        _salt_key(salt),
        f"erasure:{subject}:{requested_at.isoformat()}".encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()[:32]
    kinds: tuple[tuple[IdKind, list[str]], ...] = (("email", emails), ("customer_id", ids))
    stones = [Tombstone(digest=tombstone(v, salt, k), kind=k, requested_at=requested_at,
                        request_id=request_id) for k, values in kinds for v in values]
    identities = [("id", i) for i in ids] + [("email", e) for e in emails]
    identities += [("phone", p) for p in dict.fromkeys(inventory.phones)]
    profile_items = list(dict.fromkeys([*inventory.items, *(ItemKey(**profile_key(i)) for i in ids)]))
    return ErasurePlan(
        request_id=request_id,
        subject_hash=subject,
        requested_at=requested_at,
        tombstones=stones,
        identity_items=[ItemKey(**identity_key(kind, value)) for kind, value in identities],
        profile_items=profile_items,
        clean_files=inventory.clean_files,
        quarantine_files=inventory.quarantine_files,
        match=RowMatch(customer_ids=tuple(ids), emails=tuple(emails), phones=tuple(inventory.phones)),
        ledger_objects=list(dict.fromkeys(inventory.ledger_objects)),
        destination_calls=_destination_calls(inventory.destinations, emails),
        pending_files=inventory.pending_files,
        report_files=inventory.report_files,
        ledger_files=inventory.ledger_files,
        raw_objects=list(dict.fromkeys(inventory.raw_objects)),
    )


# ---- the report ---------------------------------------------------------------------------------------

REPORT_COUNTS = (
    "tombstones", "mailchimp", "hubspot", "clean_files", "clean_rows", "quarantine_files", "quarantine_rows",
    "pending_files", "pending_rows", "report_files", "report_rows", "ledger_files", "ledger_rows",
    "ledger_objects", "raw_objects", "identity_items", "profile_items",
)
FILE_KINDS = ("clean", "quarantine", "pending", "report", "ledger")


class ErasureReport(BaseModel):
    """What was removed where, by count; identifies the person only by the salted subject hash."""
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    subject_hash: str
    requested_at: datetime
    completed_at: datetime
    complete: bool
    removed: dict[str, int]
    failures: dict[str, str] = Field(default_factory=dict)  # step -> error class (messages may echo PII)

    @model_validator(mode="after")
    def _no_email(self) -> "ErasureReport":
        if "@" in json.dumps(self.model_dump(mode="json")):
            raise ValueError("an erasure report must not contain an email address")
        return self


# ---- running a plan through the ports -----------------------------------------------------------------

class TombstoneWriter(Protocol):
    def put_tombstones(self, tombstones: Sequence[Tombstone]) -> int: ...


class ItemDeleter(Protocol):
    def delete_items(self, keys: Sequence[ItemKey]) -> int: ...


class FileRewriter(Protocol):
    def rewrite_without(self, key: str, match: RowMatch) -> int:
        """Rewrite the object without the matching rows; returns how many rows were removed."""
        ...


class ObjectDeleter(Protocol):
    def delete_objects(self, keys: Sequence[str]) -> int: ...


class DestinationEraser(Protocol):
    def erase(self, call: DestinationCall) -> bool:
        """Delete the member: True when one was deleted, False when it was already absent; raises when it
        could not be deleted (the run is then reported incomplete and retried)."""
        ...


@dataclass
class ErasurePorts:
    tombstones: TombstoneWriter
    items: ItemDeleter
    files: FileRewriter
    objects: ObjectDeleter
    destinations: Mapping[str, DestinationEraser]


def run_erasure(plan: ErasurePlan, ports: ErasurePorts, *, now: datetime) -> ErasureReport:
    removed = dict.fromkeys(REPORT_COUNTS, 0)
    failures: dict[str, str] = {}

    def step(name: str, action: Any) -> None:
        try:
            action()
        except Exception as error:  # recorded per step; the run carries on where that is safe
            failures[name] = type(error).__name__

    def tombstones() -> None:
        removed["tombstones"] = ports.tombstones.put_tombstones(plan.tombstones)

    def destination(call: DestinationCall) -> Any:
        def run() -> None:
            eraser = ports.destinations.get(call.destination)
            if eraser is None:
                raise LookupError(f"no eraser for {call.destination}")
            removed[call.destination] += 1 if eraser.erase(call) else 0
        return run

    def files(kind: str, hits: list[FileHit]) -> Any:
        def run() -> None:
            for hit in hits:
                rows = ports.files.rewrite_without(hit.key, plan.match)
                removed[f"{kind}_rows"] += rows
                removed[f"{kind}_files"] += 1 if rows else 0
        return run

    def ledger_objects() -> None:
        removed["ledger_objects"] = ports.objects.delete_objects(plan.ledger_objects)

    def raw_objects() -> None:
        removed["raw_objects"] = ports.objects.delete_objects(plan.raw_objects)

    def items() -> None:
        removed["identity_items"] = ports.items.delete_items(plan.identity_items)
        removed["profile_items"] = ports.items.delete_items(plan.profile_items)

    step("tombstones", tombstones)
    if not failures:  # without tombstones a racing drop could bring the person back: retry first
        for call in plan.destination_calls:  # each call is tried: one refusal must not spare the others
            step(call.destination, destination(call))
        for kind in FILE_KINDS:
            step(f"{kind}_files", files(kind, getattr(plan, f"{kind}_files")))
        step("ledger_objects", ledger_objects)
        step("raw_objects", raw_objects)
    if not failures:  # the profile is what a retry rediscovers everything from: delete it last
        step("items", items)
    return ErasureReport(
        request_id=plan.request_id,
        subject_hash=plan.subject_hash,
        requested_at=plan.requested_at,
        completed_at=as_utc(now),  # type: ignore[arg-type]
        complete=not failures,
        removed=removed,
        failures=failures,
    )
