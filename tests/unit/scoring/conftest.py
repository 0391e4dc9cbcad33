"""Test data for the scoring tests: hand-written orders, a small simulated shop, CDNOW from lifetimes.

Helpers are exposed as fixtures (tests do not import this module: pytest may run in importlib mode).
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import pytest

START = pd.Timestamp("2023-01-01", tz="UTC")


def make_orders(rows: list[tuple]) -> pd.DataFrame:
    """Orders table from (customer_id, order_id, date, total, status) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "total", "status"])
    return frame.astype(
        {"customer_id": "str", "order_id": "str", "total": "float64", "status": "str"}
    ).assign(order_date=pd.to_datetime(frame["order_date"], utc=True).dt.as_unit("ns"))


def simulate_shop(
    n_customers: int = 1500, days: int = 730, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders and activity events of a shop whose customers buy at their own rate until they lapse.

    Each customer arrives on a random day, buys at a gamma-distributed daily rate while active, stays
    active for an exponential time and spends around their own typical basket. Active customers also
    open emails and browse. Some orders are refunded or cancelled, a few order rows are re-sent.
    """
    rng = np.random.default_rng(seed)
    arrival = rng.integers(0, days - 90, n_customers)
    rate = rng.gamma(0.9, 1 / 40, n_customers)
    lifetime = rng.exponential(300, n_customers)
    basket = rng.lognormal(3.6, 0.5, n_customers)
    end = np.minimum(arrival + lifetime, days)
    repeat_count = rng.poisson(rate * (end - arrival))
    customer = np.concatenate([np.arange(n_customers), np.repeat(np.arange(n_customers), repeat_count)])
    day = np.concatenate(
        [
            arrival,
            arrival[customer[n_customers:]]
            + rng.random(repeat_count.sum()) * (end - arrival)[customer[n_customers:]],
        ]
    )
    n = len(customer)
    status = rng.choice(
        np.array(["completed", "refunded", "cancelled"], dtype=object), n, p=[0.93, 0.04, 0.03]
    )
    status[:n_customers] = "completed"  # every customer really bought once
    orders = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{c:05d}" for c in customer], dtype="str"),
            "order_id": pd.array([f"o{i:07d}" for i in range(n)], dtype="str"),
            "order_date": (START + pd.to_timedelta(day * 86_400, unit="s")).as_unit("ns"),
            "total": np.round(basket[customer] * rng.lognormal(0, 0.3, n), 2),
            "status": pd.array(status, dtype="str"),
        }
    )
    resent = orders.sample(n=n // 200, random_state=seed).assign(status="refunded")
    orders = pd.concat([orders, resent], ignore_index=True)

    active_days = np.maximum(end - arrival, 1)
    event_count = rng.poisson(active_days * rate * 6)
    who = np.repeat(np.arange(n_customers), event_count)
    when = arrival[who] + rng.random(len(who)) * active_days[who]
    kinds = np.array(
        ["page_view", "product_view", "cart_add", "email_open", "email_click", "checkout"], dtype=object
    )
    events = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{c:05d}" for c in who], dtype="str"),
            "event_type": pd.array(
                rng.choice(kinds, len(who), p=[0.3, 0.2, 0.1, 0.25, 0.1, 0.05]), dtype="str"
            ),
            "timestamp": (START + pd.to_timedelta(when * 86_400, unit="s")).as_unit("ns"),
        }
    )
    return orders, events


def load_cdnow_raw() -> pd.DataFrame:
    """CDNOW_master as shipped in lifetimes (read through importlib.resources, no pkg_resources)."""
    source = importlib.resources.files("lifetimes.datasets").joinpath("CDNOW_master.txt")
    with source.open("r") as handle:
        raw = pd.read_csv(handle, sep=r"\s+", header=0, dtype={"customer_id": str, "date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


def cdnow_as_orders(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype("str"),
            "order_id": pd.array([f"cdnow-{i}" for i in range(len(raw))], dtype="str"),
            "order_date": raw["date"].dt.tz_localize("UTC").dt.as_unit("ns"),
            "total": raw["dollar_value"].astype("float64"),
            "status": pd.array(["completed"] * len(raw), dtype="str"),
        }
    )


@pytest.fixture(scope="session")
def orders_from_rows():
    return make_orders


@pytest.fixture(scope="session")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_shop()


@pytest.fixture(scope="session")
def shop_as_of() -> pd.Timestamp:
    return START + pd.Timedelta(days=730)


@pytest.fixture(scope="session")
def cdnow_raw() -> pd.DataFrame:
    pytest.importorskip("lifetimes")
    return load_cdnow_raw()


@pytest.fixture(scope="session")
def cdnow_orders(cdnow_raw: pd.DataFrame) -> pd.DataFrame:
    return cdnow_as_orders(cdnow_raw)
