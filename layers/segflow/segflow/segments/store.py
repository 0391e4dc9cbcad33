"""The segment function's own items and S3 documents.

Items in a customer's partition (pk=CUST#<id>), written through segflow.store.customers.put_if_newer with a
revision counter: a writer puts revision r + 1 after reading r, so a concurrent writer that got there
first makes the put stale and the loser re-reads and evaluates again (compare-and-set).
- sk="SEGMENTS": memberships {segment: since ISO} (read by sync), frequency-cap and hysteresis state,
  the last seen CLV tier (for the clv_tier_up trigger) and the recent scoring runs already counted.
- sk="ACTIVITY": the real-time activity state of segflow.segments.activity as JSON (exact, compact), with
  `expires_at` (epoch seconds) for DynamoDB's TTL.

Field names other than `memberships` and `clv_tier_up_at` carry a segment_/activity_ prefix because the
profile view merges the SEGMENTS item into the other items' fields.

S3 documents (segments/latest.json) are read and replaced with conditional writes (If-Match / If-None-Match)
so two runs updating it at once cannot silently drop each other's changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from segflow.segments.activity import ORDER_RETENTION_DAYS, copy_state, empty_state
from segflow.segments.timeutil import US_PER_SECOND, to_us
from segflow.store.customers import CONSENT, PROFILE, SCORES, SEGMENTS, CustomerItemStore, merge_view
from segflow.store.objects import ObjectStore

ACTIVITY = "ACTIVITY"
RECORD_KINDS = (PROFILE, SCORES, CONSENT, SEGMENTS, ACTIVITY)
SEGMENTS_REVISION = "segments_revision"
ACTIVITY_REVISION = "activity_revision"
KEEP_RUNS = 5  # scoring runs remembered per customer: a redelivered ProfilesScored is not counted twice
# The activity item outlives its oldest useful record (orders are kept 365 days) by a margin.
ACTIVITY_TTL_DAYS = ORDER_RETENTION_DAYS + 30
# A conditional put that lost: the object changed (412), or another conditional write was in flight (409).
PRECONDITION_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


@dataclass(frozen=True)
class SegmentsItem:
    memberships: dict[str, str] = field(default_factory=dict)
    caps: dict[str, Any] = field(default_factory=dict)  # membership.diff caps_state
    clv: dict[str, Any] = field(default_factory=dict)  # triggers.note_clv_tier state
    runs: tuple[str, ...] = ()
    revision: int = 0
    # The last membership change and the evaluation that made it: {"key", "entered", "exited", "at"}.
    last_change: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> SegmentsItem:
        if not item:
            return cls()
        clv = {"clv_tier": item.get("segment_last_clv_tier"), "clv_tier_up_at": item.get("clv_tier_up_at")}
        return cls(
            memberships=dict(item.get("memberships") or {}),
            caps=dict(item.get("segment_caps") or {}),
            clv={k: v for k, v in clv.items() if v},
            runs=tuple(item.get("segment_runs") or ()),
            revision=int(item.get(SEGMENTS_REVISION) or 0),
            last_change=dict(item.get("segment_last_change") or {}),
        )

    def state(self) -> dict[str, Any]:
        """What an evaluation decides; a write is needed only when this differs from the stored one."""
        entries = [list(e) for e in self.caps.get("entries", [])]
        caps = {"entries": entries, "misses": dict(self.caps.get("misses") or {})}
        clv = {k: v for k, v in self.clv.items() if v}
        return {"memberships": dict(self.memberships), "caps": caps, "clv": clv}

    def to_fields(self, customer_id: str, now_iso: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "customer_id": customer_id,
            "memberships": dict(self.memberships),
            "segment_caps": self.state()["caps"],
            "segment_runs": list(self.runs[-KEEP_RUNS:]),
            "segments_evaluated_at": now_iso,
            SEGMENTS_REVISION: self.revision,
        }
        if self.last_change:
            fields["segment_last_change"] = dict(self.last_change)
        if self.clv.get("clv_tier"):
            fields["segment_last_clv_tier"] = self.clv["clv_tier"]
        if self.clv.get("clv_tier_up_at"):
            fields["clv_tier_up_at"] = self.clv["clv_tier_up_at"]
        return fields


@dataclass(frozen=True)
class ActivityItem:
    state: dict[str, Any] = field(default_factory=empty_state)
    revision: int = 0
    exists: bool = False

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> ActivityItem:
        if not item or not item.get("activity_state"):
            return cls()
        return cls(
            state=copy_state(json.loads(item["activity_state"])),
            revision=int(item.get(ACTIVITY_REVISION) or 0),
            exists=True,
        )

    def to_fields(self, customer_id: str, now: Any) -> dict[str, Any]:
        now_us = to_us(now) or 0
        return {
            "customer_id": customer_id,
            "activity_state": json.dumps(self.state, sort_keys=True, separators=(",", ":")),
            ACTIVITY_REVISION: self.revision,
            "expires_at": now_us // US_PER_SECOND + ACTIVITY_TTL_DAYS * 86_400,
        }


@dataclass(frozen=True)
class CustomerRecord:
    """Everything the segment function reads about one customer."""

    customer_id: str
    view: dict[str, Any]  # PROFILE + SCORES + CONSENT + SEGMENTS fields (segflow.store.customers.merge_view)
    segments: SegmentsItem
    activity: ActivityItem
    has_profile: bool  # a live profile: present and not merged into another one


class SegmentItems:
    """Reads records and writes the SEGMENTS and ACTIVITY items through the shared item store."""

    def __init__(self, items: CustomerItemStore) -> None:
        self.items = items

    def records(self, customer_ids: Iterable[str]) -> dict[str, CustomerRecord]:
        ids = list(dict.fromkeys(customer_ids))
        found = self.items.get(ids, RECORD_KINDS)
        records = {}
        for customer_id in ids:
            items = found.get(customer_id, {})
            profile = items.get(PROFILE)
            view = merge_view({k: v for k, v in items.items() if k != ACTIVITY})
            view.setdefault("customer_id", customer_id)
            records[customer_id] = CustomerRecord(
                customer_id=customer_id,
                view=view,
                segments=SegmentsItem.from_item(items.get(SEGMENTS)),
                activity=ActivityItem.from_item(items.get(ACTIVITY)),
                has_profile=bool(profile) and not profile.get("merged_into"),
            )
        return records

    def put_segments(self, updates: Mapping[str, SegmentsItem], now_iso: str) -> list[str]:
        """Conditional puts; returns the customers whose item changed meanwhile (re-read and retry)."""
        fields = {c: item.to_fields(c, now_iso) for c, item in updates.items()}
        return self.items.put_if_newer(SEGMENTS, fields, SEGMENTS_REVISION)

    def put_activity(self, customer_id: str, item: ActivityItem, now: Any) -> bool:
        fields = {customer_id: item.to_fields(customer_id, now)}
        return not self.items.put_if_newer(ACTIVITY, fields, ACTIVITY_REVISION)


class SnapshotStore(Protocol):
    """JSON documents replaced with compare-and-set: write(..., etag) fails when the object changed."""

    def read(self, key: str) -> tuple[dict[str, Any] | None, str | None]: ...
    def write(self, key: str, document: Mapping[str, Any], etag: str | None) -> bool: ...


class S3SnapshotStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def read(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        from botocore.exceptions import ClientError

        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None, None
            raise
        return json.loads(response["Body"].read()), response["ETag"]

    def write(self, key: str, document: Mapping[str, Any], etag: str | None) -> bool:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            body = _json_bytes(document)
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **condition)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in PRECONDITION_CODES:
                return False
            raise
        return True


class InMemorySnapshotStore:
    def __init__(self) -> None:
        self.documents: dict[str, tuple[dict[str, Any], str]] = {}
        self._writes = 0

    def read(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        if key not in self.documents:
            return None, None
        document, etag = self.documents[key]
        return json.loads(json.dumps(document)), etag

    def write(self, key: str, document: Mapping[str, Any], etag: str | None) -> bool:
        current = self.documents.get(key)
        if (current[1] if current else None) != etag:
            return False
        self._writes += 1
        self.documents[key] = (json.loads(_json_bytes(document)), f"v{self._writes}")
        return True


def read_optional(objects: ObjectStore, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    return objects.get_bytes(key) if objects.exists(key) else None


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
