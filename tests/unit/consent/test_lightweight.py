"""The consent and sync functions must stay light: segflow.consent imports no pandas, numpy, scikit-learn
or boto3 (checked in a fresh interpreter, since the test process may already have them loaded)."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "sklearn", "scipy", "boto3", "botocore", "pyarrow", "fastparquet")


def test_consent_package_imports_nothing_heavy():
    code = (
        "import json, sys\n"
        "import segflow.consent, segflow.consent.erasure, segflow.consent.guard\n"
        "from segflow.consent.policy import default_policy\n"
        "default_policy()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            timeout=60)
    loaded = set(json.loads(result.stdout))
    assert "segflow" in loaded and "pydantic" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
