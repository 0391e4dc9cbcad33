"""One local segflow: moto server + template resources + router, and the exports of a run."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr

from segflow_local.router import Router
from segflow_local.stack import REGION, Deployment, MotoServer, StackDeployer, set_aws_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
DATASETS = ("customers", "orders", "order_items", "events", "consent", "erasure")
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".gz")


def dataset_of(path: Path, root: Path) -> str | None:
    """The dataset a file belongs to: its subfolder's name, else its name's longest dataset prefix."""
    relative = path.relative_to(root)
    if len(relative.parts) > 1 and relative.parts[0] in DATASETS:
        return relative.parts[0]
    name = path.name.lower()
    for dataset in sorted(DATASETS, key=len, reverse=True):
        if name.startswith(dataset):
            return dataset
    return None


def write_quarantine_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The quarantine as a spreadsheet for people to fix: formula-looking cells are neutralised."""
    from segflow.ingest.csv_safe import write_people_csv

    record_fields = sorted({k for r in rows for k in (r.get("record") or {})})
    flat = []
    for row in rows:
        reasons = row.get("reasons") or []
        flat.append({
            "file": row.get("file"),
            "row": row.get("row"),
            "problems": "; ".join(f"{r.get('field')}: {r.get('rule')}" for r in reasons),
            "messages": "; ".join(str(r.get("message")) for r in reasons),
            **(row.get("record") or {}),
        })
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_people_csv(flat, ["file", "row", "problems", "messages", *record_fields], fh)


class LocalRuntime:
    def __init__(
        self,
        repo_root: Path = REPO_ROOT,
        *,
        as_of: datetime | None = None,
        stack_name: str = "segflow-local",
        log_level: str = "WARNING",
        template: Path | None = None,
    ) -> None:
        self.repo_root = repo_root
        self.template = template or repo_root / "template.yaml"
        self.as_of = as_of
        self.stack_name = stack_name
        self.log_level = log_level
        self.server: MotoServer | None = None
        self.deployment: Deployment | None = None
        self.router: Router | None = None
        self._previous_env: dict[str, str | None] = {}
        self.drops = 0

    def __enter__(self) -> "LocalRuntime":
        self.server = MotoServer().start()
        self._previous_env = set_aws_environment(self.server.endpoint)
        self.deployment = StackDeployer(self.repo_root, self.stack_name, {"Environment": "dev"}).deploy(self.template)
        extra = {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": self.log_level,
            "POWERTOOLS_METRICS_NAMESPACE": "segflow",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines are CloudWatch's business, not a terminal's
            "SEGFLOW_AS_OF": self.as_of.isoformat() if self.as_of else "",
        }
        self.router = Router(self.deployment, extra)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.server:
            self.server.stop()
        for key, value in self._previous_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    # ---- resources ---------------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        assert self.deployment
        return self.deployment.physical["DataBucket"]

    @property
    def table_name(self) -> str:
        assert self.deployment
        return self.deployment.physical["ProfilesTable"]

    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION)

    # ---- drops -------------------------------------------------------------------------------
    def upload_folder(self, folder: Path) -> tuple[list[str], list[str]]:
        """Uploads every data file as one drop; returns (keys uploaded, files skipped)."""
        self.drops += 1
        label = f"drop-{self.drops:03d}"
        uploaded, skipped = [], []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            dataset = dataset_of(path, folder)
            if dataset is None or not path.name.lower().endswith(DATA_SUFFIXES):
                skipped.append(str(path))
                continue
            key = f"raw/{dataset}/{label}/{path.name}"
            self.s3().upload_file(str(path), self.bucket, key)
            uploaded.append(key)
        return uploaded, skipped

    def settle(self) -> int:
        assert self.router
        return self.router.run_until_idle()

    # ---- exports -----------------------------------------------------------------------------
    def read_json_objects(self, prefix: str, suffix: str) -> list[dict[str, Any]]:
        s3 = self.s3()
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(suffix):
                    found.append(json.loads(s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()))
        return found

    def accounting(self) -> dict[str, Any]:
        drops = sorted(self.read_json_objects("clean/", ".accounting.json"), key=lambda a: a["source_key"])
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for drop in drops:
            for name in ("rows_in", "clean", "merged", "quarantined", "pending"):
                totals[drop["dataset"]][name] += drop[name]
        return {"drops": drops, "totals": {k: dict(v) for k, v in sorted(totals.items())}}

    def profiles(self) -> list[dict[str, Any]]:
        """One view per unified customer: its PROFILE item merged with the items other functions own."""
        from segflow.store.customers import merge_view
        from segflow.store.profiles import from_dynamo

        table = boto3.resource("dynamodb", region_name=REGION).Table(self.table_name)
        by_customer: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        kwargs: dict[str, Any] = {"FilterExpression": Attr("pk").begins_with("CUST#")}
        while True:
            page = table.scan(**kwargs)
            for item in page["Items"]:
                by_customer[item["pk"]][item["sk"]] = from_dynamo(item)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        views = []
        for items in by_customer.values():
            profile = items.get("PROFILE")
            if profile is None or "merged_into" in profile:
                continue
            view = merge_view(items)
            for key in ("pk", "sk", "profile_hash", "version"):
                view.pop(key, None)
            views.append(view)
        return sorted(views, key=lambda p: p["customer_id"])

    def run_scheduled_work(self) -> None:
        """The nightly and weekly work, in the order a night would run it: train, score, then sync."""
        assert self.router and self.deployment
        functions = {s.function for s in self.deployment.schedules}
        for function in ("TrainFunction", "ScoreFunction", "SyncPlanFunction"):
            if function in functions:
                self.router.fire_schedules([function])
                self.settle()

    def quarantine(self) -> dict[str, list[dict[str, Any]]]:
        s3 = self.s3()
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="quarantine/"):
            for obj in page.get("Contents", []):
                dataset = obj["Key"].split("/")[1]
                body = s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read().decode("utf-8")
                rows[dataset].extend(json.loads(line) for line in body.splitlines() if line.strip())
        return dict(rows)

    def export(self, out: Path) -> dict[str, Any]:
        out.mkdir(parents=True, exist_ok=True)
        accounting = self.accounting()
        (out / "accounting.json").write_text(json.dumps(accounting, indent=2))
        profiles = self.profiles()
        with (out / "profiles.jsonl").open("w", encoding="utf-8") as fh:
            for profile in profiles:
                fh.write(json.dumps(profile, ensure_ascii=False, sort_keys=True, default=str) + "\n")
        quarantine_dir = out / "quarantine"
        quarantine_dir.mkdir(exist_ok=True)
        for dataset, rows in self.quarantine().items():
            with (quarantine_dir / f"{dataset}.jsonl").open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            write_quarantine_csv(quarantine_dir / f"{dataset}.csv", rows)
        return {"accounting": accounting, "profiles": len(profiles)}
