"""Recency, frequency and monetary value per customer, quintile-style scores and named segments.

Scores follow ``score = 1 + floor(5 * (rank_min - 1) / n)``: rank_min - 1 is the number of scored
customers with a strictly smaller value, so equal values always share a score. Recency is ranked on
the negated days so that a more recent customer scores higher.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from segflow.scoring.orders import (
    NS_PER_DAY,
    PreparedOrders,
    customer_index,
    from_fixed_point,
    prepare_orders,
)
from segflow.scoring.rfm_segments import segment_grid

# Metric behind each score; recency is scored on its negation.
_SCORED = (("r_score", "recency_days", -1), ("f_score", "frequency", 1), ("m_score", "monetary", 1))


def compute_rfm(
    orders: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    segments: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per customer with a completed order up to ``as_of``, indexed by customer_id (sorted).

    recency_days: whole days from the last completed order to as_of; frequency: distinct completed
    orders; monetary: completed totals minus refunds; r/f/m_score 1..5; rfm_segment from (r, f).
    """
    return rfm_from_prepared(prepare_orders(orders, as_of), segments)


def rfm_from_prepared(prepared: PreparedOrders, segments: Mapping[str, Any] | None = None) -> pd.DataFrame:
    grid = segment_grid(segments)
    n = prepared.n_customers
    last_ns = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_ns, prepared.code, prepared.timestamp_ns)
    # Integer-valued float sums are exact, hence independent of row order.
    net = np.bincount(prepared.code, weights=prepared.amount, minlength=n) - np.bincount(
        prepared.refund_code, weights=prepared.refund_amount, minlength=n
    )
    metrics = {
        "recency_days": (prepared.as_of_ns - last_ns) // NS_PER_DAY,
        "frequency": np.bincount(prepared.code, minlength=n).astype(np.int64),
        "monetary": from_fixed_point(net),
    }
    scores = {score: rank_scores(sign * metrics[metric]) for score, metric, sign in _SCORED}
    return pd.DataFrame(
        {**metrics, **scores, "rfm_segment": _segment_column(grid, scores["r_score"], scores["f_score"])},
        index=customer_index(prepared),
    )


def _segment_column(grid: np.ndarray, r_score: np.ndarray, f_score: np.ndarray) -> pd.Categorical:
    """Categorical built from grid positions: no per-customer string objects."""
    names, cell_codes = np.unique(grid.ravel().astype(str), return_inverse=True)
    codes = cell_codes[(r_score - 1) * 5 + (f_score - 1)] if len(r_score) else np.empty(0, dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=list(names))


def rank_scores(values: np.ndarray) -> np.ndarray:
    """1..5 scores from min-ranks; equal values get equal scores whatever their order."""
    n = len(values)
    return (1 + (5 * count_smaller(values)) // max(n, 1)).astype(np.int64)


def count_smaller(values: np.ndarray) -> np.ndarray:
    """rank_min - 1: how many values are strictly smaller than each value."""
    order = np.argsort(values)  # ties form runs whatever their order, so no stable sort is needed
    ordered = values[order]
    run_start = np.ones(len(values), dtype=bool)
    run_start[1:] = ordered[1:] != ordered[:-1]
    first_of_run = np.where(run_start, np.arange(len(values)), 0)
    np.maximum.accumulate(first_of_run, out=first_of_run)
    smaller = np.empty(len(values), dtype=np.int64)
    smaller[order] = first_of_run
    return smaller


def rfm_thresholds(rfm: pd.DataFrame) -> dict[str, Any]:
    """Breakpoints that reproduce the batch scores for one customer (JSON-serialisable).

    For s = 2..5, entry s - 2 is the smallest value scoring at least s (largest number of days for
    recency), or None when no customer reached s.
    """
    thresholds: dict[str, Any] = {"n_customers": len(rfm)}
    for score, metric, sign in _SCORED:
        signed = sign * rfm[metric].to_numpy()
        scores = rfm[score].to_numpy()
        breakpoints = []
        for s in range(2, 6):
            reached = signed[scores >= s]
            breakpoints.append(None if len(reached) == 0 else _plain(sign * reached.min()))
        thresholds[metric] = breakpoints
    return thresholds


def score_one(
    recency_days: float, frequency: float, monetary: float, thresholds: Mapping[str, Any]
) -> tuple[int, int, int]:
    """(r, f, m) for one customer, equal to the batch scores for any value present in that batch."""
    r = 1 + sum(1 for b in thresholds["recency_days"] if b is not None and recency_days <= b)
    f = 1 + sum(1 for b in thresholds["frequency"] if b is not None and frequency >= b)
    m = 1 + sum(1 for b in thresholds["monetary"] if b is not None and monetary >= b)
    return r, f, m


def _plain(value: Any) -> int | float:
    return value.item() if isinstance(value, np.generic) else value
