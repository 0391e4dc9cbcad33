"""Per-destination totals from sync-log.jsonl (one line per sync run of one destination)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class DestinationTotals:
    runs: int = 0
    contacts_pushed: int = 0
    api_calls: int = 0
    retries: int = 0
    errors: int = 0
    duration_s: float = 0.0


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (list, dict)):  # a list of error records counts by its length; its text is not shown
        return len(value)
    return int(value) if isinstance(value, (int, float)) and value > 0 else 0


def sync_totals(lines: Iterable[Mapping[str, Any]]) -> dict[str, DestinationTotals]:
    totals: dict[str, DestinationTotals] = {}
    for line in lines:
        destination = line.get("destination")
        if not isinstance(destination, str) or not destination:
            destination = "unknown"
        row = totals.setdefault(destination, DestinationTotals())
        row.runs += 1
        row.contacts_pushed += _int(line.get("contacts_pushed"))
        row.api_calls += _int(line.get("api_calls"))
        row.retries += _int(line.get("retries"))
        row.errors += _int(line.get("errors"))
        seconds = line.get("duration_s")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
            row.duration_s += float(seconds)
    return dict(sorted(totals.items()))
