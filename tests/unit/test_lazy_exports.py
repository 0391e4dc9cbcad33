"""Package exports are lazy: every name resolves, and importing one module does not import the rest."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import segflow.destinations
import segflow.sync


@pytest.mark.parametrize("package", [segflow.sync, segflow.destinations])
def test_every_exported_name_resolves(package) -> None:
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'not_there'"):
        package.not_there  # noqa: B018


def test_importing_the_sync_state_does_not_load_the_api_clients() -> None:
    probe = (
        "import sys, segflow.sync.state, segflow.destinations.errors; "
        "print(sorted(m for m in ('requests', 'segflow.destinations.hubspot', 'segflow.sync.applier') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_sync_plan_handler_holds_no_api_client() -> None:
    """sync-plan has no destination credentials; its cold start should not pay for requests and the clients."""
    probe = (
        "import sys; sys.path.insert(0, 'functions/sync_plan'); import handler; "
        "print(sorted(m for m in ('requests', 'segflow.sync.adapters', 'segflow.sync.applier', "
        "'segflow.destinations.mailchimp', 'segflow.destinations.hubspot') if m in sys.modules))"
    )
    root = __file__.rsplit("/tests/", 1)[0]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_tracing_patches_only_the_libraries_segflow_calls_out_with() -> None:
    """As deployed (Tracing: Active, inside Lambda), the tracer patches botocore and requests; patching all the
    X-Ray SDK supports would import sqlite3 and the rest on every cold start."""
    probe = (
        "import sys, segflow.observability as o; from aws_xray_sdk.core.patcher import _PATCHED_MODULES; "
        "print(o.tracer.disabled, sorted(_PATCHED_MODULES), 'sqlite3' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_SAM"))}
    env.update(LAMBDA_TASK_ROOT="/var/task", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False ['botocore', 'requests'] False"
