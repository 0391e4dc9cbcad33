"""Which behaviour features the clusters use and how they are transformed (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# (feature, transform). Counts and money are heavy-tailed, so they are compared on a log scale.
CORE_FEATURES: tuple[tuple[str, str], ...] = (
    ("recency_days", "identity"),
    ("frequency", "log1p"),
    ("monetary", "log1p_positive"),
    ("avg_order_value", "log1p_positive"),
    ("tenure_days", "identity"),
)
# Used only when they vary in the training data (no activity feed -> no engagement dimension).
ENGAGEMENT_FEATURES: tuple[tuple[str, str], ...] = (
    ("email_opens", "log1p"),
    ("email_clicks", "log1p"),
    ("page_views", "log1p"),
)

_TRANSFORMS = {
    "identity": lambda x: x,
    "log1p": lambda x: np.log1p(np.maximum(x, 0.0)),
    "log1p_positive": lambda x: np.log1p(np.maximum(x, 0.0)),
}
_INVERSES = {"identity": lambda x: x, "log1p": np.expm1, "log1p_positive": np.expm1}


def transform(features: pd.DataFrame, spec: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Matrix (n_customers x n_features) of transformed values; NaN stays NaN for the caller to fill."""
    missing = [item["name"] for item in spec if item["name"] not in features.columns]
    if missing:
        raise ValueError(f"features are missing columns needed by the cluster model: {missing}")
    columns = [
        _TRANSFORMS[item["transform"]](features[item["name"]].to_numpy(dtype=np.float64)) for item in spec
    ]
    return np.column_stack(columns) if columns else np.empty((len(features), 0))


def inverse(values: np.ndarray, spec: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Back to the features' own units (days, orders, money) for labels and descriptions."""
    return np.column_stack([_INVERSES[item["transform"]](values[:, j]) for j, item in enumerate(spec)])
