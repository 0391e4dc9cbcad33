"""Ingest: rows per second through parse, validate, normalise and identity resolution, and peak memory.

Each dataset file of a `segflow generate` drop goes through segflow.ingest.service.IngestService (local
folder as the bucket, in-memory profile store) in its own fresh process, as each file is its own Lambda
invocation. Customers go first; the identity keys they create are handed to the later files' processes
(orders and events resolve their customers through them), loaded before the clock starts.

The same orders file is also read + cleaned only (bench/ingest_throughput.py's `measure`), in the same
repeat, so the share of time spent on identity resolution and writing outputs is a same-run ratio.

    python bench/bench_ingest.py --orders 10000 [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

from lib.child import peak_rss_mb, run_child
from lib.data import AS_OF, DROP_ORDER, clean_store_path, dataset, scratch
from lib.report import NOT_MEASURED, SizeRow, error_text, table, verdict
from lib.stats import fmt_number, fmt_percent, fmt_ratio, fmt_spread, ratio_spread, spread, spread_of

LAMBDA_MEMORY_MB = 3008  # the ingest function's MemorySize in template.yaml
LAMBDA_TIMEOUT_S = 900
ROOM_TO_SPARE = 2 / 3  # target: the peak stays under two thirds of the function's memory
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


def resident_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ingest_file(
    source: str, dataset_name: str, store: str, identities_in: str | None, identities_out: str
) -> dict[str, Any]:
    """(child process) One file through IngestService; identity keys in and out through pickle files."""
    from segflow.config import settings_from
    from segflow.events.bus import InMemoryPublisher
    from segflow.ingest.drop import DropRef
    from segflow.ingest.service import IngestService
    from segflow.store.objects import LocalObjectStore
    from segflow.store.profiles import InMemoryProfileStore

    root = Path(store)
    objects = LocalObjectStore(root / "bucket", bucket="bench")
    profiles = InMemoryProfileStore()
    if identities_in:
        profiles.identities = pickle.loads(Path(identities_in).read_bytes())
    key = f"raw/{dataset_name}/drop-001/{Path(source).name}"
    target = root / "bucket" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)  # the "upload": not part of ingest
    settings = settings_from({"SEGFLOW_AS_OF": AS_OF.isoformat()})
    service = IngestService(objects, profiles, InMemoryPublisher(), settings, workdir=root)
    baseline = resident_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = service.ingest(DropRef("bench", key, version="v1", size=target.stat().st_size))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = peak_rss_mb()  # before the identity keys are pickled for the next file
    Path(identities_out).write_bytes(pickle.dumps(profiles.identities))
    acc = outcome.accounting
    return {
        "status": outcome.status,
        **{k: acc.get(k, 0) for k in ("rows_in", "clean", "merged", "quarantined", "pending")},
        "profiles_written": acc.get("profiles_written", 0),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows_per_second": acc.get("rows_in", 0) / seconds if seconds else None,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak,
        "identity_keys_loaded": 0 if not identities_in else len(profiles.identities),
    }


def read_and_clean(source: str, dataset_name: str, chunk_rows: int) -> dict[str, Any]:
    """(child process) The read + clean part alone, through bench/ingest_throughput.py's measure."""
    from ingest_throughput import measure

    return measure(dataset_name, source, chunk_rows)


def one_repeat(orders: int, repeat: int, timeout: float | None, keep: bool = False) -> dict[str, Any]:
    data = dataset(orders)
    work = scratch(f"ingest-{orders}-{repeat}")
    per_dataset: dict[str, Any] = {}
    identities: str | None = None
    for name, _ in DROP_ORDER:
        out = str(work / f"identities-{name}.pickle")
        child = run_child(
            "bench_ingest:ingest_file",
            {
                "source": str(data.path(name)),
                "dataset_name": name,
                "store": str(work),
                "identities_in": identities,
                "identities_out": out,
            },
            timeout=timeout,
            env=QUIET,
        )
        if child.error:
            per_dataset[name] = {"error": child.error}
            continue
        per_dataset[name] = {**child.result, "process_peak_rss_mb": child.peak_rss_mb}
        identities = out
    clean_only = run_child(
        "bench_ingest:read_and_clean",
        {"source": str(data.path("orders")), "dataset_name": "orders", "chunk_rows": 100_000},
        timeout=timeout,
        env=QUIET,
    )
    if keep and not any("error" in r for r in per_dataset.values()):
        kept = clean_store_path(orders)  # the other sections score and train on this copy
        shutil.rmtree(kept, ignore_errors=True)
        work.rename(kept)
        (kept / "COMPLETE").touch()
    shutil.rmtree(work, ignore_errors=True)
    ok = [r for r in per_dataset.values() if "error" not in r]
    total_rows = sum(r["rows_in"] for r in ok)
    total_seconds = sum(r["seconds"] for r in ok)
    return {
        "datasets": per_dataset,
        "rows": total_rows,
        "seconds": total_seconds,
        "rows_per_second": total_rows / total_seconds if total_seconds else None,
        "peak_rss_mb": max((r["peak_rss_mb"] for r in ok), default=None),
        "largest_file_seconds": max((r["seconds"] for r in ok), default=None),
        "orders_read_clean_only": clean_only.result if not clean_only.error else {"error": clean_only.error},
    }


def run(sizes: list[int], repeats: int, timeout: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"lambda_memory_mb": LAMBDA_MEMORY_MB, "room_to_spare": ROOM_TO_SPARE, "sizes": {}}
    for orders in sizes:
        runs = [one_repeat(orders, r, timeout, keep=r == repeats - 1) for r in range(repeats)]
        out["sizes"][str(orders)] = summarise(runs)
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in DROP_ORDER]
    per = {}
    for name in names:
        ok = [r["datasets"][name] for r in runs if "error" not in r["datasets"].get(name, {"error": 1})]
        errors = [r["datasets"][name]["error"] for r in runs if "error" in r["datasets"].get(name, {})]
        per[name] = {
            "rows": ok[0]["rows_in"] if ok else None,
            "counts": {k: ok[0][k] for k in ("clean", "merged", "quarantined", "pending")} if ok else {},
            "rows_per_second": spread_of(ok, "rows_per_second"),
            "seconds": spread_of(ok, "seconds"),
            "peak_rss_mb": spread_of(ok, "peak_rss_mb"),
            "baseline_rss_mb": spread_of(ok, "baseline_rss_mb"),
            "errors": errors,
        }
    full = [r["datasets"].get("orders", {}) for r in runs]
    clean_only = [r["orders_read_clean_only"] for r in runs]
    # ingest_throughput rounds its seconds to 0.01 s; rows / (rows per second) keeps small runs exact enough
    pairs = [
        (f["seconds"], c["rows"] / c["rows_per_second"])
        for f, c in zip(full, clean_only)
        if "seconds" in f and c.get("rows_per_second")
    ]
    return {
        "datasets": per,
        "rows": runs[0]["rows"],
        "rows_per_second": spread_of(runs, "rows_per_second"),
        "peak_rss_mb": spread_of(runs, "peak_rss_mb"),
        "largest_file_seconds": spread_of(runs, "largest_file_seconds"),
        "orders_full_over_read_clean": ratio_spread([p[0] for p in pairs], [p[1] for p in pairs]),
        "orders_read_clean_rows_per_second": spread(
            c["rows_per_second"] for c in clean_only if c.get("rows_per_second")
        ),
    }


def headline(result: dict[str, Any], target_size: int = 1_000_000) -> list[SizeRow]:
    limit = result["lambda_memory_mb"] * result["room_to_spare"]
    speed = SizeRow("Ingest", "rows/s through parse, validate, normalise, identity resolution (all 5 files)")
    overhead = SizeRow("Ingest", "orders file: full ingest time ÷ read + clean only (same run)")
    memory = SizeRow(
        "Ingest",
        f"peak memory of the largest file, share of the {result['lambda_memory_mb']:,} MB Lambda",
        target=f"≤ {result['room_to_spare']:.0%} ({limit:,.0f} MB) at {target_size:,} orders",
    )
    for size, summary in result["sizes"].items():
        n = int(size)
        speed.values[n] = fmt_spread(summary["rows_per_second"], 0)
        overhead.values[n] = fmt_ratio(summary["orders_full_over_read_clean"], 2)
        peak = summary["peak_rss_mb"]
        share = (
            {
                k: (v / result["lambda_memory_mb"] if k in ("median", "min", "max") else v)
                for k, v in peak.items()
            }
            if peak
            else None
        )
        memory.values[n] = f"{fmt_spread(peak, 0, ' MB')}; {fmt_percent(share)}" if peak else "failed"
    top = result["sizes"].get(str(target_size), {}).get("peak_rss_mb")
    memory.verdict = verdict(top["max"] <= limit) if top else NOT_MEASURED
    return [speed, overhead, memory]


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "Each file of the drop in its own fresh process (one Lambda invocation per file): IngestService with",
        "a local folder as the bucket and the in-memory profile store, customers first; the identity keys",
        "customers created are loaded into the later files' processes before the clock starts. Peak =",
        "VmHWM of that process (Python, pandas and the loaded identity keys included); baseline = resident",
        "memory just before ingest started. The peaks are upper bounds for the deployed function: the",
        "in-memory store keeps in the process what DynamoDB would hold. Read + clean only =",
        "bench/ingest_throughput.py's `measure` on the same orders file in the same repeat.",
        "",
    ]
    for size, summary in result["sizes"].items():
        rows = []
        for name, d in summary["datasets"].items():
            counts = d["counts"]
            rows.append(
                [
                    name,
                    fmt_number(d["rows"], 0),
                    " / ".join(
                        fmt_number(counts.get(k), 0) for k in ("clean", "merged", "quarantined", "pending")
                    ),
                    fmt_spread(d["rows_per_second"], 0),
                    fmt_spread(d["seconds"], 2),
                    fmt_spread(d["peak_rss_mb"], 0),
                    fmt_spread(d["baseline_rss_mb"], 0),
                    "; ".join(error_text(e) for e in d["errors"]) or "",
                ]
            )
        rows.append(
            [
                "**all files**",
                fmt_number(summary["rows"], 0),
                "",
                fmt_spread(summary["rows_per_second"], 0),
                "",
                fmt_spread(summary["peak_rss_mb"], 0),
                "",
                "",
            ]
        )
        lines += [
            (
                f"**{int(size):,} orders** (largest single file: {fmt_spread(summary['largest_file_seconds'])} "
                f"s of Lambda's {LAMBDA_TIMEOUT_S} s; orders read + clean only: "
                f"{fmt_spread(summary['orders_read_clean_rows_per_second'], 0)} rows/s)"
            ),
            "",
        ]
        lines += table(
            [
                "file",
                "rows",
                "clean / merged / quarantined / pending",
                "rows/s",
                "seconds",
                "peak MB",
                "baseline MB",
                "errors",
            ],
            rows,
        )
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ.update(QUIET)
    print(json.dumps(run(args.orders, args.repeats), indent=2, default=str))


if __name__ == "__main__":
    main()
