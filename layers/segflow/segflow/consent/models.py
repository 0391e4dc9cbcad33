"""Consent data: a ledger record, the state a ledger resolves to, and the decisions made from it.

A `ConsentRecord` is one fact ("this person opted in/out of email at this time, from this source"). Its
`record_id` is a hash of its content, so the same fact arriving twice (a re-dropped file, a redelivered
event) is one ledger entry and changes nothing. `origin` (the S3 key or event id that brought it) is
provenance only and is left out of the hash on purpose: the same fact from two files is still one fact.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    computed_field,
    field_validator,
    model_validator,
)

Status = Literal["opted_in", "opted_out"]
StateStatus = Literal["opted_in", "opted_out", "unknown"]
LawfulBasis = Literal["consent", "legitimate_interest", "contract"]
PreferenceLevel = Literal["full", "basic", "none"]
DESTINATION_PREFIX = "destination:"

_DATETIME = TypeAdapter(datetime)


def as_utc(value: Any) -> datetime | None:
    """A datetime, ISO string or None -> an aware UTC datetime or None (naive values are taken as UTC)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_utc(value if isinstance(value, datetime) else _DATETIME.validate_python(value))


def to_utc(value: datetime) -> datetime:
    """An already parsed datetime in UTC (naive values are taken as UTC), as a plain `datetime`: a subclass
    such as a dataframe's timestamp would serialise differently and change record ids."""
    if type(value) is not datetime:
        value = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                         value.microsecond, tzinfo=value.tzinfo)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class ConsentRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str | None = None
    customer_id: str | None = None
    channel: Literal["email"] = "email"
    status: Status
    timestamp: datetime
    # Who/what brought it: signup_form, checkout, preference_center, import, activity:unsubscribe,
    # destination:<name> (an opt-out learned from Mailchimp or HubSpot), ...
    source: str | None = None
    lawful_basis: LawfulBasis | None = None
    double_opt_in_confirmed: bool = False
    region: str | None = None
    preference_level: PreferenceLevel | None = None
    # A short code qualifying the record (cleaned, compliance_state, abuse, ... on destination opt-outs).
    reason: str | None = None
    origin: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_record_id(cls, data: Any) -> Any:
        # Stored records carry their record_id; it is recomputed, and a mismatch means the content changed.
        if isinstance(data, dict) and "record_id" in data:
            data = dict(data)
            stored = data.pop("record_id")
            candidate = cls.model_validate(data)
            if stored is not None and stored != candidate.record_id:
                raise ValueError("record_id does not match the record's content")
            return candidate.model_dump(exclude={"record_id"})
        return data

    @field_validator("email", "customer_id", "source", "region", "reason", "origin", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("email", "source", "reason")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @field_validator("region")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @field_validator("double_opt_in_confirmed", mode="before")
    @classmethod
    def _none_is_false(cls, value: Any) -> Any:
        return False if value is None else value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    @model_validator(mode="after")
    def _has_identity(self) -> "ConsentRecord":
        if not self.email and not self.customer_id:
            raise ValueError("a consent record needs an email or a customer_id")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def record_id(self) -> str:
        # Every field but `origin`, by name; the timestamp is already normalised to UTC.
        content = {name: getattr(self, name) for name in _HASHED_FIELDS}
        content["timestamp"] = self.timestamp.isoformat()
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:32]

    @property
    def from_destination(self) -> bool:
        return bool(self.source and self.source.startswith(DESTINATION_PREFIX))

    def is_explicit_opt_in(self, require_double_opt_in: bool = False) -> bool:
        """An affirmative opt-in on the consent basis (and double-opt-in confirmed when that is required)."""
        return (
            self.status == "opted_in"
            and self.lawful_basis == "consent"
            and (self.double_opt_in_confirmed or not require_double_opt_in)
        )


_HASHED_FIELDS = tuple(sorted(name for name in ConsentRecord.model_fields if name != "origin"))


class ConsentState(BaseModel):
    """What a contact's ledger resolves to (see `ledger.current_state` for the rules)."""

    model_config = ConfigDict(frozen=True)

    status: StateStatus = "unknown"
    basis: LawfulBasis | None = None  # "consent" whenever an explicit opt-in stands, else the latest record's
    at: datetime | None = None  # time of the record that decided the status
    source: str | None = None
    explicit_opt_in: bool = False  # an explicit opt-in stands (no opt-out since)
    double_opt_in_confirmed: bool = False  # a double-opt-in-confirmed opt-in stands
    destination_opt_out: bool = False  # a destination opt-out in force (no newer explicit opt-in lifted it)
    destination_opt_out_source: str | None = None
    destination_opt_out_reason: str | None = None
    destination_opt_out_at: datetime | None = None
    region: str | None = None  # the latest region a record stated
    preference_level: PreferenceLevel | None = None  # the latest preference a record stated
    decided_by: str | None = None  # record_id of the deciding record
    records: int = 0


class Decision(BaseModel):
    """Whether the consent policy allows marketing email, on which basis, and if not, why not."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    basis: str | None = None  # explicit_opt_in | opt_in | implied_purchase | opt_out_model
    reasons: list[str] = Field(default_factory=list)


class Eligibility(BaseModel):
    model_config = ConfigDict(frozen=True)

    eligible: bool
    reasons: list[str] = Field(default_factory=list)
    preference_level: PreferenceLevel
    region: str
    decision: Decision
