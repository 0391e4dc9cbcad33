"""The segment function's edges: config loading, the activity overlay, item and S3 adapters, personalisation
and the handler's import weight."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from segflow.segments import activity
from segflow.segments.config import SegmentConfigError
from segflow.segments.overlay import Nightly, activity_view
from segflow.segments.rules import CompiledRules
from segflow.segments.service import LATEST_KEY, build_snapshot, load_config, personalisation_for
from segflow.segments.store import ActivityItem, S3SnapshotStore, SegmentItems, SegmentsItem
from segflow.store.customers import PROFILE, DynamoCustomerItems
from segflow.store.objects import LocalObjectStore

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


# ---- config --------------------------------------------------------------------------------------
def test_the_shipped_default_applies_when_no_file_was_uploaded(tmp_path):
    config = load_config(LocalObjectStore(tmp_path), "config/segments.yaml")
    assert "Champions" in config.by_name and len(config.by_name) >= 10


def test_an_uploaded_file_replaces_the_default(tmp_path):
    objects = LocalObjectStore(tmp_path)
    objects.put_bytes("config/segments.yaml", b"segments: [{name: Big, rule: 'spend_30d > 1000.0'}]")
    assert list(load_config(objects, "config/segments.yaml").by_name) == ["Big"]


def test_a_bad_file_fails_loudly_naming_the_segment(tmp_path):
    objects = LocalObjectStore(tmp_path)
    objects.put_bytes("config/segments.yaml", b"segments:\n  - {name: Broken, rule: 'spend_3d > 1'}\n")
    with pytest.raises(SegmentConfigError, match="segment 'Broken'.*spend_3d"):
        load_config(objects, "config/segments.yaml")


# ---- overlay -------------------------------------------------------------------------------------
NIGHTLY_VIEW = {
    "customer_id": "C1",
    "scored_at": AS_OF.isoformat(),
    "last_order_at": "2026-10-20T00:00:00Z",
    "last_activity_at": "2026-10-30T00:00:00Z",
    "orders_30d": 2,
    "spend_30d": 300.0,
    "opens_14d": 1,
    "clicks_14d": 0,
    "open_no_click": False,
    "browse_abandoned": True,
    "max_product_views_7d": 3,
    "top_viewed_product_7d": "P1",
}


def realtime_state(*events: dict) -> dict:
    state = activity.empty_state()
    for event in events:
        state = activity.apply_event(state, event, NOW)
    return state


def test_without_activity_the_nightly_view_is_evaluated_as_it_is():
    assert activity_view(NIGHTLY_VIEW, None, NOW) == NIGHTLY_VIEW


def test_windowed_values_add_real_time_records_after_the_nightly_run():
    state = realtime_state(
        {"event_id": "before", "event_type": "email_open", "timestamp": AS_OF - DAY},  # already counted
        {"event_id": "e1", "event_type": "email_open", "timestamp": NOW - timedelta(hours=1)},
        {"event_id": "e2", "event_type": "purchase", "timestamp": NOW - timedelta(hours=2), "order_id": "O7",
         "total": 45.5, "product_id": "P9"},
    )
    view = activity_view(NIGHTLY_VIEW, state, NOW)
    assert view["orders_30d"] == 3 and view["spend_30d"] == 345.5
    assert view["opens_14d"] == 2 and view["open_no_click"] is True
    assert view["browse_abandoned"] is False  # bought since the nightly run
    assert view["days_since_last_order"] == 0 and view["last_activity_at"] == "2026-11-01T11:00:00Z"
    assert view["top_viewed_product_7d"] == "P1" and view["max_product_views_7d"] == 3


def test_a_click_since_the_nightly_run_ends_open_no_click():
    view = {**NIGHTLY_VIEW, "opens_14d": 3, "open_no_click": True}
    state = realtime_state({"event_id": "c", "event_type": "email_click", "timestamp": NOW - timedelta(hours=1)})
    assert activity_view(view, state, NOW)["open_no_click"] is False


def test_a_nightly_activity_state_makes_every_window_exact():
    nightly_state = realtime_state(
        {"event_id": "o1", "event_type": "email_open", "timestamp": AS_OF - 20 * DAY},  # out of the 14-day window
        {"event_id": "o2", "event_type": "email_open", "timestamp": AS_OF - DAY},
    )
    view = {**NIGHTLY_VIEW, "activity_state": json.dumps(nightly_state)}
    state = realtime_state({"event_id": "o2", "event_type": "email_open", "timestamp": AS_OF - DAY})  # seen twice
    assert activity_view(view, state, NOW)["opens_14d"] == 1


def test_nightly_thresholds_document_formats():
    rfm = {"recency_days": [1, 2, 3, 4], "frequency": [1, 2, 3, 4], "monetary": [1, 2, 3, 4]}
    grid = [["x"] * 5 for _ in range(5)]
    assert Nightly.from_document({"rfm": rfm, "as_of": "2026-11-01", "rfm_grid": grid}) == Nightly(rfm, "2026-11-01", grid)
    assert Nightly.from_document(rfm).rfm_thresholds == rfm
    assert Nightly.from_document({"rfm": {"recency_days": []}, "rfm_grid": [[1]]}) == Nightly()
    assert Nightly.from_document(None) == Nightly()


# ---- latest.json ---------------------------------------------------------------------------------
def test_snapshot_drops_segments_no_longer_in_the_file(default_rules: CompiledRules):
    previous = {"complete": True, "segments": [{"name": "Gone", "members": ["C1"]}, {"name": "Champions", "members": ["C1", "C2"]}]}
    document = build_snapshot(previous, {"C2": []}, False, default_rules.config, "r", "ProfilesScored", "now")
    members = {s["name"]: s["members"] for s in document["segments"]}
    assert "Gone" not in members and members["Champions"] == ["C1"]
    assert document["complete"] is False  # the previous document was made with another segments file


# ---- adapters against moto ------------------------------------------------------------------------
@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_items_round_trip_through_dynamodb(aws):
    table = boto3.resource("dynamodb").create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )
    raw = DynamoCustomerItems(table)
    store = SegmentItems(raw)
    raw.put_if_newer(PROFILE, {"C1": {"customer_id": "C1", "updated_at": "1", "clv_tier": "low"}}, "updated_at")
    item = SegmentsItem(
        memberships={"Champions": "2026-11-01T00:00:00Z"},
        caps={"entries": [["Abandoned cart", "2026-10-30T00:00:00Z"]], "misses": {"Big": 1}},
        clv={"clv_tier": "high", "clv_tier_up_at": "2026-10-31T00:00:00Z"},
        runs=("scored:r1",), revision=1,
        last_change={"key": "scored:r1", "entered": ["Champions"], "exited": [], "at": "2026-11-01T00:00:00Z"},
    )
    state = realtime_state({"event_id": "e1", "event_type": "purchase", "timestamp": NOW, "order_id": "O1", "total": 12.34})
    assert store.put_segments({"C1": item}, "2026-11-01T00:00:00Z") == []
    assert store.put_activity("C1", ActivityItem(state, 1, True), NOW)
    assert not store.put_activity("C1", ActivityItem(state, 1, True), NOW)  # revision 1 is taken: stale
    record = store.records(["C1"])["C1"]
    assert record.segments == item and record.activity.state == state and record.has_profile
    assert record.view["clv_tier"] == "low" and record.view["memberships"] == item.memberships


def test_latest_json_writes_are_compare_and_set(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="segflow-test")
    store = S3SnapshotStore(s3, "segflow-test")
    assert store.read(LATEST_KEY) == (None, None)
    assert store.write(LATEST_KEY, {"n": 1}, None)
    assert not store.write(LATEST_KEY, {"n": 9}, None)  # someone created it first
    document, etag = store.read(LATEST_KEY)
    assert document == {"n": 1}
    assert store.write(LATEST_KEY, {"n": 2}, etag)
    assert not store.write(LATEST_KEY, {"n": 3}, etag)  # changed since it was read
    assert store.read(LATEST_KEY)[0] == {"n": 2}


# ---- personalisation -----------------------------------------------------------------------------
def test_personalisation_for_follows_the_preference_level(default_rules: CompiledRules):
    view = {"first_name": " Ann ", "city": "Berlin", "rfm_segment": "Champions",
            "recommended_product_names": ["Mug", "Tea"], "preference_level": "basic"}
    basic = personalisation_for(view, default_rules)
    assert basic.mailchimp["FNAME"] == "Ann" and "RFM" not in basic.mailchimp
    full = personalisation_for({**view, "preference_level": "full"}, default_rules.config)
    assert full.mailchimp["RECOMMEND"] == "Mug, Tea" and full.hubspot["segflow_rfm_segment"] == "Champions"
    assert personalisation_for({**view, "preference_level": "none"}, default_rules).mailchimp == {}


# ---- import weight -------------------------------------------------------------------------------
def test_the_handler_imports_and_runs_without_pandas_numpy_or_sklearn(tmp_path):
    script = f"""
import importlib.util, json, sys
from datetime import datetime, timedelta, timezone
spec = importlib.util.spec_from_file_location("segment_handler", {str(REPO / "functions/segment/handler.py")!r})
handler = importlib.util.module_from_spec(spec); spec.loader.exec_module(handler)
from segflow.events.bus import InMemoryPublisher
from segflow.events.schemas import CustomerActivity, CustomerSelection, ProfilesScored
from segflow.segments.rules import compile_rules
from segflow.segments.service import SegmentService, load_config
from segflow.segments.store import InMemorySnapshotStore, SegmentItems
from segflow.store.customers import InMemoryCustomerItems
from segflow.store.objects import LocalObjectStore
from segflow.store.profiles import InMemoryProfileStore
now = datetime(2026, 11, 1, tzinfo=timezone.utc)
items = InMemoryCustomerItems()
items.put_if_newer("PROFILE", {{"C1": {{"customer_id": "C1", "updated_at": "1"}}}}, "updated_at")
objects = LocalObjectStore({str(tmp_path)!r})
service = SegmentService(SegmentItems(items), objects, InMemoryProfileStore(), InMemoryPublisher(),
                         InMemorySnapshotStore(), compile_rules(load_config(objects, "config/segments.yaml")), lambda: now)
service.on_activity(CustomerActivity(event_id="e", customer_id="C1", event_type="cart_add", timestamp=now - timedelta(days=2)))
service.on_scored(ProfilesScored(run_id="r", mode="all", as_of=now, model_version=None, customers_scored=1,
                                 changed=CustomerSelection(count=1, everyone=True)))
print(json.dumps(sorted(m for m in ("pandas", "numpy", "sklearn", "scipy") if m in sys.modules)))
"""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
