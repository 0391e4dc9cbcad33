"""segflow benchmarks: runs every section and writes bench/RESULTS.md (and the raw figures as JSON).

    .venv/bin/python bench/run.py --sizes 10000 100000 1000000 --repeats 3     # make bench
    .venv/bin/python bench/run.py --quick                                      # make bench-quick

Data comes from `segflow generate` (seed 7, customers = orders / 10), cached under bench/data/. Every
figure is the median (min–max) over the repeats; ratios are formed within one repeat. The quick variant
(2,000 orders, one repeat, no CDNOW and no latency script) checks that every benchmark still runs; it
asserts nothing about time and writes to bench/.work/ unless --out is given. Exit status 1 means a
benchmark section itself broke (a harness error), not that a target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # children inherit: no INFO lines per drop
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from lib import data
from lib.env import environment

# Run order: ingest first (it leaves the clean data rfm, models and storage read), then the cheap sections,
# end to end with a reserve kept for the two short ones after it.
SECTIONS = ("ingest", "rfm", "models", "storage", "sync", "coldstart", "e2e", "clv", "segment_latency")
AFTER_E2E_RESERVE_S = 240  # clv (~10 s) and the latency script (~1.5 min)
MIN_SECTION_S = 60
TITLES = {
    "ingest": "Ingest",
    "rfm": "RFM against lifetimes",
    "models": "Clustering and prediction",
    "storage": "Storage (DynamoDB writes)",
    "sync": "Sync (API calls and rate limit)",
    "coldstart": "Cold start and function size",
    "e2e": "End to end (`segflow run`)",
    "clv": "CLV accuracy on CDNOW",
    "segment_latency": "Real-time segment latency",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="orders per generated drop")
    parser.add_argument("--repeats", type=int, help="runs per timed figure (default 3; quick 1)")
    parser.add_argument("--quick", action="store_true", help="CI-sized: 2,000 orders, one repeat")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--out", type=Path, help="Markdown report (default bench/RESULTS.md)")
    parser.add_argument("--json", type=Path, help="raw figures (default beside the report)")
    parser.add_argument("--budget-minutes", type=float, help="whole run (default 45; quick 3)")
    parser.add_argument("--e2e-cap-minutes", type=float, help="one end-to-end size (default 15; quick 2)")
    parser.add_argument("--storage-max-orders", type=int, default=100_000)
    parser.add_argument("--sync-max-contacts", type=int, default=10_000)
    parser.add_argument("--coldstart-runs", type=int, help="fresh processes per handler (default 5; quick 1)")
    parser.add_argument("--build", action="store_true", help="`make build` first, for the function sizes")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = args.sizes or ([2_000] if quick else [10_000, 100_000, 1_000_000])
    args.repeats = args.repeats or (1 if quick else 3)
    args.budget_minutes = args.budget_minutes or (3 if quick else 45)
    args.e2e_cap_minutes = args.e2e_cap_minutes or (2 if quick else 15)
    args.coldstart_runs = args.coldstart_runs or (1 if quick else 5)
    if quick:
        args.sections = [s for s in args.sections if s not in ("clv", "segment_latency")]
    args.out = args.out or (data.WORK / "RESULTS-quick.md" if quick else BENCH / "RESULTS.md")
    args.json = args.json or args.out.with_suffix(".json")
    return args


def section_runners(args: argparse.Namespace, deadline: float) -> dict[str, Callable[[], dict[str, Any]]]:
    import bench_clv
    import bench_coldstart
    import bench_e2e
    import bench_ingest
    import bench_models
    import bench_rfm
    import bench_segment_latency
    import bench_storage
    import bench_sync

    def left() -> float:  # a child's timeout: whatever the run has left, but never below a minute
        return max(deadline - time.monotonic(), MIN_SECTION_S)

    sizes, repeats = args.sizes, args.repeats
    later = [s for s in ("clv", "segment_latency") if s in args.sections]
    e2e_deadline = deadline - (AFTER_E2E_RESERVE_S if later else 0)
    return {
        "ingest": lambda: bench_ingest.run(sizes, repeats, timeout=left()),
        "rfm": lambda: bench_rfm.run(sizes, repeats, timeout=left()),
        "models": lambda: bench_models.run(sizes, repeats, timeout=left()),
        "storage": lambda: bench_storage.run(sizes, args.storage_max_orders, timeout=left()),
        "sync": lambda: bench_sync.run(
            sizes, args.sync_max_contacts, 2_000 if args.quick else 6_000, timeout=left()
        ),
        "coldstart": lambda: bench_coldstart.run(args.coldstart_runs),
        "e2e": lambda: bench_e2e.run(sizes, e2e_deadline, args.e2e_cap_minutes * 60),
        "clv": lambda: bench_clv.run(timeout=left()),
        "segment_latency": lambda: bench_segment_latency.run(timeout=min(left(), 600)),
    }


def maybe_build(args: argparse.Namespace) -> str | None:
    """`make build` when asked, or in the full variant when no build exists; returns a failure, if any."""
    if not args.build and (args.quick or (REPO / ".aws-sam" / "build" / "template.yaml").exists()):
        return None
    done = subprocess.run(["make", "build"], check=False, cwd=REPO, capture_output=True, text=True)
    return None if done.returncode == 0 else "make build failed: " + done.stderr.strip()[-300:]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.budget_minutes * 60
    command = "python bench/run.py " + (shlex.join(argv) if argv is not None else shlex.join(sys.argv[1:]))
    results: dict[str, Any] = {
        "environment": environment(REPO, command.strip()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sections": {},
        "section_seconds": {},
        "harness_errors": {},
        "skipped_sections": {},
    }
    results["build_error"] = maybe_build(args) if "coldstart" in args.sections else None
    for size in args.sizes:  # generate up front, so no section's timing includes it
        data.dataset(size)
        shutil.rmtree(data.clean_store_path(size), ignore_errors=True)  # this run ingests its own copy
    runners = section_runners(args, deadline)
    for name in SECTIONS:
        if name not in args.sections:
            continue
        if deadline - time.monotonic() < MIN_SECTION_S:
            results["skipped_sections"][name] = f"the {args.budget_minutes:.0f}-minute budget was used up"
            continue
        print(f"[bench] {name} ...", flush=True)
        section_started = time.monotonic()
        try:
            results["sections"][name] = runners[name]()
        except Exception:  # noqa: BLE001 - one broken section must not lose the others' figures
            results["harness_errors"][name] = traceback.format_exc(limit=8)
        results["section_seconds"][name] = time.monotonic() - section_started
        print(f"[bench] {name}: {results['section_seconds'][name]:.0f} s", flush=True)
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = time.monotonic() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    from lib.render import render_report

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_report(results, args.sizes, TITLES))
    print(f"[bench] wrote {args.out} and {args.json} in {results['total_seconds']:.0f} s", flush=True)
    return 1 if results["harness_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
