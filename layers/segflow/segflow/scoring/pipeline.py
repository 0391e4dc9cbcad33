"""One call to train every model, one call to score every customer (what the train / score functions wrap).

score_all needs only numpy and pandas; train_all imports the training modules (scikit-learn, scipy)
when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from segflow.scoring.cluster_inference import assign_clusters, cluster_labels
from segflow.scoring.features import features_from_prepared
from segflow.scoring.orders import prepare_orders
from segflow.scoring.reasons import explain
from segflow.scoring.rfm import rfm_from_prepared, rfm_thresholds
from segflow.scoring.tiers import DEFAULT_CHURN_THRESHOLDS, DEFAULT_MARGIN, assign_tiers, tier_thresholds
from segflow.scoring.value_inference import predict_value


@dataclass(frozen=True)
class ScoreResult:
    customers: pd.DataFrame  # one row per scored customer, indexed by customer_id
    thresholds: dict[str, Any]  # JSON-serialisable: what real-time scoring of one customer needs


def train_all(
    orders: pd.DataFrame,
    events: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    *,
    clv_horizon_days: int = 365,
    churn_horizon_days: int = 90,
    k_range: tuple[int, int] = (3, 8),
    random_state: int = 0,
    previous_clusters: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """{"clusters": cluster artifact, "value": CLV/churn artifact}, both JSON-serialisable.

    "value" is left out while the order history is too short for its time split (InsufficientHistory);
    score_all then scores RFM and clusters only.
    """
    from segflow.scoring.clustering import train_clusters
    from segflow.scoring.prediction import InsufficientHistory, train_value_models

    features = features_from_prepared(prepare_orders(orders, as_of), events)
    models: dict[str, dict[str, Any]] = {
        "clusters": train_clusters(features, k_range, random_state, previous_clusters),  # type: ignore[dict-item]
    }
    try:
        models["value"] = train_value_models(  # type: ignore[assignment]
            orders, events, as_of, clv_horizon_days, churn_horizon_days, random_state=random_state
        )
    except InsufficientHistory:
        pass
    return models


def score_all(
    orders: pd.DataFrame,
    events: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    segments: Mapping[str, Any] | None = None,
    previous: pd.DataFrame | None = None,
    clv_shares: tuple[float, float] = (0.2, 0.3),
    churn_thresholds: Mapping[str, float] = DEFAULT_CHURN_THRESHOLDS,
    margin: float = DEFAULT_MARGIN,
    reasons: int = 3,
) -> ScoreResult:
    """RFM for everyone; cluster, CLV, churn, tiers and reasons where the matching model is given.

    ``previous`` (last run's clv_tier / churn_risk by customer_id) turns on tier hysteresis.
    """
    models = models or {}
    prepared = prepare_orders(orders, as_of)
    rfm = rfm_from_prepared(prepared, segments)
    thresholds: dict[str, Any] = {"rfm": rfm_thresholds(rfm)}
    parts = [rfm]
    if "clusters" in models or "value" in models:
        features = features_from_prepared(prepared, events)
        if "clusters" in models:
            cluster_ids = assign_clusters(models["clusters"], features)
            parts += [cluster_ids, cluster_labels(models["clusters"], cluster_ids)]
            thresholds["clusters_version"] = models["clusters"]["version"]
        if "value" in models:
            parts.append(
                _value_columns(
                    models["value"],
                    features,
                    previous,
                    clv_shares,
                    churn_thresholds,
                    margin,
                    reasons,
                    thresholds,
                )
            )
    return ScoreResult(customers=pd.concat(parts, axis=1), thresholds=thresholds)


def _value_columns(
    artifact: Mapping[str, Any],
    features: pd.DataFrame,
    previous: pd.DataFrame | None,
    clv_shares: tuple[float, float],
    churn_thresholds: Mapping[str, float],
    margin: float,
    reasons: int,
    thresholds: dict[str, Any],
) -> pd.DataFrame:
    predicted = predict_value(artifact, features)
    clv_bounds = tier_thresholds(predicted["clv_predicted"], *clv_shares)
    previous_clv = previous["clv_tier"] if previous is not None and "clv_tier" in previous else None
    previous_churn = previous["churn_risk"] if previous is not None and "churn_risk" in previous else None
    predicted["clv_tier"] = assign_tiers(predicted["clv_predicted"], clv_bounds, previous_clv, margin)
    predicted["churn_risk"] = assign_tiers(
        predicted["churn_probability"], churn_thresholds, previous_churn, margin
    )
    thresholds.update(
        {
            "clv_tier": clv_bounds,
            "churn_risk": dict(churn_thresholds),
            "tier_margin": margin,
            "value_version": artifact["version"],
        }
    )
    if reasons > 0:
        predicted = predicted.join(
            explain(artifact, features, predicted[["clv_tier", "churn_risk"]], reasons)
        )
    return predicted
