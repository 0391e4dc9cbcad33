"""Train the CLV and churn models on a time split of the history itself (training side: sklearn/scipy).

Snapshots: features are computed as of an earlier cutoff and the target is what happened in the
following window, ending at ``as_of``. CLV uses windows up to the horizon (shorter when the history is
too short; the rate-dropout form extrapolates to the horizon), churn uses consecutive cutoffs one churn
horizon apart. A fixed share of customers is held out to choose the regularisation and to report
metrics; the final models are refitted on everyone. CLV averages the rate-dropout regression with a
BG/NBD x Gamma-Gamma model fitted on the buy-till-you-die summary as of as_of (weight ``btyd_weight``,
fixed on the CDNOW development splits, bench/results/clv_cdnow.md): the two err differently, and the
average ranked customers better than either on every development split. The result is a JSON
artifact for value_inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, mean_tweedie_deviance, roc_auc_score
from threadpoolctl import threadpool_limits

from segflow.scoring.artifact import SCHEMA_VERSION, fingerprint, model_version, plain
from segflow.scoring.bgnbd_fit import fit_bgnbd, fit_gamma_gamma
from segflow.scoring.features import features_from_prepared
from segflow.scoring.orders import NS_PER_DAY, PreparedOrders, from_fixed_point, prepare_orders, restrict_to
from segflow.scoring.rate_dropout import RateDropoutFit, fit_rate_dropout
from segflow.scoring.value_features import CORE, ENGAGEMENT, engineer
from segflow.scoring.value_inference import CLV_SCHEMA_VERSION, VALUE_KIND, blend, btyd_summary_of

MIN_WINDOW_DAYS = 7
REFERENCE_FEATURES = (
    "recency_days",
    "frequency",
    "avg_order_value",
    "mean_gap_days",
    "tenure_days",
    "email_opens",
)


class InsufficientHistory(ValueError):
    """The orders do not span enough days for a feature window followed by a target window."""


@dataclass(frozen=True)
class Snapshots:
    """Stacked training rows: engineered inputs, target, window length and customer of each row."""

    inputs: np.ndarray
    target: np.ndarray
    window_days: np.ndarray
    customer_ids: np.ndarray
    btyd: np.ndarray  # buy-till-you-die summary (x, t_x, T, m) of each row as of its cutoff
    windows: list[int]
    block_sizes: list[int]  # rows per snapshot, in stacking order


def train_value_models(
    orders: pd.DataFrame,
    events: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    clv_horizon_days: int = 365,
    churn_horizon_days: int = 90,
    *,
    min_history_days: int = 60,
    recent_days: int = 90,
    validation_fraction: float = 0.2,
    alphas: Sequence[float] = (1e-3, 1e-2, 1e-1),
    tweedie_power: float = 1.0,
    btyd_weight: float = 0.25,
    churn_cs: Sequence[float] = (0.1, 1.0, 10.0),
    random_state: int = 0,
    n_threads: int | None = 1,
    return_estimators: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Fit CLV (expected spend over clv_horizon_days) and churn (P(no completed order within
    churn_horizon_days)) models and return the JSON artifact with validation metrics.

    Single-threaded by default (reproducible fits; one vCPU on small Lambdas). With
    ``return_estimators`` also returns the fitted objects {"clv": BlendedClv, "churn":
    LogisticRegression} so tests can compare the numpy inference with them. ``btyd_weight`` 0 gives
    the rate-dropout regression alone.
    """
    with threadpool_limits(limits=n_threads):
        prepared = prepare_orders(orders, as_of)
        if prepared.n_customers == 0:
            raise InsufficientHistory("no completed orders up to as_of: nothing to train on")
        current = features_from_prepared(prepared, events, recent_days)
        inputs = [*CORE, *(name for name in ENGAGEMENT if np.ptp(engineer(current, [name])) > 0)]
        history_days = int((prepared.as_of_ns - prepared.timestamp_ns.min()) // NS_PER_DAY)

        clv_rows = _clv_snapshots(
            prepared, events, inputs, clv_horizon_days, history_days, min_history_days, recent_days
        )
        churn_rows = _churn_snapshots(
            prepared, events, inputs, churn_horizon_days, history_days, min_history_days, recent_days
        )
        clv = _train_clv(
            clv_rows,
            btyd_summary_of(current),
            inputs,
            clv_horizon_days,
            alphas,
            tweedie_power,
            btyd_weight,
            validation_fraction,
            random_state,
        )
        churn = _train_churn(
            churn_rows, inputs, churn_horizon_days, churn_cs, validation_fraction, random_state
        )

    data_fingerprint = fingerprint(current, list(current.columns))
    as_of_iso = pd.Timestamp(prepared.as_of_ns, tz="UTC").isoformat()
    reference = {
        name: float(np.nanmedian(current[name])) for name in REFERENCE_FEATURES if current[name].notna().any()
    }
    artifact = plain(
        {
            "kind": VALUE_KIND,
            "schema_version": SCHEMA_VERSION,
            "version": model_version("value", data_fingerprint, as_of_iso),
            "as_of": as_of_iso,
            "recent_days": recent_days,
            "clv": clv["model"],
            "churn": churn["model"],
            "metrics": {"clv": clv["metrics"], "churn": churn["metrics"]},
            "reference": reference,
            "training": {
                "fingerprint": data_fingerprint,
                "n_customers": prepared.n_customers,
                "history_days": history_days,
                "min_history_days": min_history_days,
                "validation_fraction": validation_fraction,
                "random_state": random_state,
            },
        }
    )
    if return_estimators:
        return artifact, {"clv": clv["estimator"], "churn": churn["estimator"]}
    return artifact


# --- snapshots ---------------------------------------------------------------------------------


def _clv_windows(horizon: int, history_days: int, min_history_days: int) -> list[int]:
    longest = min(horizon, history_days - min_history_days)
    if longest < MIN_WINDOW_DAYS:
        raise InsufficientHistory(
            f"CLV training needs at least {min_history_days + MIN_WINDOW_DAYS} days of order history, "
            f"got {history_days}"
        )
    return sorted({w for w in (longest, longest // 2, longest // 4) if w >= MIN_WINDOW_DAYS})


def _snapshot(
    prepared: PreparedOrders, events: pd.DataFrame | None, inputs: list[str], cutoff_ns: int, recent_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Engineered inputs and BTYD summary as of cutoff, and the positions (in prepared) of the
    customers known then."""
    known = np.flatnonzero(
        np.bincount(prepared.code[prepared.timestamp_ns <= cutoff_ns], minlength=prepared.n_customers)
    )
    features = features_from_prepared(restrict_to(prepared, cutoff_ns), events, recent_days)
    return engineer(features, inputs), known, btyd_summary_of(features)


def _window_spend(prepared: PreparedOrders, start_ns: int, end_ns: int) -> np.ndarray:
    """Completed spend minus refunds in (start, end] per customer, floored at zero."""
    n = prepared.n_customers
    bought = (prepared.timestamp_ns > start_ns) & (prepared.timestamp_ns <= end_ns)
    refunded = (prepared.refund_timestamp_ns > start_ns) & (prepared.refund_timestamp_ns <= end_ns)
    net = np.bincount(prepared.code[bought], weights=prepared.amount[bought], minlength=n) - np.bincount(
        prepared.refund_code[refunded], weights=prepared.refund_amount[refunded], minlength=n
    )
    return np.maximum(from_fixed_point(net), 0.0)


def _clv_snapshots(
    prepared: PreparedOrders,
    events: pd.DataFrame | None,
    inputs: list[str],
    horizon: int,
    history_days: int,
    min_history_days: int,
    recent_days: int,
) -> Snapshots:
    windows = _clv_windows(horizon, history_days, min_history_days)
    parts = []
    for window in windows:
        cutoff = prepared.as_of_ns - window * NS_PER_DAY
        x, known, summary = _snapshot(prepared, events, inputs, cutoff, recent_days)
        spend = _window_spend(prepared, cutoff, prepared.as_of_ns)[known]
        parts.append((x, spend, np.full(len(known), float(window)), prepared.customer_ids[known], summary))
    return _stack(parts, windows)


def _churn_snapshots(
    prepared: PreparedOrders,
    events: pd.DataFrame | None,
    inputs: list[str],
    horizon: int,
    history_days: int,
    min_history_days: int,
    recent_days: int,
    max_cutoffs: int = 3,
) -> Snapshots:
    """Cutoffs as_of - h, as_of - 2h, ... while enough history precedes them."""
    n_cutoffs = min(max_cutoffs, (history_days - min_history_days) // horizon)
    if n_cutoffs < 1:
        needed = min_history_days + horizon
        raise InsufficientHistory(
            f"churn training needs at least {needed} days of order history, got {history_days}"
        )
    parts = []
    for k in range(1, n_cutoffs + 1):
        cutoff = prepared.as_of_ns - k * horizon * NS_PER_DAY
        x, known, summary = _snapshot(prepared, events, inputs, cutoff, recent_days)
        later = (prepared.timestamp_ns > cutoff) & (prepared.timestamp_ns <= cutoff + horizon * NS_PER_DAY)
        bought_again = np.bincount(prepared.code[later], minlength=prepared.n_customers)[known] > 0
        parts.append(
            (
                x,
                (~bought_again).astype(np.float64),
                np.full(len(known), float(horizon)),
                prepared.customer_ids[known],
                summary,
            )
        )
    return _stack(parts, [horizon] * n_cutoffs)


def _stack(parts: list[tuple[np.ndarray, ...]], windows: list[int]) -> Snapshots:
    x, y, w, ids, summary = (np.concatenate([p[i] for p in parts]) for i in range(5))
    return Snapshots(
        inputs=x,
        target=y,
        window_days=w,
        customer_ids=ids,
        btyd=summary,
        windows=windows,
        block_sizes=[len(p[1]) for p in parts],
    )


def _holdout_mask(customer_ids: np.ndarray, fraction: float, random_state: int) -> np.ndarray:
    """Deterministic customer-level split: a customer is in validation in every snapshot or in none."""
    key = f"segflow{random_state:016d}"[:16]
    bucket = pd.util.hash_array(np.asarray(customer_ids, dtype=object), hash_key=key) % np.uint64(10_000)
    return bucket < np.uint64(round(fraction * 10_000))


def _scaler(x: np.ndarray) -> dict[str, np.ndarray]:
    scale = x.std(axis=0)
    return {"mean": x.mean(axis=0), "scale": np.where(scale > 0, scale, 1.0)}


def _scaled(x: np.ndarray, scaler: dict[str, np.ndarray]) -> np.ndarray:
    return (x - scaler["mean"]) / scaler["scale"]


# --- CLV ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlendedClv:
    """The fitted CLV model: rate-dropout regression averaged with BG/NBD x Gamma-Gamma."""

    rate_dropout: RateDropoutFit
    btyd: dict[str, Any] | None  # {"weight", "bgnbd", "gamma_gamma"}; None: rate-dropout alone

    def predict(self, z: np.ndarray, summary: np.ndarray, horizon_days: float) -> np.ndarray:
        return blend(self.rate_dropout.predict(z, horizon_days), self.btyd, summary, horizon_days)


def fit_btyd(summary: np.ndarray, weight: float) -> tuple[dict[str, Any] | None, str]:
    """BG/NBD and Gamma-Gamma on a BTYD summary (x, t_x, T, m), or None and why they are not used."""
    if weight <= 0:
        return None, "btyd_weight is 0"
    x, t_x, T, m = summary.T
    try:
        bgnbd, gamma_gamma = fit_bgnbd(x, t_x, T), fit_gamma_gamma(x, m)
    except ValueError as error:
        return None, str(error)
    if not (bgnbd.pop("converged") and gamma_gamma.pop("converged")):
        return None, "BG/NBD or Gamma-Gamma fit did not converge"
    if gamma_gamma["q"] <= 1.0:
        return None, "Gamma-Gamma has no finite mean order value (q <= 1)"
    model = {"weight": weight, "bgnbd": bgnbd, "gamma_gamma": gamma_gamma}
    # one-year spend of an average and of a heavy buyer must be finite, else the fit is unusable
    probe = np.array([[0.0, 0.0, 30.0, 0.0], [x.max(), T.max(), T.max(), max(m.max(), 0.0)]])
    if not np.all(np.isfinite(blend(np.zeros(2), model, probe, 365.0))):
        return None, "BG/NBD prediction is not finite"
    return model, "used"


def _train_clv(
    rows: Snapshots,
    current_summary: np.ndarray,
    inputs: list[str],
    horizon: int,
    alphas: Sequence[float],
    power: float,
    btyd_weight: float,
    fraction: float,
    random_state: int,
) -> dict[str, Any]:
    holdout = _holdout_mask(rows.customer_ids, fraction, random_state)
    train = ~holdout
    scaler = _scaler(rows.inputs[train])
    z = _scaled(rows.inputs, scaler)
    fits = {
        alpha: fit_rate_dropout(z[train], rows.window_days[train], rows.target[train], alpha, power)
        for alpha in alphas
    }
    deviance = {
        alpha: mean_tweedie_deviance(
            rows.target[holdout], _floor(fit.predict(z[holdout], rows.window_days[holdout])), power=power
        )
        for alpha, fit in fits.items()
    }
    alpha = min(deviance, key=deviance.get)
    chosen = fits[alpha]
    # Report on held-out customers in the longest window, the one closest to the horizon; the BTYD
    # part is fitted on the other customers' summaries as of that window's cutoff.
    window = max(rows.windows)
    in_window = rows.window_days == window
    longest = holdout & in_window
    validation_btyd, _ = fit_btyd(rows.btyd[train & in_window], btyd_weight)
    rate_dropout_predicted = chosen.predict(z[longest], float(window))
    predicted = blend(rate_dropout_predicted, validation_btyd, rows.btyd[longest], float(window))
    actual = rows.target[longest]
    metrics = {
        "validation_window_days": window,
        "n_validation_customers": int(longest.sum()),
        **_accuracy(predicted, actual),
        "rate_dropout_alone": _accuracy(rate_dropout_predicted, actual),
        "tweedie_power": power,
        "deviance_by_alpha": {str(a): d for a, d in deviance.items()},
        "alpha": alpha,
        # importances of the rate-dropout inputs (the BTYD part uses the summary as a whole)
        "feature_importance": _permutation_importance(
            lambda zz: mean_tweedie_deviance(
                actual, _floor(chosen.predict(zz, rows.window_days[longest])), power=power
            ),
            z[longest],
            inputs,
            random_state,
        ),
        "training_windows_days": rows.windows,
        "n_training_rows": int(len(rows.target)),
    }
    full_scaler = _scaler(rows.inputs)
    final = fit_rate_dropout(_scaled(rows.inputs, full_scaler), rows.window_days, rows.target, alpha, power)
    btyd, btyd_status = fit_btyd(current_summary, btyd_weight)
    metrics["converged"] = final.converged
    metrics["btyd"] = btyd_status
    model = {
        "schema_version": CLV_SCHEMA_VERSION,
        "horizon_days": horizon,
        "inputs": inputs,
        "scaler": full_scaler,
        "rate": {"intercept": final.rate_intercept, "coef": final.rate_coef},
        "hazard": {"intercept": final.hazard_intercept, "coef": final.hazard_coef},
        "btyd": btyd,
    }
    return {"model": model, "metrics": metrics, "estimator": BlendedClv(final, btyd)}


def _accuracy(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float | None]:
    return {
        "mae": float(np.mean(np.abs(predicted - actual))),
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "spearman": _spearman(predicted, actual),
        "total_predicted_over_actual": float(predicted.sum() / actual.sum()) if actual.sum() > 0 else None,
    }


def _floor(mu: np.ndarray) -> np.ndarray:
    return np.maximum(mu, 1e-12)  # Poisson deviance needs a strictly positive mean


def _spearman(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    if len(actual) < 3 or np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return None
    return float(spearmanr(predicted, actual).statistic)


# --- churn -------------------------------------------------------------------------------------


def _train_churn(
    rows: Snapshots, inputs: list[str], horizon: int, cs: Sequence[float], fraction: float, random_state: int
) -> dict[str, Any]:
    holdout = _holdout_mask(rows.customer_ids, fraction, random_state)
    train = ~holdout
    if len(np.unique(rows.target[train])) < 2:
        raise ValueError("churn training data has a single outcome (everyone churned or no one did)")
    scaler = _scaler(rows.inputs[train])
    z = _scaled(rows.inputs, scaler)
    fits = {c: LogisticRegression(C=c, max_iter=2_000).fit(z[train], rows.target[train]) for c in cs}
    losses = {
        c: log_loss(rows.target[holdout], fit.predict_proba(z[holdout])[:, 1], labels=[0, 1])
        for c, fit in fits.items()
    }
    c_best = min(losses, key=losses.get)
    chosen = fits[c_best]
    latest = holdout & _latest_cutoff_rows(rows)
    probability = chosen.predict_proba(z[latest])[:, 1]
    outcome = rows.target[latest]

    def loss_of(zz: np.ndarray) -> float:
        return float(log_loss(outcome, chosen.predict_proba(zz)[:, 1], labels=[0, 1]))

    metrics = {
        "n_validation_customers": int(latest.sum()),
        "auc": float(roc_auc_score(outcome, probability)) if len(np.unique(outcome)) == 2 else None,
        "brier": float(brier_score_loss(outcome, probability)),
        "log_loss": loss_of(z[latest]),
        "churn_rate": float(outcome.mean()),
        "mean_predicted": float(probability.mean()),
        "log_loss_by_c": {str(c): v for c, v in losses.items()},
        "C": c_best,
        "feature_importance": _permutation_importance(loss_of, z[latest], inputs, random_state),
        "training_cutoffs": len(rows.windows),
        "n_training_rows": int(len(rows.target)),
    }
    full_scaler = _scaler(rows.inputs)
    final = LogisticRegression(C=c_best, max_iter=2_000).fit(_scaled(rows.inputs, full_scaler), rows.target)
    model = {
        "horizon_days": horizon,
        "inputs": inputs,
        "scaler": full_scaler,
        "intercept": float(final.intercept_[0]),
        "coef": final.coef_[0],
    }
    return {"model": model, "metrics": metrics, "estimator": final}


def _latest_cutoff_rows(rows: Snapshots) -> np.ndarray:
    """Rows of the most recent churn cutoff (snapshots are stacked newest first)."""
    mask = np.zeros(len(rows.target), dtype=bool)
    mask[: rows.block_sizes[0]] = True
    return mask


def _permutation_importance(
    loss: Any, z: np.ndarray, inputs: list[str], random_state: int, repeats: int = 3
) -> dict[str, float]:
    """Mean loss increase when one input is shuffled across held-out customers, normalised to sum 1."""
    rng = np.random.default_rng(random_state)
    base = loss(z)
    raw = {}
    for j, name in enumerate(inputs):
        increases = []
        for _ in range(repeats):
            shuffled = z.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            increases.append(loss(shuffled) - base)
        raw[name] = max(float(np.mean(increases)), 0.0)
    total = sum(raw.values())
    return {
        name: (value / total if total > 0 else 0.0)
        for name, value in sorted(raw.items(), key=lambda kv: -kv[1])
    }
