"""Sync state per contact and destination in the single table (pk=CUST#<id>, sk=SYNC#<destination>).

Only the sync function of that destination writes the item. Writes are conditional on `version`, so two
appliers touching one contact at once cannot silently overwrite each other: the loser is told and retries.
Last pushed fields and the last result are stored as JSON strings: they keep floats, empty strings (a
cleared field) and nesting exactly, which DynamoDB's native types would not.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

from segflow.sync.state import SyncState

BATCH_GET = 100
SK_PREFIX = "SYNC#"


def sync_key(customer_id: str, destination: str) -> dict[str, str]:
    return {"pk": f"CUST#{customer_id}", "sk": f"{SK_PREFIX}{destination}"}


def to_item(state: SyncState) -> dict[str, Any]:
    item: dict[str, Any] = {
        **sync_key(state.customer_id, state.destination),
        "customer_id": state.customer_id,
        "destination": state.destination,
        "fields_json": json.dumps(dict(state.fields), sort_keys=True, separators=(",", ":")),
        "tags": sorted(state.tags),
        "segments": sorted(state.segments),
        "lists": sorted(state.lists),
        "version": state.version,
    }
    optional = {
        "email": state.email,
        "fields_hash": state.fields_hash,
        "destination_id": state.destination_id,
        "status": state.status,
        "synced_at": state.synced_at,
        "checked_email": state.checked_email,
        "checked_at": state.checked_at,
        "last_result_json": None
        if state.last_result is None
        else json.dumps(dict(state.last_result), default=str),
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def from_item(item: dict[str, Any]) -> SyncState:
    version = item.get("version", 0)
    return SyncState(
        customer_id=str(item["customer_id"]),
        destination=str(item["destination"]),
        email=item.get("email"),
        fields=json.loads(item.get("fields_json") or "{}"),
        fields_hash=item.get("fields_hash"),
        tags=frozenset(item.get("tags") or ()),
        segments=frozenset(item.get("segments") or ()),
        lists=frozenset(item.get("lists") or ()),
        destination_id=item.get("destination_id"),
        status=item.get("status"),
        last_result=json.loads(item["last_result_json"]) if item.get("last_result_json") else None,
        synced_at=item.get("synced_at"),
        version=int(version) if isinstance(version, (int, Decimal)) else 0,
        checked_email=item.get("checked_email"),
        checked_at=item.get("checked_at"),
    )


class DynamoSyncStateStore:
    def __init__(self, table: Any, concurrency: int = 8) -> None:
        self._table = table
        self._client = table.meta.client
        self._concurrency = concurrency
        self.reads = 0  # batch_get_item calls
        self.writes = 0  # successful puts

    def get_states(self, destination: str, customer_ids: Iterable[str]) -> dict[str, SyncState]:
        keys = [sync_key(c, destination) for c in dict.fromkeys(customer_ids)]
        found: dict[str, SyncState] = {}
        for start in range(0, len(keys), BATCH_GET):
            request = {self._table.name: {"Keys": keys[start : start + BATCH_GET], "ConsistentRead": True}}
            while request:
                self.reads += 1
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table.name, []):
                    state = from_item(item)
                    found[state.customer_id] = state
                request = response.get("UnprocessedKeys") or {}
        return found

    def put_states(self, states: Sequence[SyncState]) -> list[str]:
        from botocore.exceptions import ClientError

        def put(state: SyncState) -> str | None:
            kwargs: dict[str, Any] = {"Item": to_item(state)}
            if state.version <= 1:
                kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                kwargs["ConditionExpression"] = "version = :previous"
                kwargs["ExpressionAttributeValues"] = {":previous": state.version - 1}
            try:
                self._table.put_item(**kwargs)
            except ClientError as err:
                if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return state.customer_id
                raise
            return None

        if not states:
            return []
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            lost = [c for c in pool.map(put, states) if c]
        self.writes += len(states) - len(lost)
        return lost


class InMemorySyncStateStore:
    """Same contract as DynamoSyncStateStore (version checks included), for tests and local runs."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], SyncState] = {}  # states are immutable: stored as given
        self.writes = 0
        self._lock = threading.Lock()

    def get_states(self, destination: str, customer_ids: Iterable[str]) -> dict[str, SyncState]:
        with self._lock:
            return {
                c: self.items[(c, destination)]
                for c in dict.fromkeys(customer_ids)
                if (c, destination) in self.items
            }

    def put_states(self, states: Sequence[SyncState]) -> list[str]:
        lost = []
        with self._lock:
            for state in states:
                key = (state.customer_id, state.destination)
                stored = self.items[key].version if key in self.items else 0
                if state.version != stored + 1:
                    lost.append(state.customer_id)
                    continue
                self.items[key] = replace(state, fields=dict(state.fields))
                self.writes += 1
        return lost

    def all_states(self, destination: str) -> dict[str, SyncState]:
        with self._lock:
            return {c: s for (c, d), s in self.items.items() if d == destination}
