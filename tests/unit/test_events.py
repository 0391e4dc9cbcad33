"""Event contracts and publishing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from segflow.events.bus import EventBridgePublisher, InMemoryPublisher, PublishError
from segflow.events.schemas import MAX_INLINE_IDS, DataIngested, DatasetCounts


def ingested(**overrides) -> DataIngested:
    values = dict(
        drop_id="orders-x-1", dataset="orders", bucket="b", source_key="raw/orders/x.csv", clean_key=None,
        quarantine_key=None, accounting_key="clean/orders/orders-x-1.accounting.json",
        counts=DatasetCounts(rows_in=3, clean=1, merged=1, quarantined=1, pending=0),
        customers_touched=1, customer_ids=["C1"], ingested_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
    )
    values.update(overrides)
    return DataIngested(**values)


def test_detail_round_trips_and_rejects_unknown_fields():
    event = ingested()
    assert DataIngested.model_validate_json(event.model_dump_json()) == event
    with pytest.raises(ValidationError):
        DataIngested.model_validate({**event.model_dump(), "surprise": 1})


def test_long_id_lists_must_go_to_s3():
    with pytest.raises(ValidationError):
        ingested(customer_ids=[str(i) for i in range(MAX_INLINE_IDS + 1)])


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValidationError):
        ingested(dataset="invoices")


class FlakyEvents:
    """Answers PutEvents like EventBridge: 200 with per-entry failures."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.calls: list[list[dict]] = []

    def put_events(self, Entries):  # noqa: N803 - boto3's argument name
        self.calls.append(Entries)
        results, failed = [], 0
        for entry in Entries:
            if self.fail_first > 0:
                self.fail_first -= 1
                failed += 1
                results.append({"ErrorCode": "ThrottlingException"})
            else:
                results.append({"EventId": "e"})
        return {"FailedEntryCount": failed, "Entries": results}


def test_publisher_batches_by_ten_and_resends_only_failed_entries():
    client = FlakyEvents(fail_first=2)
    EventBridgePublisher(client, "bus").publish([ingested(drop_id=f"d{i}") for i in range(12)])
    sizes = [len(c) for c in client.calls]
    assert sizes == [10, 2, 2]
    assert all(e["DetailType"] == "DataIngested" and e["Source"] == "segflow.ingest" for c in client.calls for e in c)


def test_publisher_gives_up_cleanly():
    with pytest.raises(PublishError):
        EventBridgePublisher(FlakyEvents(fail_first=100), "bus", max_attempts=3).publish([ingested()])


def test_in_memory_publisher_keeps_the_wire_shape():
    publisher = InMemoryPublisher()
    publisher.publish([ingested()])
    assert publisher.events[0]["detail"]["counts"]["rows_in"] == 3


def test_every_detail_type_parses_from_the_wire_shape():
    from segflow.events.schemas import (
        CustomerActivity, CustomerSelection, ProfilesScored, SegmentsChanged, parse_detail,
    )

    scored = ProfilesScored(run_id="r", mode="all", as_of=datetime(2026, 11, 1, tzinfo=timezone.utc),
                            model_version=None, customers_scored=3,
                            changed=CustomerSelection(count=1, customer_ids=["C1"]))
    publisher = InMemoryPublisher()
    publisher.publish([scored, SegmentsChanged(run_id="r", trigger="ProfilesScored", changed=scored.changed)])
    parsed = [parse_detail(e) for e in publisher.events]
    assert parsed[0] == scored and parsed[1].changed.customer_ids == ["C1"]
    with pytest.raises(ValidationError):
        CustomerActivity.model_validate({"event_id": "e", "event_type": "teleport",
                                         "timestamp": "2026-11-01T00:00:00Z"})


def test_selections_spill_to_s3_beyond_the_inline_limit(tmp_path):
    from segflow.events.selection import resolve, select
    from segflow.store.objects import LocalObjectStore

    objects = LocalObjectStore(tmp_path)
    small = select(objects, ["b", "a", "a"], "manifests/x.json")
    assert small.customer_ids == ["a", "b"] and small.customer_ids_key is None
    big = select(objects, [str(i) for i in range(MAX_INLINE_IDS + 5)], "manifests/y.json")
    assert big.customer_ids == [] and big.count == MAX_INLINE_IDS + 5
    assert len(resolve(objects, big)) == MAX_INLINE_IDS + 5


def test_contacts_checked_is_a_sync_event_with_its_ids_inline():
    from segflow.events.schemas import ContactsChecked, CustomerSelection, parse_detail

    event = ContactsChecked(run_id="r1", destination="hubspot",
                            changed=CustomerSelection(count=2, customer_ids=["C1", "C2"]))
    assert ContactsChecked.source == "segflow.sync" and ContactsChecked.detail_type == "ContactsChecked"
    assert parse_detail({"detail-type": "ContactsChecked", "detail": event.model_dump(mode="json")}) == event
    with pytest.raises(ValidationError):
        ContactsChecked(run_id="r1", destination="other", changed=CustomerSelection(count=0))
