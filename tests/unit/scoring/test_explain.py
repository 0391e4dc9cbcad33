"""Plain-word reasons per customer."""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest
from segflow.scoring import build_features, explain, predict_value, train_value_models
from segflow.scoring.tiers import DEFAULT_CHURN_THRESHOLDS, assign_tiers, tier_thresholds


@pytest.fixture(scope="module")
def explained(shop: tuple, shop_as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    orders, events = shop
    artifact = train_value_models(orders, events, shop_as_of)
    features = build_features(orders, events, shop_as_of)
    predicted = predict_value(artifact, features)
    tiers = pd.DataFrame(
        {
            "clv_tier": assign_tiers(predicted["clv_predicted"], tier_thresholds(predicted["clv_predicted"])),
            "churn_risk": assign_tiers(predicted["churn_probability"], DEFAULT_CHURN_THRESHOLDS),
        }
    )
    return explain(artifact, features, tiers, top_n=3), features, tiers


def test_every_customer_gets_at_most_three_sentences(explained: tuple) -> None:
    reasons, features, _ = explained
    assert reasons.index.equals(features.index)
    for column in ("churn_reasons", "clv_reasons"):
        lengths = reasons[column].map(len)
        assert lengths.max() <= 3 and lengths.mean() > 1
        assert all(isinstance(s, str) and s for sentences in reasons[column] for s in sentences)


def test_lapsed_regulars_are_told_how_overdue_they_are(explained: tuple) -> None:
    reasons, features, tiers = explained
    overdue = features[
        (features["mean_gap_days"] * 3 < features["recency_days"]) & (tiers["churn_risk"] == "high")
    ]
    assert len(overdue) > 10
    pattern = re.compile(r"no order in (\d+) days, ([\d.]+)x longer than usual for them")
    mentioned = 0
    for customer, row in overdue.iterrows():
        for sentence in reasons.at[customer, "churn_reasons"]:
            match = pattern.fullmatch(sentence)
            if match:
                mentioned += 1
                assert int(match.group(1)) == int(row["recency_days"])
                assert float(match.group(2)) == pytest.approx(
                    row["recency_days"] / row["mean_gap_days"], abs=0.51
                )
    assert mentioned >= 0.5 * len(overdue)


def test_high_value_reasons_point_upwards(explained: tuple) -> None:
    reasons, features, tiers = explained
    top = tiers.index[tiers["clv_tier"] == "high"]
    sentences = [s for customer in top for s in reasons.at[customer, "clv_reasons"]]
    assert not any(s == "a single order so far" for s in sentences)
    assert any(re.fullmatch(r"\d+ orders on \d+ different days", s) for s in sentences)


def test_typical_baskets_are_not_given_as_reasons(explained: tuple) -> None:
    reasons, _, _ = explained
    sentences = [s for column in ("churn_reasons", "clv_reasons") for row in reasons[column] for s in row]
    assert any(s.startswith("average order") for s in sentences)
    assert not any("about the typical customer's" in s for s in sentences)


def test_the_bg_nbd_part_of_the_clv_blend_is_explained_too(shop: tuple, shop_as_of: pd.Timestamp) -> None:
    """With the blend turned all the way to BG/NBD x Gamma-Gamma and the regression made flat, every CLV
    reason comes from the BTYD part: frequent repeat buyers at the top, lapsed ones at the bottom."""
    orders, events = shop
    artifact = copy.deepcopy(train_value_models(orders, events, shop_as_of))
    clv = artifact["clv"]
    assert clv["btyd"] is not None
    clv["btyd"]["weight"] = 1.0
    for part in ("rate", "hazard"):
        clv[part]["coef"] = [0.0] * len(clv[part]["coef"])
    features = build_features(orders, events, shop_as_of)
    spend = predict_value(artifact, features)["clv_predicted"]
    tiers = pd.DataFrame({"clv_tier": assign_tiers(spend, tier_thresholds(spend))}, index=features.index)

    reasons = explain(artifact, features, tiers)["clv_reasons"]

    top = tiers.index[tiers["clv_tier"] == "high"]
    assert reasons[top].map(len).mean() >= 1
    repeat_sentence = re.compile(r"\d+ orders on \d+ different days")
    assert sum(any(repeat_sentence.fullmatch(s) for s in reasons[c]) for c in top) >= 0.5 * len(top)
    lapsed = features.index[(features["recency_days"] > 2 * features["mean_gap_days"]) & (tiers["clv_tier"] == "low")]
    assert len(lapsed) > 5
    assert sum(any(s.startswith("no order in") for s in reasons[c]) for c in lapsed) >= 0.5 * len(lapsed)
