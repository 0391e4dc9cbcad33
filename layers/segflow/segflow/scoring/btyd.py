"""Buy-till-you-die summary per customer, the statistics BG/NBD and Gamma-Gamma models are built on.

Same definitions as lifetimes' ``summary_data_from_transaction_data`` with daily periods: completed
orders are grouped per UTC calendar day (same-day orders are one purchase, amounts summed), then
frequency = purchase days - 1 (repeat purchases), recency = days from first to last purchase day,
T = days from first purchase day to the as_of day, monetary_value = mean amount of the repeat purchase
days (0 without repeats).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from segflow.scoring.orders import (
    NS_PER_DAY,
    PreparedOrders,
    customer_index,
    from_fixed_point,
    prepare_orders,
)

BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")


def btyd_summary(orders: pd.DataFrame | None, as_of: datetime | str | pd.Timestamp) -> pd.DataFrame:
    """frequency, recency, T, monetary_value (float64) indexed by customer_id."""
    return btyd_from_prepared(prepare_orders(orders, as_of))


def btyd_from_prepared(prepared: PreparedOrders) -> pd.DataFrame:
    n = prepared.n_customers
    day = prepared.timestamp_ns // NS_PER_DAY
    # One entry per (customer, day): sort by customer then day and keep run boundaries.
    order = np.lexsort((day, prepared.code))
    code, day_sorted, amount = prepared.code[order], day[order], prepared.amount[order]
    new_day = np.ones(len(code), dtype=bool)
    new_day[1:] = (code[1:] != code[:-1]) | (day_sorted[1:] != day_sorted[:-1])
    day_index = np.cumsum(new_day) - 1
    day_code = code[new_day]
    day_amount = np.bincount(day_index, weights=amount, minlength=len(day_code))
    day_value = day_sorted[new_day]

    purchase_days = np.bincount(day_code, minlength=n)
    first_day = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first_day, day_code, day_value)
    np.maximum.at(last_day, day_code, day_value)
    is_first = np.ones(len(day_code), dtype=bool)
    is_first[1:] = day_code[1:] != day_code[:-1]
    repeat_amount = np.bincount(day_code[~is_first], weights=day_amount[~is_first], minlength=n)

    frequency = (purchase_days - 1).astype(np.float64)
    monetary = np.where(frequency > 0, from_fixed_point(repeat_amount) / np.maximum(frequency, 1), 0.0)
    as_of_day = prepared.as_of_ns // NS_PER_DAY
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last_day - first_day).astype(np.float64),
            "T": (as_of_day - first_day).astype(np.float64),
            "monetary_value": monetary,
        },
        index=customer_index(prepared),
    )
