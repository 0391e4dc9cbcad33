"""Shared fixtures: the repository root and a local segflow stack (moto server + template)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def runtime() -> Iterator[Any]:
    from segflow_local.runtime import LocalRuntime

    with LocalRuntime(REPO_ROOT, as_of=AS_OF) as local:
        yield local


class EventCapture:
    """A test-only rule on the segflow bus that copies every segflow event into a queue."""

    def __init__(self, bus: str) -> None:
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.create_queue(QueueName="test-capture")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        events.put_rule(Name="test-capture", EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": "segflow."}]}))
        events.put_targets(Rule="test-capture", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        self.events: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.events
            for m in messages:
                self.events.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def capture(runtime: Any) -> EventCapture:
    return EventCapture(runtime.deployment.physical["EventBus"])
