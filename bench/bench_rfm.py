"""RFM: segflow against lifetimes' summary_data_from_transaction_data on identical orders.

The orders are the clean orders `segflow generate` + ingest produced for the size (bench/lib/data.py);
the timing itself is bench/rfm_vs_lifetimes.py's `compare` (alternating order, same process).

    python bench/bench_rfm.py --orders 10000 [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lib.child import run_child
from lib.data import AS_OF, load_clean_tables
from lib.report import NOT_MEASURED, SizeRow, error_text, table, verdict
from lib.stats import fmt_number, fmt_ratio, fmt_spread, ratio_spread, spread

TARGET_SPEEDUP = 5.0  # at 1,000,000 orders


def measure(orders: int, repeats: int) -> dict[str, Any]:
    """(child process) Loads the clean orders of this size and compares both implementations."""
    import pandas as pd
    from rfm_vs_lifetimes import compare

    clean = load_clean_tables(orders, ("orders",))["orders"]
    as_of = pd.Timestamp(AS_OF.isoformat(), tz="UTC")
    return compare(clean, as_of, repeats, memory=True)


def run(sizes: list[int], repeats: int, timeout: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": {}}
    for orders in sizes:
        child = run_child(
            "bench_rfm:measure", {"orders": orders, "repeats": max(repeats, 3)}, timeout=timeout
        )
        result = child.result if not child.error else {"error": child.error}
        if not child.error:
            result["per_repeat_speedup"] = ratio_spread(
                result["lifetimes_seconds"], result["segflow_seconds"]
            )
        out["sizes"][str(orders)] = result
    return out


def headline(result: dict[str, Any], target_size: int = 1_000_000) -> list[SizeRow]:
    row = SizeRow(
        "RFM",
        "speed-up vs lifetimes summary_data_from_transaction_data (same orders, same process)",
        target=f"≥ {TARGET_SPEEDUP:.0f}x at {target_size:,} orders",
    )
    for size, r in result["sizes"].items():
        row.values[int(size)] = "failed" if "error" in r else fmt_ratio(r["per_repeat_speedup"])
    top = result["sizes"].get(str(target_size))
    row.verdict = (
        verdict(top["per_repeat_speedup"]["median"] >= TARGET_SPEEDUP)
        if top and "error" not in top
        else NOT_MEASURED
    )
    return [row]


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "bench/rfm_vs_lifetimes.py's `compare` on the clean orders of each size: segflow `compute_rfm` on all",
        "rows (dedup, status and date filters, RFM, scores, segments) against lifetimes on the completed,",
        "deduplicated rows it needs (prepared outside the timing). They alternate who goes first; the",
        "speed-up is lifetimes ÷ segflow per repeat. Peak = tracemalloc peak of one extra run each.",
        "",
    ]
    rows = []
    for size, r in result["sizes"].items():
        if "error" in r:
            rows.append([f"{int(size):,}", "", "", "", "", "", f"failed: {error_text(r['error'])}"])
            continue
        rows.append(
            [
                f"{int(size):,}",
                fmt_number(r["customers_scored"], 0),
                fmt_spread(spread(r["segflow_seconds"]), 4),
                fmt_spread(spread(r["lifetimes_seconds"]), 4),
                fmt_ratio(r["per_repeat_speedup"]),
                f"{r['segflow_peak_mb']:.0f} / {r['lifetimes_peak_mb']:.0f}",
                "",
            ]
        )
    lines += table(
        [
            "orders",
            "customers",
            "segflow s",
            "lifetimes s",
            "speed-up",
            "peak MB segflow / lifetimes",
            "notes",
        ],
        rows,
    )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.orders, args.repeats), indent=2))


if __name__ == "__main__":
    main()
