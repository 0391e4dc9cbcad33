"""The segment function must stay light: nothing under segflow.segments imports pandas, numpy or sklearn."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import segflow.segments


def test_segments_modules_do_not_import_heavy_libraries():
    modules = [f"segflow.segments.{m.name}" for m in pkgutil.iter_modules(segflow.segments.__path__)]
    assert {"segflow.segments.rules", "segflow.segments.activity", "segflow.segments.membership"} <= set(
        modules
    )
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from segflow.segments.config import load_segments\n"
        "from segflow.segments.rules import compile_rules, evaluate\n"
        "evaluate(compile_rules(load_segments()), {'rfm_segment': 'Champions'}, now='2026-01-01T00:00:00Z')\n"
        "heavy = ('pandas', 'numpy', 'sklearn', 'scipy', 'boto3')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
