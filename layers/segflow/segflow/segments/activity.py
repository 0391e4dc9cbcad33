"""Per-customer activity aggregates in pure Python, from lists of events/orders or incrementally.

The state is a JSON-serialisable dict holding the records still inside a window plus the maxima of records
already pruned, so aggregates computed from it at any later `now` are exact:

    {"orders": {order_id: [ts_us, amount, status]},          # last 365 days; amount in 1e-4 units
     "events": {event_key: [ts_us, event_type, product_id]},  # last TriggerSettings.event_retention_days
     "pruned": {"last_order_us", "last_activity_us", "last_cart_us", "last_purchase_us"}}

Records are keyed by order_id / event_id (events without one by their content), so applying an event twice
or out of order gives the same state, and two states merge by union. Semantics shared with
segflow.scoring.activity_batch (a test asserts both agree):
- only records at or before `now` count; windows are (now - N days, now];
- orders: the last record of an order_id wins; completed orders count; a refunded order subtracts abs(total);
  cancelled ones are ignored; amounts are summed in fixed point (exact, order-independent);
- activity = any event except unsubscribe, or a completed order; purchase = purchase event or completed order;
- days_since_* are whole days (floor).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from segflow.segments import triggers
from segflow.segments.timeutil import US_PER_DAY, is_missing, iso_from_us, to_us
from segflow.segments.triggers import DEFAULT_TRIGGERS, TriggerSettings

AMOUNT_SCALE = 10_000
ORDER_RETENTION_DAYS = 365
EVENT_TYPES = frozenset(
    {
        "page_view",
        "product_view",
        "cart_add",
        "checkout",
        "purchase",
        "email_open",
        "email_click",
        "unsubscribe",
    }
)
CART_TYPES = frozenset({"cart_add", "checkout"})
NOT_ACTIVITY = frozenset({"unsubscribe"})
ORDER_STATUSES = frozenset({"completed", "refunded", "cancelled"})
_PRUNED_KEYS = ("last_order_us", "last_activity_us", "last_cart_us", "last_purchase_us")

AGGREGATE_FIELDS = (
    "last_order_at",
    "days_since_last_order",
    "orders_30d",
    "orders_90d",
    "spend_30d",
    "spend_90d",
    "spend_365d",
    "last_activity_at",
    "days_since_last_activity",
    "opens_14d",
    "clicks_14d",
    "views_7d",
    "cart_adds_7d",
    "last_cart_at",
    "last_purchase_at",
    "cart_open",
    "top_viewed_product_7d",
    "max_product_views_7d",
    "cart_abandoned",
    "browse_abandoned",
    "inactive_30d",
    "open_no_click",
)


def empty_state() -> dict[str, Any]:
    return {"orders": {}, "events": {}, "pruned": {}}


def to_fixed(total: Any) -> int:
    """Amount in 1e-4 units; a missing total counts as 0 (as in the scoring step)."""
    try:
        value = float(total)
    except (TypeError, ValueError):
        return 0
    return 0 if value != value or value in (float("inf"), float("-inf")) else round(value * AMOUNT_SCALE)


def event_key(event: Mapping[str, Any]) -> str | None:
    event_id = event.get("event_id")
    if not is_missing(event_id):
        return str(event_id)
    ts = to_us(event.get("timestamp"))
    if ts is None:
        return None
    product = event.get("product_id")
    content = f"{event.get('event_type')}|{ts}|{'' if is_missing(product) else product}"
    return "h:" + hashlib.sha256(content.encode()).hexdigest()[:24]


def seed_from_aggregates(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A state holding only the last-* timestamps of earlier aggregates (e.g. the nightly ones).

    Merged under a real-time state, it keeps recency, cart and inactivity answers exact even when the
    earlier records themselves are not at hand; windowed counts then cover the real-time records only.
    """
    state = empty_state()
    for field, key in (
        ("last_order_at", "last_order_us"),
        ("last_activity_at", "last_activity_us"),
        ("last_cart_at", "last_cart_us"),
        ("last_purchase_at", "last_purchase_us"),
    ):
        _raise_max(state["pruned"], key, to_us(fields.get(field)))
    return state


def build_state(
    events: Iterable[Mapping[str, Any]] = (),
    orders: Iterable[Mapping[str, Any]] = (),
    now: Any = None,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, Any]:
    """State from one customer's event rows (events contract) and order rows (orders contract)."""
    state = empty_state()
    for order in orders:
        _add_order(state, order)
    for event in events:
        _add_event(state, event)
    return prune(state, now, settings) if now is not None else state


def apply_event(
    state: Mapping[str, Any] | None,
    event: Mapping[str, Any],
    now: Any,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, Any]:
    """New state with one activity event (a CustomerActivity detail or an events row) added.

    A purchase that carries an order_id also records the order (status completed unless given, amount
    from `total`), so spend and recency move in real time.
    """
    new = copy_state(state)
    _add_event(new, event)
    if event.get("event_type") == "purchase" and not is_missing(event.get("order_id")):
        _add_order(
            new,
            {
                "order_id": event["order_id"],
                "order_date": event.get("timestamp"),
                "total": event.get("total"),
                "status": event.get("status") or "completed",
            },
        )
    return prune(new, now, settings)


def apply_order(
    state: Mapping[str, Any] | None,
    order: Mapping[str, Any],
    now: Any,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, Any]:
    new = copy_state(state)
    _add_order(new, order)
    return prune(new, now, settings)


def merge_states(first: Mapping[str, Any] | None, second: Mapping[str, Any] | None) -> dict[str, Any]:
    """Union of two states; on a shared order_id / event key the second state's record wins."""
    merged = copy_state(first)
    other = copy_state(second)
    merged["orders"].update(other["orders"])
    merged["events"].update(other["events"])
    for key in _PRUNED_KEYS:
        _raise_max(merged["pruned"], key, other["pruned"].get(key))
    return merged


def copy_state(state: Mapping[str, Any] | None) -> dict[str, Any]:
    if not state:
        return empty_state()
    return {
        "orders": {k: list(v) for k, v in (state.get("orders") or {}).items()},
        "events": {k: list(v) for k, v in (state.get("events") or {}).items()},
        "pruned": {k: int(v) for k, v in (state.get("pruned") or {}).items() if v is not None},
    }


def prune(state: Mapping[str, Any], now: Any, settings: TriggerSettings = DEFAULT_TRIGGERS) -> dict[str, Any]:
    """Drop records that no window can see any more, keeping their maxima."""
    now_us = _now_us(now)
    new = copy_state(state)
    pruned = new["pruned"]
    order_cutoff = now_us - ORDER_RETENTION_DAYS * US_PER_DAY
    for order_id, (ts, _amount, status) in list(new["orders"].items()):
        if ts <= order_cutoff:
            del new["orders"][order_id]
            if status == "completed":
                for key in ("last_order_us", "last_activity_us", "last_purchase_us"):
                    _raise_max(pruned, key, ts)
    event_cutoff = now_us - settings.event_retention_days * US_PER_DAY
    for key, (ts, event_type, _product) in list(new["events"].items()):
        if ts <= event_cutoff:
            del new["events"][key]
            if event_type not in NOT_ACTIVITY:
                _raise_max(pruned, "last_activity_us", ts)
            if event_type in CART_TYPES:
                _raise_max(pruned, "last_cart_us", ts)
            if event_type == "purchase":
                _raise_max(pruned, "last_purchase_us", ts)
    return new


def aggregates(
    state: Mapping[str, Any] | None, now: Any, settings: TriggerSettings = DEFAULT_TRIGGERS
) -> dict[str, Any]:
    """Every field of AGGREGATE_FIELDS for one customer at `now` (see the module docstring)."""
    now_us = _now_us(now)
    state = copy_state(state)
    pruned = state["pruned"]
    orders = [(ts, amount, status) for ts, amount, status in state["orders"].values() if ts <= now_us]
    events = [(ts, kind, product) for ts, kind, product in state["events"].values() if ts <= now_us]
    completed = [(ts, amount) for ts, amount, status in orders if status == "completed"]

    last_order = _max([ts for ts, _ in completed], pruned.get("last_order_us"))
    last_activity = _max(
        [ts for ts, _ in completed] + [ts for ts, kind, _ in events if kind not in NOT_ACTIVITY],
        pruned.get("last_activity_us"),
    )
    last_cart = _max([ts for ts, kind, _ in events if kind in CART_TYPES], pruned.get("last_cart_us"))
    last_purchase = _max(
        [ts for ts, _ in completed] + [ts for ts, kind, _ in events if kind == "purchase"],
        pruned.get("last_purchase_us"),
    )

    def count(kinds: frozenset[str] | set[str], days: int) -> int:
        return sum(1 for ts, kind, _ in events if kind in kinds and triggers.within(ts, now_us, days))

    def orders_in(days: int) -> int:
        return sum(1 for ts, _ in completed if triggers.within(ts, now_us, days))

    def spend_in(days: int) -> float:
        total = 0
        for ts, amount, status in orders:
            if triggers.within(ts, now_us, days):
                total += amount if status == "completed" else -abs(amount) if status == "refunded" else 0
        return total / AMOUNT_SCALE

    views_by_product = Counter(
        product
        for ts, kind, product in events
        if kind == "product_view" and product and triggers.within(ts, now_us, 7)
    )
    top_product, top_views = _top(views_by_product)
    views = [(ts, product) for ts, kind, product in events if kind == "product_view"]
    purchases = [(ts, product) for ts, kind, product in events if kind == "purchase"]
    return {
        "last_order_at": iso_from_us(last_order),
        "days_since_last_order": _days_since(last_order, now_us),
        "orders_30d": orders_in(30),
        "orders_90d": orders_in(90),
        "spend_30d": spend_in(30),
        "spend_90d": spend_in(90),
        "spend_365d": spend_in(365),
        "last_activity_at": iso_from_us(last_activity),
        "days_since_last_activity": _days_since(last_activity, now_us),
        "opens_14d": count({"email_open"}, 14),
        "clicks_14d": count({"email_click"}, 14),
        "views_7d": count({"product_view"}, 7),
        "cart_adds_7d": count(CART_TYPES, 7),
        "last_cart_at": iso_from_us(last_cart),
        "last_purchase_at": iso_from_us(last_purchase),
        "cart_open": last_cart is not None and (last_purchase is None or last_purchase < last_cart),
        "top_viewed_product_7d": top_product,
        "max_product_views_7d": top_views,
        "cart_abandoned": triggers.cart_abandoned(last_cart, last_purchase, now_us, settings.cart_abandoned),
        "browse_abandoned": triggers.browse_abandoned(views, purchases, now_us, settings.browse_abandoned),
        "inactive_30d": triggers.inactive(last_activity, now_us, settings.inactive_30d),
        "open_no_click": triggers.open_no_click(
            [ts for ts, kind, _ in events if kind == "email_open"],
            [ts for ts, kind, _ in events if kind == "email_click"],
            now_us,
            settings.open_no_click,
        ),
    }


def customer_aggregates(
    events: Iterable[Mapping[str, Any]],
    orders: Iterable[Mapping[str, Any]],
    now: Any,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, Any]:
    """Aggregates for one customer straight from its event and order rows."""
    return aggregates(build_state(events, orders), now, settings)


def _add_order(state: dict[str, Any], order: Mapping[str, Any]) -> None:
    order_id, ts, status = order.get("order_id"), to_us(order.get("order_date")), order.get("status")
    if is_missing(order_id) or ts is None or status not in ORDER_STATUSES:
        return
    state["orders"][str(order_id)] = [ts, to_fixed(order.get("total")), status]


def _add_event(state: dict[str, Any], event: Mapping[str, Any]) -> None:
    event_type, ts, key = event.get("event_type"), to_us(event.get("timestamp")), event_key(event)
    if event_type not in EVENT_TYPES or ts is None or key is None:
        return
    product = event.get("product_id")
    state["events"][key] = [ts, event_type, None if is_missing(product) else str(product)]


def _now_us(now: Any) -> int:
    now_us = to_us(now)
    if now_us is None:
        raise ValueError("now must be a datetime or an ISO timestamp")
    return now_us


def _raise_max(target: dict[str, Any], key: str, value: int | None) -> None:
    if value is not None and (target.get(key) is None or value > target[key]):
        target[key] = int(value)


def _max(values: list[int], floor: int | None) -> int | None:
    candidates = values + ([floor] if floor is not None else [])
    return max(candidates) if candidates else None


def _days_since(ts: int | None, now_us: int) -> int | None:
    return None if ts is None else (now_us - ts) // US_PER_DAY


def _top(counts: Counter[str]) -> tuple[str | None, int]:
    if not counts:
        return None, 0
    best = max(counts.values())
    return min(p for p, n in counts.items() if n == best), best
