"""Experiment (development splits only): gradient-boosted trees with a Poisson loss for CLV on CDNOW.

Trains on the same snapshot rows as train_value_models (inputs as of an earlier cutoff, target = spend
in the following window) and compares variants with the design in use on the 8 development splits of
bench/clv_cdnow.py. The final holdout is never touched here. Results and verdict:
bench/results/clv_cdnow.md, "Variants tried", round 3.

Kinds of variant (sklearn HistGradientBoostingRegressor, loss="poisson", random_state 0, tree count
chosen by Poisson deviance on the same held-out customers train_value_models uses, then refitted on
everyone):
- direct: trees on the inputs and the window length, target = spend in the window. Trees cannot
  extrapolate, so beyond the longest training window the prediction is carried to the horizon with
  the rate-dropout model's own shape, x rd(horizon) / rd(window).
- rate: trees on spend per day (weights = window length), same extrapolation.
- offset: trees on spend / rate-dropout prediction with weights = that prediction, which is Poisson
  boosting with the rate-dropout as offset: prediction = rate-dropout(horizon) x trees(inputs).
- mix: the rate-dropout averaged with direct trees.
"_b25" etc.: blended with segflow's BG/NBD x Gamma-Gamma at that weight, like the design in use.

    python bench/clv_gbt_dev.py [--variants a,b,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_poisson_deviance
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdnow_data import cdnow_orders, cdnow_transactions  # noqa: E402
from clv_cdnow import CHECK_SPLITS, DEV_SPLITS, holdout_spend  # noqa: E402
from segflow.scoring import build_features, predict_value, train_value_models  # noqa: E402
from segflow.scoring.features import features_from_prepared  # noqa: E402
from segflow.scoring.orders import NS_PER_DAY, prepare_orders  # noqa: E402
from segflow.scoring.prediction import (  # noqa: E402
    _clv_snapshots,
    _holdout_mask,
    _scaled,
    _scaler,
    fit_btyd,
)
from segflow.scoring.rate_dropout import fit_rate_dropout  # noqa: E402
from segflow.scoring.value_features import CORE, engineer  # noqa: E402
from segflow.scoring.value_inference import blend, btyd_summary_of  # noqa: E402


def gbt(max_iter: int, **params) -> HistGradientBoostingRegressor:
    defaults = dict(
        loss="poisson",
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=200,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    )
    return HistGradientBoostingRegressor(max_iter=max_iter, **{**defaults, **params})


def fit_early_stopped(x, y, weight, holdout, max_iter=300, fixed=False, probe_data=None, **params):
    """Fit on training customers, pick the iteration count by held-out Poisson deviance, refit on all
    (``fixed``: no early stopping, max_iter trees). ``probe_data`` (y, weight) replaces the target and
    weights for the choice, e.g. an offset fitted without the held-out customers."""
    if fixed:
        return gbt(max_iter, **params).fit(x, y, sample_weight=weight), max_iter
    train = ~holdout
    py, pw = (y, weight) if probe_data is None else probe_data
    probe = gbt(max_iter, **params).fit(x[train], py[train], sample_weight=pw[train])
    losses = [
        mean_poisson_deviance(py[holdout], np.maximum(p, 1e-12), sample_weight=pw[holdout])
        for p in probe.staged_predict(x[holdout])
    ]
    best = int(np.argmin(losses)) + 1
    return gbt(best, **params).fit(x, y, sample_weight=weight), best


EXPERIMENT_KEYS = ("kind", "btyd", "stationary", "at_window", "tree_weight")  # not tree parameters


def run_split(orders, cal, end, variants):
    horizon = (pd.Timestamp(end) - pd.Timestamp(cal)).days
    features = build_features(orders, None, cal)
    actual = holdout_spend(orders, cal, end, features.index)
    out = {}
    current = train_value_models(orders, None, cal, clv_horizon_days=horizon, churn_horizon_days=30)
    out["current"] = predict_value(json.loads(json.dumps(current)), features)["clv_predicted"].to_numpy()

    with threadpool_limits(limits=1):
        prepared = prepare_orders(orders, cal)
        inputs = list(CORE)
        history = int((prepared.as_of_ns - prepared.timestamp_ns.min()) // NS_PER_DAY)
        rows = _clv_snapshots(prepared, None, inputs, horizon, history, 60, 90)
        holdout = _holdout_mask(rows.customer_ids, 0.2, 0)
        x_now = engineer(features_from_prepared(prepared, None, 90), inputs)
        summary_now = btyd_summary_of(features)
        btyd, _ = fit_btyd(summary_now, 0.25)
        # rate-dropout with the same alpha the current design chose
        alpha = current["metrics"]["clv"]["alpha"]
        scaler = _scaler(rows.inputs)
        rd = fit_rate_dropout(_scaled(rows.inputs, scaler), rows.window_days, rows.target, alpha)
        rd_rows = rd.predict(_scaled(rows.inputs, scaler), rows.window_days)
        rd_now = rd.predict(_scaled(x_now, scaler), float(horizon))
        out["rd"] = rd_now
        wmax = float(max(rows.windows))
        wmin = float(min(rows.windows))
        info = {}
        for name in variants:
            started = time.perf_counter()
            params = VARIANTS[name][1]
            kind = params["kind"]
            p = {k: v for k, v in params.items() if k not in EXPERIMENT_KEYS}
            if params.get("stationary"):  # inputs whose range does not drift with the cutoff date
                xr, xn = stationary(rows.inputs, rows.btyd), stationary(x_now, summary_now)
            else:
                xr, xn = rows.inputs, x_now
            if kind == "mix":  # rate-dropout averaged with the direct trees (stationary inputs)
                xw = np.column_stack([xr, rows.window_days])
                model, n = fit_early_stopped(xw, rows.target, np.ones(len(xw)), holdout, **p)
                tree = model.predict(np.column_stack([xn, np.full(len(xn), min(float(horizon), wmax))]))
                if horizon > wmax:
                    tree = tree * rd_now / rd.predict(_scaled(x_now, scaler), wmax)
                t = params["tree_weight"]
                pred = (1 - t) * rd_now + t * tree
            elif kind == "direct":  # window as input; beyond the longest window extrapolate with RD shape
                xw = np.column_stack([xr, rows.window_days])
                model, n = fit_early_stopped(xw, rows.target, np.ones(len(xw)), holdout, **p)
                # at_window "min": the latest cutoff, whose customers are closest to today's in age
                w_at = wmin if params.get("at_window") == "min" else wmax
                h = min(float(horizon), w_at)
                pred = model.predict(np.column_stack([xn, np.full(len(xn), h)]))
                if horizon > w_at:
                    pred = pred * rd_now / rd.predict(_scaled(x_now, scaler), w_at)
            elif kind == "offset":  # multiplicative correction of the rate-dropout prediction
                # the offset used to choose the tree count is fitted without the held-out customers
                train = ~holdout
                z_train = _scaled(rows.inputs, _scaler(rows.inputs[train]))
                rd_train = fit_rate_dropout(
                    z_train[train], rows.window_days[train], rows.target[train], alpha
                )
                probe_offset = rd_train.predict(z_train, rows.window_days)
                model, n = fit_early_stopped(
                    xr,
                    rows.target / rd_rows,
                    rd_rows,
                    holdout,
                    probe_data=(rows.target / probe_offset, probe_offset),
                    **p,
                )
                pred = rd_now * model.predict(xn)
            elif kind == "rate":  # daily rate with window as input; horizon via RD's active-days shape
                xw = np.column_stack([rows.inputs, rows.window_days])
                model, n = fit_early_stopped(
                    xw, rows.target / rows.window_days, rows.window_days, holdout, **p
                )
                h = min(float(horizon), wmax)
                pred = h * model.predict(np.column_stack([x_now, np.full(len(x_now), h)]))
                if horizon > wmax:
                    pred = pred * rd_now / rd.predict(_scaled(x_now, scaler), wmax)
            if params.get("btyd") is not None:
                b = dict(btyd, weight=params["btyd"])
                pred = blend(pred, b, summary_now, float(horizon))
            out[name] = pred
            info[name] = (n, time.perf_counter() - started)
    return horizon, actual, out, info


def stationary(inputs, summary):
    """Repeat days, days since order, order values, repeat rate and active share of age: no raw age,
    which at prediction time lies beyond every training cutoff's range in a cohort like CDNOW."""
    x, t_x, T, _ = summary.T
    return np.column_stack(
        [inputs[:, [0, 2, 3, 5, 6]], np.log1p(365.0 * x / (T + 1.0)), (t_x + 1.0) / (T + 1.0)]
    )


def score(pred, actual):
    return (
        float(np.mean(np.abs(pred - actual))),
        float(spearmanr(pred, actual).statistic),
        float(pred.sum() / actual.sum()),
        # diagnostic only: MAE with the predictions rescaled to the actual total (level taken out)
        float(np.mean(np.abs(pred * actual.sum() / pred.sum() - actual))),
    )


BASE = {"max_iter": 300}  # default trees: 15 leaves, 200 rows per leaf, learning rate 0.05
SMALL = {"max_leaf_nodes": 7, "min_samples_leaf": 500}
STAT = {"stationary": True}
# name: (description, parameters); "btyd" is the weight of segflow's own BG/NBD x Gamma-Gamma in a blend
VARIANTS: dict[str, tuple[str, dict]] = {
    "direct": ("trees on inputs + window length, target spend", {"kind": "direct", **BASE}),
    "direct_b25": ("same, blended with BTYD 0.25", {"kind": "direct", "btyd": 0.25, **BASE}),
    "direct_small": ("direct, 7 leaves, 500 per leaf", {"kind": "direct", **SMALL, **BASE}),
    "direct_small_b25": ("same, BTYD 0.25", {"kind": "direct", "btyd": 0.25, **SMALL, **BASE}),
    "direct_stat": ("direct small, inputs without raw age", {"kind": "direct", **STAT, **SMALL, **BASE}),
    "direct_stat_b25": ("same, BTYD 0.25", {"kind": "direct", "btyd": 0.25, **STAT, **SMALL, **BASE}),
    "direct_stat_b50": ("same, BTYD 0.5", {"kind": "direct", "btyd": 0.5, **STAT, **SMALL, **BASE}),
    "direct_short": (
        "direct small, read at the shortest window",
        {"kind": "direct", "at_window": "min", **SMALL, **BASE},
    ),
    "direct_short_b25": (
        "same, BTYD 0.25",
        {"kind": "direct", "at_window": "min", "btyd": 0.25, **SMALL, **BASE},
    ),
    "direct_stat_short": (
        "direct_stat read at the shortest window",
        {"kind": "direct", "at_window": "min", **STAT, **SMALL, **BASE},
    ),
    "direct_stat_short_b25": (
        "same, BTYD 0.25",
        {"kind": "direct", "at_window": "min", "btyd": 0.25, **STAT, **SMALL, **BASE},
    ),
    "rate": ("trees on daily spend rate (weight = window)", {"kind": "rate", **BASE}),
    "rate_b25": ("same, BTYD 0.25", {"kind": "rate", "btyd": 0.25, **BASE}),
    "offset": ("trees correcting the rate-dropout (offset)", {"kind": "offset", **BASE}),
    "offset_b25": ("same, BTYD 0.25", {"kind": "offset", "btyd": 0.25, **BASE}),
    "offset_d3": ("offset, 7 leaves, 500 per leaf", {"kind": "offset", **SMALL, **BASE}),
    "offset_d3_b25": ("same, BTYD 0.25", {"kind": "offset", "btyd": 0.25, **SMALL, **BASE}),
    "offset_stat": ("offset small, inputs without raw age", {"kind": "offset", **STAT, **SMALL, **BASE}),
    "offset_stat_b25": ("same, BTYD 0.25", {"kind": "offset", "btyd": 0.25, **STAT, **SMALL, **BASE}),
    "offset_big": (
        "offset, 31 leaves, 100 per leaf, rate 0.1",
        {"kind": "offset", "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 100, **BASE},
    ),
    "offset_big_b25": (
        "same, BTYD 0.25",
        {
            "kind": "offset",
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 100,
            "btyd": 0.25,
            **BASE,
        },
    ),
    "offset_fixed100": (
        "offset small, 100 trees, no early stopping",
        {"kind": "offset", "fixed": True, "max_iter": 100, **SMALL},
    ),
    "offset_fixed100_b25": (
        "same, BTYD 0.25",
        {"kind": "offset", "fixed": True, "max_iter": 100, "btyd": 0.25, **SMALL},
    ),
    "mix33_b25": (
        "0.75 x (2/3 rate-dropout + 1/3 direct_stat) + 0.25 BTYD",
        {"kind": "mix", "tree_weight": 1 / 3, "btyd": 0.25, **STAT, **SMALL, **BASE},
    ),
    "mix50_b25": (
        "0.75 x (1/2 rate-dropout + 1/2 direct_stat) + 0.25 BTYD",
        {"kind": "mix", "tree_weight": 0.5, "btyd": 0.25, **STAT, **SMALL, **BASE},
    ),
}


def markdown(table: dict, names: list[str]) -> list[str]:
    """One row per model: MAE / Spearman on each split, then counts and means against 'current'."""
    splits = list(table)
    cur = np.array([table[s]["current"] for s in splits])
    head = " | ".join(f"{cal[2:]}..{end[5:]}" for cal, end in splits)
    lines = [
        f"| variant | {head} | MAE / Spearman / both better | mean MAE | mean Spearman "
        "| mean rescaled MAE* | trees kept |",
        "|---|" + "---|" * (len(splits) + 5),
    ]
    labels = {"current": "design in use (0.75 rate-dropout + 0.25 BTYD)", "rd": "rate-dropout alone"}
    for name in ["current", "rd", *names]:
        v = np.array([table[s][name] for s in splits])
        cells = [f"{m:.3f} / {r:.4f}" for m, r, *_ in v]
        mae_b, rho_b = v[:, 0] < cur[:, 0], v[:, 1] > cur[:, 1]
        counts = "-" if name == "current" else f"{mae_b.sum()} / {rho_b.sum()} / {(mae_b & rho_b).sum()}"
        iters = "-" if name in labels else ", ".join(str(table[s]["_iters"][name]) for s in splits)
        label = labels.get(name) or f"`{name}`: {VARIANTS[name][0]}"
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {counts} | {v[:, 0].mean():.3f} "
            f"| {v[:, 1].mean():.4f} | {v[:, 3].mean():.3f} | {iters} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    names = args.variants.split(",")
    orders = cdnow_orders(cdnow_transactions())
    table = {}
    for cal, end in DEV_SPLITS + CHECK_SPLITS:
        horizon, actual, out, info = run_split(orders, cal, end, names)
        table[(cal, end)] = {k: score(v, actual) for k, v in out.items()}
        table[(cal, end)]["_iters"] = {k: n for k, (n, _) in info.items()}
        print(cal, end, horizon, {k: f"{n} trees {s:.1f}s" for k, (n, s) in info.items()}, flush=True)
        for k, (mae, rho, tot, lm) in ((k, v) for k, v in table[(cal, end)].items() if k != "_iters"):
            print(
                f"   {k:22s} MAE {mae:7.3f} rho {rho:.4f} total {tot:.3f} rescaled MAE {lm:.3f}", flush=True
            )
    print("\n".join(markdown(table, names)))


if __name__ == "__main__":
    main()
