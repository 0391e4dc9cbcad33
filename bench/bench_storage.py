"""Storage: DynamoDB write requests per changed profile, and for an unchanged re-drop (target: zero).

DynamoDB is moto in this process (mock_aws). The customers file of a generated drop is ingested three
times through IngestService with DynamoProfileStore: first as is, then with 1 % of its rows changed (city),
then that same content again under a new key (a re-drop). Scores are written twice through ScoreService
with DynamoCustomerItems on the clean data of the size: a first run, then an unchanged re-run.
Items written come from the stores' own stats; API calls are counted with a botocore hook.

    python bench/bench_storage.py --orders 10000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections import Counter
from datetime import UTC
from typing import Any

from lib.child import run_child
from lib.data import AS_OF, changed_customers_file, clean_store, dataset, scratch
from lib.report import SizeRow, error_text, table, verdict
from lib.stats import fmt_number

WRITE_CALLS = ("PutItem", "BatchWriteItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
TABLE_KEYS = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
}


class CallCounter:
    """Counts DynamoDB API calls by operation, and the items inside BatchWriteItem calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.batch_items = 0

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "BatchWriteItem":
            self.batch_items += sum(len(v) for v in params.get("RequestItems", {}).values())

    def snapshot(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "batch_items": self.batch_items}


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    calls = {k: v - before["calls"].get(k, 0) for k, v in after["calls"].items()}
    return {
        "calls": {k: v for k, v in calls.items() if v},
        "write_calls": sum(v for k, v in calls.items() if k in WRITE_CALLS),
        "batch_items": after["batch_items"] - before["batch_items"],
    }


def measure(orders: int) -> dict[str, Any]:
    """(child process) The three customer drops and the two score runs; counts per step."""
    os.environ.update(
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws
    from segflow.config import settings_from
    from segflow.events.bus import InMemoryPublisher
    from segflow.ingest.drop import DropRef
    from segflow.ingest.service import IngestService
    from segflow.scoring.service import ScoreService
    from segflow.store.customers import DynamoCustomerItems
    from segflow.store.objects import LocalObjectStore
    from segflow.store.profiles import DynamoProfileStore

    data = dataset(orders)
    work = scratch(f"storage-{orders}")
    changed_file = work / "customers-changed.csv"
    rows_changed = changed_customers_file(data.path("customers"), changed_file)
    objects = LocalObjectStore(work / "bucket", bucket="bench")
    settings = settings_from({"SEGFLOW_AS_OF": AS_OF.isoformat()})
    steps: dict[str, Any] = {}
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(
            TableName="bench-profiles", BillingMode="PAY_PER_REQUEST", **TABLE_KEYS
        )
        counter = CallCounter()
        table.meta.client.meta.events.register("before-parameter-build.dynamodb.*", counter)
        profiles = DynamoProfileStore(table)
        service = IngestService(objects, profiles, InMemoryPublisher(), settings, workdir=work)
        drops = (
            ("first drop", data.path("customers")),
            ("1 % of customers changed", changed_file),
            ("unchanged re-drop", changed_file),
        )
        for number, (label, source) in enumerate(drops, start=1):
            key = f"raw/customers/drop-{number:03d}/customers.csv"
            objects.put_bytes(key, source.read_bytes())
            before_stats, before_calls = dict(vars(profiles.stats)), counter.snapshot()
            started = time.perf_counter()
            acc = service.ingest(DropRef("bench", key, version=f"v{number}")).accounting
            steps[label] = {
                "rows_in": acc["rows_in"],
                "profiles_changed": acc.get("profiles_written", 0),
                "profiles_unchanged": acc.get("profiles_unchanged", 0),
                "profile_puts": profiles.stats.profile_puts - before_stats["profile_puts"],
                "identity_puts": profiles.stats.identity_puts - before_stats["identity_puts"],
                "seconds": time.perf_counter() - started,
                **delta(counter.snapshot(), before_calls),
            }
        # Scores: the clean data of this size, copied so the snapshot the first run writes stays here.
        shutil.copytree(clean_store(orders) / "clean", work / "bucket" / "clean", dirs_exist_ok=True)
        items = DynamoCustomerItems(table)
        scorer = ScoreService(objects, items, InMemoryPublisher())
        for label in ("first score", "unchanged re-score"):
            before_puts, before_calls = items.stats.profile_puts, counter.snapshot()
            started = time.perf_counter()
            event = scorer.score(AS_OF_DATETIME())
            steps[label] = {
                "customers_scored": event.customers_scored,
                "scores_put": items.stats.profile_puts - before_puts,
                "seconds": time.perf_counter() - started,
                **delta(counter.snapshot(), before_calls),
            }
    shutil.rmtree(work, ignore_errors=True)
    return {
        "orders": orders,
        "customers_rows": data.rows["customers"],
        "rows_changed": rows_changed,
        "steps": steps,
    }


def AS_OF_DATETIME() -> Any:
    from datetime import datetime

    return datetime.combine(AS_OF, datetime.min.time(), tzinfo=UTC)


def run(sizes: list[int], max_orders: int, timeout: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": {}, "skipped": {}}
    for orders in sizes:
        if orders > max_orders:
            out["skipped"][str(orders)] = (
                f"not run above {max_orders:,} orders: moto's in-process DynamoDB spends about 0.2 s serialising "
                "each 100-key BatchGetItem, so this size would take most of the time budget; the figures are "
                "per profile and do not depend on the size"
            )
            continue
        child = run_child("bench_storage:measure", {"orders": orders}, timeout=timeout)
        out["sizes"][str(orders)] = child.result if not child.error else {"error": child.error}
    return out


def _items(step: dict[str, Any]) -> int:
    return step.get("profile_puts", 0) + step.get("identity_puts", 0) + step.get("scores_put", 0)


def headline(result: dict[str, Any]) -> list[SizeRow]:
    changed = SizeRow(
        "Storage", "DynamoDB writes per changed profile, 1 % of customers changed (items; API calls)"
    )
    redrop = SizeRow(
        "Storage", "DynamoDB writes for an unchanged re-drop / unchanged re-score (items)", target="0"
    )
    zero = []
    for size, r in result["sizes"].items():
        n = int(size)
        if "error" in r:
            changed.values[n] = redrop.values[n] = "failed"
            continue
        step = r["steps"]["1 % of customers changed"]
        per = step["profiles_changed"] or 1
        changed.values[n] = f"{_items(step) / per:.2f}; {step['write_calls'] / per:.2f}"
        again, rescore = _items(r["steps"]["unchanged re-drop"]), _items(r["steps"]["unchanged re-score"])
        redrop.values[n] = f"{again} / {rescore}"
        zero.append(again == 0 and rescore == 0)
    for size in result["skipped"]:
        changed.values[int(size)] = redrop.values[int(size)] = "not run (see Storage)"
    redrop.verdict = verdict(all(zero)) if zero else verdict(None)
    return [changed, redrop]


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "moto's DynamoDB in process. Customers file ingested with DynamoProfileStore three times: as generated,",
        "with the city changed on every 100th row (1 %), then that same content again under a new key (a",
        "re-drop). Scores written with DynamoCustomerItems by ScoreService on the clean data of the size,",
        "twice. Items = the stores' own counters (profile puts, identity-key puts, SCORES puts); API calls =",
        "write operations counted by a botocore hook (a BatchWriteItem carries up to 25 items). Counts are",
        "deterministic: one run per size.",
        "",
    ]
    rows = []
    for size, r in result["sizes"].items():
        if "error" in r:
            rows.append([f"{int(size):,}", "failed", "", "", "", "", "", error_text(r["error"])])
            continue
        for label, step in r["steps"].items():
            changed = step.get("profiles_changed", step.get("customers_scored"))
            rows.append(
                [
                    f"{int(size):,}",
                    label,
                    fmt_number(changed, 0),
                    fmt_number(step.get("profile_puts", step.get("scores_put")), 0),
                    fmt_number(step.get("identity_puts", 0), 0),
                    fmt_number(step["write_calls"], 0),
                    ", ".join(f"{k} {v}" for k, v in sorted(step["calls"].items())) or "none",
                    f"{_items(step) / changed:.2f}" if changed else "—",
                ]
            )
    lines += table(
        [
            "orders",
            "step",
            "profiles changed / customers scored",
            "profile or SCORES puts",
            "identity-key puts",
            "write API calls",
            "all DynamoDB calls",
            "items per profile (changed or scored)",
        ],
        rows,
    )
    for size, reason in result["skipped"].items():
        lines.append(f"\n{int(size):,} orders: {reason}.")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.orders), indent=2, default=str))


if __name__ == "__main__":
    main()
