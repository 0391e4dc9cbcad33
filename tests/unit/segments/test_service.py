"""The segment service with in-memory ports: batch runs, real-time activity, latest.json and replays."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from segflow.events.bus import InMemoryPublisher
from segflow.events.schemas import CustomerActivity, CustomerSelection, ProfilesScored
from segflow.segments.config import parse_segments
from segflow.segments.rules import CompiledRules, compile_rules
from segflow.segments.service import LATEST_KEY, THRESHOLDS_KEY, SegmentService
from segflow.segments.store import ACTIVITY, InMemorySnapshotStore, SegmentItems
from segflow.store.customers import PROFILE, SCORES, SEGMENTS, InMemoryCustomerItems, customer_pk
from segflow.store.objects import LocalObjectStore
from segflow.store.profiles import InMemoryProfileStore

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
DAY = timedelta(days=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, tmp_path: Path, rules: CompiledRules) -> None:
        self.items = InMemoryCustomerItems()
        self.objects = LocalObjectStore(tmp_path / "bucket")
        self.identities = InMemoryProfileStore()
        self.publisher = InMemoryPublisher()
        self.snapshots = InMemorySnapshotStore()
        self.clock = Clock(NOW)
        self.service = SegmentService(
            SegmentItems(self.items), self.objects, self.identities, self.publisher, self.snapshots, rules, self.clock
        )
        self.version = 0

    def profile(self, customer_id: str, **fields: Any) -> None:
        self.version += 1
        profile = {
            "customer_id": customer_id,
            "email": f"{customer_id.lower()}@example.com",
            "country": "DE",
            "signup_date": "2024-05-10T00:00:00Z",
            "updated_at": f"{self.version:06d}",
            **fields,
        }
        self.items.put_if_newer(PROFILE, {customer_id: profile}, "updated_at")
        self.identities.identities[("id", customer_id)] = customer_id
        self.identities.identities[("email", profile["email"])] = customer_id

    def scores(self, customer_id: str, **fields: Any) -> None:
        self.version += 1
        scored = {"scored_at": f"2026-11-01T00:00:{self.version:02d}Z", **fields}
        self.items.put_if_newer(SCORES, {customer_id: scored}, "scored_at")

    def scored(self, run_id: str, ids: list[str] | None = None, delivery: str | None = None) -> Any:
        everyone = ids is None
        detail = ProfilesScored(
            run_id=run_id, mode="all" if everyone else "touched", as_of=self.clock.now, model_version=None,
            customers_scored=len(ids or []),
            changed=CustomerSelection(count=len(ids or []), customer_ids=ids or [], everyone=everyone),
        )
        return self.service.on_scored(detail, delivery_id=delivery)

    def activity(self, event_id: str, event_type: str, at: datetime, **fields: Any) -> Any:
        detail = CustomerActivity(event_id=event_id, event_type=event_type, timestamp=at, **fields)
        return self.service.on_activity(detail)

    def changes(self) -> list[dict[str, Any]]:
        return [e["detail"] for e in self.publisher.events if e["detail-type"] == "SegmentsChanged"]

    def memberships(self, customer_id: str) -> dict[str, str]:
        return self.items.items.get((customer_pk(customer_id), SEGMENTS), {}).get("memberships", {})

    def item(self, customer_id: str, kind: str) -> dict[str, Any] | None:
        found = self.items.items.get((customer_pk(customer_id), kind))
        return dict(found) if found else None

    def latest(self) -> dict[str, Any]:
        document, _ = self.snapshots.read(LATEST_KEY)
        assert document is not None
        return document

    def members(self) -> dict[str, list[str]]:
        return {s["name"]: s["members"] for s in self.latest()["segments"]}


@pytest.fixture
def h(tmp_path: Path, default_rules: CompiledRules) -> Harness:
    return Harness(tmp_path, default_rules)


def by_segment(detail: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    return {c["segment"]: (c["entered"], c["exited"]) for c in detail["changes"]}


# ---- batch ---------------------------------------------------------------------------------------
def test_a_scoring_run_records_memberships_and_announces_only_real_changes(h: Harness):
    for customer in ("C1", "C2", "C3"):
        h.profile(customer)
    h.scores("C1", rfm_segment="Champions")
    h.scores("C2", rfm_segment="Champions", churn_risk="high")
    h.scores("C3", rfm_segment="Hibernating")

    first = h.scored("run-1")
    assert first.evaluated == 3 and first.written == 2 and first.published
    [event] = h.changes()
    assert event["trigger"] == "ProfilesScored" and event["changed"]["customer_ids"] == ["C1", "C2"]
    assert by_segment(event) == {"Champions": (["C1", "C2"], []), "Likely to churn": (["C2"], [])}
    assert set(h.memberships("C2")) == {"Champions", "Likely to churn"}
    assert h.item("C3", SEGMENTS) is None  # nothing to record

    writes = h.items.stats.profile_puts
    second = h.scored("run-2")
    assert not second.published and second.written == 0
    assert h.items.stats.profile_puts == writes and len(h.changes()) == 1


def test_hysteresis_counts_each_scoring_run_once_even_when_redelivered(h: Harness):
    h.profile("C1")
    h.scores("C1", rfm_segment="Champions")
    h.scored("run-1")
    h.scores("C1", rfm_segment="Hibernating")

    held = h.scored("run-2")
    assert not held.published and "Champions" in h.memberships("C1")
    redelivered = h.scored("run-2")
    assert redelivered.skipped == 1 and redelivered.written == 0
    assert "Champions" in h.memberships("C1")

    left = h.scored("run-3")
    assert left.exits == 1 and "Champions" not in h.memberships("C1")
    assert by_segment(h.changes()[-1]) == {"Champions": ([], ["C1"])}


def test_a_retried_run_announces_the_change_it_already_recorded(h: Harness):
    h.profile("C1")
    h.scores("C1", rfm_segment="Champions")
    first = h.scored("run-1")
    again = h.scored("run-1")  # e.g. the publish of the first attempt failed after the items were written
    assert again.written == 0 and again.skipped == 1
    assert [e["run_id"] for e in h.changes()] == ["segments-run-1", "segments-run-1"]
    assert h.changes()[0] == h.changes()[1] and first.entries == again.entries == 1


def test_latest_json_is_rebuilt_by_full_runs_and_updated_by_partial_ones(h: Harness):
    for customer in ("C1", "C2", "C3"):
        h.profile(customer)
        h.scores(customer, rfm_segment="Champions")
    h.scored("run-1")
    latest = h.latest()
    assert latest["complete"] is True and h.members()["Champions"] == ["C1", "C2", "C3"]
    champions = next(s for s in latest["segments"] if s["name"] == "Champions")
    assert champions["builtin"] == "rfm:Champions" and champions["size"] == 3 and champions["trigger"] is False
    violations = latest["guardrails"]["violations"]
    assert [(v["kind"], v["segment"], v["value"]) for v in violations] == [("too_small", "Champions", 3)]

    h.scores("C2", rfm_segment="Hibernating", churn_risk="high")
    h.scored("run-2", ["C2"])
    members = h.members()
    assert members["Likely to churn"] == ["C2"]  # C1 and C3 were not evaluated: kept from the full run
    assert members["Champions"] == ["C1", "C2", "C3"]  # C2 is held by hysteresis
    assert h.latest()["complete"] is True and h.latest()["run_id"] == "segments-run-2"


def test_only_full_runs_advance_hysteresis(h: Harness):
    h.profile("C1")
    h.scores("C1", rfm_segment="Champions")
    h.scored("nightly-1")
    h.scores("C1", rfm_segment="Hibernating")
    for n in range(3):  # a burst of drops is not three nights
        h.scored(f"drop-{n}", ["C1"])
    assert "Champions" in h.memberships("C1")
    h.scored("nightly-2")
    assert "Champions" in h.memberships("C1")
    h.scored("nightly-3")
    assert "Champions" not in h.memberships("C1")


def test_a_reused_run_id_is_a_new_run_when_published_again(h: Harness):
    h.profile("C1")
    h.scores("C1", rfm_segment="Champions")
    h.scored("same", delivery="event-1")
    h.scores("C1", rfm_segment="Hibernating")
    h.scored("same", delivery="event-2")
    h.scored("same", delivery="event-2")  # redelivered: not counted again
    assert "Champions" in h.memberships("C1")
    h.scored("same", delivery="event-3")
    assert "Champions" not in h.memberships("C1")


def test_a_partial_run_evaluates_everyone_when_latest_json_is_missing_or_outdated(h: Harness, default_rules):
    for customer in ("C1", "C2"):
        h.profile(customer)
        h.scores(customer, rfm_segment="Champions")
    first = h.scored("drop-1", ["C1"])
    assert first.evaluated == 2 and h.members()["Champions"] == ["C1", "C2"] and h.latest()["complete"]

    h.scores("C2", rfm_segment="Hibernating")
    assert h.scored("drop-2", ["C1"]).evaluated == 1  # latest.json is current: only the changed customers

    edited = default_rules.config.model_dump(mode="json") | {"guardrails": {"min_segment_size": 1}}
    h.service.compiled = compile_rules(parse_segments(edited))
    assert h.scored("drop-3", ["C1"]).evaluated == 2  # another segments file: everyone once more
    assert "Champions" in h.memberships("C2")  # and that was not counted as a night


def test_many_changes_go_to_s3_with_the_changed_customers_in_a_manifest(h: Harness):
    ids = [f"C{i:03d}" for i in range(210)]
    for customer in ids:
        h.profile(customer)
        h.scores(customer, rfm_segment="Champions")
    outcome = h.scored("big")
    [event] = h.changes()
    assert event["changes"] == [] and event["changes_key"] == outcome.changes_key
    body = json.loads(h.objects.get_bytes(outcome.changes_key))
    assert body["changes"] == [{"segment": "Champions", "entered": ids, "exited": []}]
    assert event["changed"]["count"] == 210 and event["changed"]["customer_ids"] == []
    assert json.loads(h.objects.get_bytes(event["changed"]["customer_ids_key"])) == ids


def test_a_profile_merged_into_another_leaves_its_segments(h: Harness):
    h.profile("C1")
    h.scores("C1", rfm_segment="Champions")
    h.scored("run-1", ["C1"])
    h.profile("C1", merged_into="C9")
    outcome = h.scored("run-2", ["C1"])
    assert outcome.exits == 1 and h.memberships("C1") == {}


def test_lost_write_races_are_re_evaluated(h: Harness, monkeypatch):
    h.profile("C1")
    h.scores("C1", rfm_segment="Champions")
    original = h.items.put_if_newer
    raced = []

    def racing_put(kind: str, items: dict, order_field: str) -> list[str]:
        if kind == SEGMENTS and not raced:  # another writer stores revision 1 first
            raced.append(True)
            original(kind, {"C1": {"customer_id": "C1", "memberships": {}, "segments_revision": 1}}, order_field)
        return original(kind, items, order_field)

    monkeypatch.setattr(h.items, "put_if_newer", racing_put)
    outcome = h.scored("run-1")
    assert outcome.retries == 1 and outcome.entries == 1
    assert h.item("C1", SEGMENTS)["segments_revision"] == 2 and "Champions" in h.memberships("C1")


# ---- real time -----------------------------------------------------------------------------------
def test_a_purchase_ends_cart_abandoned_and_a_replay_changes_nothing(h: Harness):
    h.profile("C1", country="US")
    cart = h.activity("A1", "cart_add", NOW - 2 * DAY, customer_id="C1", product_id="P1")
    assert cart.entries == 1 and "Abandoned cart" in h.memberships("C1")
    assert by_segment(h.changes()[-1]) == {"Abandoned cart": (["C1"], [])}

    bought = h.activity("A2", "purchase", NOW - DAY, customer_id="C1", product_id="P1", order_id="O1", total=80.0)
    assert by_segment(h.changes()[-1]) == {"Abandoned cart": ([], ["C1"]), "Recent US buyers": (["C1"], [])}
    assert set(h.memberships("C1")) == {"Recent US buyers"} and bought.exits == 1

    segments, activity = h.item("C1", SEGMENTS), h.item("C1", ACTIVITY)
    events = len(h.changes())
    replay = h.activity("A2", "purchase", NOW - DAY, customer_id="C1", product_id="P1", order_id="O1", total=80.0)
    assert h.item("C1", SEGMENTS) == segments and h.item("C1", ACTIVITY) == activity
    assert replay.written == 0 and replay.skipped == 1
    # At least once: a replay may repeat the announcement of its own change, under the same run id.
    assert all(e == h.changes()[events - 1] for e in h.changes()[events:])


def test_activity_state_is_pruned_and_expires(h: Harness):
    h.profile("C1")
    h.activity("OLD", "product_view", NOW - 40 * DAY, customer_id="C1", product_id="P1")
    h.activity("NEW", "product_view", NOW - DAY, customer_id="C1", product_id="P2")
    item = h.item("C1", ACTIVITY)
    state = json.loads(item["activity_state"])
    assert list(state["events"]) == ["NEW"]  # beyond every window: only its timestamp is kept
    assert state["pruned"]["last_activity_us"] < state["events"]["NEW"][0]
    assert item["expires_at"] > NOW.timestamp() + 365 * 86400 and item["activity_revision"] == 2


def test_activity_is_resolved_by_alias_id_or_email_and_unknown_customers_are_skipped(h: Harness):
    h.profile("C1")
    h.identities.identities[("id", "OLD-7")] = "C1"
    h.activity("A1", "cart_add", NOW - 2 * DAY, customer_id="OLD-7")
    assert "Abandoned cart" in h.memberships("C1")
    h.activity("A2", "purchase", NOW - DAY, email=" C1@Example.com ")
    assert "Abandoned cart" not in h.memberships("C1")

    writes = h.items.stats.profile_puts
    assert h.activity("A3", "cart_add", NOW, email="nobody@example.com").status == "unknown_customer"
    assert h.activity("A4", "cart_add", NOW, customer_id="C404").status == "unknown_customer"
    assert h.items.stats.profile_puts == writes


def test_a_purchase_refreshes_rfm_with_the_nightly_thresholds(h: Harness):
    thresholds = {
        "as_of": "2026-11-01T00:00:00Z",
        "rfm": {"n_customers": 100, "recency_days": [300, 200, 100, 10], "frequency": [2, 3, 5, 8],
                "monetary": [100.0, 200.0, 400.0, 800.0]},
    }
    h.objects.put_bytes(THRESHOLDS_KEY, json.dumps(thresholds).encode())
    h.profile("C1")
    h.scores("C1", rfm_segment="At Risk", clv_tier="high", recency_days=120, frequency=7, monetary=900.0,
             last_order_at="2026-07-04T00:00:00Z", days_since_last_order=120)
    h.scored("run-1")
    assert set(h.memberships("C1")) == {"High value at risk"}

    h.activity("A1", "purchase", NOW - timedelta(hours=2), customer_id="C1", order_id="O9", total=50.0)
    # frequency 7 + 1 = 8 -> f 5, recency 0 -> r 5: Champions at once; the score-based segment it no longer
    # matches is left by the nightly runs (hysteresis), not by a single activity event.
    assert set(h.memberships("C1")) == {"Champions", "High value at risk"}
    assert by_segment(h.changes()[-1]) == {"Champions": (["C1"], [])}


def test_without_thresholds_rfm_is_left_to_the_nightly_run(h: Harness):
    h.profile("C1")
    h.scores("C1", rfm_segment="At Risk", frequency=7, monetary=900.0, last_order_at="2026-07-04T00:00:00Z")
    h.activity("A1", "purchase", NOW - timedelta(hours=2), customer_id="C1", order_id="O9", total=50.0)
    assert "Champions" not in h.memberships("C1")


def test_trigger_entries_are_capped_per_week(h: Harness):
    h.profile("C1")
    h.activity("A1", "cart_add", NOW - 2 * DAY, customer_id="C1", product_id="P1")
    for n in range(3):
        h.activity(f"V{n}", "product_view", NOW - timedelta(hours=n + 1), customer_id="C1", product_id="P7")
    h.activity("O1", "email_open", NOW - 3 * DAY, customer_id="C1")
    h.activity("O2", "email_open", NOW - 2 * DAY, customer_id="C1")
    caps = h.item("C1", SEGMENTS)["segment_caps"]
    assert set(h.memberships("C1")) == {"Abandoned cart", "Browsed, not bought"}
    assert len(caps["entries"]) == 2  # "Opens without clicks" waits for the window to free a slot
