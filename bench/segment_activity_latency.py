"""Real-time segment latency: one CustomerActivity event -> the segment handler's invocation time, locally.

A generated dataset is dropped and settled (ingest, score, a full segment run), then activity events for
random customers are put on the bus one at a time; each is delivered by the template's rule to the segment
handler, whose invocation time (resolve, activity item read/write, evaluate, SEGMENTS write, publish, all
against moto over loopback HTTP) is recorded. Cold start = a fresh interpreter importing the handler and
loading + compiling the segments file.

    python bench/segment_activity_latency.py [--customers 300] [--orders 1500] [--events 40]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)
TYPES = ("product_view", "cart_add", "purchase", "email_open", "email_click", "unsubscribe")


def cold_start_seconds() -> float:
    script = (
        "import time, importlib.util; started = time.perf_counter()\n"
        f"spec = importlib.util.spec_from_file_location('h', {str(REPO / 'functions/segment/handler.py')!r})\n"
        "h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)\n"
        "from segflow.segments.config import load_segments\n"
        "from segflow.segments.rules import compile_rules\n"
        "compile_rules(load_segments())\n"
        "print(time.perf_counter() - started)\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--orders", type=int, default=1500)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/segment_activity_latency.json")
    args = parser.parse_args()

    from segflow_local.generate import generate_dataset
    from segflow_local.runtime import LocalRuntime

    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp, LocalRuntime(REPO, as_of=AS_OF) as rt:
        generate_dataset(Path(tmp), customers=args.customers, orders=args.orders, as_of=AS_OF.date(), dirty=False)
        rt.upload_folder(Path(tmp))
        rt.settle()
        customers = [p["customer_id"] for p in rt.profiles()]
        bus = rt.deployment.physical["EventBus"]
        events = boto3.client("events")
        seconds, changed = [], 0
        for n in range(args.events):
            event_type = rng.choice(TYPES)
            detail = {
                "event_id": f"bench-{n}",
                "customer_id": rng.choice(customers),
                "event_type": event_type,
                "timestamp": (AS_OF - timedelta(hours=rng.randint(1, 72))).isoformat(),
                "product_id": f"P{rng.randint(1, 20)}",
            }
            if event_type == "purchase":
                detail.update(order_id=f"bench-order-{n}", total=round(rng.uniform(5, 400), 2))
            events.put_events(Entries=[{"EventBusName": bus, "Source": "segflow.activity",
                                        "DetailType": "CustomerActivity", "Detail": json.dumps(detail)}])
            before = len(rt.router.invocations)
            rt.settle()
            mine = [i for i in rt.router.invocations[before:] if i.function == "SegmentFunction"]
            assert len(mine) == 1 and not mine[0].error, mine
            seconds.append(mine[0].seconds)
        changed = sum(
            1 for function, event in rt.router.delivered
            if function == "SyncPlanFunction" and event.get("detail", {}).get("trigger") == "CustomerActivity"
        )

    ordered = sorted(seconds)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "customers": len(customers),
        "activity_events": len(seconds),
        "events_that_changed_membership": changed,
        "invocation_seconds": {
            "median": round(statistics.median(ordered), 4),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
            "max": round(ordered[-1], 4),
        },
        "cold_start_seconds": round(cold_start_seconds(), 3),
        "note": "handler time in-process against moto server on loopback; includes every S3/DynamoDB/EventBridge call",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
