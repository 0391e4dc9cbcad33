"""End to end: `segflow run` wall time on a generated drop, broken down by stage.

Calls segflow_local.cli.run_pipeline unchanged, with LocalRuntime swapped for a subclass that times
its steps: stack start, upload, every handler invocation (from router.invocations, summed per function),
the router's own polling (settle time not spent in a handler), export, and the report built after the
stack stops. Progress is appended to a JSON Lines file as it happens, so a run stopped by its time
budget still shows how far it got.

    python bench/bench_e2e.py --orders 2000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from lib.data import AS_OF, dataset, scratch
from lib.report import SizeRow, error_text, table, verdict


class ProgressLog(list):  # type: ignore[type-arg]
    """router.invocations that also appends each invocation to a JSON Lines file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def append(self, invocation: Any) -> None:
        super().append(invocation)
        error = (invocation.error or "").strip().splitlines()
        record = {
            "kind": "invocation",
            "function": invocation.function,
            "seconds": invocation.seconds,
            "records": invocation.records,
            "failed": invocation.failed,
            "error": error[-1][:300] if error else None,
        }
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


def append_record(path: Path, record: dict[str, Any]) -> None:
    # perf_counter is CLOCK_MONOTONIC on Linux: the parent can compare "at" with its own clock.
    with path.open("a") as fh:
        fh.write(json.dumps({**record, "at": time.perf_counter()}) + "\n")


def log_stage(path: Path, stage: str, seconds: float) -> None:
    append_record(path, {"kind": "stage", "stage": stage, "seconds": seconds})


def timed_runtime(progress: Path) -> type:
    from segflow_local.runtime import LocalRuntime

    class TimedRuntime(LocalRuntime):
        def __enter__(self) -> Self:
            started = time.perf_counter()
            super().__enter__()
            log_stage(progress, "start local stack", time.perf_counter() - started)
            assert self.router is not None
            self.router.invocations = ProgressLog(progress)
            invoke = self.router.invoke

            def logged_invoke(logical_id: str, event: dict[str, Any]) -> Any:
                append_record(progress, {"kind": "start", "function": logical_id})
                return invoke(logical_id, event)

            self.router.invoke = logged_invoke  # type: ignore[method-assign]
            return self

        # Arguments pass through untouched: only the timing is added to LocalRuntime's steps.
        def upload_folder(self, *args: Any, **kwargs: Any) -> tuple[list[str], list[str]]:
            started = time.perf_counter()
            try:
                return super().upload_folder(*args, **kwargs)
            finally:
                log_stage(progress, "upload", time.perf_counter() - started)

        def settle(self, *args: Any, **kwargs: Any) -> int:
            started = time.perf_counter()
            try:
                return super().settle(*args, **kwargs)
            finally:
                log_stage(progress, "settle", time.perf_counter() - started)

        def export(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                return super().export(*args, **kwargs)
            finally:
                log_stage(progress, "export", time.perf_counter() - started)

        def __exit__(self, *exc: object) -> None:
            started = time.perf_counter()
            super().__exit__(*exc)
            log_stage(progress, "stop local stack", time.perf_counter() - started)

    return TimedRuntime


def run_once(orders: int, progress: str) -> dict[str, Any]:
    """(child process) One `segflow run` of the generated drop; stage timings go to `progress`."""
    import segflow_local.runtime as runtime_module
    from segflow_local.cli import run_pipeline

    data = dataset(orders)
    out = scratch(f"e2e-out-{orders}")
    progress_path = Path(progress)
    runtime_module.LocalRuntime = timed_runtime(progress_path)  # run_pipeline imports it at call time
    as_of = datetime.combine(AS_OF, datetime.min.time(), tzinfo=UTC)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = run_pipeline([data.folder], out, as_of)
    ended = time.perf_counter()
    return {
        "wall_s": ended - started,
        "ended_at": ended,
        "profiles": summary["profiles"],
        "failed_invocations": summary["failed_invocations"],
        "rows_in": sum(t["rows_in"] for t in summary["accounting"]["totals"].values()),
    }


def breakdown(
    progress: Path, wall_s: float | None, ended_at: float | None, killed_at: float | None = None
) -> dict[str, Any]:
    """Stage seconds from the progress file: handlers per function, the steps around them, the rest
    (the router's polling and idle rounds, and run_pipeline's own work) as the remainder of the wall time."""
    stages: dict[str, float] = defaultdict(float)
    functions: dict[str, dict[str, Any]] = {}
    stopped_at = None
    running: dict[str, Any] | None = None  # the last handler started and not yet finished
    if progress.exists():
        for line in progress.read_text().splitlines():
            record = json.loads(line)
            if record["kind"] == "start":
                running = record
                continue
            if record["kind"] == "invocation":
                running = None
            if record["kind"] == "stage":
                if record["stage"] == "stop local stack":
                    stopped_at = record["at"]
                if record["stage"] != "settle":  # settle time is handler time + polling: split below
                    stages[record["stage"]] += record["seconds"]
                continue
            entry = functions.setdefault(
                record["function"], {"seconds": 0.0, "invocations": 0, "failed": 0, "errors": []}
            )
            entry["seconds"] += record["seconds"]
            entry["invocations"] += 1
            if record["failed"] or record["error"]:
                entry["failed"] += 1
                if record["error"] and record["error"] not in entry["errors"]:
                    entry["errors"].append(record["error"])
    if ended_at is not None and stopped_at is not None:
        stages["report (after the stack stops)"] = ended_at - stopped_at
    if killed_at is not None and running is not None:
        stages[f"{running['function']}, still running when stopped"] = killed_at - running["at"]
    if wall_s is not None:
        handler_s = sum(f["seconds"] for f in functions.values())
        stages["router polling, idle rounds, other"] = max(wall_s - handler_s - sum(stages.values()), 0.0)
    return {"functions": functions, "stages": dict(stages)}


def measure(orders: int, timeout: float | None) -> dict[str, Any]:
    """(orchestrator side) One run in a child process with a time budget; partial results if it stops."""
    from lib.child import run_child

    progress = scratch(f"e2e-progress-{orders}") / "progress.jsonl"
    child = run_child("bench_e2e:run_once", {"orders": orders, "progress": str(progress)}, timeout=timeout)
    killed_at = time.perf_counter() if child.error else None
    wall = child.result.get("wall_s") if not child.error else None
    parts = breakdown(progress, wall, child.result.get("ended_at"), killed_at)
    if wall is None:  # stopped: what the finished steps do not cover was still running at the end
        done = sum(f["seconds"] for f in parts["functions"].values()) + sum(parts["stages"].values())
        parts["stages"]["start-up, router polling, other (stopped run)"] = max(child.seconds - done, 0.0)
    return {
        "orders": orders,
        "finished": child.error is None,
        "error": child.error,
        "wall_s": wall,
        "child_s": child.seconds,
        "peak_rss_mb": child.peak_rss_mb,
        **{k: child.result.get(k) for k in ("profiles", "failed_invocations", "rows_in")},
        **parts,
    }


def run(sizes: list[int], deadline: float, cap_s: float) -> dict[str, Any]:
    """Smallest size first, each with min(cap_s, time to the deadline). A size whose smaller neighbour
    did not finish is skipped; one expected to overrun still runs, and shows how far it got."""
    out: dict[str, Any] = {"sizes": {}, "skipped": {}, "cap_s": cap_s}
    last: dict[str, Any] | None = None
    for orders in sorted(sizes):
        budget = min(cap_s, deadline - time.monotonic())
        if last is not None and not last["finished"]:
            out["skipped"][str(orders)] = f"skipped: the {last['orders']:,}-order run did not finish"
            continue
        if budget < 60:
            out["skipped"][str(orders)] = "skipped: the benchmark's time budget is used up"
            continue
        estimate = last["wall_s"] * orders / last["orders"] if last else None  # linear, for the record
        last = measure(orders, timeout=budget)
        last.update(budget_s=budget, linear_estimate_s=estimate)
        out["sizes"][str(orders)] = last
    return out


def _wall(r: dict[str, Any]) -> float:
    """Wall seconds of a run; for a stopped run, the time it had (its partial stages add up to that)."""
    return r["wall_s"] if r["finished"] else r["child_s"]


def _stages(r: dict[str, Any]) -> list[tuple[str, float, dict[str, Any] | None]]:
    named = [(name, f["seconds"], f) for name, f in r["functions"].items()]
    named += [(name, seconds, None) for name, seconds in r["stages"].items()]
    return sorted(named, key=lambda x: -x[1])


def headline(result: dict[str, Any]) -> list[SizeRow]:
    wall = SizeRow("End to end", "`segflow run` wall s (one run; stopped runs show their budget)")
    slowest = SizeRow("End to end", "slowest stage: its share of the wall time")
    failed = SizeRow("End to end", "failed handler invocations", target="0")
    ok = []
    for size, r in result["sizes"].items():
        n = int(size)
        if r["finished"]:
            wall.values[n] = f"{r['wall_s']:.0f}"
        elif r["error"].startswith("timed out"):
            estimate = r.get("linear_estimate_s")
            guess = f" (linear estimate {estimate / 60:.0f} min)" if estimate else ""
            wall.values[n] = f"stopped at its {r['budget_s']:.0f} s budget{guess}"
        else:
            wall.values[n] = f"failed after {r['child_s']:.0f} s: {error_text(r['error'], 80)}"
        stages = _stages(r)
        if stages:
            name, seconds, _ = stages[0]
            slowest.values[n] = f"{name}: {seconds / _wall(r):.0%}"
        failures = sum(f["failed"] for f in r["functions"].values())
        failed.values[n] = str(failures)
        ok.append(failures == 0)  # a run that stopped or crashed is listed apart, under the misses
    for size, reason in result["skipped"].items():
        wall.values[int(size)] = reason
    failed.verdict = verdict(all(ok)) if ok else verdict(None)
    return [wall, slowest, failed]


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "`segflow_local.cli.run_pipeline` (what `segflow run` calls) on the generated drop of each size, in",
        "a child process with a time budget: moto server, template-wired router, fake Mailchimp and HubSpot,",
        "one drop, then the scheduled train, score and sync. Handler time is summed per function from",
        'router.invocations; "router polling, idle rounds, other" is the rest of the wall time.',
        f"Per-size budget: at most {result['cap_s'] / 60:.0f} min, and no more than the benchmark has left.",
        "",
    ]
    for size, r in result["sizes"].items():
        status = (
            f"{r['wall_s']:.1f} s wall"
            if r["finished"]
            else f"stopped: {error_text(r['error'])} (partial breakdown below)"
        )
        lines += [
            (
                f"**{int(size):,} orders**: {status}; {r.get('profiles') or '—'} profiles; peak memory of the "
                f"run {r['peak_rss_mb'] or 0:.0f} MB (all handlers run in one process, as the local router does)."
            ),
            "",
        ]
        total = _wall(r)
        rows = []
        for name, seconds, f in _stages(r):
            rows.append(
                [
                    name,
                    f"{seconds:.1f}",
                    f"{seconds / total:.0%}" if total else "—",
                    f["invocations"] if f else "",
                    f["failed"] if f else "",
                    "; ".join(f["errors"][:2]) if f else "",
                ]
            )
        lines += table(
            ["stage", "seconds", "share of wall", "invocations", "failed", "errors (last line)"], rows
        )
        lines.append("")
    for size, reason in result["skipped"].items():
        lines.append(f"{int(size):,} orders: {reason}.")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--timeout", type=float, default=None)
    args = parser.parse_args()
    print(json.dumps(measure(args.orders, args.timeout), indent=2))


if __name__ == "__main__":
    main()
