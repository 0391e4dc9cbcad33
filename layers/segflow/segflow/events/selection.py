"""Customer selections in events: inline ids, or an S3 manifest when there are too many."""
from __future__ import annotations

import json

from segflow.events.schemas import MAX_INLINE_IDS, CustomerSelection
from segflow.store.objects import ObjectStore


def select(objects: ObjectStore, ids: list[str], manifest_key: str, everyone: bool = False) -> CustomerSelection:
    ids = sorted(set(ids))
    if len(ids) <= MAX_INLINE_IDS:
        return CustomerSelection(count=len(ids), customer_ids=ids, everyone=everyone)
    objects.put_bytes(manifest_key, json.dumps(ids).encode(), "application/json")
    return CustomerSelection(count=len(ids), customer_ids_key=manifest_key, everyone=everyone)


def resolve(objects: ObjectStore, selection: CustomerSelection) -> list[str]:
    if selection.customer_ids_key:
        return json.loads(objects.get_bytes(selection.customer_ids_key))
    return list(selection.customer_ids)
