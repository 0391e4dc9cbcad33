"""The consent handler stays a light function: importing it (and the whole consent service) loads no
pandas, numpy, scikit-learn, pyarrow or fastparquet. Checked in a fresh interpreter."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HANDLER = Path(__file__).resolve().parents[3] / "functions" / "consent" / "handler.py"
HEAVY = {"pandas", "numpy", "sklearn", "scipy", "pyarrow", "fastparquet"}


def test_the_consent_handler_imports_nothing_heavy():
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('consent_handler', {str(HANDLER)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "import segflow.consent.service, segflow.consent.erasure_adapters\n"
        "import segflow.destinations.mailchimp, segflow.destinations.hubspot\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "segflow" in loaded and not loaded & HEAVY, sorted(loaded & HEAVY)
