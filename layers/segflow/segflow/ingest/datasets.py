"""What each dataset contains: its canonical fields, their kinds, and which ones must be present.

Severity follows the field spec: a REQUIRED field that is missing or invalid quarantines the row; an optional
field with an invalid value is set to null with a warning (the original kept in `<field>_original` where the
field has one), unless `quarantine_invalid` says otherwise. The exceptions are deliberate:
- customers.email: the marketing key. A present but invalid email quarantines the customer row, because
  a profile with a wrong address would be synced to Mailchimp/HubSpot under it.
- consent.lawful_basis / consent.channel: a consent record with an unknown basis or channel cannot be
  applied safely, so it is quarantined rather than guessed.
- email on the other datasets: an invalid email is nulled with a warning when the row still has a
  customer_id; when it was the row's only identity the row is quarantined (see `one_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Literal

FieldKind = Literal[
    "id",  # identifier text, kept verbatim apart from surrounding whitespace ("00123" stays "00123")
    "email",
    "name",  # person/place text: NFC, trimmed, internal whitespace collapsed
    "text",  # free text: same treatment as name
    "phone",
    "country",
    "date",  # calendar date (birth_date): midnight UTC of the date written, no timezone shift
    "datetime",  # instant, converted to UTC
    "money",  # float64 + exact decimal string
    "quantity",  # positive integer
    "currency",  # ISO 4217
    "order_status",
    "event_type",
    "consent_status",
    "channel",
    "lawful_basis",
    "bool",
]


@dataclass(frozen=True)
class FieldSpec:
    kind: FieldKind
    required: bool = False  # every row needs a valid value
    quarantine_invalid: bool | None = None  # None: same as `required`

    @property
    def quarantines(self) -> bool:
        return self.required if self.quarantine_invalid is None else self.quarantine_invalid


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    fields: Mapping[str, FieldSpec]  # canonical columns, in output order
    required_columns: tuple[str, ...]  # the header must contain these
    one_of: tuple[tuple[str, ...], ...] = ()  # header has >= 1 of each group; each row needs >= 1 value
    key_fields: tuple[str, ...] = ()
    keeps_attributes: bool = False  # extra columns are collected into an `attributes` dict
    defaulted_columns: tuple[str, ...] = field(default=())  # may be absent: a documented default applies

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.fields.items() if spec.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.fields.items() if not spec.required)

    @property
    def field_types(self) -> dict[str, FieldKind]:
        return {name: spec.kind for name, spec in self.fields.items()}


def _spec(name: str, fields: dict[str, FieldSpec], **kwargs: object) -> DatasetSpec:
    return DatasetSpec(name=name, fields=MappingProxyType(fields), **kwargs)  # type: ignore[arg-type]


F = FieldSpec
_IDENTITY = ("customer_id", "email")

DATASETS: dict[str, DatasetSpec] = {
    "customers": _spec(
        "customers",
        {
            "customer_id": F("id"),
            "email": F("email", quarantine_invalid=True),
            "first_name": F("name"),
            "last_name": F("name"),
            "phone": F("phone"),
            "country": F("country"),
            "city": F("name"),
            "postal_code": F("text"),
            "birth_date": F("date"),
            "signup_date": F("datetime"),
            "updated_at": F("datetime"),
        },
        required_columns=(),
        one_of=(_IDENTITY,),
        key_fields=_IDENTITY,
        keeps_attributes=True,
    ),
    "orders": _spec(
        "orders",
        {
            "order_id": F("id", required=True),
            "customer_id": F("id"),
            "email": F("email"),
            "order_date": F("datetime", required=True),
            "total": F("money", required=True),
            "currency": F("currency", required=True),
            "status": F("order_status", required=True),
        },
        required_columns=("order_id", "order_date", "total", "status"),
        one_of=(_IDENTITY,),
        key_fields=("order_id",),
        defaulted_columns=("currency",),
    ),
    "order_items": _spec(
        "order_items",
        {
            "order_id": F("id", required=True),
            "product_id": F("id", required=True),
            "product_name": F("text"),
            "category": F("text"),
            "quantity": F("quantity", required=True),
            "unit_price": F("money", required=True),
        },
        required_columns=("order_id", "product_id", "quantity", "unit_price"),
        key_fields=("order_id", "product_id"),
    ),
    "events": _spec(
        "events",
        {
            "event_id": F("id"),
            "customer_id": F("id"),
            "email": F("email"),
            "event_type": F("event_type", required=True),
            "timestamp": F("datetime", required=True),
            "product_id": F("id"),
            "campaign_id": F("id"),
        },
        required_columns=("event_type", "timestamp"),
        one_of=(_IDENTITY,),
        key_fields=("event_id",),
    ),
    "consent": _spec(
        "consent",
        {
            "email": F("email"),
            "customer_id": F("id"),
            "channel": F("channel", required=True),
            "status": F("consent_status", required=True),
            "timestamp": F("datetime", required=True),
            "source": F("text"),
            "lawful_basis": F("lawful_basis", quarantine_invalid=True),
            "double_opt_in_confirmed": F("bool"),
            "region": F("text"),
        },
        required_columns=("status", "timestamp"),
        one_of=(("email", "customer_id"),),
        key_fields=("email", "customer_id", "channel"),
        defaulted_columns=("channel",),
    ),
    "erasure": _spec(
        "erasure",
        {
            "email": F("email"),
            "customer_id": F("id"),
            # Never a reason to refuse an erasure: an unreadable date is nulled with a warning.
            "requested_at": F("datetime"),
        },
        required_columns=(),
        one_of=(("email", "customer_id"),),
        key_fields=("email", "customer_id"),
    ),
}

# Folder names under raw/ that mean a dataset although they are not its canonical name.
FOLDER_ALIASES: dict[str, str] = {
    "activity": "events",
    "order-items": "order_items",
    "orderitems": "order_items",
    "items": "order_items",
    "erasures": "erasure",
}


def dataset_for_key(key: str) -> str | None:
    """ "raw/orders/2026/x.csv.gz" -> "orders"; None for keys outside raw/<dataset>/<file>."""
    parts = PurePosixPath(key.lstrip("/")).parts
    if len(parts) < 3 or parts[0] != "raw" or key.endswith("/"):
        return None
    folder = parts[1].lower()
    if folder in DATASETS:
        return folder
    return FOLDER_ALIASES.get(folder)
