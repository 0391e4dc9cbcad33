"""Real-time segment latency: runs bench/segment_activity_latency.py as is and reads its JSON output.

python bench/bench_segment_latency.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lib.child import end_group
from lib.report import FixedRow, error_text, table

SCRIPT = Path(__file__).resolve().parent / "segment_activity_latency.py"


def run(
    customers: int = 300, orders: int = 1500, events: int = 40, timeout: float | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="segflow-bench-") as tmp:
        out = Path(tmp) / "latency.json"
        command = [
            sys.executable,
            str(SCRIPT),
            "--customers",
            str(customers),
            "--orders",
            str(orders),
            "--events",
            str(events),
            "--out",
            str(out),
        ]
        # Its own session: on a timeout the moto server it started goes too.
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_group(process.pid)
            process.communicate()
            return {"error": f"timed out after {timeout:.0f} s"}
        end_group(process.pid)
        if process.returncode != 0 or not out.exists():
            return {"error": f"exit {process.returncode}: {error_text(stderr)}"}
        return json.loads(out.read_text())


def headline(result: dict[str, Any]) -> list[FixedRow]:
    if "error" in result:
        return [FixedRow("Real-time segments", "CustomerActivity → segment handler", "failed")]
    s = result["invocation_seconds"]
    return [
        FixedRow(
            "Real-time segments",
            "segment handler time for one CustomerActivity event (median, p90)",
            f"{s['median']:.3f} s, {s['p90']:.3f} s over {result['activity_events']} events",
        )
    ]


def render(result: dict[str, Any]) -> list[str]:
    if "error" in result:
        return [f"Failed: {error_text(result['error'])}", ""]
    s = result["invocation_seconds"]
    lines = [
        "bench/segment_activity_latency.py: activity events put on the bus one at a time after a settled drop;",
        "the segment handler's invocation time against moto over loopback HTTP.",
        "",
    ]
    lines += table(
        ["customers", "events", "changed membership", "median s", "p90 s", "max s", "cold start s"],
        [
            [
                result["customers"],
                result["activity_events"],
                result["events_that_changed_membership"],
                s["median"],
                s["p90"],
                s["max"],
                result["cold_start_seconds"],
            ]
        ],
    )
    return lines + [""]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
