"""A run's profile table, saved in its output folder, loaded back for `segflow explain`."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def explain_from_output(out: Path, email: str) -> dict[str, Any]:
    """Loads OUT/state/table.jsonl into an in-process DynamoDB (moto) and explains one contact."""
    import boto3
    from moto import mock_aws

    from segflow.consent.store import DynamoLedger
    from segflow.store.customers import DynamoCustomerItems
    from segflow.store.profiles import DynamoProfileStore, to_dynamo
    from segflow_local.explain import explain

    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    now = datetime.fromisoformat(run["as_of"]).replace(tzinfo=timezone.utc) if run.get("as_of") else None
    saved = {k: os.environ.pop(k, None) for k in ("AWS_ENDPOINT_URL",)}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        with mock_aws():
            table = boto3.resource("dynamodb").create_table(
                TableName="snapshot", BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}],
            )
            with table.batch_writer() as writer, (out / "state" / "table.jsonl").open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        writer.put_item(Item=to_dynamo(json.loads(line)))
            ports = SimpleNamespace(items=DynamoCustomerItems(table), identities=DynamoProfileStore(table),
                                    ledger=DynamoLedger(table))
            return explain(ports, email, now=now)
    finally:
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value
