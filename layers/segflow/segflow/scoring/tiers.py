"""high / medium / low tiers from scores, with hysteresis so customers near a boundary do not flip nightly.

A customer keeps its previous tier until its score crosses the boundary by more than ``margin`` (a
fraction of the boundary value): moving up needs score >= boundary * (1 + margin), moving down needs
score < boundary * (1 - margin). Without a previous tier the plain boundaries apply.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

TIERS = ("low", "medium", "high")
DEFAULT_CLV_SHARES = {"high": 0.2, "medium": 0.3}  # top 20 %, next 30 %, rest low
DEFAULT_CHURN_THRESHOLDS = {"high": 0.7, "medium": 0.4}  # churn probabilities are calibrated: fixed cut-offs
DEFAULT_MARGIN = 0.1


def tier_thresholds(
    scores: pd.Series | np.ndarray, high_share: float = 0.2, medium_share: float = 0.3
) -> dict[str, float]:
    """Boundaries putting the top ``high_share`` of scores in high and the next ``medium_share`` in medium."""
    if not (0 < high_share and 0 <= medium_share and high_share + medium_share <= 1):
        raise ValueError("shares must be positive and add up to at most 1")
    values = np.asarray(scores, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return {"high": float("inf"), "medium": float("inf")}
    return {
        "high": float(np.quantile(values, 1 - high_share)),
        "medium": float(np.quantile(values, 1 - high_share - medium_share)),
    }


def _rank(scores: np.ndarray, high: float, medium: float) -> np.ndarray:
    return np.where(scores >= high, 2, np.where(scores >= medium, 1, 0))


def assign_tiers(
    scores: pd.Series,
    thresholds: Mapping[str, float],
    previous: pd.Series | None = None,
    margin: float = DEFAULT_MARGIN,
) -> pd.Series:
    """Tier per customer; ``previous`` (tiers by customer id, missing = none) enables hysteresis."""
    if margin < 0:
        raise ValueError("margin must be >= 0")
    values = scores.to_numpy(dtype=np.float64)
    high, medium = float(thresholds["high"]), float(thresholds["medium"])
    plain = _rank(values, high, medium)
    if previous is None:
        ranks = plain
    else:
        prior = previous.reindex(scores.index).map({tier: i for i, tier in enumerate(TIERS)})
        prior_rank = prior.to_numpy(dtype=np.float64, na_value=np.nan)
        up = _rank(values, high + margin * abs(high), medium + margin * abs(medium))
        down = _rank(values, high - margin * abs(high), medium - margin * abs(medium))
        known = ~np.isnan(prior_rank)
        kept = np.where(up > prior_rank, up, np.where(down < prior_rank, down, prior_rank))
        ranks = np.where(known, kept, plain).astype(np.int64)
    ranks = np.where(np.isnan(values), 0, ranks)
    return pd.Series(np.asarray(TIERS, dtype=object)[ranks], index=scores.index, dtype="str")


def tier_with_hysteresis(
    previous_tier: str | None, score: float, thresholds: Mapping[str, float], margin: float = DEFAULT_MARGIN
) -> str:
    """The same rule for one customer (real-time path)."""
    previous = None if previous_tier is None else pd.Series([previous_tier])
    return str(assign_tiers(pd.Series([score]), thresholds, previous, margin).iloc[0])
