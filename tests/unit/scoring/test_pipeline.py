"""train_all / score_all: everything per customer, JSON in, JSON thresholds out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from segflow.scoring import score_all, score_one, train_all


@pytest.fixture(scope="module")
def models(shop: tuple, shop_as_of: pd.Timestamp) -> dict:
    orders, events = shop
    return json.loads(json.dumps(train_all(orders, events, shop_as_of, k_range=(3, 5)), allow_nan=False))


def test_score_all_returns_every_column(shop: tuple, shop_as_of: pd.Timestamp, models: dict) -> None:
    orders, events = shop
    result = score_all(orders, events, shop_as_of, models)
    customers = result.customers
    assert list(customers.columns) == [
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "rfm_segment",
        "cluster_id",
        "cluster_label",
        "clv_predicted",
        "churn_probability",
        "clv_tier",
        "churn_risk",
        "churn_reasons",
        "clv_reasons",
    ]
    assert customers.notna().all().all()
    assert customers.index.is_unique and customers.index.is_monotonic_increasing
    thresholds = json.loads(json.dumps(result.thresholds, allow_nan=False))
    assert thresholds["value_version"] == models["value"]["version"]
    assert thresholds["clusters_version"] == models["clusters"]["version"]
    row = customers.iloc[0]
    assert score_one(row["recency_days"], row["frequency"], row["monetary"], thresholds["rfm"]) == (
        row["r_score"],
        row["f_score"],
        row["m_score"],
    )
    assert customers["clv_tier"].value_counts(normalize=True)["high"] == pytest.approx(0.2, abs=0.02)


def test_rfm_only_without_models(shop: tuple, shop_as_of: pd.Timestamp) -> None:
    orders, _ = shop
    result = score_all(orders, None, shop_as_of)
    assert "cluster_id" not in result.customers and "clv_tier" not in result.customers
    assert set(result.thresholds) == {"rfm"}


def test_previous_tiers_are_honoured(shop: tuple, shop_as_of: pd.Timestamp, models: dict) -> None:
    orders, events = shop
    first = score_all(orders, events, shop_as_of, models, reasons=0).customers
    bounds = score_all(orders, events, shop_as_of, models, reasons=0).thresholds["clv_tier"]
    # customers just above the high boundary who were medium yesterday stay medium today
    near = first[(first["clv_predicted"] >= bounds["high"]) & (first["clv_predicted"] < bounds["high"] * 1.1)]
    assert len(near) > 0
    previous = first[["clv_tier", "churn_risk"]].copy()
    previous.loc[near.index, "clv_tier"] = "medium"
    second = score_all(orders, events, shop_as_of, models, previous=previous, reasons=0).customers
    assert (second.loc[near.index, "clv_tier"] == "medium").all()
    others = first.index.difference(near.index)
    assert (second.loc[others, "clv_tier"] == first.loc[others, "clv_tier"]).all()


def test_short_history_trains_clusters_only(orders_from_rows) -> None:
    rows = [(f"c{i}", f"o{i}", f"2024-01-{1 + i % 28:02d}", 10.0 + i, "completed") for i in range(40)]
    rows += [(f"c{i}", f"p{i}", "2024-02-01", 5.0 * i, "completed") for i in range(0, 40, 3)]
    orders = orders_from_rows(rows)
    models = train_all(orders, None, "2024-02-15", k_range=(3, 4))
    assert set(models) == {"clusters"}
    result = score_all(orders, None, "2024-02-15", models)
    assert {"cluster_label", "rfm_segment"} <= set(result.customers.columns)
    assert "clv_predicted" not in result.customers
