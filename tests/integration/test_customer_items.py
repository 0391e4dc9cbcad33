"""The per-concern item store against DynamoDB (moto): views, order-safe writes, partitions."""
from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from segflow.store.customers import PROFILE, SCORES, DynamoCustomerItems, InMemoryCustomerItems, merge_view


@pytest.fixture(params=["dynamo", "memory"])
def store(request, monkeypatch):
    if request.param == "memory":
        yield InMemoryCustomerItems()
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        )
        yield DynamoCustomerItems(table)


def test_older_writes_never_replace_newer_ones(store):
    assert store.put_if_newer(SCORES, {"C1": {"scored_at": "2026-11-02", "r_score": 5}}, "scored_at") == []
    stale = store.put_if_newer(SCORES, {"C1": {"scored_at": "2026-11-01", "r_score": 1}}, "scored_at")
    assert stale == ["C1"]
    assert store.get(["C1"], [SCORES])["C1"][SCORES]["r_score"] == 5


def test_views_merge_each_owner_item(store):
    store.put_if_newer(PROFILE, {"C1": {"customer_id": "C1", "email": "a@example.com", "updated_at": "1"}}, "updated_at")
    store.put_if_newer(PROFILE, {"C2": {"customer_id": "C2", "merged_into": "C1", "updated_at": "1"}}, "updated_at")
    store.put_if_newer(SCORES, {"C1": {"scored_at": "1", "monetary": 12.5}}, "scored_at")
    store.put_if_newer("SYNC#mailchimp", {"C1": {"synced_at": "1", "status": "subscribed"}}, "synced_at")
    view = merge_view(store.get(["C1"])["C1"])
    assert view["email"] == "a@example.com" and view["monetary"] == 12.5
    assert view["sync"]["mailchimp"]["status"] == "subscribed"
    assert store.customer_ids() == ["C1"]
    assert {i["sk"] for i in store.partition("C1")} == {PROFILE, SCORES, "SYNC#mailchimp"}
    assert store.delete([("CUST#C1", SCORES)]) == 1
    assert SCORES not in store.get(["C1"]).get("C1", {})
