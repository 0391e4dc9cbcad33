"""Score and train use cases over in-memory ports, on generated data that went through ingest."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from segflow.config import settings_from
from segflow.events.bus import InMemoryPublisher
from segflow.ingest.drop import DropRef
from segflow.ingest.service import IngestService
from segflow.scoring.service import ScoreService, TrainService, latest_models
from segflow.store.customers import InMemoryCustomerItems
from segflow.store.objects import LocalObjectStore
from segflow.store.profiles import InMemoryProfileStore
from segflow_local.generate import generate_dataset

AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    generate_dataset(root / "data", customers=300, orders=2500, seed=3, as_of=date(2026, 11, 1))
    objects = LocalObjectStore(root / "bucket", bucket="data")
    service = IngestService(objects, InMemoryProfileStore(), InMemoryPublisher(),
                            settings_from({"SEGFLOW_AS_OF": AS_OF.isoformat()}), workdir=root)
    for name, dataset in (("customers.csv", "customers"), ("orders.csv", "orders"),
                          ("order_items.csv", "order_items"), ("events.jsonl", "events")):
        key = f"raw/{dataset}/d1/{name}"
        objects.put_bytes(key, (root / "data" / name).read_bytes())
        service.ingest(DropRef("data", key, "v1"))
    return objects


def test_train_then_score_fills_every_field_and_a_rescore_changes_nothing(ingested):
    objects = ingested
    publisher = InMemoryPublisher()
    trained = TrainService(objects, publisher).train(AS_OF)
    assert {m.model_name for m in trained} == {"clusters", "value"}
    assert set(latest_models(objects)) == {"clusters", "value"}
    artifact = json.loads(objects.get_bytes(trained[0].artifact_key))
    assert artifact["version"] == trained[0].version and "metrics" in artifact

    items = InMemoryCustomerItems()
    scorer = ScoreService(objects, items, publisher)
    first = scorer.score(AS_OF, "all")
    assert first.customers_scored > 200 and first.changed.count == first.customers_scored
    some = next(iter(items.items.values()))
    for field in ("r_score", "f_score", "m_score", "rfm_segment", "cluster_label", "clv_predicted",
                  "clv_tier", "churn_probability", "churn_risk", "model_version", "scored_at"):
        assert field in some, field
    writes = items.stats.profile_puts
    again = scorer.score(AS_OF, "all")
    assert again.changed.count == 0 and items.stats.profile_puts == writes  # nothing changed, nothing written
    assert json.loads(objects.get_bytes("scores/thresholds/latest.json"))["rfm"]


def test_retraining_on_the_same_data_keeps_cluster_labels(ingested):
    publisher = InMemoryPublisher()
    first = {m.model_name: m for m in TrainService(ingested, publisher).train(AS_OF)}
    labels = json.loads(ingested.get_bytes(first["clusters"].artifact_key))
    second = {m.model_name: m for m in TrainService(ingested, publisher).train(AS_OF)}
    relabels = json.loads(ingested.get_bytes(second["clusters"].artifact_key))
    before = [c["label"] for c in labels["clusters"]]
    assert len(before) >= 3 and len(set(before)) == len(before)  # human labels, unique within the model
    assert before == [c["label"] for c in relabels["clusters"]]
