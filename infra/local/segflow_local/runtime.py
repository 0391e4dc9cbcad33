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
        faults: float = 0.0,
        destinations: bool = True,
        env: dict[str, str] | None = None,
        segments_file: Path | None = None,
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
        self.faults = faults
        self.with_destinations = destinations
        self.mailchimp: Any = None
        self.hubspot: Any = None
        self.env_overrides = dict(env or {})
        self.segments_file = segments_file

    def __enter__(self) -> "LocalRuntime":
        self.server = MotoServer().start()
        self._previous_env = set_aws_environment(self.server.endpoint)
        parameters = {"Environment": "dev"}
        extra = {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": self.log_level,
            "POWERTOOLS_METRICS_NAMESPACE": "segflow",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines are CloudWatch's business, not a terminal's
            "SEGFLOW_AS_OF": self.as_of.isoformat() if self.as_of else "",
        }
        if self.with_destinations:
            extra.update(self._start_destinations())
            parameters["MailchimpListId"] = self.mailchimp.default_list_id
        self.deployment = StackDeployer(self.repo_root, self.stack_name, parameters).deploy(self.template)
        if self.with_destinations:
            self._store_destination_secrets()
        if self.segments_file is not None:
            # Where a deployment keeps its segment configuration (SEGMENTS_CONFIG_KEY).
            self.s3().upload_file(str(self.segments_file), self.bucket, "config/segments.yaml")
        self.router = Router(self.deployment, {**extra, **self.env_overrides})
        return self

    def _start_destinations(self) -> dict[str, str]:
        """Real HTTP servers that enforce the Mailchimp and HubSpot contracts, on loopback."""
        from segflow_local.fakes import FakeHubSpot, FakeMailchimp

        self.mailchimp = FakeMailchimp(fault_rate=self.faults, seed=1, record_exchanges=False).start()
        self.hubspot = FakeHubSpot(fault_rate=self.faults, seed=2, record_exchanges=False).start()
        return {"MAILCHIMP_BASE_URL": self.mailchimp.base_url, "HUBSPOT_BASE_URL": self.hubspot.base_url}

    def _store_destination_secrets(self) -> None:
        """Credentials go where they go on AWS: into the template's Secrets Manager secrets."""
        assert self.deployment
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.put_secret_value(SecretId=self.deployment.physical["MailchimpSecret"],
                                 SecretString=json.dumps({"api_key": self.mailchimp.api_key}))
        secrets.put_secret_value(SecretId=self.deployment.physical["HubSpotSecret"],
                                 SecretString=json.dumps({"token": self.hubspot.token}))

    def __exit__(self, *exc: Any) -> None:
        for fake in (self.mailchimp, self.hubspot):
            if fake is not None:
                fake.stop()
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
    def upload_folder(self, folder: Path, progress: bool = False) -> tuple[list[str], list[str]]:
        """Uploads every data file as one drop; returns (keys uploaded, files skipped)."""
        self.drops += 1
        label = f"drop-{self.drops:03d}"
        uploaded, skipped = [], []
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if progress:
            from tqdm import tqdm

            files = tqdm(files, desc=f"uploading drop {self.drops}", unit="file", leave=False)
        for path in files:
            dataset = dataset_of(path, folder)
            if dataset is None or not path.name.lower().endswith(DATA_SUFFIXES):
                skipped.append(str(path))
                continue
            key = f"raw/{dataset}/{label}/{path.name}"
            self.s3().upload_file(str(path), self.bucket, key)
            uploaded.append(key)
        return uploaded, skipped

    def settle(self, progress: bool = False) -> int:
        """Deliver events until the system is idle (with a progress bar of events handled when asked)."""
        assert self.router
        if not progress:
            return self.router.run_until_idle()
        from tqdm import tqdm

        with tqdm(desc="events delivered", unit="event", leave=False) as bar:
            return self.router.run_until_idle(progress=bar.update)

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
            for name in ("rows_in", "clean", "merged", "quarantined", "pending", "erased"):
                totals[drop["dataset"]][name] += drop.get(name, 0)
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

    def run_scheduled_work(self, progress: bool = False) -> None:
        """The nightly and weekly work, in the order a night would run it: train, score, then sync."""
        assert self.router and self.deployment
        functions = {s.function for s in self.deployment.schedules}
        for function in ("TrainFunction", "ScoreFunction", "SyncPlanFunction"):
            if function in functions:
                self.router.fire_schedules([function])
                self.settle(progress)

    def table_items(self) -> list[dict[str, Any]]:
        """Every item of the profile table (profiles, scores, consent ledger, segments, sync state)."""
        from segflow.store.profiles import from_dynamo

        table = boto3.resource("dynamodb", region_name=REGION).Table(self.table_name)
        items, kwargs = [], {}
        while True:
            page = table.scan(**kwargs)
            items.extend(from_dynamo(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: (i["pk"], i["sk"]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

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
        state = out / "state"
        state.mkdir(exist_ok=True)
        with (state / "table.jsonl").open("w", encoding="utf-8") as fh:  # what `segflow explain` reads back
            for item in self.table_items():
                fh.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        segments_key = "segments/latest.json"
        s3 = self.s3()
        if s3.list_objects_v2(Bucket=self.bucket, Prefix=segments_key).get("KeyCount"):
            body = s3.get_object(Bucket=self.bucket, Key=segments_key)["Body"].read()
            (out / "segments.json").write_text(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
        with (out / "sync-log.jsonl").open("w", encoding="utf-8") as fh:  # one line per run and destination
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="sync/log/"):
                for obj in page.get("Contents", []):
                    line = json.loads(s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read())
                    fh.write(json.dumps(line, default=str) + "\n")
        destinations = out / "destinations"
        destinations.mkdir(exist_ok=True)
        for name, fake in (("mailchimp", self.mailchimp), ("hubspot", self.hubspot)):
            if fake is not None:
                (destinations / f"{name}.json").write_text(json.dumps(fake.state(), indent=2, default=str))
        return {"accounting": accounting, "profiles": len(profiles)}
