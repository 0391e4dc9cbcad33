"""CLV and churn models: time-split training, JSON artifact, numpy inference, metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from segflow.scoring import build_features, predict_value, train_value_models
from segflow.scoring.rate_dropout import fit_rate_dropout, loss_and_gradient
from segflow.scoring import bgnbd
from segflow.scoring.value_inference import (
    btyd_summary_of,
    expected_spend,
    spend_components,
    standardized,
)


@pytest.fixture(scope="module")
def trained(shop: tuple, shop_as_of: pd.Timestamp) -> tuple[dict, dict, pd.DataFrame]:
    orders, events = shop
    artifact, estimators = train_value_models(orders, events, shop_as_of, return_estimators=True)
    return (
        json.loads(json.dumps(artifact, allow_nan=False)),
        estimators,
        build_features(orders, events, shop_as_of),
    )


def test_artifact_layout_and_metrics(trained: tuple) -> None:
    artifact, _, _ = trained
    assert artifact["kind"] == "segflow.value_models" and artifact["schema_version"] == 1
    assert artifact["clv"]["horizon_days"] == 365 and artifact["churn"]["horizon_days"] == 90
    assert artifact["clv"]["schema_version"] == 2
    btyd = artifact["clv"]["btyd"]
    assert btyd["weight"] == 0.25 and set(btyd["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(btyd["gamma_gamma"]) == {"p", "q", "v"}
    assert "log_email_opens" in artifact["clv"]["inputs"]  # the activity feed varies, so it is used
    clv, churn = artifact["metrics"]["clv"], artifact["metrics"]["churn"]
    assert clv["training_windows_days"] == [91, 182, 365]  # two years of history: the full horizon fits
    assert clv["n_validation_customers"] > 100 and clv["converged"]
    assert clv["spearman"] > 0.3 and clv["rate_dropout_alone"]["spearman"] > 0.3
    assert clv["btyd"] == "used"
    assert 0.5 < clv["total_predicted_over_actual"] < 2.0
    assert churn["auc"] > 0.7
    assert abs(churn["mean_predicted"] - churn["churn_rate"]) < 0.1
    for importance in (clv["feature_importance"], churn["feature_importance"]):
        assert set(importance) == set(artifact["clv"]["inputs"])
        assert sum(importance.values()) == pytest.approx(1.0)


def test_numpy_inference_equals_the_fitted_estimators(trained: tuple) -> None:
    artifact, estimators, features = trained
    predicted = predict_value(artifact, features)
    churn_z = standardized(artifact["churn"], features)
    np.testing.assert_allclose(
        predicted["churn_probability"],
        estimators["churn"].predict_proba(churn_z)[:, 1],
        rtol=1e-12,
        atol=1e-15,
    )
    clv_z = standardized(artifact["clv"], features)
    np.testing.assert_allclose(
        predicted["clv_predicted"],
        estimators["clv"].predict(clv_z, btyd_summary_of(features), 365.0),
        rtol=1e-12,
    )
    assert (predicted["clv_predicted"] >= 0).all()
    assert predicted["churn_probability"].between(0, 1).all()


def test_clv_is_the_weighted_mean_of_rate_dropout_and_btyd(trained: tuple) -> None:
    artifact, _, features = trained
    clv = artifact["clv"]
    rate_dropout = expected_spend(*spend_components(clv, standardized(clv, features)), 200.0)
    summary = btyd_summary_of(features)
    btyd = bgnbd.expected_spend(clv["btyd"], *summary.T, 200.0)
    assert not np.allclose(rate_dropout, btyd, rtol=0.05)  # the two parts really differ
    np.testing.assert_allclose(
        predict_value(artifact, features, 200.0)["clv_predicted"],
        0.75 * rate_dropout + 0.25 * btyd,
        rtol=1e-12,
    )
    # an artifact without the BTYD part (CLV schema 1) is the rate-dropout regression alone
    older = {**artifact, "clv": {k: v for k, v in clv.items() if k not in ("btyd", "schema_version")}}
    np.testing.assert_allclose(
        predict_value(older, features, 200.0)["clv_predicted"], rate_dropout, rtol=1e-12
    )
    with pytest.raises(ValueError, match="CLV schema_version"):
        predict_value({**artifact, "clv": {**clv, "schema_version": 3}}, features)


def test_btyd_weight_zero_trains_the_rate_dropout_alone(shop: tuple, shop_as_of: pd.Timestamp) -> None:
    orders, events = shop
    artifact = train_value_models(orders, events, shop_as_of, btyd_weight=0.0)
    assert artifact["clv"]["btyd"] is None and artifact["metrics"]["clv"]["btyd"] == "btyd_weight is 0"
    features = build_features(orders, events, shop_as_of)
    clv = artifact["clv"]
    np.testing.assert_allclose(
        predict_value(artifact, features)["clv_predicted"],
        expected_spend(*spend_components(clv, standardized(clv, features)), 365.0),
        rtol=1e-12,
    )
    assert artifact["metrics"]["clv"]["mae"] == artifact["metrics"]["clv"]["rate_dropout_alone"]["mae"]


def test_longer_horizons_predict_more_spend_but_saturate(trained: tuple) -> None:
    artifact, _, features = trained
    horizons = [30, 365, 3650]
    spend = np.column_stack([predict_value(artifact, features, h)["clv_predicted"] for h in horizons])
    assert (np.diff(spend, axis=1) > 0).all()
    assert (spend[:, 2] < 10 * spend[:, 1]).all()  # dropout bends the curve
    # the rate-dropout part saturates at its lifetime value (BG/NBD's need not: E[1/p] is infinite
    # when the Beta(a, b) dropout prior has a <= 1)
    rate_eta, hazard = spend_components(artifact["clv"], standardized(artifact["clv"], features))
    lifetime_value = np.exp(rate_eta) / hazard  # the limit for an endless horizon
    spend = np.column_stack([expected_spend(rate_eta, hazard, h) for h in [*horizons, 365_000]])
    assert (np.diff(spend, axis=1) >= 0).all()
    assert (spend[:, 3] <= lifetime_value * (1 + 1e-12)).all()
    settled = hazard * 365_000 > 30
    assert settled.any()
    np.testing.assert_allclose(spend[settled, 3], lifetime_value[settled], rtol=1e-9)


def test_future_orders_do_not_leak_into_training(
    shop: tuple, shop_as_of: pd.Timestamp, trained: tuple
) -> None:
    orders, events = shop
    future = orders.head(50).assign(
        order_id=lambda d: "future-" + d["order_id"],
        order_date=shop_as_of + pd.Timedelta(days=3),
        total=10_000.0,
    )
    again = train_value_models(pd.concat([orders, future]), events, shop_as_of)
    assert json.loads(json.dumps(again, allow_nan=False)) == trained[0]


def test_short_history_is_refused(orders_from_rows) -> None:
    orders = orders_from_rows(
        [("a", "1", "2024-01-01", 10.0, "completed"), ("b", "2", "2024-01-20", 10.0, "completed")]
    )
    with pytest.raises(ValueError, match="days of order history"):
        train_value_models(orders, None, "2024-02-01")


@pytest.mark.parametrize("power", [1.0, 1.5])
def test_rate_dropout_gradient_is_exact(power: float) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3))
    window = rng.choice([30.0, 90.0, 180.0], 300)
    spend = rng.gamma(0.5, 40, 300) * (rng.random(300) < 0.4)
    theta = rng.normal(scale=0.3, size=8)
    theta[0], theta[4] = -1.0, -5.0

    def loss(t: np.ndarray) -> float:
        return loss_and_gradient(t, z, window, spend, 0.05, power)[0]

    def gradient(t: np.ndarray) -> np.ndarray:
        return loss_and_gradient(t, z, window, spend, 0.05, power)[1]

    assert check_grad(loss, gradient, theta) < 1e-5 * max(1.0, np.linalg.norm(gradient(theta)))


def test_rate_dropout_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(3)
    n = 40_000
    z = rng.normal(size=(n, 2))
    window = rng.choice([30.0, 120.0, 360.0], n)
    rate = np.exp(-1.0 + 0.5 * z[:, 0])
    hazard = np.exp(np.log(1 / 200) + 0.6 * z[:, 1])
    mean = rate * (1 - np.exp(-hazard * window)) / hazard
    spend = rng.poisson(mean).astype(float)
    fit = fit_rate_dropout(z, window, spend, alpha=1e-6)
    assert fit.converged
    assert fit.rate_intercept == pytest.approx(-1.0, abs=0.05)
    np.testing.assert_allclose(fit.rate_coef, [0.5, 0.0], atol=0.05)
    assert fit.hazard_intercept == pytest.approx(np.log(1 / 200), abs=0.15)
    np.testing.assert_allclose(fit.hazard_coef, [0.0, 0.6], atol=0.12)
