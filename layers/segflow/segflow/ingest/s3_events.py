"""S3 notifications as they reach ingest: SQS messages whose body is an S3 event (or a TestEvent)."""
from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from segflow.ingest.drop import DropRef


def drop_refs(message_body: str) -> Iterator[DropRef]:
    """The objects an SQS message announces. `s3:TestEvent` (sent when notifications are set up) has none."""
    body: dict[str, Any] = json.loads(message_body)
    if body.get("Event") == "s3:TestEvent" or "Records" not in body:
        return
    for record in S3Event(body).records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        obj = record.s3.get_object
        # Keys arrive URL-encoded ("raw/orders/my+file%C3%A9.csv").
        key = unquote_plus(obj.key)
        yield DropRef(
            bucket=record.s3.bucket.name,
            key=key,
            version=obj.get("versionId") or obj.get("eTag"),
            size=int(obj.get("size") or 0),
        )
