"""SyncState persistence: the DynamoDB adapter (moto, in process) and the in-memory fake, one contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from segflow.store.sync_state import DynamoSyncStateStore, InMemorySyncStateStore, sync_key
from segflow.sync.state import SyncState


@pytest.fixture(params=["memory", "dynamo"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemorySyncStateStore()
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(
            TableName="segflow",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        yield DynamoSyncStateStore(table)


def state(i: int, **overrides: Any) -> SyncState:
    base = SyncState(
        f"c{i}",
        "mailchimp",
        email=f"u{i}@example.com",
        tags=frozenset({"segflow: A"}),
        segments=frozenset({"seg B"}),
        destination_id=f"h{i}",
        status="subscribed",
        last_result={"outcome": "pushed", "at": "2026-11-01T00:00:00+00:00"},
        synced_at="2026-11-01T00:00:00+00:00",
        version=1,
        checked_email=f"u{i}@example.com",  # what the plan's look before a first push reads
        checked_at="2026-11-01T00:00:00+00:00",
    )
    return replace(base.with_fields({"FNAME": "Ann", "ORDERS": 2.5, "CITY": "", "N": 3}), **overrides)


def test_round_trip_keeps_values_exactly(store: Any) -> None:
    written = [state(i) for i in range(150)]  # more than one batch_get of 100
    assert store.put_states(written) == []
    found = store.get_states("mailchimp", [f"c{i}" for i in range(150)] + ["missing"])
    assert len(found) == 150 and found["c7"] == written[7]
    assert found["c7"].fields == {"FNAME": "Ann", "ORDERS": 2.5, "CITY": "", "N": 3}  # "" and floats survive
    assert store.get_states("hubspot", ["c7"]) == {}  # one item per destination
    assert found["c7"].checked_email == "u7@example.com"
    assert SyncState.from_dict(found["c7"].to_dict()) == found["c7"]


def test_writes_are_conditional_on_the_version(store: Any) -> None:
    assert store.put_states([state(1)]) == []
    assert store.put_states([state(1, status="other")]) == ["c1"]  # a second "first" write loses
    assert store.put_states([state(1, version=2, status="unsubscribed")]) == []
    assert store.put_states([state(1, version=2, status="stale")]) == ["c1"]
    assert store.get_states("mailchimp", ["c1"])["c1"].status == "unsubscribed"


def test_item_key_layout() -> None:
    assert sync_key("c1", "hubspot") == {"pk": "CUST#c1", "sk": "SYNC#hubspot"}
