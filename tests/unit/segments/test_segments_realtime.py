"""Real-time path: states seeded by the batch, and RFM refreshed with the nightly thresholds."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from segflow.scoring.activity_batch import activity_records, compute_activity, compute_states
from segflow.scoring.rfm import compute_rfm, rfm_thresholds
from segflow.scoring.rfm_segments import segment_grid
from segflow.segments.activity import aggregates, apply_event
from segflow.segments.realtime import default_grid, refresh

AS_OF = datetime(2026, 4, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def history(seed: int = 4, customers: int = 150) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = random.Random(seed)
    orders, events = [], []
    for c in range(customers):
        for k in range(rng.randint(1, 6)):
            orders.append(
                {
                    "customer_id": f"C{c:03d}",
                    "order_id": f"O{c}-{k}",
                    "order_date": AS_OF - timedelta(seconds=rng.randint(0, 500 * 86400)),
                    "total": float(rng.randint(-30, 500)),
                    "status": rng.choice(["completed"] * 5 + ["refunded", "cancelled"]),
                }
            )
        for k in range(rng.randint(0, 8)):
            events.append(
                {
                    "event_id": f"E{c}-{k}",
                    "customer_id": f"C{c:03d}",
                    "event_type": rng.choice(
                        ["product_view", "cart_add", "email_open", "email_click", "purchase"]
                    ),
                    "timestamp": AS_OF - timedelta(seconds=rng.randint(0, 20 * 86400)),
                    "product_id": rng.choice(["P1", "P2", None]),
                }
            )
    return pd.DataFrame(orders), pd.DataFrame(events)


@pytest.fixture(scope="module")
def nightly():
    orders, events = history()
    rfm = compute_rfm(orders, AS_OF)
    activity = activity_records(compute_activity(orders, events, AS_OF))
    states = compute_states(orders, events, AS_OF)
    return rfm, rfm_thresholds(rfm), activity, states


def test_default_grid_matches_the_scoring_table():
    assert default_grid() == segment_grid().tolist()


def test_seeded_states_reproduce_the_batch_now_and_later(nightly):
    _, _, activity, states = nightly
    assert set(states) == set(activity)
    orders, events = history()
    later = AS_OF + 3 * DAY
    batch_later = activity_records(compute_activity(orders, events, later))
    for customer, state in states.items():
        assert aggregates(state, AS_OF) == activity[customer], customer
        assert aggregates(state, later) == batch_later[customer], customer


def test_refresh_without_new_orders_reproduces_nightly_rfm(nightly):
    rfm, thresholds, activity, states = nightly
    for customer, row in rfm.iterrows():
        view = {**activity[customer], "frequency": int(row["frequency"]), "monetary": float(row["monetary"])}
        got = refresh(view, states[customer], AS_OF, thresholds, scored_as_of=AS_OF)
        expected = (int(row["recency_days"]), int(row["r_score"]), int(row["f_score"]), int(row["m_score"]))
        assert (got["recency_days"], got["r_score"], got["f_score"], got["m_score"]) == expected, customer
        assert got["rfm_segment"] == row["rfm_segment"]


def test_refresh_counts_a_new_purchase_once(nightly):
    rfm, thresholds, activity, states = nightly
    customer = rfm["recency_days"].idxmax()  # the most lapsed customer
    row = rfm.loc[customer]
    view = {**activity[customer], "frequency": int(row["frequency"]), "monetary": float(row["monetary"])}
    now = AS_OF + timedelta(hours=5)
    purchase = {
        "event_id": "rt-1",
        "event_type": "purchase",
        "timestamp": now - timedelta(minutes=2),
        "order_id": "RT-1",
        "total": 10_000.0,
    }
    state = apply_event(states[customer], purchase, now)
    state = apply_event(state, purchase, now)  # delivered twice
    got = refresh(view, state, now, thresholds, scored_as_of=AS_OF)
    assert got["frequency"] == row["frequency"] + 1
    assert got["monetary"] == pytest.approx(row["monetary"] + 10_000.0)
    assert got["recency_days"] == 0 and got["r_score"] == 5 and got["m_score"] == 5
    assert got["orders_30d"] == activity[customer]["orders_30d"] + 1


def test_refresh_keeps_nightly_timestamps_for_an_unseeded_state():
    view = {"last_order_at": "2026-03-01T10:00:00Z", "last_activity_at": "2026-03-01T10:00:00Z"}
    got = refresh(view, None, AS_OF)
    assert got["days_since_last_order"] == 30 and got["inactive_30d"] is True
    opened = apply_event(None, {"event_id": "x", "event_type": "email_open", "timestamp": AS_OF - DAY}, AS_OF)
    assert refresh(view, opened, AS_OF)["inactive_30d"] is False
