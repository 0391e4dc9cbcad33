"""Clustering and prediction: training time, inference rows per second, silhouette of the chosen k.

On the clean orders and events of a generated drop (bench/lib/data.py): what the train function fits
(train_clusters, train_value_models) and what the score function runs with numpy only (assign_clusters,
predict_value, and the whole score_all with both models).

    python bench/bench_models.py --orders 10000 [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from lib.child import run_child
from lib.data import AS_OF, load_clean_tables
from lib.report import SizeRow, error_text, table
from lib.stats import fmt_number, fmt_spread, spread

CLV_HORIZON_DAYS = 365  # the template's defaults (CLV_HORIZON_DAYS, CHURN_HORIZON_DAYS)
CHURN_HORIZON_DAYS = 90


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def assign_and_label(artifact: dict[str, Any], features: Any) -> Any:
    from segflow.scoring import assign_clusters, cluster_labels

    return cluster_labels(artifact, assign_clusters(artifact, features))


def measure(orders: int, repeats: int) -> dict[str, Any]:
    """(child process) Trains and scores `repeats` times; returns seconds per repeat and model metrics."""
    import pandas as pd
    from segflow.scoring import (
        build_features,
        predict_value,
        score_all,
        train_clusters,
        train_value_models,
    )
    from segflow.scoring.prediction import InsufficientHistory

    tables = load_clean_tables(orders, ("orders", "events"))
    clean, events = tables["orders"], tables["events"]
    as_of = pd.Timestamp(AS_OF.isoformat(), tz="UTC")
    runs: list[dict[str, Any]] = []
    clusters: dict[str, Any] = {}
    value: dict[str, Any] | None = None
    for _ in range(repeats):
        run: dict[str, Any] = {}
        run["features_s"], features = timed(build_features, clean, events, as_of)
        run["train_clusters_s"], clusters = timed(train_clusters, features)
        try:
            run["train_value_s"], value = timed(
                train_value_models, clean, events, as_of, CLV_HORIZON_DAYS, CHURN_HORIZON_DAYS
            )
        except InsufficientHistory:
            value = None
        run["assign_clusters_s"], _ = timed(assign_and_label, clusters, features)
        if value is not None:
            run["predict_value_s"], _ = timed(predict_value, value, features)
        models = {"clusters": clusters, **({"value": value} if value else {})}
        run["score_all_s"], scored = timed(score_all, clean, events, as_of, models)
        run["customers"] = len(features)
        run["scored"] = len(scored.customers)
        runs.append(run)
    metrics = clusters["metrics"]
    result: dict[str, Any] = {
        "orders": len(clean),
        "events": 0 if events is None else len(events),
        "customers": runs[0]["customers"],
        "runs": runs,
        "k": metrics["k"],
        "silhouette": metrics["silhouette"],
        "silhouette_by_k": metrics["silhouette_by_k"],
        "cluster_train_rows": metrics["n_train_rows"],
        "labels": [c["label"] for c in clusters["clusters"]],
    }
    if value is not None:
        result["value_metrics"] = {
            "clv_spearman": value["metrics"]["clv"].get("spearman"),
            "clv_mae": value["metrics"]["clv"].get("mae"),
            "churn_auc": value["metrics"]["churn"].get("auc"),
        }
    return result


def run(sizes: list[int], repeats: int, timeout: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": {}}
    for orders in sizes:
        child = run_child("bench_models:measure", {"orders": orders, "repeats": repeats}, timeout=timeout)
        out["sizes"][str(orders)] = child.result if not child.error else {"error": child.error}
    return out


def _rows_per_second(result: dict[str, Any], key: str) -> dict[str, Any]:
    return spread(r["customers"] / r[key] for r in result["runs"] if r.get(key))


def _seconds(result: dict[str, Any], key: str) -> dict[str, Any]:
    return spread(r[key] for r in result["runs"] if key in r)


def headline(result: dict[str, Any]) -> list[SizeRow]:
    k = SizeRow("Clustering", "chosen k and its silhouette (sample of ≤ 5,000 customers)")
    train = SizeRow("Clustering + prediction", "training s: K-Means (k = 3…8) / CLV + churn")
    infer = SizeRow("Clustering + prediction", "inference customers/s (numpy): clusters / CLV + churn")
    for size, r in result["sizes"].items():
        n = int(size)
        if "error" in r:
            k.values[n] = train.values[n] = infer.values[n] = "failed"
            continue
        k.values[n] = f"k = {r['k']}, {r['silhouette']:.3f}"
        train.values[n] = (
            f"{fmt_spread(_seconds(r, 'train_clusters_s'))} / {fmt_spread(_seconds(r, 'train_value_s'))}"
        )
        infer.values[n] = (
            f"{fmt_spread(_rows_per_second(r, 'assign_clusters_s'), 0)} / "
            f"{fmt_spread(_rows_per_second(r, 'predict_value_s'), 0)}"
        )
    return [k, train, infer]


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "On the clean orders and events of each size. Training = `train_clusters(features)` (robust scaling,",
        "K-Means for k = 3…8 with 4 initialisations, k by silhouette, single-threaded) and",
        f"`train_value_models` (CLV over {CLV_HORIZON_DAYS} days, churn over {CHURN_HORIZON_DAYS} days).",
        "Inference = the numpy-only code the score function runs; `score_all` = RFM + clusters + CLV/churn",
        "+ tiers + reasons.",
        "",
    ]
    rows = []
    for size, r in result["sizes"].items():
        if "error" in r:
            rows.append([f"{int(size):,}"] + [""] * 8 + [f"failed: {error_text(r['error'])}"])
            continue
        metrics = r.get("value_metrics", {})
        rows.append(
            [
                f"{int(size):,}",
                fmt_number(r["customers"], 0),
                fmt_spread(_seconds(r, "features_s")),
                fmt_spread(_seconds(r, "train_clusters_s")),
                fmt_spread(_seconds(r, "train_value_s")),
                fmt_spread(_rows_per_second(r, "assign_clusters_s"), 0),
                fmt_spread(_rows_per_second(r, "predict_value_s"), 0),
                fmt_spread(_rows_per_second(r, "score_all_s"), 0),
                f"k = {r['k']}: {r['silhouette']:.3f} ("
                + ", ".join(f"{kk}: {v:.3f}" for kk, v in r["silhouette_by_k"].items())
                + ")",
                f"CLV Spearman {fmt_number(metrics.get('clv_spearman'), 3)}, churn AUC "
                f"{fmt_number(metrics.get('churn_auc'), 3)}"
                if metrics
                else "value model: not enough history",
            ]
        )
    lines += table(
        [
            "orders",
            "customers",
            "features s",
            "K-Means s",
            "CLV + churn s",
            "clusters /s",
            "CLV + churn /s",
            "score_all /s",
            "silhouette by k",
            "validation (held-out customers)",
        ],
        rows,
    )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.orders, args.repeats), indent=2, default=str))


if __name__ == "__main__":
    main()
