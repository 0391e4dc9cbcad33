"""Activity aggregates: the pure per-customer version, its real-time state, and the pandas batch version."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from segflow.scoring.activity_batch import activity_records, compute_activity, compute_states
from segflow.segments.activity import (
    AGGREGATE_FIELDS,
    aggregates,
    apply_event,
    build_state,
    customer_aggregates,
    merge_states,
    prune,
)
from segflow.segments.triggers import TriggerSettings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
TYPES = [
    "page_view",
    "product_view",
    "product_view",
    "product_view",
    "cart_add",
    "checkout",
    "purchase",
    "email_open",
    "email_open",
    "email_click",
    "unsubscribe",
]


def random_rows(seed: int, customers: int) -> tuple[list[dict], list[dict]]:
    """Dense, short histories so every flag is both true and false somewhere; whole seconds; duplicates."""
    rng = random.Random(seed)
    orders, events = [], []
    for c in range(customers):
        cid = f"C{c:04d}"
        for _ in range(rng.randint(0, 5)):
            orders.append(
                {
                    "customer_id": cid,
                    "order_id": f"O{c}-{rng.randint(0, 5)}",  # repeated ids: the last record wins
                    "order_date": NOW - timedelta(seconds=rng.randint(-2 * 86400, 400 * 86400)),
                    "total": round(rng.uniform(-80, 400), 2),
                    "status": rng.choice(["completed"] * 6 + ["refunded", "cancelled"]),
                }
            )
        horizon = rng.choice([3, 10, 45])
        for k in range(rng.randint(0, 14)):
            events.append(
                {
                    "event_id": f"E{c}-{k % 12}" if rng.random() < 0.9 else None,
                    "customer_id": cid,
                    "event_type": rng.choice(TYPES),
                    "timestamp": NOW - timedelta(seconds=rng.randint(-86400, horizon * 86400)),
                    "product_id": rng.choice(["P1", "P2", None]),
                    "campaign_id": None,
                }
            )
    return events, orders


def test_batch_equals_pure_on_random_data():
    events, orders = random_rows(seed=7, customers=400)
    settings = TriggerSettings(browse_abandoned={"min_views": 2, "window_days": 5})
    batch = activity_records(compute_activity(pd.DataFrame(orders), pd.DataFrame(events), NOW, settings))
    by_customer: dict[str, tuple[list, list]] = {}
    for row in events:
        by_customer.setdefault(row["customer_id"], ([], []))[0].append(row)
    for row in orders:
        by_customer.setdefault(row["customer_id"], ([], []))[1].append(row)
    assert set(batch) <= set(by_customer)
    nothing = aggregates(None, NOW, settings)
    for customer, (its_events, its_orders) in by_customer.items():
        # Customers whose rows all lie after NOW have no batch row: their aggregates are the empty ones.
        assert batch.get(customer, nothing) == customer_aggregates(its_events, its_orders, NOW, settings), (
            customer
        )
    assert len(batch) > 0.9 * len(by_customer)
    # The data exercises every flag both ways.
    for flag in ("cart_abandoned", "browse_abandoned", "inactive_30d", "open_no_click", "cart_open"):
        assert {row[flag] for row in batch.values()} == {True, False}, flag
    assert any(row["spend_30d"] < 0 for row in batch.values())  # refunds subtract
    # Plain Python values (ready for DynamoDB), and ISO-string timestamps give the same result.
    assert {type(v).__module__ for row in batch.values() for v in row.values()} == {"builtins"}
    as_text = pd.DataFrame(events).assign(timestamp=lambda f: [t.isoformat() for t in f["timestamp"]])
    again = compute_activity(pd.DataFrame(orders), as_text, NOW.isoformat(), settings)
    assert activity_records(again) == batch


def test_batch_handles_missing_inputs():
    assert compute_activity(None, None, NOW).empty
    events, _ = random_rows(seed=1, customers=5)
    frame = compute_activity(None, pd.DataFrame(events), NOW)
    assert list(frame.columns) == list(AGGREGATE_FIELDS)
    assert (frame["orders_30d"] == 0).all()


def test_aggregate_values_on_a_small_history():
    orders = [
        {"order_id": "a", "order_date": NOW - 2 * DAY, "total": 100.10, "status": "completed"},
        {"order_id": "b", "order_date": NOW - 40 * DAY, "total": 50.0, "status": "completed"},
        {"order_id": "c", "order_date": NOW - 5 * DAY, "total": -20.05, "status": "refunded"},
        {"order_id": "d", "order_date": NOW - DAY, "total": 999.0, "status": "cancelled"},
    ]
    events = [{"event_id": "e1", "event_type": "email_open", "timestamp": NOW - 3 * DAY}]
    got = customer_aggregates(events, orders, NOW)
    assert got["orders_30d"] == 1 and got["orders_90d"] == 2
    assert got["spend_30d"] == pytest.approx(80.05) and got["spend_90d"] == pytest.approx(130.05)
    assert got["days_since_last_order"] == 2
    assert got["last_order_at"] == "2026-04-29T12:00:00Z"
    assert got["last_activity_at"] == "2026-04-29T12:00:00Z"
    assert got["opens_14d"] == 1 and got["clicks_14d"] == 0


def test_apply_event_is_idempotent_and_order_independent():
    events, orders = random_rows(seed=3, customers=1)
    events = [{**e, "event_id": f"u{n}" if e["event_id"] else None} for n, e in enumerate(events)]
    assert len(events) >= 5
    rng = random.Random(0)
    start = build_state([], orders)
    forward = start
    for e in events:
        forward = apply_event(forward, e, NOW)
    shuffled = events[:]
    rng.shuffle(shuffled)
    backward = start
    for e in shuffled + shuffled:  # out of order, and every event twice
        backward = apply_event(backward, e, NOW)
    assert forward == backward
    assert aggregates(forward, NOW) == customer_aggregates(events, orders, NOW)


def test_real_time_purchase_updates_orders_and_clears_the_cart():
    state = build_state([{"event_id": "c1", "event_type": "cart_add", "timestamp": NOW - 2 * DAY}], [])
    assert aggregates(state, NOW)["cart_abandoned"] is True
    at = (NOW - timedelta(minutes=1)).isoformat()
    purchase = {"event_id": "p1", "event_type": "purchase", "timestamp": at, "order_id": "o9", "total": 42.5}
    after = apply_event(state, purchase, NOW)
    got = aggregates(after, NOW)
    assert got["cart_abandoned"] is False and got["cart_open"] is False
    assert got["orders_30d"] == 1 and got["spend_30d"] == 42.5 and got["days_since_last_order"] == 0


def test_pruning_keeps_results_and_bounds_the_state():
    events, orders = random_rows(seed=11, customers=1)
    full = build_state(events, orders)
    later = NOW + 20 * DAY
    pruned = prune(full, later)
    assert aggregates(pruned, later) == aggregates(full, later)
    assert all(ts > later.timestamp() * 1e6 - 14 * 86400e6 for ts, _, _ in pruned["events"].values())


def test_merge_states_is_a_union():
    events, orders = random_rows(seed=5, customers=1)
    half = len(events) // 2
    left = build_state(events[:half], orders)
    right = build_state(events[half:], [])
    assert aggregates(merge_states(left, right), NOW) == customer_aggregates(events, orders, NOW)
    assert merge_states(left, left) == left


def test_state_is_json_serialisable():
    import json

    events, orders = random_rows(seed=2, customers=1)
    state = build_state(events, orders, now=NOW)
    assert json.loads(json.dumps(state)) == state


def test_batch_states_equal_pure_states():
    events, orders = random_rows(seed=9, customers=200)
    states = compute_states(pd.DataFrame(orders), pd.DataFrame(events), NOW)
    customers = {row["customer_id"] for row in events + orders}
    expected = {
        c: build_state(
            [e for e in events if e["customer_id"] == c],
            [o for o in orders if o["customer_id"] == c],
            now=NOW,
        )
        for c in customers
    }
    assert states == expected
    assert any(state["pruned"] for state in states.values())  # old records were folded into maxima
