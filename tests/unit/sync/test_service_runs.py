"""The run ledger (DynamoDB in moto, and the in-memory fake): one contract, exactly-once counting; and the
sync-log line and run ids built from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws
from segflow.sync import runlog
from segflow.sync.runs import DynamoRunLedger, InMemoryRunLedger

STARTED = datetime(2026, 11, 1, 4, tzinfo=timezone.utc)
PLANNED = {"creates": 3, "estimated_calls": {"total": 5}}


@pytest.fixture(params=["memory", "dynamo"])
def ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryRunLedger()
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
        yield DynamoRunLedger(table)


def test_each_item_counts_once_and_the_last_one_returns_the_summed_totals(ledger: Any) -> None:
    ledger.start("r1", "mailchimp", 3, "SegmentsChanged:s1", STARTED, PLANNED)
    ledger.start("r1", "hubspot", 1, "SegmentsChanged:s1", STARTED, PLANNED)
    assert ledger.finish_item("r1", "mailchimp", "a" * 32, {"api_calls": 2, "outcome_pushed": 3}) is None
    assert (
        ledger.finish_item("r1", "mailchimp", "a" * 32, {"api_calls": 2, "outcome_pushed": 3}) is None
    )  # again
    assert (
        ledger.finish_item("r1", "mailchimp", "b" * 32, {"api_calls": 1, "retries": 1}, error="HTTP_500")
        is None
    )
    totals = ledger.finish_item("r1", "mailchimp", "c" * 32, {"api_calls": 4, "outcome_pushed": 1})
    assert totals is not None and totals.total == 3 and totals.trigger == "SegmentsChanged:s1"
    assert totals.counters["api_calls"] == 7 and totals.counters["outcome_pushed"] == 4
    assert totals.counters["retries"] == 1 and totals.item_errors == ["HTTP_500"]
    assert totals.planned == PLANNED and totals.started_at == STARTED.isoformat()
    assert ledger.finish_item("r1", "mailchimp", "c" * 32, {"api_calls": 4}) is None  # a late duplicate
    assert ledger.finish_item("r1", "hubspot", "a" * 32, {}) is not None  # destinations count apart


def test_unknown_runs_bad_counter_names_and_released_items(ledger: Any) -> None:
    assert ledger.finish_item("missing", "hubspot", "a" * 32, {"api_calls": 1}) is None
    ledger.start("r2", "hubspot", 3, "schedule:all", STARTED, {})
    with pytest.raises(ValueError):
        ledger.finish_item("r2", "hubspot", "a" * 32, {"remaining": 5})
    assert ledger.finish_item("r2", "hubspot", "a" * 32, {"api_calls": 1}) is None
    totals = ledger.release("r2", "hubspot", 2)
    assert totals is not None and totals.counters["unsent_items"] == 2


def test_run_ids_sort_in_planning_order_and_unknown_formats_never_supersede() -> None:
    earlier = runlog.new_run_id(datetime(2026, 11, 1, 4, 0, 0, 1, tzinfo=timezone.utc), "event-b")
    later = runlog.new_run_id(datetime(2026, 11, 1, 4, 0, 0, 2, tzinfo=timezone.utc), "event-a")
    assert (
        earlier < later and runlog.planned_after(later, earlier) and not runlog.planned_after(earlier, later)
    )
    assert not runlog.planned_after("run-2", earlier) and not runlog.planned_after(later, "run-1")
    assert not runlog.planned_after(later, later)


def test_log_line_status_follows_the_counters() -> None:
    ledger = InMemoryRunLedger()
    ledger.start("r", "hubspot", 2, "t", STARTED, {})
    ledger.finish_item("r", "hubspot", "a" * 32, {"work_items": 1, "contacts": 10, "stopped_items": 1})
    totals = ledger.finish_item(
        "r", "hubspot", "b" * 32, {"work_items": 1, "contacts": 5, "duration_ms": 1500}
    )
    assert totals is not None
    line = runlog.log_line(totals, STARTED)
    assert line["status"] == "stopped_daily_limit" and line["stop_run"] is True
    assert line["contacts"] == 15 and line["duration_s"] == 1.5 and line["work_items"] == 2
    clean = runlog.log_line(runlog.RunTotals("r", "hubspot", "t", "", 0), STARTED)
    assert (
        clean["status"] == "completed"
        and runlog.log_line(totals, STARTED, dry_run=True)["status"] == "dry_run"
    )
