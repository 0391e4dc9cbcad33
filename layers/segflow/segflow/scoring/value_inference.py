"""Apply the JSON CLV / churn artifact with numpy alone (no scikit-learn/scipy).

CLV model ("rate-dropout regression"): while active a customer spends at rate exp(x.a) per day and
stops with hazard h = exp(x.b) per day, so expected spend over t days is
exp(x.a) * (1 - exp(-h t)) / h. The horizon enters the formula itself, which is what lets a model
trained on shorter windows predict a longer horizon. CLV schema 2 averages it with a BG/NBD x
Gamma-Gamma prediction (bgnbd.py) from the customer's buy-till-you-die summary, weighted by
clv.btyd.weight; schema 1 artifacts (no "btyd" part) are the rate-dropout regression alone.
Churn model: logistic regression, P(no completed order within the churn horizon) = sigmoid(x.w + c).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from segflow.scoring import bgnbd
from segflow.scoring.artifact import require_kind
from segflow.scoring.value_features import engineer

VALUE_KIND = "segflow.value_models"
CLV_SCHEMA_VERSION = 2
HAZARD_CLIP = (-20.0, 5.0)  # keeps exp() finite; same clip as in training
BTYD_INPUTS = ("btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary")


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


def btyd_summary_of(features: pd.DataFrame) -> np.ndarray:
    """(x, t_x, T, m) columns of the buy-till-you-die summary, one row per customer."""
    return features.loc[:, list(BTYD_INPUTS)].to_numpy(dtype=np.float64)


def blend(
    rate_dropout_spend: np.ndarray, btyd: Mapping[str, Any] | None, summary: np.ndarray, horizon_days: float
) -> np.ndarray:
    """Weighted mean of the rate-dropout and BG/NBD x Gamma-Gamma expected spend (both are means)."""
    if btyd is None:
        return rate_dropout_spend
    weight = float(btyd["weight"])
    btyd_spend = bgnbd.expected_spend(btyd, *summary.T, horizon_days)
    return (1.0 - weight) * rate_dropout_spend + weight * btyd_spend


def clv_spend(clv: Mapping[str, Any], features: pd.DataFrame, horizon_days: float) -> np.ndarray:
    version = clv.get("schema_version", 1)
    if version not in (1, CLV_SCHEMA_VERSION):
        raise ValueError(f"unsupported CLV schema_version {version!r}")
    rate_eta, hazard = spend_components(clv, standardized(clv, features))
    spend = expected_spend(rate_eta, hazard, horizon_days)
    return blend(spend, clv.get("btyd"), btyd_summary_of(features), horizon_days)


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
    churn = artifact["churn"]
    return pd.DataFrame(
        {
            "clv_predicted": clv_spend(clv, features, horizon),
            "churn_probability": sigmoid(churn_logit(churn, standardized(churn, features))),
        },
        index=features.index,
    )
