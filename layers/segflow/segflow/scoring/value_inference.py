"""Apply the JSON CLV / churn artifact with numpy alone (no scikit-learn/scipy).

CLV model ("rate-dropout regression"): while active a customer spends at rate exp(x.a) per day and
stops with hazard h = exp(x.b) per day, so expected spend over t days is
exp(x.a) * (1 - exp(-h t)) / h. The horizon enters the formula itself, which is what lets a model
trained on shorter windows predict a longer horizon.
Churn model: logistic regression, P(no completed order within the churn horizon) = sigmoid(x.w + c).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from segflow.scoring.artifact import require_kind
from segflow.scoring.value_features import engineer

VALUE_KIND = "segflow.value_models"
HAZARD_CLIP = (-20.0, 5.0)  # keeps exp() finite; same clip as in training


def standardized(model: Mapping[str, Any], features: pd.DataFrame) -> np.ndarray:
    values = engineer(features, model["inputs"])
    mean = np.asarray(model["scaler"]["mean"], dtype=np.float64)
    scale = np.asarray(model["scaler"]["scale"], dtype=np.float64)
    return (values - mean) / scale


def linear(intercept: float, coef: Any, z: np.ndarray) -> np.ndarray:
    """intercept + z.coef without BLAS: a matrix-vector product this thin gains nothing from BLAS
    threads, which spin and crawl on a busy host."""
    return intercept + np.einsum("ij,j->i", z, np.asarray(coef, dtype=np.float64))


def spend_components(model: Mapping[str, Any], z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log daily spend rate, daily dropout hazard) per customer."""
    rate_eta = linear(model["rate"]["intercept"], model["rate"]["coef"], z)
    hazard_eta = linear(model["hazard"]["intercept"], model["hazard"]["coef"], z)
    return rate_eta, np.exp(np.clip(hazard_eta, *HAZARD_CLIP))


def expected_spend(rate_eta: np.ndarray, hazard: np.ndarray, horizon_days: float) -> np.ndarray:
    active_days = -np.expm1(-hazard * horizon_days) / hazard  # expected days still active within horizon
    return np.exp(rate_eta) * active_days


def churn_logit(model: Mapping[str, Any], z: np.ndarray) -> np.ndarray:
    return linear(model["intercept"], model["coef"], z)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def predict_value(
    artifact: Mapping[str, Any], features: pd.DataFrame, clv_horizon_days: float | None = None
) -> pd.DataFrame:
    """clv_predicted (expected spend over the horizon) and churn_probability, indexed like features."""
    require_kind(artifact, VALUE_KIND)
    clv = artifact["clv"]
    horizon = clv["horizon_days"] if clv_horizon_days is None else clv_horizon_days
    rate_eta, hazard = spend_components(clv, standardized(clv, features))
    churn = artifact["churn"]
    return pd.DataFrame(
        {
            "clv_predicted": expected_spend(rate_eta, hazard, horizon),
            "churn_probability": sigmoid(churn_logit(churn, standardized(churn, features))),
        },
        index=features.index,
    )
