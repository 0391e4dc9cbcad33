"""Engineered inputs of the CLV and churn models, computed from build_features output (numpy only).

The core set describes the buy-till-you-die state of a customer: repeat purchase days, age, time since
the last purchase, a dormancy term (repeat days x log of how much longer the customer has been around
than active: the quantity behind BG/NBD's probability of being alive) and order values. Engagement
counts join when the training data has an activity feed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

Column = Callable[[pd.DataFrame], np.ndarray]


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64)


def _log1p(name: str) -> Column:
    return lambda f: np.log1p(np.maximum(np.nan_to_num(_col(f, name)), 0.0))


def _dormancy(f: pd.DataFrame) -> np.ndarray:
    repeat_days, active_span, age = _col(f, "btyd_frequency"), _col(f, "btyd_recency"), _col(f, "btyd_T")
    return repeat_days * np.log((age + 1.0) / (active_span + 1.0))


CORE: dict[str, Column] = {
    "log_repeat_days": _log1p("btyd_frequency"),
    "log_age_days": _log1p("btyd_T"),
    "log_days_since_order": _log1p("recency_days"),
    "has_repeat": lambda f: (_col(f, "btyd_frequency") > 0).astype(np.float64),
    "dormancy": _dormancy,
    "log_avg_order_value": _log1p("avg_order_value"),
    "log_repeat_order_value": _log1p("btyd_monetary"),
}
ENGAGEMENT: dict[str, Column] = {
    "log_email_opens": _log1p("email_opens"),
    "log_email_clicks": _log1p("email_clicks"),
    "log_page_views": _log1p("page_views"),
    "log_cart_adds": _log1p("cart_adds"),
    "unsubscribed": lambda f: (np.nan_to_num(_col(f, "unsubscribes")) > 0).astype(np.float64),
}
ALL: dict[str, Column] = {**CORE, **ENGAGEMENT}


def engineer(features: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Matrix (n_customers x len(names)) of the named engineered inputs."""
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise ValueError(f"unknown value-model inputs: {unknown}")
    if not names:
        return np.empty((len(features), 0))
    return np.column_stack([ALL[name](features) for name in names])
