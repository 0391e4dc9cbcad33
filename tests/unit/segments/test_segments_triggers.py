"""Behavioural triggers at their boundaries, through the per-customer activity aggregates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from segflow.segments import triggers
from segflow.segments.activity import customer_aggregates
from segflow.segments.triggers import TriggerSettings

T0 = datetime(2026, 3, 10, 9, 30, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def event(kind: str, at: datetime, product: str | None = None, n: int = 0) -> dict:
    return {
        "event_id": f"{kind}-{at.isoformat()}-{product}-{n}",
        "event_type": kind,
        "timestamp": at,
        "product_id": product,
    }


def order(at: datetime, order_id: str = "o1", total: float = 50.0, status: str = "completed") -> dict:
    return {"order_id": order_id, "order_date": at, "total": total, "status": status}


def flags(events=(), orders=(), now=T0, settings=triggers.DEFAULT_TRIGGERS) -> dict:
    return customer_aggregates(list(events), list(orders), now, settings)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (23 * timedelta(hours=1) + 59 * MINUTE, False),
        (timedelta(hours=24), True),
        (24 * timedelta(hours=1) + MINUTE, True),
        (7 * DAY, True),
        (7 * DAY + MINUTE, False),
        (8 * DAY, False),
    ],
)
@pytest.mark.parametrize("kind", ["cart_add", "checkout"])
def test_cart_abandoned_window(kind, age, expected):
    assert flags([event(kind, T0 - age)])["cart_abandoned"] is expected


def test_cart_cleared_by_a_purchase_event_or_order_after_it():
    cart = event("cart_add", T0 - 2 * DAY)
    assert flags([cart, event("purchase", T0 - 2 * DAY + 30 * MINUTE)])["cart_abandoned"] is False
    assert flags([cart], [order(T0 - DAY)])["cart_abandoned"] is False
    # A purchase after the 24 hours also clears it; one before the cart does not.
    assert flags([cart, event("purchase", T0 - 10 * MINUTE)])["cart_abandoned"] is False
    assert flags([cart], [order(T0 - 3 * DAY)])["cart_abandoned"] is True
    # A cancelled order is not a purchase.
    assert flags([cart], [order(T0 - DAY, status="cancelled")])["cart_abandoned"] is True


def test_cart_window_is_configurable():
    settings = TriggerSettings(cart_abandoned={"wait_hours": 2, "max_days": 1})
    assert (
        flags([event("cart_add", T0 - 3 * timedelta(hours=1))], settings=settings)["cart_abandoned"] is True
    )
    assert flags([event("cart_add", T0 - 2 * DAY)], settings=settings)["cart_abandoned"] is False


def views(product: str, *ages: timedelta) -> list[dict]:
    return [event("product_view", T0 - age, product, n) for n, age in enumerate(ages)]


def test_browse_abandoned_needs_three_views_of_one_product_in_seven_days():
    assert flags(views("P1", DAY, 2 * DAY, 3 * DAY))["browse_abandoned"] is True
    assert flags(views("P1", DAY, 2 * DAY))["browse_abandoned"] is False
    assert flags(views("P1", DAY, 2 * DAY) + views("P2", DAY))["browse_abandoned"] is False
    # Day 7 is inside the window, a second later is not.
    assert flags(views("P1", DAY, 2 * DAY, 7 * DAY - timedelta(seconds=1)))["browse_abandoned"] is True
    assert flags(views("P1", DAY, 2 * DAY, 7 * DAY))["browse_abandoned"] is False
    assert flags(views("P1", DAY, 2 * DAY, 8 * DAY))["browse_abandoned"] is False


def test_browse_abandoned_not_when_that_product_was_bought():
    seen = views("P1", DAY, 2 * DAY, 3 * DAY)
    assert flags(seen + [event("purchase", T0 - 5 * MINUTE, "P1")])["browse_abandoned"] is False
    assert flags(seen + [event("purchase", T0 - 5 * MINUTE, "P9")])["browse_abandoned"] is True


@pytest.mark.parametrize(
    ("age", "expected"), [(30 * DAY, False), (30 * DAY + MINUTE, True), (31 * DAY, True)]
)
def test_inactive_after_thirty_days(age, expected):
    assert flags([event("page_view", T0 - age)])["inactive_30d"] is expected
    assert flags(orders=[order(T0 - age)])["inactive_30d"] is expected


def test_inactive_needs_previous_activity_and_ignores_unsubscribes():
    assert flags()["inactive_30d"] is False
    assert flags([event("unsubscribe", T0 - 40 * DAY)])["inactive_30d"] is False
    assert flags([event("page_view", T0 - 40 * DAY), event("unsubscribe", T0 - DAY)])["inactive_30d"] is True
    assert (
        flags([event("email_open", T0 - 40 * DAY), event("page_view", T0 - 5 * DAY)])["inactive_30d"] is False
    )


def opens(*ages: timedelta) -> list[dict]:
    return [event("email_open", T0 - age, n=n) for n, age in enumerate(ages)]


def test_open_no_click():
    assert flags(opens(DAY, 2 * DAY))["open_no_click"] is True
    assert flags(opens(DAY))["open_no_click"] is False
    assert flags(opens(DAY, 2 * DAY) + [event("email_click", T0 - 3 * DAY)])["open_no_click"] is False
    # Only the last 14 days count, for opens and clicks alike.
    assert flags(opens(DAY, 14 * DAY))["open_no_click"] is False
    assert flags(opens(DAY, 2 * DAY) + [event("email_click", T0 - 14 * DAY)])["open_no_click"] is True


def test_events_after_now_do_not_count():
    assert flags(views("P1", -DAY, -2 * DAY, -3 * DAY))["browse_abandoned"] is False
    assert flags([event("cart_add", T0 + DAY)])["cart_open"] is False


@pytest.mark.parametrize(
    ("signup", "today", "days"),
    [
        ("2024-03-17T08:00:00Z", "2026-03-10", 7),
        ("2024-03-18T08:00:00Z", "2026-03-10", 8),
        ("2024-03-10T23:00:00Z", "2026-03-10", 0),
        ("2026-03-09", "2026-03-10", 364),
        ("2026-03-10", "2026-03-10", 365),
        ("2024-02-29", "2026-02-25", 3),  # celebrated on 28 February in a common year
        ("2024-02-29", "2028-02-25", 4),
    ],
)
def test_days_to_anniversary(signup, today, days):
    assert triggers.days_to_anniversary(signup, today) == days


def test_signup_anniversary_soon_boundary():
    settings = triggers.DEFAULT_TRIGGERS.signup_anniversary_soon
    assert triggers.signup_anniversary_soon("2020-03-17", "2026-03-10", settings) is True
    assert triggers.signup_anniversary_soon("2020-03-18", "2026-03-10", settings) is False
    assert triggers.signup_anniversary_soon(None, "2026-03-10", settings) is False


def test_clv_tier_up():
    settings = triggers.DEFAULT_TRIGGERS.clv_tier_up
    state = triggers.note_clv_tier(None, "low", T0 - 30 * DAY)
    assert triggers.clv_tier_up(state, T0, settings) is False  # a first observation is no move
    state = triggers.note_clv_tier(state, "high", T0 - 7 * DAY)
    assert state["clv_tier"] == "high"
    assert triggers.clv_tier_up(state, T0, settings) is True
    assert triggers.clv_tier_up(state, T0 + MINUTE, settings) is False
    down = triggers.note_clv_tier({"clv_tier": "high"}, "medium", T0)
    assert triggers.clv_tier_up(down, T0, settings) is False
    again = triggers.note_clv_tier(state, "high", T0)  # unchanged tier keeps the old move time
    assert again["clv_tier_up_at"] == state["clv_tier_up_at"]
