"""CLV accuracy on the CDNOW data: bench/clv_cdnow.py's `compare` (segflow vs BG/NBD + Gamma-Gamma).

Full variant only: it fits lifetimes' models on 23,570 customers. The figures are accuracy, not speed.

    python bench/bench_clv.py
"""

from __future__ import annotations

import json
from typing import Any

from lib.child import run_child
from lib.report import FixedRow, error_text, table, verdict


def measure() -> dict[str, Any]:
    """(child process) The holdout comparison, without the (large) model artifact."""
    from cdnow_data import cdnow_orders, cdnow_transactions
    from clv_cdnow import CALIBRATION_END, HOLDOUT_END, compare

    raw = cdnow_transactions()
    result = compare(cdnow_orders(raw), raw, CALIBRATION_END, HOLDOUT_END)
    result.pop("artifact")
    return result


def run(timeout: float | None = None) -> dict[str, Any]:
    child = run_child("bench_clv:measure", {}, timeout=timeout)
    return child.result if not child.error else {"error": child.error}


def headline(result: dict[str, Any]) -> list[FixedRow]:
    if "error" in result:
        return [FixedRow("CLV (CDNOW)", "segflow vs BG/NBD + Gamma-Gamma", "failed", verdict=verdict(False))]
    ours, base = result["segflow"], result["baseline"]
    return [
        FixedRow(
            "CLV (CDNOW)",
            "holdout MAE: segflow ÷ BG/NBD + Gamma-Gamma",
            f"{ours['mae'] / base['mae']:.3f} ({ours['mae']:.2f} vs {base['mae']:.2f})",
            "≤ 1",
            verdict(ours["mae"] <= base["mae"]),
        ),
        FixedRow(
            "CLV (CDNOW)",
            "holdout Spearman: segflow − baseline",
            f"{ours['spearman'] - base['spearman']:+.4f} ({ours['spearman']:.4f} vs {base['spearman']:.4f})",
            "≥ 0",
            verdict(ours["spearman"] >= base["spearman"]),
        ),
    ]


def render(result: dict[str, Any]) -> list[str]:
    if "error" in result:
        return [f"Failed: {error_text(result['error'])}", ""]
    lines = [
        (
            f"Calibration to {result['calibration_end']}, holdout to {result['holdout_end']} "
            f"({result['horizon_days']} days), {result['customers']:,} customers; see bench/results/clv_cdnow.md "
            "for the method."
        ),
        "",
    ]
    lines += table(
        ["model", "MAE", "Spearman", "RMSE", "predicted total ÷ actual"],
        (
            [
                name,
                f"{s['mae']:.3f}",
                f"{s['spearman']:.4f}",
                f"{s['rmse']:.3f}",
                f"{s['predicted_total_over_actual']:.3f}",
            ]
            for name, s in (
                ("segflow", result["segflow"]),
                ("rate-dropout alone (previous design)", result["rate_dropout_alone"]),
                ("BG/NBD + Gamma-Gamma", result["baseline"]),
            )
        ),
    )
    churn = result["churn_check"]
    lines += [
        "",
        (
            f"segflow training {result['train_seconds']:.1f} s; churn over the next {churn['horizon_days']} "
            f"days: AUC {churn['auc']:.3f}, Brier {churn['brier']:.3f}."
        ),
        "",
    ]
    return lines


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=str))
