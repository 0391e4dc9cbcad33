"""Real-time refresh of one profile after a CustomerActivity event, without pandas or numpy.

`refresh(view, state, now, ...)` returns the fields to overlay on the profile view before evaluating its
segments: the activity aggregates at `now` and, when the last nightly RFM thresholds are given, recency,
frequency, monetary, their scores and the named RFM segment. Frequency and monetary are the nightly values
plus the completed orders (minus refunds) in the activity state dated after the nightly run's as_of, so
an order is never counted twice. Scores use the thresholds exactly as segflow.scoring.rfm.score_one does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segflow.segments import activity
from segflow.segments.timeutil import to_us
from segflow.segments.triggers import DEFAULT_TRIGGERS, TriggerSettings

# The default (r_score, f_score) -> segment table of segflow.scoring.rfm_segments, as rectangles.
DEFAULT_RFM_TABLE: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "Champions": ((5, 5), (4, 5)),
    "Loyal Customers": ((3, 4), (4, 5)),
    "Potential Loyalists": ((4, 5), (2, 3)),
    "New Customers": ((5, 5), (1, 1)),
    "Promising": ((4, 4), (1, 1)),
    "Need Attention": ((3, 3), (3, 3)),
    "About to Sleep": ((3, 3), (1, 2)),
    "At Risk": ((1, 2), (3, 4)),
    "Can't Lose Them": ((1, 2), (5, 5)),
    "Hibernating": ((1, 2), (1, 2)),
}


def default_grid() -> list[list[str]]:
    """grid[r - 1][f - 1] -> segment name."""
    grid = [["" for _ in range(5)] for _ in range(5)]
    for name, ((r_lo, r_hi), (f_lo, f_hi)) in DEFAULT_RFM_TABLE.items():
        for r in range(r_lo, r_hi + 1):
            for f in range(f_lo, f_hi + 1):
                grid[r - 1][f - 1] = name
    return grid


def score_one(
    recency_days: float, frequency: float, monetary: float, thresholds: Mapping[str, Any]
) -> tuple[int, int, int]:
    """(r, f, m) from the nightly breakpoints (see segflow.scoring.rfm.rfm_thresholds)."""
    r = 1 + sum(1 for b in thresholds["recency_days"] if b is not None and recency_days <= b)
    f = 1 + sum(1 for b in thresholds["frequency"] if b is not None and frequency >= b)
    m = 1 + sum(1 for b in thresholds["monetary"] if b is not None and monetary >= b)
    return r, f, m


def refresh(
    view: Mapping[str, Any],
    state: Mapping[str, Any] | None,
    now: Any,
    thresholds: Mapping[str, Any] | None = None,
    scored_as_of: Any = None,
    grid: Sequence[Sequence[str]] | None = None,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, Any]:
    """Fields to overlay on `view` (which holds the nightly scores) after real-time activity.

    `state` should be seeded from the nightly records (segflow.scoring.activity_batch.compute_states) for
    exact windowed counts; the view's last-* timestamps are merged in either way.
    """
    state = activity.merge_states(activity.seed_from_aggregates(view), state)
    fields = activity.aggregates(state, now, settings)
    if thresholds is None or fields["last_order_at"] is None:
        return fields
    now_us, as_of_us = to_us(now), to_us(scored_as_of)
    new_orders, new_amount = 0, 0
    for ts, amount, status in state["orders"].values():
        if (as_of_us is None or ts > as_of_us) and ts <= now_us:
            if status == "completed":
                new_orders += 1
                new_amount += amount
            elif status == "refunded":
                new_amount -= abs(amount)
    frequency = int(view.get("frequency") or 0) + new_orders
    monetary = float(view.get("monetary") or 0.0) + new_amount / activity.AMOUNT_SCALE
    recency_days = fields["days_since_last_order"]
    if frequency == 0:
        return fields
    r, f, m = score_one(recency_days, frequency, monetary, thresholds)
    names = grid or default_grid()
    return {
        **fields,
        "recency_days": recency_days,
        "frequency": frequency,
        "monetary": monetary,
        "r_score": r,
        "f_score": f,
        "m_score": m,
        "rfm_segment": names[r - 1][f - 1],
    }
