"""The segment function must stay light: nothing under segflow.segments imports pandas, numpy or sklearn."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import segflow.segments


# The segment function's edge (service orchestration, item and S3 adapters) may use boto3, never the rest.
EDGE_MODULES = frozenset({"segflow.segments.service", "segflow.segments.store"})


def test_segments_modules_do_not_import_heavy_libraries():
    modules = [f"segflow.segments.{m.name}" for m in pkgutil.iter_modules(segflow.segments.__path__)]
    assert {"segflow.segments.rules", "segflow.segments.activity", "segflow.segments.membership"} <= set(
        modules
    )
    pure = [m for m in modules if m not in EDGE_MODULES]
    script = (
        "import importlib, json, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "from segflow.segments.config import load_segments\n"
        "from segflow.segments.rules import compile_rules, evaluate\n"
        "evaluate(compile_rules(load_segments()), {'rfm_segment': 'Champions'}, now='2026-01-01T00:00:00Z')\n"
        "heavy = ('pandas', 'numpy', 'sklearn', 'scipy', 'boto3')\n"
        "pure = sorted(m for m in heavy if m in sys.modules)\n"
        f"for name in {sorted(EDGE_MODULES)!r}:\n"
        "    importlib.import_module(name)\n"
        "edge = sorted(m for m in heavy[:-1] if m in sys.modules)\n"
        "print(json.dumps([pure, edge]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[], []]
