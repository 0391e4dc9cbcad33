"""Per-customer behaviour features as of a point in time, shared by clustering and value models.

Every customer with a completed order up to ``as_of`` gets one row (indexed by customer_id); events of
other customers are ignored. Engagement counts cover the ``recent_days`` before as_of.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from segflow.scoring.btyd import btyd_from_prepared
from segflow.scoring.orders import NS_PER_DAY, PreparedOrders, from_fixed_point, prepare_orders, utc_epoch_ns

ENGAGEMENT_EVENTS = {
    "page_views": ("page_view", "product_view"),
    "cart_adds": ("cart_add",),
    "checkouts": ("checkout",),
    "email_opens": ("email_open",),
    "email_clicks": ("email_click",),
    "unsubscribes": ("unsubscribe",),
}
FEATURE_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary",
    "gross_spend",
    "avg_order_value",
    "tenure_days",
    "refund_amount",
    "orders_recent",
    "spend_recent",
    "btyd_frequency",
    "btyd_recency",
    "btyd_T",
    "btyd_monetary",
    "mean_gap_days",
    *ENGAGEMENT_EVENTS,
    "days_since_activity",
)


def build_features(
    orders: pd.DataFrame | None,
    events: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    recent_days: int = 90,
) -> pd.DataFrame:
    """Behaviour features (float64) per customer; see FEATURE_COLUMNS.

    mean_gap_days is NaN for customers with a single purchase day; days_since_activity is NaN for
    customers without any event up to as_of. ``attrs["as_of"]`` records the point in time.
    """
    return features_from_prepared(prepare_orders(orders, as_of), events, recent_days)


def features_from_prepared(
    prepared: PreparedOrders, events: pd.DataFrame | None, recent_days: int = 90
) -> pd.DataFrame:
    n = prepared.n_customers
    code, ts, amount = prepared.code, prepared.timestamp_ns, prepared.amount
    first_ns = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last_ns = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first_ns, code, ts)
    np.maximum.at(last_ns, code, ts)
    frequency = np.bincount(code, minlength=n).astype(np.float64)
    gross = from_fixed_point(np.bincount(code, weights=amount, minlength=n))
    refunds = from_fixed_point(np.bincount(prepared.refund_code, weights=prepared.refund_amount, minlength=n))
    recent = ts > prepared.as_of_ns - recent_days * NS_PER_DAY

    btyd = btyd_from_prepared(prepared)
    features = pd.DataFrame(
        {
            "recency_days": ((prepared.as_of_ns - last_ns) // NS_PER_DAY).astype(np.float64),
            "frequency": frequency,
            "monetary": gross - refunds,
            "gross_spend": gross,
            "avg_order_value": gross / np.maximum(frequency, 1),
            "tenure_days": ((prepared.as_of_ns - first_ns) // NS_PER_DAY).astype(np.float64),
            "refund_amount": refunds,
            "orders_recent": np.bincount(code[recent], minlength=n).astype(np.float64),
            "spend_recent": from_fixed_point(np.bincount(code[recent], weights=amount[recent], minlength=n)),
            "btyd_frequency": btyd["frequency"].to_numpy(),
            "btyd_recency": btyd["recency"].to_numpy(),
            "btyd_T": btyd["T"].to_numpy(),
            "btyd_monetary": btyd["monetary_value"].to_numpy(),
        },
        index=btyd.index,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        features["mean_gap_days"] = np.where(
            features["btyd_frequency"] > 0, features["btyd_recency"] / features["btyd_frequency"], np.nan
        )
    engagement = _engagement(events, features.index, prepared.as_of_ns, recent_days)
    result = pd.concat([features, engagement], axis=1)
    result.attrs["as_of"] = pd.Timestamp(prepared.as_of_ns, tz="UTC").isoformat()
    result.attrs["recent_days"] = recent_days
    return result


def _engagement(
    events: pd.DataFrame | None, index: pd.Index, as_of_ns: int, recent_days: int
) -> pd.DataFrame:
    n = len(index)
    columns = {name: np.zeros(n) for name in ENGAGEMENT_EVENTS}
    columns["days_since_activity"] = np.full(n, np.nan)
    if events is None or len(events) == 0 or n == 0:
        return pd.DataFrame(columns, index=index)
    ts = utc_epoch_ns(events["timestamp"])
    position = index.get_indexer(events["customer_id"].to_numpy(dtype=object))
    known = (position >= 0) & (ts <= as_of_ns) & (ts != np.iinfo(np.int64).min)
    recent = known & (ts > as_of_ns - recent_days * NS_PER_DAY)
    type_code, type_names = pd.factorize(events["event_type"].to_numpy(dtype=object))
    for name, types in ENGAGEMENT_EVENTS.items():
        rows = recent & np.isin(type_code, np.flatnonzero(np.isin(type_names, types)))
        columns[name] = np.bincount(position[rows], minlength=n).astype(np.float64)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, position[known], ts[known])
    seen = last > np.iinfo(np.int64).min
    columns["days_since_activity"][seen] = (as_of_ns - last[seen]) // NS_PER_DAY
    return pd.DataFrame(columns, index=index)
