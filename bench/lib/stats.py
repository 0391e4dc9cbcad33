"""Median (min–max) over repeats, and the formatting every table uses."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def spread(values: Iterable[float]) -> dict[str, Any]:
    """{"median", "min", "max", "runs", "values"}; an empty input gives an empty dict."""
    data = [float(v) for v in values if v is not None]
    if not data:
        return {}
    return {
        "median": statistics.median(data),
        "min": min(data),
        "max": max(data),
        "runs": len(data),
        "values": data,
    }


def spread_of(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The spread of one numeric field over a list of per-repeat results."""
    return spread(run[key] for run in runs if run.get(key) is not None)


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """Per-repeat ratios (each pair measured in the same repeat), then their spread."""
    return spread(n / d for n, d in zip(numerators, denominators, strict=True) if d)


def fmt_number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_spread(
    s: dict[str, Any] | None, digits: int = 2, unit: str = "", fmt: Callable[[float, int], str] = fmt_number
) -> str:
    """ "12.3 (11.9–13.0)"; a single run shows just its value; missing data shows "n/a"."""
    if not s:
        return "n/a"
    median = fmt(s["median"], digits) + unit
    low, high = fmt(s["min"], digits), fmt(s["max"], digits)
    if s["runs"] < 2 or low == high:  # no spread worth showing at this precision
        return median
    return f"{median} ({low}–{high})"


def fmt_ratio(s: dict[str, Any] | None, digits: int = 1) -> str:
    return fmt_spread(s, digits, "x")


def fmt_percent(s: dict[str, Any] | None, digits: int = 1) -> str:
    if not s:
        return "n/a"
    return fmt_spread({**s, **{k: s[k] * 100 for k in ("median", "min", "max")}}, digits, "%")
