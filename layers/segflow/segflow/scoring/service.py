"""The score and train use cases: clean data in S3 -> models under models/, SCORES items, one event.

Scores are relative to the population (ranks, tiers), so every run recomputes all customers from the
clean data and writes only the SCORES items whose values changed; ProfilesScored lists those customers.
At tens of millions of customers the same code would read aggregates from Athena instead of Parquet.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np
import pandas as pd

from segflow.events.bus import EventPublisher
from segflow.events.schemas import ModelTrained, ProfilesScored
from segflow.events.selection import select
from segflow.observability import logger
from segflow.scoring.activity_batch import compute_activity
from segflow.scoring.data import load_clean
from segflow.scoring.pipeline import score_all
from segflow.scoring.recommend import recommend
from segflow.store.customers import SCORES, CustomerItemStore
from segflow.store.objects import ObjectStore
from segflow.store.parquet import read_parquet_bytes, to_parquet_bytes

MODEL_NAMES = ("clusters", "value")
SNAPSHOT_KEY = "scores/latest.parquet"
THRESHOLDS_KEY = "scores/thresholds/latest.json"


@dataclass(frozen=True)
class Horizons:
    clv_days: int = 365
    churn_days: int = 90


def latest_models(objects: ObjectStore) -> dict[str, dict[str, Any]]:
    models = {}
    for name in MODEL_NAMES:
        pointer = f"models/{name}/latest.json"
        if objects.exists(pointer):
            key = json.loads(objects.get_bytes(pointer))["artifact_key"]
            models[name] = json.loads(objects.get_bytes(key))
    return models


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else round(float(value), 6)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (pd.Timestamp, datetime)):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _row_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ScoreService:
    def __init__(self, objects: ObjectStore, items: CustomerItemStore, publisher: EventPublisher) -> None:
        self.objects = objects
        self.items = items
        self.publisher = publisher

    def score(self, now: datetime, mode: str = "all") -> ProfilesScored:
        orders = load_clean(self.objects, "orders")
        events = load_clean(self.objects, "events")
        order_items = load_clean(self.objects, "order_items")
        models = latest_models(self.objects)
        previous = self._previous_snapshot()
        result = score_all(
            orders if orders is not None else pd.DataFrame(columns=["customer_id", "order_id", "order_date", "total", "status"]),
            events, now, models, previous=previous,
        )
        table = result.customers
        activity = compute_activity(orders, events, now)
        table = table.join(activity, how="outer")
        if order_items is not None and orders is not None:
            table = table.join(recommend(orders, order_items, now), how="left")
        scored_at = pd.Timestamp(now).isoformat()
        # Writes are ordered by when they happen, not by the business date: a replay with a fixed
        # as_of (local runs, backfills) must still replace what an earlier run wrote.
        written_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        version = "+".join(models[n]["version"] for n in MODEL_NAMES if n in models) or None

        records: dict[str, dict[str, Any]] = {}
        hashes: dict[str, str] = {}
        for customer_id, row in zip(table.index, table.to_dict("records")):
            fields = {k: _plain(v) for k, v in row.items()}
            fields = {k: v for k, v in fields.items() if v is not None}
            fields["model_version"] = version
            hashes[str(customer_id)] = _row_hash(fields)
            records[str(customer_id)] = {**fields, "scored_at": scored_at, "written_at": written_at}

        before = dict(zip(previous.index.astype(str), previous["_hash"])) if previous is not None and "_hash" in previous else {}
        changed = {c: r for c, r in records.items() if before.get(c) != hashes[c]}
        stale = self.items.put_if_newer(SCORES, changed, order_field="written_at")
        written = sorted(set(changed) - set(stale))

        snapshot = table.copy()
        snapshot["_hash"] = pd.Series(hashes)
        snapshot.index = snapshot.index.astype(str)
        for column in snapshot.columns:
            if snapshot[column].map(lambda v: isinstance(v, (list, np.ndarray))).any():
                snapshot[column] = snapshot[column].map(lambda v: json.dumps(_plain(v)))
        self.objects.put_bytes(SNAPSHOT_KEY, to_parquet_bytes(snapshot.reset_index().rename(columns={"index": "customer_id"})))
        thresholds = {**result.thresholds, "as_of": scored_at}
        self.objects.put_bytes(THRESHOLDS_KEY, json.dumps(_plain_tree(thresholds)).encode(), "application/json")

        run_id = f"score-{hashlib.sha256((scored_at + written_at).encode()).hexdigest()[:12]}"
        event = ProfilesScored(
            run_id=run_id,
            mode="all" if mode == "all" else "touched",
            as_of=now,
            model_version=version,
            customers_scored=len(records),
            changed=select(self.objects, written, f"manifests/{run_id}.changed.json"),
        )
        self.publisher.publish([event])
        logger.info("scored", extra={"customers": len(records), "changed": len(written), "model_version": version})
        return event

    def _previous_snapshot(self) -> pd.DataFrame | None:
        if not self.objects.exists(SNAPSHOT_KEY):
            return None
        frame = read_parquet_bytes(self.objects.get_bytes(SNAPSHOT_KEY))
        return frame.set_index("customer_id") if "customer_id" in frame else None


def _plain_tree(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain_tree(v) for v in value]
    return _plain(value)


class TrainService:
    def __init__(self, objects: ObjectStore, publisher: EventPublisher, horizons: Horizons = Horizons()) -> None:
        self.objects = objects
        self.publisher = publisher
        self.horizons = horizons

    def train(self, now: datetime) -> list[ModelTrained]:
        from segflow.scoring.pipeline import train_all  # scikit-learn: only the train function has it

        orders = load_clean(self.objects, "orders")
        if orders is None or orders.empty:
            logger.warning("no clean orders yet; nothing to train")
            return []
        events = load_clean(self.objects, "events")
        previous = latest_models(self.objects).get("clusters")
        models = train_all(
            orders, events, now,
            clv_horizon_days=self.horizons.clv_days,
            churn_horizon_days=self.horizons.churn_days,
            previous_clusters=previous,
        )
        published = []
        for name, artifact in models.items():
            version = artifact["version"]
            artifact_key = f"models/{name}/{version}/artifact.json"
            self.objects.put_bytes(artifact_key, json.dumps(artifact).encode(), "application/json")
            metrics = artifact.get("metrics", {})
            self.objects.put_bytes(f"models/{name}/{version}/metrics.json", json.dumps(metrics, default=str).encode(), "application/json")
            self.objects.put_bytes(
                f"models/{name}/latest.json",
                json.dumps({"version": version, "artifact_key": artifact_key, "trained_at": pd.Timestamp(now).isoformat()}).encode(),
                "application/json",
            )
            published.append(ModelTrained(
                model_name=name, version=version, artifact_key=artifact_key,
                metrics=_flat_metrics(metrics), trained_at=now,
            ))
        self.publisher.publish(published)
        logger.info("trained", extra={"models": [m.version for m in published]})
        return published


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float | int | str | None]:
    flat: dict[str, float | int | str | None] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat_metrics(value, f"{name}."))
        elif isinstance(value, (int, float, str)) or value is None:
            flat[name] = _plain(value)
    return dict(list(flat.items())[:40])
