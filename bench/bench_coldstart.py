"""Cold start: import time of each handler module in fresh interpreters, and each function's unzipped size.

For every function in template.yaml, N fresh processes each import `handler` from the function's folder
with the environment the template gives it (resource names replaced by placeholders, no AWS endpoint: an
import must not call AWS). Functions whose layers are only SegflowLayer are "light": they must not load
pandas, numpy, scikit-learn or scipy. Sizes come from `python -m segflow_local.sizes .aws-sam/build`'s
measure() when a build exists.

    python bench/bench_coldstart.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.report import FixedRow, error_text, table, verdict
from lib.stats import fmt_spread, spread

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "sklearn", "scipy", "pyarrow")
LIGHT_LAYERS = {"SegflowLayer"}
LIGHT_TARGET_S = 0.5  # "well under a second", read as at most half of one
SIZE_LIMIT_MB = 250.0
PLACEHOLDER = "bench-placeholder"
PROBE = """
import importlib, json, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
importlib.import_module(sys.argv[2])
seconds = time.perf_counter() - started
heavy = sorted(m for m in sys.argv[3].split(",") if m in sys.modules)
print(json.dumps({"import_s": seconds, "heavy": heavy, "modules": len(sys.modules)}))
"""


def functions(template_path: Path = REPO / "template.yaml") -> list[dict[str, Any]]:
    """Each serverless function's folder, handler module, layers, memory and environment (as text)."""
    from segflow_local.template import load_template

    template = load_template(template_path)
    globals_ = template.get("Globals", {}).get("Function", {})
    base_env = globals_.get("Environment", {}).get("Variables", {})
    found = []
    for logical_id, resource in sorted(template["Resources"].items()):
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        layers = [x["Ref"] for x in props.get("Layers", []) if isinstance(x, dict) and "Ref" in x]
        env = {**base_env, **props.get("Environment", {}).get("Variables", {})}
        found.append(
            {
                "function": logical_id,
                "code_dir": str(REPO / props["CodeUri"]),
                "module": props["Handler"].rsplit(".", 1)[0],
                "layers": layers,
                "light": set(layers) <= LIGHT_LAYERS,
                "memory_mb": props.get("MemorySize", globals_.get("MemorySize")),
                "env": {k: v if isinstance(v, str) else PLACEHOLDER for k, v in env.items()},
            }
        )
    return found


def lambda_like_env(function_env: dict[str, str], task_root: str) -> dict[str, str]:
    """The variables the Lambda runtime sets, as far as they change what an import does: LAMBDA_TASK_ROOT
    makes the X-Ray SDK take its Lambda path (no sampling client) and lets Powertools trace, as the
    template's `Tracing: Active` has it. Tracing on costs nothing here beyond the import: segments are
    sent when an invocation ends, and no invocation runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "LAMBDA_"))}
    env.update(function_env)
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "LAMBDA_TASK_ROOT": task_root,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    return env


def probe(spec: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """One fresh interpreter importing the handler; the process wall time includes interpreter start."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, spec["code_dir"], spec["module"], ",".join(HEAVY)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=lambda_like_env(spec["env"], spec["code_dir"]),
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": "\n".join(done.stderr.strip().splitlines()[-3:])}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": wall}


def biggest_imports(spec: dict[str, Any], top: int = 4, timeout: float = 120) -> list[tuple[str, float]]:
    """The top-level packages that cost the most in one `python -X importtime` import of the handler."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, spec["code_dir"], spec["module"], ",".join(HEAVY)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=lambda_like_env(spec["env"], spec["code_dir"]),
    )
    cost: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line, or anything else on stderr
        package = parts[2].strip().split(".")[0]
        cost[package] = max(cost.get(package, 0.0), int(parts[1]) / 1e6)
    return sorted(cost.items(), key=lambda item: -item[1])[:top]


def interpreter_start_s(repeats: int) -> float:
    """A bare `python -c pass` in the same environment: the floor under every process time."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sizes(build_dir: Path = REPO / ".aws-sam" / "build") -> dict[str, Any]:
    template = build_dir / "template.yaml"
    if not template.exists():
        return {"built": False}
    from segflow_local.sizes import measure

    built_at = datetime.fromtimestamp(template.stat().st_mtime, UTC).isoformat(timespec="seconds")
    return {"built": True, "built_at": built_at, "rows": measure(build_dir)}


def run(repeats: int) -> dict[str, Any]:
    results = []
    for spec in functions():
        if not (Path(spec["code_dir"]) / f"{spec['module']}.py").exists():
            results.append({**_public(spec), "error": "handler module missing"})
            continue
        probes = [probe(spec) for _ in range(repeats)]
        ok = [p for p in probes if "error" not in p]
        results.append(
            {
                **_public(spec),
                "import_s": [p["import_s"] for p in ok],
                "process_s": [p["process_s"] for p in ok],
                "heavy_modules": sorted({m for p in ok for m in p["heavy"]}),
                "modules": ok[0]["modules"] if ok else None,
                "errors": [p["error"] for p in probes if "error" in p],
                "biggest_imports": biggest_imports(spec) if ok else [],
            }
        )
    return {
        "functions": results,
        "interpreter_start_s": interpreter_start_s(repeats),
        "sizes": sizes(),
        "light_target_s": LIGHT_TARGET_S,
        "size_limit_mb": SIZE_LIMIT_MB,
    }


def _public(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec[k] for k in ("function", "layers", "light", "memory_mb")}


def headline(result: dict[str, Any]) -> list[FixedRow]:
    measured = [f for f in result["functions"] if f.get("import_s")]
    light = [f for f in measured if f["light"]]
    rows = []
    if light:
        slowest = max(light, key=lambda f: spread(f["import_s"])["median"])
        s = spread(slowest["import_s"])
        rows.append(
            FixedRow(
                "Cold start",
                "slowest light function's handler import (fresh process, median of runs)",
                f"{slowest['function']}: {fmt_spread(s)} s",
                f"≤ {LIGHT_TARGET_S} s (well under 1 s)",
                verdict(s["median"] <= LIGHT_TARGET_S),
            )
        )
        loaded = [f"{f['function']} ({', '.join(f['heavy_modules'])})" for f in light if f["heavy_modules"]]
        rows.append(
            FixedRow(
                "Cold start",
                "light functions that load pandas / numpy / scikit-learn / scipy",
                ", ".join(loaded) or "none",
                "none",
                verdict(not loaded),
            )
        )
    heavy = [f for f in measured if not f["light"]]
    if heavy:
        slowest = max(heavy, key=lambda f: spread(f["import_s"])["median"])
        rows.append(
            FixedRow(
                "Cold start",
                "slowest data function's handler import (pandas layer)",
                f"{slowest['function']}: {fmt_spread(spread(slowest['import_s']))} s",
            )
        )
    failed = [f["function"] for f in result["functions"] if f.get("error") or f.get("errors")]
    if failed:
        rows.append(
            FixedRow(
                "Cold start", "handlers that failed to import", ", ".join(failed), "none", verdict(False)
            )
        )
    sizes = result["sizes"]
    if not sizes.get("built"):
        rows.append(
            FixedRow(
                "Size",
                "largest function unzipped, with its layers",
                "not built (run `make build`)",
                f"≤ {SIZE_LIMIT_MB:.0f} MB",
                verdict(None),
            )
        )
    else:
        biggest = max(sizes["rows"], key=lambda r: r["total_mb"])
        names = {f["function"] for f in result["functions"]}
        missing = sorted(names - {r["function"] for r in sizes["rows"]})
        note = f"; not in the build: {', '.join(missing)}" if missing else ""
        rows.append(
            FixedRow(
                "Size",
                "largest function unzipped, with its layers",
                f"{biggest['function']}: {biggest['total_mb']:.1f} MB "
                f"({biggest['total_mb'] / SIZE_LIMIT_MB:.0%} of {SIZE_LIMIT_MB:.0f} MB){note}",
                f"≤ {SIZE_LIMIT_MB:.0f} MB each",
                verdict(all(r["total_mb"] <= SIZE_LIMIT_MB for r in sizes["rows"])),
            )
        )
    return rows


def render(result: dict[str, Any]) -> list[str]:
    runs = max((len(f.get("import_s") or []) for f in result["functions"]), default=0)
    lines = [
        f"Each handler module imported in {runs} fresh interpreter(s) with the template's environment for",
        "that function and the Lambda runtime's own variables (resource names as placeholders, tracing on",
        "as deployed, no AWS endpoint). Import = the",
        "`import handler` statement; process = the whole child process, interpreter start included (a bare",
        f"`python -c pass`: {result['interpreter_start_s']:.3f} s). Light = the function's only layer is",
        "SegflowLayer.",
        "",
    ]
    rows = []
    for f in result["functions"]:
        if f.get("error"):
            rows.append(
                [
                    f["function"],
                    ", ".join(f["layers"]),
                    "yes" if f["light"] else "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    error_text(f["error"]),
                ]
            )
            continue
        rows.append(
            [
                f["function"],
                ", ".join(f["layers"]),
                "yes" if f["light"] else "",
                f["memory_mb"],
                fmt_spread(spread(f["import_s"]), 3),
                fmt_spread(spread(f["process_s"]), 3),
                ", ".join(f["heavy_modules"]) or "none",
                ", ".join(f"{name} {seconds:.2f}" for name, seconds in f.get("biggest_imports", [])),
                "; ".join(error_text(e) for e in f["errors"]),
            ]
        )
    lines += table(
        [
            "function",
            "layers",
            "light",
            "memory MB",
            "import s",
            "process s",
            "pandas/numpy/sklearn/scipy loaded",
            "costliest packages, cumulative s (one -X importtime run)",
            "errors",
        ],
        rows,
    )
    sizes = result["sizes"]
    lines.append("")
    if not sizes.get("built"):
        lines.append("Unzipped sizes: not built (no .aws-sam/build; `make build` creates it).")
    else:
        lines += [
            (
                "Unzipped sizes from `python -m segflow_local.sizes .aws-sam/build` (build from "
                f"{sizes['built_at']}; a stale or partial build shows only what it holds):"
            ),
            "",
        ]
        lines += table(
            ["function", "code MB", "layers MB", "total MB", f"share of {SIZE_LIMIT_MB:.0f} MB"],
            (
                [
                    r["function"],
                    f"{r['code_mb']:.1f}",
                    ", ".join(f"{k} {v:.1f}" for k, v in r["layers"].items()),
                    f"{r['total_mb']:.1f}",
                    f"{r['total_mb'] / SIZE_LIMIT_MB:.0%}",
                ]
                for r in sizes["rows"]
            ),
        )
    return lines + [""]


def main() -> int:
    """Prints the cold-start table; exit 1 if a handler fails to import or a light one loads pandas & co."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the raw figures instead of the table")
    args = parser.parse_args()
    result = run(args.repeats)
    print(json.dumps(result, indent=2, default=str) if args.json else "\n".join(render(result)))
    broken = [f for f in result["functions"] if f.get("error") or f.get("errors")]
    heavy_light = [f for f in result["functions"] if f["light"] and f.get("heavy_modules")]
    return 1 if broken or heavy_light else 0


if __name__ == "__main__":
    sys.exit(main())
