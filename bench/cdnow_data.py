"""Load the CDNOW transactions shipped with lifetimes as a segflow cleaned-orders table (bench helper)."""

from __future__ import annotations

import importlib.resources

import pandas as pd


def cdnow_transactions() -> pd.DataFrame:
    """Raw CDNOW_master (customer_id, date, number_of_cds, dollar_value), read straight from the package
    files so lifetimes' datasets module (pkg_resources, setuptools < 82) is not needed."""
    source = importlib.resources.files("lifetimes.datasets").joinpath("CDNOW_master.txt")
    with source.open("r") as handle:
        raw = pd.read_csv(handle, sep=r"\s+", header=0, dtype={"customer_id": str, "date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


def cdnow_orders(raw: pd.DataFrame | None = None) -> pd.DataFrame:
    """One completed order per CDNOW transaction line, order_date at midnight UTC."""
    raw = cdnow_transactions() if raw is None else raw
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype("str"),
            "order_id": pd.array([f"cdnow-{i}" for i in range(len(raw))], dtype="str"),
            "order_date": raw["date"].dt.tz_localize("UTC").dt.as_unit("ns"),
            "total": raw["dollar_value"].astype("float64"),
            "status": pd.array(["completed"] * len(raw), dtype="str"),
        }
    )
