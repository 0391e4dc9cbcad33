"""Details of the events on the segflow bus, one pydantic model per detail-type.

Details carry ids, counts and pointers to S3, never whole datasets: EventBridge caps an entry at 1 MB,
and a long id list goes to S3 with the event pointing at it.
"""
from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

# Inline at most this many customer ids in an event; more go to an S3 manifest.
MAX_INLINE_IDS = 200

Dataset = Literal["customers", "orders", "order_items", "events", "consent", "erasure"]


class EventDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    detail_type: ClassVar[str]
    source: ClassVar[str]


class DatasetCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rows_in: int = Field(ge=0)
    clean: int = Field(ge=0)
    merged: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    pending: int = Field(ge=0)
    erased: int = Field(0, ge=0)


class DataIngested(EventDetail):
    detail_type: ClassVar[str] = "DataIngested"
    source: ClassVar[str] = "segflow.ingest"

    drop_id: str
    dataset: Dataset
    bucket: str
    source_key: str
    clean_key: str | None
    quarantine_key: str | None
    accounting_key: str
    counts: DatasetCounts
    # Rows kept aside earlier that this drop made attachable (a customers drop resolving pending orders).
    attached: dict[str, int] = Field(default_factory=dict)
    customers_touched: int = Field(ge=0)
    customer_ids: list[str] = Field(default_factory=list, max_length=MAX_INLINE_IDS)
    customer_ids_key: str | None = None
    ingested_at: datetime


class CustomerSelection(BaseModel):
    """Which customers an event concerns: a short list inline, a long one in an S3 manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=0)
    customer_ids: list[str] = Field(default_factory=list, max_length=MAX_INLINE_IDS)
    customer_ids_key: str | None = None
    everyone: bool = False  # a full recomputation: consumers re-read every customer


class ProfilesScored(EventDetail):
    detail_type: ClassVar[str] = "ProfilesScored"
    source: ClassVar[str] = "segflow.score"

    run_id: str
    mode: Literal["touched", "all"]
    as_of: datetime
    model_version: str | None
    customers_scored: int = Field(ge=0)
    changed: CustomerSelection


class ModelTrained(EventDetail):
    detail_type: ClassVar[str] = "ModelTrained"
    source: ClassVar[str] = "segflow.train"

    model_name: str
    version: str
    artifact_key: str
    metrics: dict[str, float | int | str | None] = Field(default_factory=dict)
    trained_at: datetime


class ConsentInput(BaseModel):
    """One consent fact submitted from outside (preference centre, a destination, an import)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str | None = None
    customer_id: str | None = None
    channel: Literal["email"] = "email"
    status: Literal["opted_in", "opted_out"]
    timestamp: datetime
    source: str
    lawful_basis: Literal["consent", "legitimate_interest", "contract"] | None = None
    double_opt_in_confirmed: bool = False
    region: str | None = None
    reason: str | None = None  # why a destination refused: unsubscribed, cleaned, forgotten, ...


class ConsentChanged(EventDetail):
    """Submitted by any producer with `records`; published by segflow.consent with `changed`."""

    detail_type: ClassVar[str] = "ConsentChanged"
    source: ClassVar[str] = "segflow.consent"

    records: list[ConsentInput] = Field(default_factory=list, max_length=500)
    changed: CustomerSelection | None = None
    reason: str | None = None


class ErasureRequested(EventDetail):
    detail_type: ClassVar[str] = "ErasureRequested"
    source: ClassVar[str] = "segflow.consent"

    email: str | None = None
    customer_id: str | None = None
    requested_at: datetime


class ErasureCompleted(EventDetail):
    detail_type: ClassVar[str] = "ErasureCompleted"
    source: ClassVar[str] = "segflow.consent"

    request_id: str
    subject_hash: str
    counts: dict[str, int]
    report_key: str
    completed_at: datetime


ActivityType = Literal[
    "page_view", "product_view", "cart_add", "checkout", "purchase", "email_open", "email_click", "unsubscribe"
]


class CustomerActivity(EventDetail):
    """A single activity in real time (a purchase, a cart add, an unsubscribe...)."""

    detail_type: ClassVar[str] = "CustomerActivity"
    source: ClassVar[str] = "segflow.activity"

    event_id: str
    customer_id: str | None = None
    email: str | None = None
    event_type: ActivityType
    timestamp: datetime
    product_id: str | None = None
    campaign_id: str | None = None
    order_id: str | None = None
    total: float | None = None
    currency: str | None = None


class SegmentChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segment: str
    entered: list[str] = Field(default_factory=list)
    exited: list[str] = Field(default_factory=list)


class SegmentsChanged(EventDetail):
    detail_type: ClassVar[str] = "SegmentsChanged"
    source: ClassVar[str] = "segflow.segment"

    run_id: str
    trigger: str  # the event type that caused the evaluation
    changed: CustomerSelection
    changes: list[SegmentChange] = Field(default_factory=list)
    changes_key: str | None = None  # when the per-segment lists are too long for the event


class SyncCompleted(EventDetail):
    detail_type: ClassVar[str] = "SyncCompleted"
    source: ClassVar[str] = "segflow.sync"

    run_id: str
    destination: Literal["mailchimp", "hubspot"]
    status: Literal["completed", "partial", "stopped_daily_limit", "dry_run"]
    contacts_pushed: int = Field(ge=0)
    api_calls: int = Field(ge=0)
    retries: int = Field(ge=0)
    errors: int = Field(ge=0)
    duration_s: float = Field(ge=0)


class ContactsChecked(EventDetail):
    """A sync worker read what its destination holds for contacts a plan deferred until then (or answered
    their first create): sync-plan plans them again. Ids inline, one event per MAX_INLINE_IDS."""

    detail_type: ClassVar[str] = "ContactsChecked"
    source: ClassVar[str] = "segflow.sync"

    run_id: str
    destination: Literal["mailchimp", "hubspot"]
    changed: CustomerSelection


DETAIL_TYPES: dict[str, type[EventDetail]] = {
    cls.detail_type: cls
    for cls in (
        DataIngested, ProfilesScored, ModelTrained, ConsentChanged, ErasureRequested, ErasureCompleted,
        CustomerActivity, SegmentsChanged, SyncCompleted, ContactsChecked,
    )
}


def parse_detail(event: dict) -> EventDetail:
    """The typed detail of an EventBridge event delivered to a handler."""
    model = DETAIL_TYPES[event["detail-type"]]
    return model.model_validate(event["detail"])
