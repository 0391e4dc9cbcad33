"""Data-quality figures from accounting.json and quarantine/<dataset>.jsonl: counts by rule, never values.

Quarantine rows carry the rejected record and the offending value (often an email): only the dataset,
field and rule names are read from them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("clean", "merged", "quarantined", "pending")
COUNTS = ("rows_in",) + OUTCOMES


@dataclass
class Quality:
    totals: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> rows_in/clean/merged/...
    drops: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (dataset, field, rule) -> rows
    warnings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (dataset, rule) -> rows

    @property
    def files_quarantined(self) -> list[dict[str, Any]]:
        return [d for d in self.drops if d["file_quarantined"]]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _name(value: Any, default: str = "unknown") -> str:
    return (
        str(value)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value)
        else default
    )


def from_accounting(accounting: Mapping[str, Any] | None) -> Quality:
    quality = Quality()
    if not isinstance(accounting, Mapping):
        return quality
    drops = [d for d in accounting.get("drops") or [] if isinstance(d, Mapping)]
    for drop in drops:
        dataset = _name(drop.get("dataset"))
        quality.drops.append(
            {
                "drop_id": _name(drop.get("drop_id"), "—"),
                "dataset": dataset,
                "source_key": _name(drop.get("source_key"), "—"),
                **{name: _count(drop.get(name)) for name in COUNTS},
                "file_quarantined": drop.get("file_quarantined") is True,
                "file_reason": _name(drop.get("file_reason"), "—"),
            }
        )
        for rule, rows in _rules(drop.get("quarantine_rules")):
            quality.reasons[(dataset, "—", rule)] += rows
        for rule, rows in _rules(drop.get("warning_rules")):
            quality.warnings[(dataset, rule)] += rows
    totals = accounting.get("totals")
    if isinstance(totals, Mapping) and totals:
        quality.totals = {
            _name(dataset): {name: _count(counts.get(name)) for name in COUNTS}
            for dataset, counts in totals.items()
            if isinstance(counts, Mapping)
        }
    else:  # older or partial files: add the drops up
        for drop in quality.drops:
            row = quality.totals.setdefault(drop["dataset"], dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                row[name] += drop[name]
    return quality


def _rules(value: Any) -> Iterable[tuple[str, int]]:
    if isinstance(value, Mapping):
        for rule, rows in value.items():
            if _count(rows):
                yield _name(rule), _count(rows)


def add_quarantine_rows(quality: Quality, dataset: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Count each quarantined row once per (field, rule) it broke. The rows name the field, so they replace
    the dataset's per-rule counts from accounting.json."""
    for key in [k for k in quality.reasons if k[0] == dataset]:
        del quality.reasons[key]
    for row in rows:
        row_dataset = _name(row.get("dataset"), dataset)
        reasons = row.get("reasons")
        pairs = {
            (_name(r.get("field"), "—"), _name(r.get("rule")))
            for r in (reasons if isinstance(reasons, list) else [])
            if isinstance(r, Mapping)
        } or {("—", "unknown")}
        for field_name, rule in pairs:
            quality.reasons[(row_dataset, field_name, rule)] += 1
