"""Sync runs: one item per run and destination counting the work items still to finish, so the worker that
finishes a run's last item announces SyncCompleted exactly once.

Item: pk="SYNCRUN#<run_id>", sk="<destination>" with the trigger, when it started, what was planned, `total`
and `remaining` work items, the ids of the items already counted (a string set: a redelivered item is never
counted twice; the check and the decrement are one conditional UpdateItem) and the run's counters, summed as
items finish. Counts and ids only, never personal data; the item expires (expires_at) after RUN_TTL_DAYS.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

RUN_TTL_DAYS = 30
ITEM_KEY_CHARS = 20  # of a 32-hex work item id: keeps 10,000 counted items well under DynamoDB's 400 KB
_COUNTER = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_FIXED = frozenset(
    {
        "pk",
        "sk",
        "run_id",
        "destination",
        "trigger",
        "started_at",
        "planned_json",
        "total",
        "remaining",
        "done_items",
        "item_errors",
        "expires_at",
    }
)


def run_pk(run_id: str) -> str:
    return f"SYNCRUN#{run_id}"


@dataclass(frozen=True)
class RunTotals:
    """A finished run as the ledger summed it."""

    run_id: str
    destination: str
    trigger: str
    started_at: str
    total: int
    counters: dict[str, int] = field(default_factory=dict)
    item_errors: list[str] = field(default_factory=list)
    planned: dict[str, Any] = field(default_factory=dict)


class RunLedger(Protocol):
    def start(
        self,
        run_id: str,
        destination: str,
        total: int,
        trigger: str,
        started_at: datetime,
        planned: Mapping[str, Any],
    ) -> None:
        """Record a run about to queue `total` items (before the first message is sent)."""
        ...

    def finish_item(
        self,
        run_id: str,
        destination: str,
        item_id: str,
        counters: Mapping[str, int],
        error: str | None = None,
    ) -> RunTotals | None:
        """Count a finished item once; the run's totals when it was the last one, else None."""
        ...

    def release(self, run_id: str, destination: str, count: int) -> RunTotals | None:
        """Give up on `count` items that were never queued; the totals when nothing else is left."""
        ...


def _check_counters(counters: Mapping[str, int]) -> dict[str, int]:
    for name in counters:
        if not _COUNTER.match(name) or name in _FIXED:
            raise ValueError(f"invalid run counter name {name!r}")
    return {name: int(value) for name, value in counters.items()}


def _totals(item: Mapping[str, Any]) -> RunTotals:
    counters = {k: int(v) for k, v in item.items() if k not in _FIXED and isinstance(v, (int, Decimal))}
    return RunTotals(
        run_id=str(item["run_id"]),
        destination=str(item["destination"]),
        trigger=str(item.get("trigger") or ""),
        started_at=str(item.get("started_at") or ""),
        total=int(item.get("total") or 0),
        counters=counters,
        item_errors=sorted(item.get("item_errors") or ()),
        planned=json.loads(item.get("planned_json") or "{}"),
    )


def new_run(
    run_id: str, destination: str, total: int, trigger: str, started_at: datetime, planned: Mapping[str, Any]
) -> dict[str, Any]:
    """The attributes a run starts with, in either ledger."""
    return {
        "run_id": run_id,
        "destination": destination,
        "trigger": trigger,
        "started_at": started_at.isoformat(),
        "total": total,
        "remaining": total,
        "planned_json": json.dumps(dict(planned), sort_keys=True, default=str),
    }


class DynamoRunLedger:
    def __init__(self, table: Any) -> None:
        self._table = table

    def start(
        self,
        run_id: str,
        destination: str,
        total: int,
        trigger: str,
        started_at: datetime,
        planned: Mapping[str, Any],
    ) -> None:
        self._table.put_item(
            Item={
                "pk": run_pk(run_id),
                "sk": destination,
                **new_run(run_id, destination, total, trigger, started_at, planned),
                "expires_at": int((started_at + timedelta(days=RUN_TTL_DAYS)).timestamp()),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def finish_item(
        self,
        run_id: str,
        destination: str,
        item_id: str,
        counters: Mapping[str, int],
        error: str | None = None,
    ) -> RunTotals | None:
        from botocore.exceptions import ClientError

        counts = _check_counters(counters)
        key = item_id[:ITEM_KEY_CHARS]
        adds = ["remaining :minus_one", "done_items :done", *(f"{name} :c_{name}" for name in counts)]
        values: dict[str, Any] = {
            ":minus_one": -1,
            ":done": {key},
            ":key": key,
            **{f":c_{name}": value for name, value in counts.items()},
        }
        if error:
            adds.append("item_errors :error")
            values[":error"] = {error[:200]}
        try:
            response = self._table.update_item(
                Key={"pk": run_pk(run_id), "sk": destination},
                UpdateExpression="ADD " + ", ".join(adds),
                ConditionExpression="attribute_exists(pk) AND NOT contains(done_items, :key)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None  # counted before (a redelivery), or the run expired
            raise
        item = response["Attributes"]
        return _totals(item) if int(item["remaining"]) == 0 else None

    def release(self, run_id: str, destination: str, count: int) -> RunTotals | None:
        if count <= 0:
            return None
        response = self._table.update_item(
            Key={"pk": run_pk(run_id), "sk": destination},
            UpdateExpression="ADD remaining :minus, unsent_items :count",
            ExpressionAttributeValues={":minus": -count, ":count": count},
            ConditionExpression="attribute_exists(pk)",
            ReturnValues="ALL_NEW",
        )
        item = response["Attributes"]
        return _totals(item) if int(item["remaining"]) == 0 else None


class InMemoryRunLedger:
    """Same contract, for unit tests."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start(
        self,
        run_id: str,
        destination: str,
        total: int,
        trigger: str,
        started_at: datetime,
        planned: Mapping[str, Any],
    ) -> None:
        with self._lock:
            if (run_id, destination) in self.items:
                raise ValueError(f"run {run_id} already started for {destination}")
            self.items[(run_id, destination)] = {
                **new_run(run_id, destination, total, trigger, started_at, planned),
                "done_items": set(),
            }

    def finish_item(
        self,
        run_id: str,
        destination: str,
        item_id: str,
        counters: Mapping[str, int],
        error: str | None = None,
    ) -> RunTotals | None:
        counts = _check_counters(counters)
        key = item_id[:ITEM_KEY_CHARS]
        with self._lock:
            item = self.items.get((run_id, destination))
            if item is None or key in item["done_items"]:
                return None
            item["done_items"].add(key)
            item["remaining"] -= 1
            for name, value in counts.items():
                item[name] = item.get(name, 0) + value
            if error:
                item.setdefault("item_errors", set()).add(error[:200])
            return _totals(item) if item["remaining"] == 0 else None

    def release(self, run_id: str, destination: str, count: int) -> RunTotals | None:
        if count <= 0:
            return None
        with self._lock:
            item = self.items[(run_id, destination)]
            item["remaining"] -= count
            item["unsent_items"] = item.get("unsent_items", 0) + count
            return _totals(item) if item["remaining"] == 0 else None
