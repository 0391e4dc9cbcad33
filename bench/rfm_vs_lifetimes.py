"""RFM speed: segflow.compute_rfm vs lifetimes' summary_data_from_transaction_data on the same orders.

Generates N synthetic orders (seeded numpy: ~N/5 customers with gamma-distributed propensity, three
years of timestamps, 92 % completed / 5 % refunded / 3 % cancelled, 1 % of orders re-sent later with a
new status) and times, in alternating order within one process:

* segflow: ``compute_rfm(orders, as_of)`` on all rows (deduplication, status and date filtering, RFM,
  scores and segments included);
* lifetimes: ``summary_data_from_transaction_data`` on the completed, deduplicated, tz-naive rows it
  needs (that preparation is done once, outside the timing, so lifetimes is timed on less work).

Peak memory is measured in separate untimed runs with tracemalloc (numpy and pandas buffers included).

    python bench/rfm_vs_lifetimes.py [--orders N] [--repeats R] [--out bench/results/rfm_vs_lifetimes.md]

``compare(orders, as_of, repeats)`` is the measurement alone, for bench/run.py to call on other orders.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from segflow.scoring import compute_rfm

AS_OF = pd.Timestamp("2026-01-01", tz="UTC")


def synthetic_orders(n_rows: int, seed: int = 7) -> pd.DataFrame:
    """n_rows order rows: ~99 % distinct orders plus ~1 % re-sent later as refunded (same order_id)."""
    rng = np.random.default_rng(seed)
    n_resent = n_rows // 100
    n_orders = n_rows - n_resent
    n_customers = max(n_rows // 5, 1)
    propensity = rng.gamma(0.6, 1.0, n_customers)
    customer = rng.choice(n_customers, size=n_orders, p=propensity / propensity.sum())
    start = pd.Timestamp("2023-01-01", tz="UTC").value // 10**9
    span = 3 * 365 * 86_400
    first_seen = rng.integers(0, span, n_customers)
    seconds = (
        start + first_seen[customer] + (rng.random(n_orders) * (span - first_seen[customer])).astype(np.int64)
    )
    status = rng.choice(
        np.array(["completed", "refunded", "cancelled"], dtype=object), n_orders, p=[0.92, 0.05, 0.03]
    )
    total = np.round(rng.lognormal(3.6, 0.9, n_orders), 2)
    total[(status == "refunded") & (rng.random(n_orders) < 0.5)] *= -1  # refunds arrive with either sign
    order_number = rng.permutation(n_orders)
    orders = pd.DataFrame(
        {
            "customer_id": pd.array(np.char.add("cus_", customer.astype(str)).astype(object), dtype="str"),
            "order_id": pd.array(np.char.add("ord_", order_number.astype(str)).astype(object), dtype="str"),
            "order_date": pd.to_datetime(seconds, unit="s", utc=True).as_unit("ns"),
            "total": total,
            "status": pd.array(status, dtype="str"),
        }
    )
    resent = orders.sample(n=n_resent, random_state=seed).assign(status="refunded")
    return pd.concat([orders, resent], ignore_index=True)


def lifetimes_input(orders: pd.DataFrame, as_of: pd.Timestamp = AS_OF) -> pd.DataFrame:
    latest = orders.drop_duplicates("order_id", keep="last")
    completed = latest[(latest["status"] == "completed") & (latest["order_date"] <= as_of)]
    return pd.DataFrame(
        {
            "customer_id": completed["customer_id"],
            "order_date": completed["order_date"].dt.tz_convert(None),
            "total": completed["total"],
        }
    )


def run_lifetimes(transactions: pd.DataFrame, as_of: pd.Timestamp = AS_OF) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return summary_data_from_transaction_data(
            transactions,
            "customer_id",
            "order_date",
            monetary_value_col="total",
            observation_period_end=as_of.tz_convert(None),
        )


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def peak_memory_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def timing_row(name: str, seconds: list[float], memory_mb: float) -> str:
    cells = [
        f"{statistics.median(seconds):.3f}",
        f"{min(seconds):.3f}",
        f"{max(seconds):.3f}",
        f"{memory_mb:.0f}",
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def compare(
    orders: pd.DataFrame, as_of: pd.Timestamp = AS_OF, repeats: int = 7, memory: bool = True
) -> dict[str, Any]:
    """Both implementations on the same orders, alternating who goes first; seconds per repeat."""
    transactions = lifetimes_input(orders, as_of)
    rfm = compute_rfm(orders, as_of)  # warm-up, and the cross-check below
    summary = run_lifetimes(transactions, as_of)
    assert len(rfm) == len(summary), "both must score the same customers"

    ours: list[float] = []
    theirs: list[float] = []
    for repeat in range(repeats):  # alternate who goes first so drift hits both alike
        pair = [
            ("segflow", lambda: compute_rfm(orders, as_of)),
            ("lifetimes", lambda: run_lifetimes(transactions, as_of)),
        ]
        for name, fn in pair if repeat % 2 == 0 else pair[::-1]:
            (ours if name == "segflow" else theirs).append(timed(fn))
    result: dict[str, Any] = {
        "orders": len(orders),
        "completed_orders": len(transactions),
        "customers_scored": len(rfm),
        "segflow_seconds": ours,
        "lifetimes_seconds": theirs,
        "speedup": statistics.median(theirs) / statistics.median(ours),
        "speedup_best": min(theirs) / min(ours),
    }
    if memory:
        result["segflow_peak_mb"] = peak_memory_mb(lambda: compute_rfm(orders, as_of))
        result["lifetimes_peak_mb"] = peak_memory_mb(lambda: run_lifetimes(transactions, as_of))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rfm_vs_lifetimes.md"))
    args = parser.parse_args(argv)

    orders = synthetic_orders(args.orders)
    result = compare(orders, AS_OF, args.repeats)
    ours, theirs = result["segflow_seconds"], result["lifetimes_seconds"]
    load = os.getloadavg()
    lines = [
        "# RFM: segflow.compute_rfm vs lifetimes.summary_data_from_transaction_data",
        "",
        f"Command: `python bench/rfm_vs_lifetimes.py --orders {args.orders} --repeats {args.repeats}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (shared machine)",
        f"Versions: numpy {version('numpy')}, pandas {version('pandas')}, lifetimes {version('lifetimes')}",
        "",
        f"Data: {len(orders):,} synthetic orders (seed 7), {orders['customer_id'].nunique():,} customers, "
        f"{result['completed_orders']:,} completed orders after deduplication; "
        f"{result['customers_scored']:,} customers scored.",
        "segflow is timed on all rows (dedup, status/date filters, RFM, scores, segments); lifetimes on the",
        "pre-filtered completed rows only (its preparation is not timed).",
        "",
        "| | median s | min s | max s | peak traced memory MB |",
        "|---|---|---|---|---|",
        timing_row("segflow compute_rfm", ours, result["segflow_peak_mb"]),
        timing_row("lifetimes summary", theirs, result["lifetimes_peak_mb"]),
        "",
        f"**Speed-up (median / median): {result['speedup']:.1f}x** (target: at least 5x). "
        f"Best-case ratio (min / min): {result['speedup_best']:.1f}x.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
