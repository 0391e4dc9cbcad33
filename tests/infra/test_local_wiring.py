"""A wiring mistake in template.yaml must break the local run as it would break the deployed one."""
from __future__ import annotations

from pathlib import Path

from segflow_local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = "customer_id,email,signup_date\nC1,a@example.com,2024-01-01\n"


def run_once(template: Path, tmp_path: Path) -> LocalRuntime:
    drop = tmp_path / "drop"
    drop.mkdir(exist_ok=True)
    (drop / "customers.csv").write_text(CUSTOMERS)
    with LocalRuntime(REPO_ROOT, template=template) as runtime:
        runtime.upload_folder(drop)
        runtime.settle()
        runtime.result_drops = runtime.accounting()["drops"]  # type: ignore[attr-defined]
    return runtime


def object_created_deliveries(runtime: LocalRuntime) -> int:
    return sum("ObjectCreated" in r["body"] for _, e in runtime.router.delivered for r in e.get("Records", []))


def test_the_shipped_wiring_delivers_drops_to_ingest(tmp_path):
    runtime = run_once(REPO_ROOT / "template.yaml", tmp_path)
    assert object_created_deliveries(runtime) == 1
    assert {f for f, _ in runtime.router.delivered} == {"IngestFunction"}
    assert len(runtime.result_drops) == 1


def test_a_wrong_notification_prefix_means_ingest_never_runs(tmp_path):
    broken = tmp_path / "template.yaml"
    text = (REPO_ROOT / "template.yaml").read_text()
    assert "{ Name: prefix, Value: raw/ }" in text
    broken.write_text(text.replace("{ Name: prefix, Value: raw/ }", "{ Name: prefix, Value: raws/ }"))
    runtime = run_once(broken, tmp_path)
    assert object_created_deliveries(runtime) == 0
    assert runtime.result_drops == []
