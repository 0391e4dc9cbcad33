"""The sync functions stay light: importing their handlers and running a plan and both workers (with the
segments file's personalisation and the consent guard) loads no pandas, numpy, scikit-learn or scipy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import importlib.util, json, sys, tempfile
from pathlib import Path

handlers = {}
for name in ("sync_plan", "sync_mailchimp", "sync_hubspot"):
    spec = importlib.util.spec_from_file_location(f"handler_{name}", f"functions/{name}/handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handlers[name] = module

from segflow.config import settings_from
from segflow.consent.guard import may_push
from segflow.segments.config import load_segments
from segflow.segments.personalisation import personalise
from segflow.segments.rules import compile_rules
from tests.unit.sync.test_service import World, view

settings = settings_from({"MAILCHIMP_QUEUE_URL": "q1", "HUBSPOT_QUEUE_URL": "q2", "MAILCHIMP_LIST_ID": "l1"})
assert [t.destination for t in handlers["sync_plan"].targets(settings)] == ["mailchimp", "hubspot"]
compiled = compile_rules(load_segments())
world = World(Path(tempfile.mkdtemp()))
world.planner.field_values = lambda v: personalise(compiled, v).mailchimp
world.seed(view(1, "Champions"), view(2, "At risk"))
world.planner.handle({"mode": "all", "reconcile": True})
world.deliver("mailchimp"), world.hand_checked_to_planner(), world.deliver("hubspot")
may_push(view(1))
assert len(world.events("SyncCompleted")) == 2
print(json.dumps(sorted(m for m in ("pandas", "numpy", "sklearn", "scipy") if m in sys.modules)))
"""


def test_sync_handlers_import_and_run_without_heavy_libraries() -> None:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
