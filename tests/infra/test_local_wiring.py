"""A wiring mistake in template.yaml must break the local run as it would break the deployed one."""
from __future__ import annotations

from pathlib import Path

from segflow_local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = "customer_id,email,signup_date\nC1,a@example.com,2024-01-01\n"


def run_once(template: Path, tmp_path: Path) -> LocalRuntime:
    """One customers drop through the stack the template describes (no destinations needed)."""
    drop = tmp_path / "drop"
    drop.mkdir(exist_ok=True)
    (drop / "customers.csv").write_text(CUSTOMERS)
    with LocalRuntime(REPO_ROOT, template=template, destinations=False) as runtime:
        runtime.upload_folder(drop)
        runtime.settle()
        runtime.result_drops = runtime.accounting()["drops"]  # type: ignore[attr-defined]
    return runtime


def object_created_deliveries(runtime: LocalRuntime) -> int:
    return sum("ObjectCreated" in r["body"] for _, e in runtime.router.delivered for r in e.get("Records", []))


def test_the_shipped_wiring_delivers_drops_to_ingest(tmp_path):
    runtime = run_once(REPO_ROOT / "template.yaml", tmp_path)
    assert object_created_deliveries(runtime) == 1
    assert "IngestFunction" in {f for f, _ in runtime.router.delivered}
    assert len(runtime.result_drops) == 1
    assert "ScoreFunction" in {f for f, _ in runtime.router.delivered}  # DataIngested reached score


def test_a_wrong_notification_prefix_means_ingest_never_runs(tmp_path):
    broken = tmp_path / "template.yaml"
    text = (REPO_ROOT / "template.yaml").read_text()
    assert "{ Name: prefix, Value: raw/ }" in text
    broken.write_text(text.replace("{ Name: prefix, Value: raw/ }", "{ Name: prefix, Value: raws/ }"))
    runtime = run_once(broken, tmp_path)
    assert object_created_deliveries(runtime) == 0
    assert runtime.result_drops == []


def test_a_wrong_detail_type_in_a_rule_means_its_function_never_runs(tmp_path):
    broken = tmp_path / "template.yaml"
    text = (REPO_ROOT / "template.yaml").read_text()
    rule = """            Pattern:
              source: [segflow.ingest]
              detail-type: [DataIngested]
              detail:
                dataset: [customers, orders, events, order_items]"""
    assert rule in text
    broken.write_text(text.replace(rule, rule.replace("[DataIngested]", "[DataIngest]")))
    runtime = run_once(broken, tmp_path)
    assert len(runtime.result_drops) == 1  # ingest still ran and announced the drop ...
    assert "ScoreFunction" not in {f for f, _ in runtime.router.delivered}  # ... but score never heard of it
