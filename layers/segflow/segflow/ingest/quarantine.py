"""Why a row was rejected or flagged: reasons, quarantined rows, and their JSON Lines form."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class Reason:
    field: str  # canonical field name; "customer_id|email" for a missing one-of group; "*" for the row
    rule: str  # one of cleaning.RULES
    value: str | None  # the raw value, truncated to MAX_VALUE_CHARS
    message: str


@dataclass
class QuarantinedRow:
    row: int  # 1-based row number in the file
    reasons: list[Reason]
    record: dict[str, str | None] = field(default_factory=dict)  # the raw row as read (frame column -> cell)


def truncate(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def rule_counts(rows: Iterable[QuarantinedRow]) -> dict[str, int]:
    """How many quarantined rows each rule caught (a row with two reasons counts under both); no PII."""
    return dict(Counter(rule for row in rows for rule in {r.rule for r in row.reasons}))


def warning_counts(warnings: Iterable[tuple[int, Reason]]) -> dict[str, int]:
    return dict(Counter(reason.rule for _, reason in warnings))


def to_jsonl(rows: Iterable[QuarantinedRow], *, dataset: str, source_name: str) -> bytes:
    """One JSON object per quarantined row: dataset, file, row, reasons, record."""
    lines = (
        json.dumps(
            {
                "dataset": dataset,
                "file": source_name,
                "row": row.row,
                "reasons": [asdict(r) for r in row.reasons],
                "record": row.record,
            },
            ensure_ascii=False,
        )
        for row in rows
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")
