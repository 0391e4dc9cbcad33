"""Work items: sizes, deterministic ids, JSON round trips, S3 payloads and SQS pointers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segflow.store.objects import LocalObjectStore
from segflow.sync.desired import build_desired
from segflow.sync.planner import plan
from segflow.sync.workitems import WorkItem, WorkItemPointer, WorkItemStore, chunk_plan

from tests.unit.sync.builders import CONFIG, view


def population_plan(destination: str, n: int, **overrides: object):
    return plan([build_desired(view(i, "Champions", **overrides), destination, CONFIG) for i in range(n)], {})


@pytest.mark.parametrize(
    ("destination", "n", "sizes"),
    [
        ("mailchimp", 1_201, [500, 500, 201]),
        ("hubspot", 250, [100, 100, 50]),
        ("hubspot", 0, []),
    ],
)
def test_items_are_cut_at_the_api_batch_sizes(destination: str, n: int, sizes: list[int]) -> None:
    items = chunk_plan(population_plan(destination, n), "run-1")
    assert [len(i.contacts) for i in items] == sizes
    assert sum((i.customer_ids for i in items), []) == sorted(f"c{i:05d}" for i in range(n))


def test_ids_are_deterministic_and_follow_run_and_content() -> None:
    first = [i.work_item_id for i in chunk_plan(population_plan("hubspot", 150), "run-1")]
    again = [i.work_item_id for i in chunk_plan(population_plan("hubspot", 150), "run-1")]
    other_run = [i.work_item_id for i in chunk_plan(population_plan("hubspot", 150), "run-2")]
    changed = [i.work_item_id for i in chunk_plan(population_plan("hubspot", 150, city="Nice"), "run-1")]
    assert first == again and len(set(first)) == 2
    assert not set(first) & set(other_run) and not set(first) & set(changed)


def test_json_round_trip_and_tamper_detection() -> None:
    (item,) = chunk_plan(population_plan("mailchimp", 3), "run-1")
    back = WorkItem.from_json(item.to_json())
    assert back == item and back.estimated_calls() == item.estimated_calls()
    data = json.loads(item.to_json())
    data["contacts"][0]["desired"]["fields"]["FNAME"] = "Mallory"
    with pytest.raises(ValueError, match="does not match its id"):
        WorkItem.from_json(json.dumps(data))
    data["format"] = 99
    with pytest.raises(ValueError, match="format"):
        WorkItem.from_json(json.dumps(data))


def test_payload_goes_to_the_object_store_and_the_message_is_a_pointer(tmp_path: Path) -> None:
    store = WorkItemStore(LocalObjectStore(tmp_path, bucket="data"))
    (item,) = chunk_plan(population_plan("hubspot", 40), "run-7")
    pointer = store.put(item)
    assert pointer.key == f"sync/work-items/run-7/hubspot/{item.work_item_id}.json"
    message = pointer.to_message()
    assert len(message) < 400 and "@" not in message  # ids only: no contact data in the queue
    assert store.get(WorkItemPointer.from_message(message)) == item
    wrong = WorkItemPointer(pointer.bucket, pointer.key, "0" * 32, pointer.run_id, pointer.destination, 40)
    with pytest.raises(ValueError, match="not the one"):
        store.get(wrong)
