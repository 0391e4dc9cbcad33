"""CLV accuracy on CDNOW: segflow's value model vs a BG/NBD + Gamma-Gamma baseline (lifetimes).

Calibration: orders up to 1997-09-30; holdout: 1997-10-01 .. 1998-06-30 (273 days). Both models see only
the calibration orders; each predicts every calibration customer's holdout spend, which is compared with
the actual holdout spend by mean absolute error and Spearman rank correlation.

The model's design (features, Poisson loss, windows, regularisation grid) was fixed on development
splits that lie entirely inside the calibration period (``--dev`` reruns them); the holdout is used for
this comparison only.

    python bench/clv_cdnow.py [--dev] [--out bench/results/clv_cdnow.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdnow_data import cdnow_orders, cdnow_transactions  # noqa: E402
from segflow.scoring import build_features, predict_value, train_value_models  # noqa: E402

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
DEV_SPLITS = [("1997-04-30", "1997-09-30"), ("1997-05-17", "1997-09-30"), ("1997-06-30", "1997-09-30")]
# added when the BTYD blend was chosen, to check it on splits it was not tuned on (still inside calibration)
CHECK_SPLITS = [
    ("1997-04-15", "1997-09-30"),
    ("1997-05-31", "1997-09-30"),
    ("1997-06-15", "1997-09-30"),
    ("1997-07-31", "1997-09-30"),
    ("1997-05-31", "1997-08-31"),
]
VARIANTS_MARKER = "## Variants tried"  # hand-kept log below this heading survives a rerun


def baseline_prediction(raw: pd.DataFrame, calibration_end: str, horizon_days: int) -> pd.Series:
    """BG/NBD (purchases) x Gamma-Gamma (value) fitted with lifetimes on calibration data only."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    calibration = raw[raw["date"] <= calibration_end]
    summary = summary_data_from_transaction_data(
        calibration,
        "customer_id",
        "date",
        monetary_value_col="dollar_value",
        observation_period_end=calibration_end,
    )
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
    repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeaters["frequency"], repeaters["monetary_value"])
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon_days, summary["frequency"], summary["recency"], summary["T"]
    )
    value = ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"])
    return pd.Series(np.asarray(purchases * value, dtype=float), index=summary.index, name="baseline")


def holdout_spend(orders: pd.DataFrame, start: str, end: str, index: pd.Index) -> np.ndarray:
    start_ts, end_ts = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    window = orders[(orders["order_date"] > start_ts) & (orders["order_date"] <= end_ts)]
    return window.groupby("customer_id")["total"].sum().reindex(index, fill_value=0.0).to_numpy()


def scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    level_matched = predicted * actual.sum() / predicted.sum()
    return {
        "mae": float(np.mean(np.abs(predicted - actual))),
        # diagnostic only (uses the holdout total): separates ranking/shape from the overall level
        "mae_level_matched": float(np.mean(np.abs(level_matched - actual))),
        "spearman": float(spearmanr(predicted, actual).statistic),
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "predicted_total_over_actual": float(predicted.sum() / actual.sum()),
    }


def paired_bootstrap(
    ours: np.ndarray, base: np.ndarray, actual: np.ndarray, resamples: int = 1_000, seed: int = 0
) -> dict[str, list[float]]:
    """95 % intervals of segflow minus baseline (MAE and Spearman) over customers resampled with
    replacement, both models scored on the same resample: is the measured gap larger than chance?"""
    rng = np.random.default_rng(seed)
    error_gap = np.abs(ours - actual) - np.abs(base - actual)
    mae_gaps, rho_gaps = [], []
    for _ in range(resamples):
        pick = rng.integers(0, len(actual), len(actual))
        mae_gaps.append(error_gap[pick].mean())
        rho_gaps.append(
            spearmanr(ours[pick], actual[pick]).statistic - spearmanr(base[pick], actual[pick]).statistic
        )
    return {
        "mae_gap_interval": [float(q) for q in np.percentile(mae_gaps, [2.5, 97.5])],
        "spearman_gap_interval": [float(q) for q in np.percentile(rho_gaps, [2.5, 97.5])],
        "share_of_resamples_segflow_mae_lower": float(np.mean(np.asarray(mae_gaps) <= 0)),
        "resamples": resamples,
    }


def compare(
    orders: pd.DataFrame,
    raw: pd.DataFrame,
    calibration_end: str,
    holdout_end: str,
    churn_days: int = 90,
    with_bootstrap: bool = False,
) -> dict:
    horizon = (pd.Timestamp(holdout_end) - pd.Timestamp(calibration_end)).days
    started = time.perf_counter()
    artifact = train_value_models(
        orders, None, calibration_end, clv_horizon_days=horizon, churn_horizon_days=churn_days
    )
    train_seconds = time.perf_counter() - started
    artifact = json.loads(json.dumps(artifact))  # what the score function will really receive
    features = build_features(orders, None, calibration_end)
    ours = predict_value(artifact, features)
    # the previous design (rate-dropout regression alone) for reference
    alone = train_value_models(
        orders, None, calibration_end, clv_horizon_days=horizon, churn_horizon_days=churn_days, btyd_weight=0
    )
    ours_alone = predict_value(json.loads(json.dumps(alone)), features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = baseline_prediction(raw, calibration_end, horizon).reindex(features.index)
    actual = holdout_spend(orders, calibration_end, holdout_end, features.index)
    ours_spend, base_spend = ours["clv_predicted"].to_numpy(), base.to_numpy()
    return {
        # diagnostics, not forecasts: segflow at the baseline's overall level, and the gap's uncertainty
        "segflow_at_baseline_level": scores(ours_spend * base_spend.sum() / ours_spend.sum(), actual),
        "bootstrap": paired_bootstrap(ours_spend, base_spend, actual) if with_bootstrap else None,
        "calibration_end": calibration_end,
        "holdout_end": holdout_end,
        "horizon_days": horizon,
        "customers": len(features),
        "segflow": scores(ours_spend, actual),
        "rate_dropout_alone": scores(ours_alone["clv_predicted"].to_numpy(), actual),
        "baseline": scores(base_spend, actual),
        "artifact": artifact,
        "train_seconds": train_seconds,
        "churn_check": churn_check(orders, ours["churn_probability"], calibration_end, artifact),
    }


def churn_check(orders: pd.DataFrame, probability: pd.Series, calibration_end: str, artifact: dict) -> dict:
    """The churn model on the real future: did the customer place no order in the next 90 days?"""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    days = artifact["churn"]["horizon_days"]
    end = (pd.Timestamp(calibration_end) + pd.Timedelta(days=days)).strftime("%Y-%m-%d")
    bought = holdout_spend(orders.assign(total=1.0), calibration_end, end, probability.index) > 0
    churned = (~bought).astype(float)
    return {
        "horizon_days": days,
        "auc": float(roc_auc_score(churned, probability)),
        "brier": float(brier_score_loss(churned, probability)),
        "churn_rate": float(churned.mean()),
        "mean_predicted": float(probability.mean()),
    }


def verdict(result: dict) -> str:
    ours, base = result["segflow"], result["baseline"]
    mae_ok = ours["mae"] <= base["mae"]
    rho_ok = ours["spearman"] >= base["spearman"]
    if mae_ok and rho_ok:
        return "segflow meets the bar: MAE at most and Spearman at least the baseline's."
    missed = [name for name, ok in (("MAE", mae_ok), ("Spearman", rho_ok)) if not ok]
    return (
        f"segflow MISSES the bar on {' and '.join(missed)} (reported as measured, not tuned on the holdout)."
    )


def row(name: str, s: dict) -> str:
    cells = [
        f"{s['mae']:.3f}",
        f"{s['spearman']:.4f}",
        f"{s['rmse']:.3f}",
        f"{s['predicted_total_over_actual']:.3f}",
        f"{s['mae_level_matched']:.3f}",
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def environment() -> str:
    packages = ", ".join(
        f"{p} {version(p)}" for p in ("numpy", "pandas", "scikit-learn", "scipy", "lifetimes")
    )
    machine = (
        f"{platform.machine()}, {platform.processor() or 'n/a'}, {platform.system()} {platform.release()}"
    )
    return f"Machine: {machine}; Python {platform.python_version()}; {packages}"


def report(main: dict, dev: list[dict], command: str) -> str:
    clv = main["artifact"]["metrics"]["clv"]
    importance = ", ".join(f"{k} {v:.2f}" for k, v in list(clv["feature_importance"].items())[:5])
    churn = main["churn_check"]
    lines = [
        "# CLV on CDNOW: segflow vs BG/NBD + Gamma-Gamma",
        "",
        f"Command: `{command}`",
        environment(),
        "",
        f"Calibration: orders up to {main['calibration_end']}; holdout to {main['holdout_end']} "
        f"({main['horizon_days']} days); {main['customers']:,} customers (all bought in calibration).",
        "Baseline: lifetimes BetaGeoFitter + GammaGammaFitter (no penalizer; Gamma-Gamma fitted on repeat",
        "customers with positive value): expected purchases over the holdout x expected value per purchase.",
        "segflow: `train_value_models(orders, None, calibration_end, clv_horizon_days=273)`, then",
        "`predict_value` from the JSON artifact (numpy only): 0.75 x its rate-dropout regression + 0.25 x",
        "its own BG/NBD x Gamma-Gamma (fitted with scipy in training, closed form in numpy at inference).",
        "Every model predicts expected spend (means); none shades its predictions towards zero, which is",
        "what minimises MAE on its own. 'rate-dropout alone' is the previous design (`btyd_weight=0`).",
        "",
        "| model | MAE | Spearman | RMSE | predicted total / actual | MAE rescaled to actual total* |",
        "|---|---|---|---|---|---|",
        row("segflow", main["segflow"]),
        row("rate-dropout alone (previous design)", main["rate_dropout_alone"]),
        row("BG/NBD + Gamma-Gamma (lifetimes)", main["baseline"]),
        "",
        f"**Verdict:** {verdict(main)}",
        "",
        "\\* Diagnostic only, not a valid forecast: each model's predictions are rescaled so that their",
        "sum equals the actual holdout total, which takes the overall level out of the comparison. Most",
        "customers spend nothing in the holdout, so with mean predictions a lower level alone lowers MAE.",
        "",
        *uncertainty(main),
        "",
        "How the design was chosen: features, loss (Poisson), training windows, the regularisation grid and",
        "the blend weight were fixed on the development splits below, which lie entirely inside the",
        "calibration period. The holdout comparison above was then run once with that design and the model",
        "was not changed afterwards. Every variant tried is listed under 'Variants tried' at the end.",
        "",
        f"segflow training: {main['train_seconds']:.1f} s; windows {clv['training_windows_days']} days; "
        f"alpha {clv['alpha']} (chosen on held-out customers).",
        f"Validation on held-out customers inside calibration: MAE {clv['mae']:.2f}, "
        f"Spearman {clv['spearman']:.3f} (rate-dropout alone: MAE {clv['rate_dropout_alone']['mae']:.2f}, "
        f"Spearman {clv['rate_dropout_alone']['spearman']:.3f}); BTYD part: {clv['btyd']}.",
        f"Top rate-dropout input importances: {importance}.",
        "",
        f"Churn model on the real next {churn['horizon_days']} days: AUC {churn['auc']:.3f}, "
        f"Brier {churn['brier']:.3f}, churn rate {churn['churn_rate']:.3f}, "
        f"mean predicted {churn['mean_predicted']:.3f}.",
    ]
    if dev:
        lines += [
            "",
            "## Development splits (inside the calibration period; used to choose the design)",
            "",
            f"The first {len(DEV_SPLITS)} chose the design; the other {len(CHECK_SPLITS)} were added to "
            "check the BTYD blend on splits it was not tuned on.",
            "",
            *dev_table(dev),
        ]
    return "\n".join(lines) + "\n"


def uncertainty(main: dict) -> list[str]:
    """How large the gap is against chance, and what is left of it at the baseline's level."""
    boot, level = main["bootstrap"], main["segflow_at_baseline_level"]
    (mae_lo, mae_hi), (rho_lo, rho_hi) = boot["mae_gap_interval"], boot["spearman_gap_interval"]
    gap = main["segflow"]["mae"] - main["baseline"]["mae"]
    rho_gap = main["segflow"]["spearman"] - main["baseline"]["spearman"]
    return [
        f"Paired bootstrap over customers ({boot['resamples']:,} resamples, both models scored on each "
        f"resample): segflow minus baseline MAE {gap:+.3f} (95 % interval {mae_lo:+.3f} to {mae_hi:+.3f}; "
        f"segflow lower in {boot['share_of_resamples_segflow_mae_lower']:.0%} of resamples), Spearman "
        f"{rho_gap:+.4f} ({rho_lo:+.4f} to {rho_hi:+.4f}).",
        f"Diagnostic: segflow's predictions scaled to the baseline's own total (not a forecast) score MAE "
        f"{level['mae']:.3f} against the baseline's {main['baseline']['mae']:.3f}, with the ranking unchanged.",
    ]


def dev_table(dev: list[dict]) -> list[str]:
    lines = [
        "| calibration end | holdout end | MAE segflow | MAE rate-dropout alone | MAE baseline "
        "| Spearman segflow | Spearman rate-dropout alone | Spearman baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in dev:
        models = (d["segflow"], d["rate_dropout_alone"], d["baseline"])
        cells = [
            d["calibration_end"],
            d["holdout_end"],
            *(f"{m['mae']:.3f}" for m in models),
            *(f"{m['spearman']:.4f}" for m in models),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also run the development splits")
    parser.add_argument(
        "--dev-only", action="store_true", help="development splits only (the holdout stays unseen)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "clv_cdnow.md"))
    args = parser.parse_args()
    raw = cdnow_transactions()
    orders = cdnow_orders(raw)
    # the early development splits have under 150 days of history: churn there uses a 30-day horizon
    splits = DEV_SPLITS + CHECK_SPLITS if args.dev or args.dev_only else []
    dev = [compare(orders, raw, cal, end, churn_days=30) for cal, end in splits]
    if args.dev_only:
        print("\n".join(dev_table(dev)))
        return
    result = compare(orders, raw, CALIBRATION_END, HOLDOUT_END, with_bootstrap=True)
    command = "python bench/clv_cdnow.py" + (" --dev" if args.dev else "")
    text = report(result, dev, command)
    out = Path(args.out)
    previous = out.read_text() if out.exists() else ""
    if VARIANTS_MARKER in previous:  # keep the hand-kept log of variants
        text += "\n" + previous[previous.index(VARIANTS_MARKER) :]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
