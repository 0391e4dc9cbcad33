"""Activity aggregates and behavioural trigger flags for every customer at once (pandas/numpy).

Same fields and semantics as segflow.segments.activity (documented there); a unit test checks that both
agree on random data. One row per customer with at least one usable order or event, indexed by
customer_id (sorted); timestamps are ISO strings ('...Z'), days_since_* are nullable Int64.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from segflow.segments.activity import (
    AGGREGATE_FIELDS,
    AMOUNT_SCALE,
    CART_TYPES,
    EVENT_TYPES,
    NOT_ACTIVITY,
    ORDER_RETENTION_DAYS,
    event_key,
)
from segflow.segments.timeutil import US_PER_DAY, US_PER_HOUR
from segflow.segments.triggers import DEFAULT_TRIGGERS, TriggerSettings

_NONE = np.iinfo(np.int64).min  # "no timestamp" in int64 columns


def compute_activity(
    orders: pd.DataFrame | None,
    events: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> pd.DataFrame:
    """AGGREGATE_FIELDS per customer at as_of (orders and events contracts; either may be None)."""
    now = _epoch_us(pd.Series([pd.Timestamp(as_of)]))[0]
    order_rows = _orders(orders, now)
    event_rows = _events(events, now)
    # One sorted code space for both tables (factorize hashes; far cheaper than sorting 2M strings).
    customer_ids = np.concatenate(
        [order_rows["customer_id"].to_numpy(dtype=object), event_rows["customer_id"].to_numpy(dtype=object)]
    )
    codes, ids = pd.factorize(np.asarray([str(c) for c in customer_ids], dtype=object), sort=True)
    index = pd.Index(ids, dtype="str", name="customer_id")
    n = len(ids)
    o_code, e_code = codes[: len(order_rows)], codes[len(order_rows) :]
    o_ts, o_amount, o_status = (
        order_rows["ts"].to_numpy(),
        order_rows["amount"].to_numpy(),
        order_rows["status"].to_numpy(),
    )
    e_ts, e_type, e_product = (
        event_rows["ts"].to_numpy(),
        event_rows["event_type"].to_numpy(),
        event_rows["product_id"],
    )

    completed = o_status == "completed"
    refunded = o_status == "refunded"
    signed = np.where(completed, o_amount, np.where(refunded, -np.abs(o_amount), 0))
    activity_event = ~np.isin(e_type, list(NOT_ACTIVITY))
    cart_event = np.isin(e_type, list(CART_TYPES))
    purchase_event = e_type == "purchase"

    last_order = _group_max(n, o_code[completed], o_ts[completed])
    last_activity = np.maximum(last_order, _group_max(n, e_code[activity_event], e_ts[activity_event]))
    last_cart = _group_max(n, e_code[cart_event], e_ts[cart_event])
    last_purchase = np.maximum(last_order, _group_max(n, e_code[purchase_event], e_ts[purchase_event]))

    def recent(ts: np.ndarray, days: int) -> np.ndarray:
        return (ts > now - days * US_PER_DAY) & (ts <= now)

    def count(mask: np.ndarray, code: np.ndarray) -> np.ndarray:
        return np.bincount(code[mask], minlength=n).astype(np.int64)

    def spend(days: int) -> np.ndarray:
        window = recent(o_ts, days)
        return np.bincount(o_code[window], weights=signed[window], minlength=n) / AMOUNT_SCALE

    is_view = e_type == "product_view"
    top_product, top_views = _top_viewed(
        e_code[is_view & recent(e_ts, 7)], e_product[is_view & recent(e_ts, 7)], n
    )
    cart_settings, inactive_days = settings.cart_abandoned, settings.inactive_30d.days
    cart_open = (last_cart != _NONE) & ((last_purchase == _NONE) | (last_purchase < last_cart))
    cart_age = now - last_cart
    open_window = recent(e_ts, settings.open_no_click.window_days)
    frame = pd.DataFrame(
        {
            "last_order_at": _iso(last_order),
            "days_since_last_order": _days_since(last_order, now),
            "orders_30d": count(completed & recent(o_ts, 30), o_code),
            "orders_90d": count(completed & recent(o_ts, 90), o_code),
            "spend_30d": spend(30),
            "spend_90d": spend(90),
            "spend_365d": spend(365),
            "last_activity_at": _iso(last_activity),
            "days_since_last_activity": _days_since(last_activity, now),
            "opens_14d": count((e_type == "email_open") & recent(e_ts, 14), e_code),
            "clicks_14d": count((e_type == "email_click") & recent(e_ts, 14), e_code),
            "views_7d": count(is_view & recent(e_ts, 7), e_code),
            "cart_adds_7d": count(cart_event & recent(e_ts, 7), e_code),
            "last_cart_at": _iso(last_cart),
            "last_purchase_at": _iso(last_purchase),
            "cart_open": cart_open,
            "top_viewed_product_7d": top_product,
            "max_product_views_7d": top_views,
            "cart_abandoned": cart_open
            & (cart_age >= cart_settings.wait_hours * US_PER_HOUR)
            & (cart_age <= cart_settings.max_days * US_PER_DAY),
            "browse_abandoned": _browse_abandoned(e_code, e_type, e_product, e_ts, now, n, settings),
            "inactive_30d": (last_activity != _NONE) & (now - last_activity > inactive_days * US_PER_DAY),
            "open_no_click": (
                count((e_type == "email_open") & open_window, e_code) >= settings.open_no_click.min_opens
            )
            & (count((e_type == "email_click") & open_window, e_code) == 0),
        },
        index=index,
    )
    return frame[list(AGGREGATE_FIELDS)]


def _orders(orders: pd.DataFrame | None, now: int | None) -> pd.DataFrame:
    """Usable order records, the last per order_id, up to `now` (all when None)."""
    columns = ["customer_id", "order_id", "ts", "amount", "status"]
    if orders is None or len(orders) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype=np.int64 if c in ("ts", "amount") else object) for c in columns}
        )
    frame = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].astype(object),
            "order_id": orders["order_id"].astype(object),
            "ts": _epoch_us(orders["order_date"]),
            "amount": np.rint(
                np.nan_to_num(orders["total"].to_numpy(dtype=np.float64)) * AMOUNT_SCALE
            ).astype(np.int64),
            "status": orders["status"].astype(object),
        }
    )
    usable = frame["order_id"].notna() & (frame["order_id"] != "") & (frame["ts"] != _NONE)
    usable &= frame["status"].isin(["completed", "refunded", "cancelled"])
    frame = frame[usable]
    frame = frame[~frame.duplicated("order_id", keep="last")]  # the last record of an order wins
    frame = frame[frame["customer_id"].notna() & ((frame["ts"] <= now) if now is not None else True)]
    return frame[columns]


def _events(events: pd.DataFrame | None, now: int | None) -> pd.DataFrame:
    """Usable event records (deduplicated by id, else by content), up to `now` (all when None)."""
    columns = ["customer_id", "event_id", "ts", "event_type", "product_id"]
    if events is None or len(events) == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "ts" else object) for c in columns})
    product = events["product_id"] if "product_id" in events.columns else pd.Series(None, index=events.index)
    event_id = events["event_id"] if "event_id" in events.columns else pd.Series(None, index=events.index)
    frame = pd.DataFrame(
        {
            "customer_id": events["customer_id"].astype(object),
            "event_id": event_id.astype(object),
            "ts": _epoch_us(events["timestamp"]),
            "event_type": events["event_type"].astype(object),
            "product_id": product.astype(object).where(
                product.notna() & (product.astype(object) != ""), None
            ),
        }
    )
    frame = frame[frame["event_type"].isin(list(EVENT_TYPES)) & (frame["ts"] != _NONE)]
    has_id = frame["event_id"].notna() & (frame["event_id"] != "")
    by_id = frame[has_id]
    by_id = by_id[~by_id.duplicated("event_id", keep="last")]
    by_content = frame[~has_id]
    by_content = by_content[
        ~by_content.duplicated(["customer_id", "event_type", "ts", "product_id"], keep="last")
    ]
    frame = pd.concat([by_id, by_content])
    frame = frame[frame["customer_id"].notna() & ((frame["ts"] <= now) if now is not None else True)]
    return frame[columns].reset_index(drop=True)


def _epoch_us(column: pd.Series) -> np.ndarray:
    """UTC epoch microseconds (floor); missing or unparsable values -> _NONE."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(column):
        column = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = column.dt.as_unit("ns").to_numpy().view(np.int64)
    return np.where(ns == _NONE, _NONE, ns // 1000)


def _group_max(n: int, code: np.ndarray, ts: np.ndarray) -> np.ndarray:
    result = np.full(n, _NONE, dtype=np.int64)
    np.maximum.at(result, code, ts)
    return result


def _iso(us: np.ndarray) -> np.ndarray:
    """ISO strings like segments.timeutil.iso_from_us; None where there is no timestamp."""
    present = us != _NONE
    moments = us[present].astype("datetime64[us]")
    whole = np.datetime_as_string(moments, unit="s")
    fine = np.datetime_as_string(moments, unit="us")
    text = np.where(us[present] % 1_000_000 == 0, whole, fine).astype(object) + "Z"
    result = np.full(len(us), None, dtype=object)
    result[present] = text
    return result


def _days_since(us: np.ndarray, now: int) -> pd.arrays.IntegerArray:
    present = us != _NONE
    days = np.where(present, (now - np.where(present, us, now)) // US_PER_DAY, 0)
    return pd.arrays.IntegerArray(days.astype(np.int64), ~present)


def _top_viewed(code: np.ndarray, product: pd.Series, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Most viewed product per customer (ties: smallest product id) and its view count."""
    top_product = np.full(n, None, dtype=object)
    top_views = np.zeros(n, dtype=np.int64)
    keep = product.notna().to_numpy()
    if not keep.any():
        return top_product, top_views
    counts = (
        pd.DataFrame({"code": code[keep], "product": product.to_numpy(dtype=object)[keep].astype(str)})
        .value_counts()
        .rename("views")
        .reset_index()
        .sort_values(["code", "views", "product"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("code")
    )
    top_product[counts["code"].to_numpy()] = counts["product"].to_numpy(dtype=object)
    top_views[counts["code"].to_numpy()] = counts["views"].to_numpy()
    return top_product, top_views


def _browse_abandoned(
    code: np.ndarray,
    event_type: np.ndarray,
    product: pd.Series,
    ts: np.ndarray,
    now: int,
    n: int,
    settings: TriggerSettings,
) -> np.ndarray:
    browse = settings.browse_abandoned
    window = (ts > now - browse.window_days * US_PER_DAY) & (ts <= now) & product.notna().to_numpy()
    products = product.to_numpy(dtype=object)
    views = window & (event_type == "product_view")
    buys = window & (event_type == "purchase")
    result = np.zeros(n, dtype=bool)
    if not views.any():
        return result
    viewed = pd.DataFrame({"code": code[views], "product": products[views].astype(str)}).value_counts()
    keen = viewed[viewed >= browse.min_views].index.to_frame(index=False)
    bought = pd.DataFrame({"code": code[buys], "product": products[buys].astype(str)}).drop_duplicates()
    unbought = keen.merge(bought, how="left", indicator=True)
    result[unbought.loc[unbought["_merge"] == "left_only", "code"].to_numpy(dtype=np.int64)] = True
    return result


def activity_records(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """{customer_id: aggregates dict} with plain Python values (None for missing), e.g. for DynamoDB."""
    plain = frame.astype(object).where(frame.notna(), None)
    return {
        str(cid): dict(zip(plain.columns, row, strict=True))
        for cid, row in zip(plain.index, plain.itertuples(index=False), strict=True)
    }


def compute_states(
    orders: pd.DataFrame | None,
    events: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp,
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, dict[str, Any]]:
    """{customer_id: activity state} as segments.activity.build_state(rows, now=as_of) gives, to seed the
    real-time path: records inside the retention windows plus the maxima of older ones."""
    now = int(_epoch_us(pd.Series([pd.Timestamp(as_of)]))[0])
    order_rows = _orders(orders, None)
    event_rows = _events(events, None)
    states: dict[str, dict[str, Any]] = {}

    def state_of(customer: str) -> dict[str, Any]:
        if customer not in states:
            states[customer] = {"orders": {}, "events": {}, "pruned": {}}
        return states[customer]

    def raise_max(customer: str, key: str, ts: int) -> None:
        pruned = state_of(customer)["pruned"]
        if ts > pruned.get(key, _NONE):
            pruned[key] = ts

    order_cutoff = now - ORDER_RETENTION_DAYS * US_PER_DAY
    for customer, order_id, ts, amount, status in order_rows.itertuples(index=False, name=None):
        customer, ts = str(customer), int(ts)
        if ts > order_cutoff:
            state_of(customer)["orders"][str(order_id)] = [ts, int(amount), status]
        elif status == "completed":
            for key in ("last_order_us", "last_activity_us", "last_purchase_us"):
                raise_max(customer, key, ts)
        else:
            state_of(customer)
    event_cutoff = now - settings.event_retention_days * US_PER_DAY
    for customer, event_id, ts, kind, product in event_rows.itertuples(index=False, name=None):
        customer, ts = str(customer), int(ts)
        if ts > event_cutoff:
            key = event_key(
                {"event_id": event_id, "event_type": kind, "timestamp": ts, "product_id": product}
            )
            state_of(customer)["events"][key] = [ts, kind, None if product is None else str(product)]
            continue
        state_of(customer)
        if kind not in NOT_ACTIVITY:
            raise_max(customer, "last_activity_us", ts)
        if kind in CART_TYPES:
            raise_max(customer, "last_cart_us", ts)
        if kind == "purchase":
            raise_max(customer, "last_purchase_us", ts)
    return dict(sorted(states.items()))
