"""What segflow last confirmed in a destination for one contact (pk=CUST#<id>, sk=SYNC#<destination>)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from segflow.sync.desired import Membership, split_memberships

# Destination statuses (lower-cased) that are the person's (or the destination's consent) refusal, not a
# mere deletion. "compliance" is a refusal whose exact state was not told.
OBSERVED_OPT_OUTS = frozenset({"unsubscribed", "cleaned", "compliance", "forgotten"})
# ... and those under which segflow writes nothing but removals: a refusal, or the contact is gone.
BLOCKING_STATUSES = OBSERVED_OPT_OUTS | {"archived", "deleted", "blocklisted"}
# ... and under which there is no member left to remove from anything.
GONE_STATUSES = frozenset({"forgotten", "deleted", "blocklisted"})


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def fields_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(fields)).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SyncState:
    customer_id: str
    destination: str
    email: str | None = None  # the address the destination knows the contact by
    fields: Mapping[str, Any] = field(default_factory=dict)  # last pushed values
    fields_hash: str | None = None
    tags: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()
    destination_id: str | None = None  # Mailchimp subscriber hash, HubSpot record id
    status: str | None = None  # as last confirmed by the destination, lower-cased
    last_result: Mapping[str, Any] | None = None
    synced_at: str | None = None
    version: int = 0  # optimistic locking of the DynamoDB item
    # The address segflow last read this contact's status for in the destination, and when (HubSpot: records
    # and subscription status; Mailchimp: an audience scan of its opt-outs). A first push waits for it.
    checked_email: str | None = None
    checked_at: str | None = None

    @property
    def known(self) -> bool:
        """The destination confirmed it holds this contact."""
        return self.destination_id is not None and (self.status or "") not in GONE_STATUSES

    @property
    def blocked(self) -> bool:
        return (self.status or "") in BLOCKING_STATUSES

    def memberships(self) -> frozenset[Membership]:
        return frozenset(
            {("tag", t) for t in self.tags}
            | {("segment", s) for s in self.segments}
            | {("list", li) for li in self.lists}
        )

    def with_memberships(self, pairs: Iterable[Membership]) -> SyncState:
        grouped = split_memberships(pairs)
        return replace(self, tags=grouped["tags"], segments=grouped["segments"], lists=grouped["lists"])

    def with_fields(self, fields: Mapping[str, Any]) -> SyncState:
        return replace(self, fields=dict(fields), fields_hash=fields_hash(fields))

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "destination": self.destination,
            "email": self.email,
            "fields": dict(self.fields),
            "fields_hash": self.fields_hash,
            "tags": sorted(self.tags),
            "segments": sorted(self.segments),
            "lists": sorted(self.lists),
            "destination_id": self.destination_id,
            "status": self.status,
            "last_result": dict(self.last_result) if self.last_result is not None else None,
            "synced_at": self.synced_at,
            "version": self.version,
            "checked_email": self.checked_email,
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncState:
        return cls(
            customer_id=str(data["customer_id"]),
            destination=str(data["destination"]),
            email=data.get("email"),
            fields=dict(data.get("fields") or {}),
            fields_hash=data.get("fields_hash"),
            tags=frozenset(data.get("tags") or ()),
            segments=frozenset(data.get("segments") or ()),
            lists=frozenset(data.get("lists") or ()),
            destination_id=data.get("destination_id"),
            status=data.get("status"),
            last_result=data.get("last_result"),
            synced_at=data.get("synced_at"),
            version=int(data.get("version") or 0),
            checked_email=data.get("checked_email"),
            checked_at=data.get("checked_at"),
        )


def empty_state(customer_id: str, destination: str) -> SyncState:
    return SyncState(customer_id=customer_id, destination=destination)
