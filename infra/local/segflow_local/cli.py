"""The `segflow` command: generate sample data, run the pipeline locally, demo."""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Sequence


def _as_of(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write a realistic sample data set")
    gen.add_argument("--customers", type=int, required=True)
    gen.add_argument("--orders", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--as-of", type=date.fromisoformat, default=None)
    gen.add_argument("--clean", action="store_true", help="no injected data-quality problems")

    run = commands.add_parser("run", help="run data folders through the local stack, drop by drop")
    run.add_argument("--data", type=Path, action="append", required=True, help="a folder = one drop")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--as-of", type=_as_of, default=None, help="fixes 'now' (YYYY-MM-DD)")
    run.add_argument("--segments", type=Path, default=None, help="segment configuration (YAML)")
    run.add_argument("--dry-run", action="store_true", help="plan destination changes, call no API")
    run.add_argument("--faults", type=float, default=0.0, help="fraction of destination requests that fail")
    run.add_argument("--clv-horizon-days", type=int, default=365)
    run.add_argument("--churn-horizon-days", type=int, default=90)
    run.add_argument("--log-level", default="WARNING")

    explain = commands.add_parser("explain", help="why one contact may or may not be emailed")
    explain.add_argument("--email", required=True)
    explain.add_argument("--out", type=Path, default=Path("demo-out"), help="the output folder of a run")
    explain.add_argument("--json", action="store_true", help="print the report as JSON")

    demo = commands.add_parser("demo", help="generate a sample and run it end to end locally")
    demo.add_argument("--out", type=Path, default=Path("demo-out"))
    # Sized so the whole local pipeline finishes in a few minutes on a 2-core laptop.
    demo.add_argument("--customers", type=int, default=1000)
    demo.add_argument("--orders", type=int, default=6000)
    demo.add_argument("--seed", type=int, default=7)
    return parser


def cmd_generate(args: argparse.Namespace) -> int:
    from segflow_local.generate import generate_dataset

    summary = generate_dataset(
        args.out, customers=args.customers, orders=args.orders, seed=args.seed, as_of=args.as_of,
        dirty=not args.clean,
    )
    print(json.dumps(summary.to_dict(), indent=2, default=str))
    return 0


def run_pipeline(
    data: Sequence[Path],
    out: Path,
    as_of: datetime | None,
    log_level: str = "WARNING",
    *,
    segments: Path | None = None,
    dry_run: bool = False,
    faults: float = 0.0,
    clv_horizon_days: int = 365,
    churn_horizon_days: int = 90,
) -> dict[str, Any]:
    from segflow_local.runtime import LocalRuntime

    for folder in data:
        if not folder.is_dir():
            raise SystemExit(f"segflow run: --data {folder} is not a folder")
    if segments is not None and not segments.is_file():
        raise SystemExit(f"segflow run: --segments {segments} is not a file")
    if segments is not None:
        from segflow.segments.config import SegmentConfigError, load_segments

        try:
            load_segments(segments)
        except SegmentConfigError as err:
            raise SystemExit(f"segflow run: {segments} is not a valid segment configuration:\n{err}") from None
    env = {
        "SYNC_DRY_RUN": "true" if dry_run else "false",
        "CLV_HORIZON_DAYS": str(clv_horizon_days),
        "CHURN_HORIZON_DAYS": str(churn_horizon_days),
    }
    started = time.monotonic()
    with LocalRuntime(as_of=as_of, log_level=log_level, faults=faults, env=env, segments_file=segments) as runtime:
        for folder in data:
            uploaded, skipped = runtime.upload_folder(folder, progress=sys.stderr.isatty())
            for path in skipped:
                print(f"skipped {path}: its name matches no dataset", file=sys.stderr)
            print(f"drop {runtime.drops}: {len(uploaded)} file(s) from {folder}")
            runtime.settle(progress=sys.stderr.isatty())
        print("running the scheduled work (train, nightly score, sync) ...")
        runtime.run_scheduled_work(progress=sys.stderr.isatty())
        failures = [i for i in runtime.router.invocations if i.error or i.failed] if runtime.router else []
        by_function: dict[str, float] = {}
        for invocation in runtime.router.invocations if runtime.router else []:
            by_function[invocation.function] = by_function.get(invocation.function, 0.0) + invocation.seconds
        summary = runtime.export(out)
        summary["seconds_by_function"] = {k: round(v, 1) for k, v in sorted(by_function.items(), key=lambda kv: -kv[1])}
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["failed_invocations"] = len(failures)
    if as_of:
        summary["as_of"] = as_of.date().isoformat()
    (out / "run.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "accounting"}, indent=2))
    from segflow_local.report import build_report

    build_report(out, run_summary=summary)
    print_summary(summary, out)
    for failure in failures[:5]:
        print(f"FAILED {failure.function}: {failure.error or f'{failure.failed} record(s)'}", file=sys.stderr)
    return summary


def print_summary(summary: dict[str, Any], out: Path) -> None:
    totals = summary["accounting"]["totals"]
    header = f"{'dataset':<12}{'rows_in':>10}{'clean':>10}{'merged':>10}{'quarantined':>13}{'pending':>10}{'erased':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for dataset, counts in totals.items():
        print(
            f"{dataset:<12}{counts['rows_in']:>10}{counts['clean']:>10}{counts['merged']:>10}"
            f"{counts['quarantined']:>13}{counts['pending']:>10}{counts.get('erased', 0):>8}"
        )
    unreadable = [d["source_key"] for d in summary["accounting"]["drops"] if d["file_quarantined"]]
    stages = ", ".join(f"{name.removesuffix('Function')} {secs:.0f}s" for name, secs in summary.get("seconds_by_function", {}).items())
    print(f"\ntime by function: {stages}")
    print(f"profiles: {summary['profiles']}   files quarantined whole: {len(unreadable)}   "
          f"time: {summary['seconds']} s\nresults in {out}/ (report.html, profiles.jsonl, accounting.json, quarantine/)")


def cmd_run(args: argparse.Namespace) -> int:
    summary = run_pipeline(
        args.data, args.out, args.as_of, args.log_level, segments=args.segments, dry_run=args.dry_run,
        faults=args.faults, clv_horizon_days=args.clv_horizon_days, churn_horizon_days=args.churn_horizon_days,
    )
    return 1 if summary["failed_invocations"] else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from segflow_local.explain import render
    from segflow_local.snapshot import explain_from_output

    snapshot = args.out / "state" / "table.jsonl"
    if not snapshot.is_file():
        print(f"segflow explain: {args.out} holds no run output (no {snapshot}); run `segflow run` or "
              "`segflow demo` first", file=sys.stderr)
        return 2
    report = explain_from_output(args.out, args.email)
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0 if report.get("found", True) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from segflow_local.generate import generate_dataset

    as_of = date(2026, 11, 1)
    data = args.out / "sample"
    print(f"generating {args.customers} customers and {args.orders} orders into {data}/ ...")
    generate_dataset(data, customers=args.customers, orders=args.orders, seed=args.seed, as_of=as_of)
    summary = run_pipeline([data], args.out, _as_of(as_of.isoformat()))
    return 1 if summary["failed_invocations"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    # Metrics are disabled locally (they are CloudWatch's business); Powertools still warns per invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    args = build_parser().parse_args(argv)
    handlers = {"generate": cmd_generate, "run": cmd_run, "demo": cmd_demo, "explain": cmd_explain}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
