"""BTYD summary: same definitions as lifetimes' summary_data_from_transaction_data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from segflow.scoring import btyd_summary


def test_same_day_orders_are_one_purchase(orders_from_rows) -> None:
    orders = orders_from_rows(
        [
            ("a", "1", "2024-01-01T08:00:00Z", 10.0, "completed"),
            ("a", "2", "2024-01-01T20:00:00Z", 5.0, "completed"),  # same day as the first: merged
            ("a", "3", "2024-01-11T09:00:00Z", 30.0, "completed"),
            ("a", "4", "2024-01-21T09:00:00Z", 50.0, "completed"),
            ("a", "5", "2024-01-25T09:00:00Z", 99.0, "cancelled"),
            ("b", "6", "2024-01-30T23:59:00Z", 7.0, "completed"),
        ]
    )
    summary = btyd_summary(orders, "2024-01-31T06:00:00Z")
    assert summary.loc["a"].tolist() == [2.0, 20.0, 30.0, 40.0]  # frequency, recency, T, mean repeat value
    assert summary.loc["b"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert list(summary.columns) == ["frequency", "recency", "T", "monetary_value"]


@pytest.mark.parametrize("as_of", ["1997-03-15", "1997-09-30", "1998-06-30"])
def test_cdnow_summary_matches_lifetimes_exactly(
    cdnow_raw: pd.DataFrame, cdnow_orders: pd.DataFrame, as_of: str
) -> None:
    from lifetimes.utils import summary_data_from_transaction_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = summary_data_from_transaction_data(
            cdnow_raw, "customer_id", "date", monetary_value_col="dollar_value", observation_period_end=as_of
        ).sort_index()
    ours = btyd_summary(cdnow_orders, as_of)
    assert ours.index.tolist() == expected.index.tolist()
    for column in ("frequency", "recency", "T"):
        assert np.array_equal(ours[column].to_numpy(), expected[column].to_numpy()), column
    # lifetimes averages floats in its own order; segflow sums exact fixed-point cents: equal to ~1 ulp
    np.testing.assert_allclose(ours["monetary_value"], expected["monetary_value"], rtol=1e-12, atol=1e-12)
