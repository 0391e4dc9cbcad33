"""Throughput of read_table + clean_chunk on synthetic gzip CSV drops (orders and customers).

Targets (measured, not asserted): >= 50,000 order rows/s and >= 10,000 customer rows/s.

    .venv/bin/python bench/ingest_throughput.py --orders 1000000 --customers 200000
writes bench/results/ingest_throughput.json (rows, wall and CPU seconds, rows/s, peak RSS of the measuring
process, machine and load). Drops are generated once into bench/data/ (git-ignored) and read from the path.
The data is deliberately messy: mixed date formats and zones, European and US amounts, status aliases,
mixed-case emails with spaces, national phone formats, country names, and about 0.5% invalid rows
(pending orders, malformed emails) so that the quarantine path runs too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import resource
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import numpy as np
from segflow.ingest.cleaning import clean_chunk
from segflow.ingest.reader import read_table

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
RESULTS = Path(__file__).parent / "results" / "ingest_throughput.json"
DATA = Path(__file__).parent / "data"  # generated drops (git-ignored)
T = TypeVar("T")


def _pick(
    rng: np.random.Generator, options: list[str], size: int, weights: list[float] | None = None
) -> np.ndarray:
    return rng.choice(np.array(options, dtype=object), size=size, p=weights)


def orders_csv(n: int, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    customers = max(n // 5, 1)
    cid = rng.integers(0, customers, n)
    seconds = rng.integers(0, 365 * 86400, n)
    stamps = np.datetime64("2025-06-01T00:00:00") + seconds.astype("timedelta64[s]")
    iso = np.datetime_as_string(stamps, unit="s")
    dates = np.where(
        rng.random(n) < 0.7, np.char.add(iso.astype(str), "Z"), np.char.replace(iso.astype(str), "T", " ")
    )
    cents = rng.integers(100, 500_000, n)
    totals = np.where(rng.random(n) < 0.8, (cents / 100).astype(str), [f"{c / 100:,.2f}" for c in cents])
    statuses = ["completed", "paid", "refunded", "cancelled", "Complete", "pending"]  # pending: quarantined
    status = _pick(rng, statuses, n, [0.6, 0.2, 0.08, 0.07, 0.045, 0.005])
    emails = np.char.add(np.char.add("Customer", cid.astype(str)), "@Example.com")
    lines = ["order_id,customer_id,email,order_date,total,currency,status"]
    lines += [
        f'o{i},c{c},{e},{d},"{t}",{cur},{s}'
        for i, (c, e, d, t, cur, s) in enumerate(
            zip(cid, emails, dates, totals, _pick(rng, ["EUR", "usd", "GBP"], n), status)
        )
    ]
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)


def customers_csv(n: int, seed: int = 2) -> bytes:
    rng = np.random.default_rng(seed)
    first = _pick(rng, ["Anna", "Zoë", "José", "Mohammed", "Li", "Ólafur", "Sarah", "Jean-Luc"], n)
    last = _pick(rng, ["Müller", "Smith", "García", "Nguyen", "O'Brien", "Kowalski"], n)
    country = _pick(rng, ["GB", "uk", "Germany", "DE", "United States", "France", "", "Holland"], n)
    number = rng.integers(0, 10_000_000, n)
    phone_formats = {
        "GB": "020 7{0:03d} {1:04d}",
        "uk": "020 7{0:03d} {1:04d}",
        "Germany": "030 {0:03d}{1:04d}",
        "DE": "+49 30 {0:03d}{1:04d}",
        "United States": "(415) 5{0:02d}-{1:04d}",
        "France": "01 45 {0:02d} {1:02d} 12",
        "": "+44 20 7{0:03d} {1:04d}",
        "Holland": "020 {0:03d} {1:04d}",
    }
    phones = [
        phone_formats[c].format(
            k // 10_000 % 100 if c in ("United States", "France") else k // 10_000 % 1000,
            k % 10_000 if c != "France" else k % 100,
        )
        if r < 0.8
        else ""
        for c, k, r in zip(country, number, rng.random(n))
    ]
    signup = np.datetime_as_string(
        np.datetime64("2020-01-01") + rng.integers(0, 2000, n).astype("timedelta64[D]")
    )
    birth = [
        f"{d:02d}.{m:02d}.{y}"
        for d, m, y in zip(rng.integers(1, 29, n), rng.integers(1, 13, n), rng.integers(1950, 2005, n))
    ]
    # Mailbox names are mostly ASCII in practice (mueller@, not müller@); 2% keep their Unicode letters.
    ascii_name = {
        name: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        for name in set(first) | set(last)
    }
    unicode_mailbox = rng.random(n) < 0.02
    at_signs = np.where(rng.random(n) < 0.005, "(at)Example.COM", "@Example.COM")  # malformed: quarantined
    lines = ["Customer ID,Email Address,First Name,Last Name,Phone,Country,City,Zip,DOB,Signup Date,Tier"]
    lines += [
        f"{i:07d}, {f if u else ascii_name[f]}.{s_ if u else ascii_name[s_]}{i}{at} ,"
        f"{f},{s_},{p},{c},London,SW1A 1AA,{b},{s},{t}"
        for i, (f, s_, p, c, b, s, t, u, at) in enumerate(
            zip(
                first,
                last,
                phones,
                country,
                birth,
                signup,
                _pick(rng, ["gold", "silver", ""], n),
                unicode_mailbox,
                at_signs,
            )
        )
    ]
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)


def measure(dataset: str, path: str, chunk_rows: int) -> dict[str, float | int]:
    """Read + clean one drop from a path (as the ingest function does); runs in a fresh process."""
    start, cpu_start = time.perf_counter(), time.process_time()
    rows = clean_rows = quarantined = warnings = 0
    read_seconds = 0.0
    chunks = read_table(Path(path), f"bench-{dataset}", dataset, chunk_rows=chunk_rows)
    while True:
        t0 = time.perf_counter()
        chunk = next(chunks, None)
        read_seconds += time.perf_counter() - t0
        if chunk is None:
            break
        result = clean_chunk(chunk, dataset, now=NOW, source_name="bench", default_currency="EUR")
        rows += len(chunk.rows)
        clean_rows += len(result.clean)
        quarantined += len(result.quarantined)
        warnings += len(result.warnings)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return {
        "rows": rows, "clean": clean_rows, "quarantined": quarantined, "warnings": warnings,
        "seconds": round(seconds, 2), "read_seconds": round(read_seconds, 2),
        "rows_per_second": round(rows / seconds), "cpu_seconds": round(cpu_seconds, 2),
        "rows_per_cpu_second": round(rows / cpu_seconds), "gzip_bytes": os.path.getsize(path),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }  # fmt: skip


def generate(build: Callable[[int], bytes], n: int, path: str) -> None:
    Path(path).write_bytes(build(n))


def in_fresh_process(function: Callable[..., T], *args: object) -> T:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_1m_at_start": os.getloadavg()[0],
        "chunk_rows": args.chunk_rows,
    }
    DATA.mkdir(parents=True, exist_ok=True)
    plan = (("orders", orders_csv, args.orders, 50_000), ("customers", customers_csv, args.customers, 10_000))
    for dataset, build, n, target in plan:
        if n <= 0:
            continue
        path = DATA / f"{dataset}-{n}.csv.gz"
        # Generation and measurement each get a fresh process (Linux keeps a parent's peak RSS across
        # fork + exec), so the recorded peak is that of streaming the drop alone.
        if not path.exists():
            in_fresh_process(generate, build, n, str(path))
        outcome = in_fresh_process(measure, dataset, str(path), args.chunk_rows)
        outcome["target_rows_per_second"] = target
        results[dataset] = outcome
        print(dataset, json.dumps(outcome))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("written", args.out)


if __name__ == "__main__":
    main()
