"""Turn the cleaned orders table into per-customer integer arrays shared by every scoring module.

Rules applied once, here: duplicated order_id rows keep the last row, orders after ``as_of`` are ignored,
cancelled orders are ignored, a refunded order's amount counts as ``abs(total)`` subtracted, and the
scored population is every customer with at least one completed order up to ``as_of``.
Amounts are held in fixed point (1e-4 currency units) so per-customer sums are exact and therefore do
not depend on row order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

AMOUNT_SCALE = 10_000
NS_PER_DAY = 86_400 * 10**9
ORDER_COLUMNS = ("customer_id", "order_id", "order_date", "total", "status")


@dataclass(frozen=True)
class PreparedOrders:
    """Completed orders and refunds of the scored customers, as parallel numpy arrays."""

    customer_ids: np.ndarray  # sorted unique ids (object) of customers with a completed order
    code: np.ndarray  # per completed order: position in customer_ids
    timestamp_ns: np.ndarray  # per completed order: UTC epoch nanoseconds
    amount: np.ndarray  # per completed order: int64 fixed point (AMOUNT_SCALE)
    refund_code: np.ndarray  # per refund of a scored customer: position in customer_ids
    refund_timestamp_ns: np.ndarray
    refund_amount: np.ndarray  # int64 fixed point, always >= 0
    as_of_ns: int

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)


def to_utc_timestamp(value: datetime | str | pd.Timestamp) -> pd.Timestamp:
    """Parse a point in time; naive values are taken as UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_epoch_ns(column: pd.Series) -> np.ndarray:
    """Epoch nanoseconds of a datetime column (tz-aware or naive-as-UTC) without per-row objects."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(column):
        column = pd.to_datetime(column, utc=True)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert(None)
    return column.dt.as_unit("ns").to_numpy().view(np.int64)


def to_fixed_point(amounts: np.ndarray) -> np.ndarray:
    """Fixed-point amounts; a missing total counts as 0 rather than poisoning the customer's sum."""
    return np.rint(np.nan_to_num(np.asarray(amounts, dtype=np.float64)) * AMOUNT_SCALE).astype(np.int64)


def from_fixed_point(amounts: np.ndarray) -> np.ndarray:
    return np.asarray(amounts, dtype=np.float64) / AMOUNT_SCALE


def prepare_orders(orders: pd.DataFrame | None, as_of: datetime | str | pd.Timestamp) -> PreparedOrders:
    as_of_ns = to_utc_timestamp(as_of).as_unit("ns").value
    if orders is None or len(orders) == 0:
        return _empty(as_of_ns)
    missing = [c for c in ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(f"orders is missing columns: {missing}")

    latest_row = _latest_row_per_order(orders["order_id"].to_numpy(dtype=object))
    timestamp_ns = utc_epoch_ns(orders["order_date"])
    status = orders["status"].to_numpy(dtype=object)
    in_window = latest_row & (timestamp_ns <= as_of_ns) & (timestamp_ns != np.iinfo(np.int64).min)  # NaT=min
    completed = (status == "completed") & in_window
    relevant = completed.copy()
    others = np.flatnonzero(in_window & ~completed)  # few rows: compare their status only
    relevant[others] = status[others] == "refunded"

    codes, uniques = pd.factorize(orders["customer_id"].to_numpy(dtype=object)[relevant])
    if (codes < 0).any():  # rows without a customer id cannot be attributed: drop them
        relevant[np.flatnonzero(relevant)[codes < 0]] = False
        codes = codes[codes >= 0]
    is_completed = completed[relevant]
    has_completed = np.bincount(codes[is_completed], minlength=len(uniques)) > 0
    # Renumber so codes follow the sorted customer ids (output independent of row order).
    kept_ids = uniques[has_completed]
    sort_order = np.argsort(kept_ids.astype(str), kind="stable")  # fixed-width sort runs in C
    renumber = np.full(len(uniques), -1, dtype=np.int64)
    renumber[np.flatnonzero(has_completed)[sort_order]] = np.arange(len(kept_ids))
    codes = renumber[codes]

    totals = to_fixed_point(orders["total"].to_numpy(dtype=np.float64)[relevant])
    ts_relevant = timestamp_ns[relevant]
    refund_rows = ~is_completed & (codes >= 0)  # refunds of customers without a completed order are dropped
    return PreparedOrders(
        customer_ids=kept_ids[sort_order],
        code=codes[is_completed],
        timestamp_ns=ts_relevant[is_completed],
        amount=totals[is_completed],
        refund_code=codes[refund_rows],
        refund_timestamp_ns=ts_relevant[refund_rows],
        refund_amount=np.abs(totals[refund_rows]),
        as_of_ns=as_of_ns,
    )


def _latest_row_per_order(order_ids: np.ndarray) -> np.ndarray:
    """True on the last row of each order_id (later rows supersede earlier ones); a row without an
    order_id is a duplicate of nothing. pandas' hash table finds the duplicates in C."""
    ids = pd.Index(order_ids, dtype=object)
    latest = ~ids.duplicated(keep="last")
    missing = ids.isna()
    if missing.any():
        latest |= missing
    return latest


def _empty(as_of_ns: int) -> PreparedOrders:
    no_int = np.empty(0, dtype=np.int64)
    return PreparedOrders(
        customer_ids=np.empty(0, dtype=object),
        code=no_int,
        timestamp_ns=no_int,
        amount=no_int,
        refund_code=no_int,
        refund_timestamp_ns=no_int,
        refund_amount=no_int,
        as_of_ns=as_of_ns,
    )


def customer_index(prepared: PreparedOrders) -> pd.Index:
    return pd.Index(prepared.customer_ids, dtype="str", name="customer_id")


def restrict_to(prepared: PreparedOrders, cutoff_ns: int) -> PreparedOrders:
    """The same orders seen from an earlier point in time (for time-split training snapshots)."""
    if cutoff_ns >= prepared.as_of_ns:
        return prepared
    completed = prepared.timestamp_ns <= cutoff_ns
    active = np.bincount(prepared.code[completed], minlength=prepared.n_customers) > 0
    renumber = np.cumsum(active) - 1
    refunds = (prepared.refund_timestamp_ns <= cutoff_ns) & active[prepared.refund_code]
    return PreparedOrders(
        customer_ids=prepared.customer_ids[active],
        code=renumber[prepared.code[completed]],
        timestamp_ns=prepared.timestamp_ns[completed],
        amount=prepared.amount[completed],
        refund_code=renumber[prepared.refund_code[refunds]],
        refund_timestamp_ns=prepared.refund_timestamp_ns[refunds],
        refund_amount=prepared.refund_amount[refunds],
        as_of_ns=cutoff_ns,
    )
