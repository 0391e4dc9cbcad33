"""Tier thresholds and hysteresis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from segflow.scoring import assign_tiers, tier_thresholds, tier_with_hysteresis

BOUNDS = {"high": 100.0, "medium": 50.0}


def test_default_shares_split_20_30_50() -> None:
    scores = pd.Series(np.arange(1000, dtype=float))
    tiers = assign_tiers(scores, tier_thresholds(scores))
    assert tiers.value_counts().to_dict() == {"low": 500, "medium": 300, "high": 200}


def test_shares_are_validated() -> None:
    with pytest.raises(ValueError):
        tier_thresholds(pd.Series([1.0, 2.0]), 0.6, 0.6)


@pytest.mark.parametrize(
    ("previous", "score", "expected"),
    [
        (None, 101.0, "high"),
        (None, 99.0, "medium"),
        ("medium", 105.0, "medium"),  # above the boundary but inside the margin: stays
        ("medium", 110.0, "high"),  # crossed by the full margin: moves up
        ("high", 95.0, "high"),
        ("high", 89.0, "medium"),
        ("high", 40.0, "low"),  # far below: straight to low
        ("low", 54.0, "low"),
        ("low", 56.0, "medium"),
        ("medium", 46.0, "medium"),
        ("medium", 44.0, "low"),
        ("unknown-tier", 70.0, "medium"),  # unreadable history: plain boundaries
    ],
)
def test_hysteresis_rule(previous: str | None, score: float, expected: str) -> None:
    assert tier_with_hysteresis(previous, score, BOUNDS, margin=0.1) == expected


def test_vectorised_and_single_agree() -> None:
    rng = np.random.default_rng(0)
    scores = pd.Series(rng.uniform(0, 160, 500), index=[f"c{i}" for i in range(500)])
    previous = pd.Series(rng.choice(["low", "medium", "high", None], 500), index=scores.index)
    tiers = assign_tiers(scores, BOUNDS, previous, margin=0.1)
    for customer in scores.index:
        prior = previous[customer]
        assert tiers[customer] == tier_with_hysteresis(prior, scores[customer], BOUNDS, 0.1)


def test_a_customer_hovering_at_a_boundary_does_not_flip() -> None:
    rng = np.random.default_rng(1)
    nightly = 100 + rng.uniform(-8, 8, 60)  # wobbles around the high boundary within the 10 % margin
    tier = tier_with_hysteresis(None, nightly[0], BOUNDS)
    history = [tier]
    for score in nightly[1:]:
        tier = tier_with_hysteresis(tier, score, BOUNDS)
        history.append(tier)
    assert len(set(history)) == 1
    without = [tier_with_hysteresis(None, s, BOUNDS) for s in nightly]
    assert len(set(without)) == 2  # the plain rule would have flipped
