"""Markdown pieces for bench/RESULTS.md: tables, headline rows and verdicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MET = "met"
MISSED = "**MISSED**"
NOT_MEASURED = "not measured"


@dataclass
class SizeRow:
    """A headline figure measured at each size (orders)."""

    area: str
    figure: str
    values: dict[int, str] = field(default_factory=dict)
    target: str = "—"
    verdict: str = "—"


@dataclass
class FixedRow:
    """A headline figure that does not depend on the data size (per function, per contact, ...)."""

    area: str
    figure: str
    value: str
    target: str = "—"
    verdict: str = "—"


def verdict(ok: bool | None) -> str:
    if ok is None:
        return NOT_MEASURED
    return MET if ok else MISSED


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def orders_label(orders: int) -> str:
    return f"{orders:,} orders"


def size_table(rows: Sequence[SizeRow], sizes: Sequence[int]) -> list[str]:
    headers = ["area", "figure", *(f"{s:,} orders" for s in sizes), "target", "verdict"]
    return table(
        headers,
        ([r.area, r.figure, *(r.values.get(s, "—") for s in sizes), r.target, r.verdict] for r in rows),
    )


def fixed_table(rows: Sequence[FixedRow]) -> list[str]:
    return table(
        ["area", "figure", "value", "target", "verdict"],
        ([r.area, r.figure, r.value, r.target, r.verdict] for r in rows),
    )


def error_text(error: str | None, limit: int = 240) -> str:
    """One line of a failure, short enough for a table cell."""
    if not error:
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    text = lines[-1] if lines else error
    return text if len(text) <= limit else text[: limit - 1] + "…"
