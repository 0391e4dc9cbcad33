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
