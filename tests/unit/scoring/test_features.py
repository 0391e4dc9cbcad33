"""Behaviour features per customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
from segflow.scoring import build_features
from segflow.scoring.features import FEATURE_COLUMNS


def test_order_and_engagement_features(orders_from_rows) -> None:
    orders = orders_from_rows(
        [
            ("a", "1", "2024-01-01T10:00:00Z", 40.0, "completed"),
            ("a", "2", "2024-03-01T10:00:00Z", 60.0, "completed"),
            ("a", "3", "2024-03-02T10:00:00Z", 60.0, "refunded"),
            ("b", "4", "2024-03-25T10:00:00Z", 25.0, "completed"),
        ]
    )
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "zed", "a"],
            "event_type": [
                "email_open",
                "email_open",
                "page_view",
                "product_view",
                "unsubscribe",
                "email_open",
                "email_click",
            ],
            "timestamp": pd.to_datetime(
                [
                    "2024-03-20",
                    "2023-06-01",
                    "2024-03-30",
                    "2024-03-29",
                    "2024-03-30",
                    "2024-03-30",
                    "2024-04-05",
                ],
                utc=True,
            ),
        }
    )
    features = build_features(orders, events, "2024-03-31T10:00:00Z", recent_days=90)
    assert list(features.columns) == list(FEATURE_COLUMNS)
    a, b = features.loc["a"], features.loc["b"]
    assert (a["recency_days"], a["frequency"], a["monetary"], a["gross_spend"]) == (30, 2, 40.0, 100.0)
    assert (a["avg_order_value"], a["tenure_days"], a["refund_amount"]) == (50.0, 90, 60.0)
    assert (a["btyd_frequency"], a["btyd_recency"], a["btyd_T"], a["mean_gap_days"]) == (1, 60, 90, 60.0)
    # the window is (as_of - 90 days, as_of]: the order exactly 90 days back falls outside
    assert (a["orders_recent"], a["spend_recent"]) == (1, 60.0)
    # the 2023 open is outside the window, the April click is after as_of
    assert (a["email_opens"], a["email_clicks"], a["page_views"]) == (1, 0, 1)
    assert a["days_since_activity"] == 1
    assert (b["page_views"], b["unsubscribes"], b["frequency"]) == (1, 1, 1)
    assert np.isnan(b["mean_gap_days"])
    assert "zed" not in features.index  # events without orders are not scored
    assert features.attrs["as_of"].startswith("2024-03-31T10:00:00")


def test_without_events_engagement_is_zero(shop: tuple, shop_as_of: pd.Timestamp) -> None:
    orders, events = shop
    without = build_features(orders, None, shop_as_of)
    with_events = build_features(orders, events, shop_as_of)
    assert (without[["email_opens", "page_views"]] == 0).all().all()
    assert without["days_since_activity"].isna().all()
    assert with_events["email_opens"].sum() > 0
    order_columns = [
        c
        for c in FEATURE_COLUMNS
        if c
        not in (
            "email_opens",
            "email_clicks",
            "page_views",
            "cart_adds",
            "checkouts",
            "unsubscribes",
            "days_since_activity",
        )
    ]
    pd.testing.assert_frame_equal(without[order_columns], with_events[order_columns])
