"""S3 notifications as delivered through SQS."""
from __future__ import annotations

import json

from segflow.ingest.s3_events import drop_refs


def notification(key: str, event_name: str = "ObjectCreated:Put", version: str | None = "v1") -> str:
    obj = {"key": key, "size": 10, "eTag": "abc"}
    if version:
        obj["versionId"] = version
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1", "eventName": event_name,
        "eventTime": "2026-11-01T00:00:00.000Z",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "data", "arn": "arn:aws:s3:::data"}, "object": obj},
    }]})


def test_keys_are_url_decoded():
    (ref,) = drop_refs(notification("raw/customers/my+export+%C3%A9.csv"))
    assert ref.key == "raw/customers/my export é.csv" and ref.bucket == "data" and ref.version == "v1"


def test_etag_stands_in_for_version_when_versioning_is_off():
    (ref,) = drop_refs(notification("raw/orders/a.csv", version=None))
    assert ref.version == "abc"


def test_test_events_and_deletions_carry_no_drop():
    assert list(drop_refs(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "data"}))) == []
    assert list(drop_refs(notification("raw/orders/a.csv", event_name="ObjectRemoved:Delete"))) == []
