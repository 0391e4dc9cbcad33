"""Work items: a plan cut into pieces one destination call batch wide, stored in S3, pointed to by SQS.

Each item holds the full contact plans of its contacts (so it can be re-checked against fresh state when it
is applied) and is applied in a fixed order: upserts, then tag/segment/list changes, then unsubscribes.
Its id is a hash of the run, the destination, the contact ids and the content, so planning the same state
again yields the same ids (a duplicate SQS message or a re-run of sync-plan is recognisable).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segflow.store.objects import ObjectStore
from segflow.sync.limits import CONTACTS_PER_ITEM, check_destination
from segflow.sync.planner import ContactPlan, Plan, chunks, item_calls
from segflow.sync.state import canonical_json

FORMAT_VERSION = 1
DEFAULT_PREFIX = "sync/work-items"


def work_item_id(run_id: str, destination: str, contacts: Sequence[ContactPlan]) -> str:
    content = canonical_json(
        {
            "run_id": run_id,
            "destination": destination,
            "customer_ids": [c.customer_id for c in contacts],
            "contacts": [c.to_dict() for c in contacts],
        }
    )
    return hashlib.sha256(content.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WorkItem:
    work_item_id: str
    run_id: str
    destination: str
    contacts: tuple[ContactPlan, ...]

    @classmethod
    def build(cls, run_id: str, destination: str, contacts: Sequence[ContactPlan]) -> WorkItem:
        ordered = tuple(sorted(contacts, key=lambda c: c.customer_id))
        return cls(
            work_item_id(run_id, destination, ordered), run_id, check_destination(destination), ordered
        )

    @property
    def customer_ids(self) -> list[str]:
        return [c.customer_id for c in self.contacts]

    def estimated_calls(self) -> dict[str, int]:
        return item_calls(self.destination, self.contacts)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "work_item_id": self.work_item_id,
                "run_id": self.run_id,
                "destination": self.destination,
                "contacts": [c.to_dict() for c in self.contacts],
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkItem:
        data = json.loads(text)
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported work item format {data.get('format')!r}")
        item = cls(
            data["work_item_id"],
            data["run_id"],
            check_destination(data["destination"]),
            tuple(ContactPlan.from_dict(c) for c in data["contacts"]),
        )
        if work_item_id(item.run_id, item.destination, item.contacts) != item.work_item_id:
            raise ValueError("work item content does not match its id")
        return item


def chunk_plan(plan: Plan, run_id: str, contacts_per_item: int | None = None) -> list[WorkItem]:
    """Items of at most one member batch (Mailchimp 500) or one upsert batch (HubSpot 100) each."""
    size = contacts_per_item or CONTACTS_PER_ITEM.get(plan.destination, 1)
    return [WorkItem.build(run_id, plan.destination, chunk) for chunk in chunks(plan.contacts, size)]


# ---- storage and queue pointers --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkItemPointer:
    """The SQS message body: where the item is, and enough to log and route it without reading S3."""

    bucket: str
    key: str
    work_item_id: str
    run_id: str
    destination: str
    contacts: int

    def to_message(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_message(cls, body: str | Mapping[str, Any]) -> WorkItemPointer:
        data = json.loads(body) if isinstance(body, str) else dict(body)
        return cls(
            str(data["bucket"]),
            str(data["key"]),
            str(data["work_item_id"]),
            str(data["run_id"]),
            check_destination(str(data["destination"])),
            int(data["contacts"]),
        )


class WorkItemStore:
    """Work item payloads as JSON objects under `<prefix>/<run id>/<destination>/<item id>.json`."""

    def __init__(self, objects: ObjectStore, prefix: str = DEFAULT_PREFIX) -> None:
        self.objects = objects
        self.prefix = prefix.rstrip("/")

    def key_for(self, item: WorkItem) -> str:
        return f"{self.prefix}/{item.run_id}/{item.destination}/{item.work_item_id}.json"

    def put(self, item: WorkItem) -> WorkItemPointer:
        key = self.key_for(item)
        self.objects.put_bytes(key, item.to_json().encode(), content_type="application/json")
        return WorkItemPointer(
            self.objects.bucket, key, item.work_item_id, item.run_id, item.destination, len(item.contacts)
        )

    def get(self, pointer: WorkItemPointer) -> WorkItem:
        item = WorkItem.from_json(self.objects.get_bytes(pointer.key))
        if item.work_item_id != pointer.work_item_id:
            raise ValueError("the stored work item is not the one the message points to")
        return item
