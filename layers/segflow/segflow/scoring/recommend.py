"""Product recommendations and last-purchase fields for every customer, from order_items (batch, pandas).

Item-to-item co-occurrence: two products are related by the number of completed orders containing both,
normalised by sqrt(orders with a * orders with b) (cosine), so best-sellers do not relate to everything.
A customer's candidates are scored by the summed similarity to everything they bought; products they
already bought are excluded; ties go to the better seller (units, then orders, then product id).
Customers with fewer than `top_n` candidates are filled with the best-sellers of their favourite category
(the category they bought the most units of; ties: name), then with overall best-sellers.
Only completed orders up to `as_of` count; the last record of an order_id wins. Ids are turned into
integer codes once, so every join and sort below runs on integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

RECOMMEND_COLUMNS = (
    "recommended_products",
    "recommended_product_names",
    "last_product_id",
    "last_product_name",
    "last_product_category",
    "favourite_category",
)


@dataclass(frozen=True)
class _Lines:
    """Purchased lines as integer codes; customers and products are sorted, so codes keep id order."""

    frame: pd.DataFrame  # cust, order, prod, ts (int64 ns), quantity, line_value
    customers: np.ndarray  # str, sorted
    products: np.ndarray  # str, sorted
    names: np.ndarray  # per product code: latest name (object, may be None)
    categories: np.ndarray  # per product code: latest category code, -1 = none
    category_names: np.ndarray  # per category code


def recommend(
    orders: pd.DataFrame | None,
    order_items: pd.DataFrame | None,
    as_of: datetime | str | pd.Timestamp | None = None,
    top_n: int = 3,
    neighbours: int = 20,
    max_basket: int = 50,
    category_depth: int = 20,
) -> pd.DataFrame:
    """One row per customer with a completed order that has items, indexed by customer_id (sorted).

    neighbours: related products kept per product; max_basket: larger orders (bulk buys) add no pairs;
    category_depth: how far down a category's best-seller list the fallback looks.
    """
    lines = _purchased_lines(orders, order_items, as_of)
    if lines is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RECOMMEND_COLUMNS}, index=_index([]))
    frame = lines.frame
    rank = _sales_rank(frame, len(lines.products))
    bought = frame[["cust", "prod"]].drop_duplicates()
    favourite = _favourite_category(frame, lines.categories)

    ranked = _top(_co_occurrence_scores(frame, bought, rank, neighbours, max_basket), top_n)
    needy = _needing(bought, ranked, top_n)
    by_rank = np.argsort(rank)  # product codes, best seller first
    product_category = lines.categories[by_rank]
    depth_in_category = pd.Series(product_category).groupby(product_category).cumcount().to_numpy()
    per_category = pd.DataFrame({"category": product_category, "prod": by_rank})[
        (depth_in_category < category_depth) & (product_category >= 0)
    ]
    fav = pd.DataFrame({"cust": needy, "category": favourite[needy]})
    picks = fav.merge(per_category, on="category")[["cust", "prod"]]
    ranked = _top(pd.concat([ranked, _not_owned(picks, bought, rank, source=1)], ignore_index=True), top_n)
    needy = _needing(bought, ranked, top_n)
    overall = pd.DataFrame({"prod": by_rank[:category_depth]})
    picks = pd.DataFrame({"cust": needy}).merge(overall, how="cross")
    ranked = _top(pd.concat([ranked, _not_owned(picks, bought, rank, source=2)], ignore_index=True), top_n)

    n = len(lines.customers)
    recommended = _lists(ranked, n, top_n)
    labels = np.where(pd.isna(lines.names), lines.products, lines.names).astype(object)
    last = _last_products(frame, n)
    category_name = np.append(lines.category_names, None).astype(object)  # index -1 -> None
    has_last = last >= 0
    result = pd.DataFrame(
        {
            "recommended_products": [[lines.products[p] for p in row] for row in recommended],
            "recommended_product_names": [[labels[p] for p in row] for row in recommended],
            "last_product_id": np.where(has_last, lines.products[last].astype(object), None),
            "last_product_name": np.where(has_last, lines.names[last], None),
            "last_product_category": np.where(has_last, category_name[lines.categories[last]], None),
            "favourite_category": category_name[favourite],
        },
        index=_index(lines.customers),
    )
    return result.astype(object).where(result.notna(), None)


def _index(ids: object) -> pd.Index:
    return pd.Index(ids, dtype="str", name="customer_id")


def _purchased_lines(
    orders: pd.DataFrame | None, order_items: pd.DataFrame | None, as_of: datetime | str | pd.Timestamp | None
) -> _Lines | None:
    if orders is None or order_items is None or len(orders) == 0 or len(order_items) == 0:
        return None
    kept = orders[~orders["order_id"].duplicated(keep="last")]
    ts = pd.to_datetime(kept["order_date"], utc=True, errors="coerce", format="ISO8601")
    completed = (kept["status"] == "completed") & ts.notna() & kept["customer_id"].notna()
    if as_of is not None:
        moment = pd.Timestamp(as_of)
        completed &= ts <= (moment.tz_localize("UTC") if moment.tzinfo is None else moment)
    completed = completed.to_numpy()
    heads = pd.DataFrame(
        {
            "order_id": kept["order_id"].astype(str).to_numpy()[completed],
            "customer_id": kept["customer_id"].astype(str).to_numpy()[completed],
            "ts": ts.dt.tz_convert(None).dt.as_unit("ns").to_numpy().view(np.int64)[completed],
        }
    )
    items = order_items[order_items["product_id"].notna()]
    quantity = pd.to_numeric(items["quantity"], errors="coerce") if "quantity" in items else None
    quantity = (
        np.ones(len(items)) if quantity is None else quantity.fillna(1).clip(lower=0).to_numpy(np.float64)
    )
    price = pd.to_numeric(items["unit_price"], errors="coerce").fillna(0.0) if "unit_price" in items else 0.0
    raw = pd.DataFrame(
        {
            "order_id": items["order_id"].astype(str).to_numpy(),
            "product_id": items["product_id"].astype(str).to_numpy(),
            "product_name": items["product_name"].astype(object).to_numpy()
            if "product_name" in items
            else None,
            "category": items["category"].astype(object).to_numpy() if "category" in items else None,
            "quantity": quantity,
            "line_value": quantity * np.asarray(price, dtype=np.float64),
        }
    ).merge(heads, on="order_id", how="inner")
    if raw.empty:
        return None
    cust, customers = pd.factorize(raw["customer_id"], sort=True)
    prod, products = pd.factorize(raw["product_id"], sort=True)
    category = raw["category"].where(raw["category"].notna() & (raw["category"].astype(str) != ""))
    cat, category_names = pd.factorize(category.astype(object), sort=True)  # missing -> -1
    frame = pd.DataFrame(
        {
            "cust": cust,
            "order": pd.factorize(raw["order_id"], sort=True)[0],
            "prod": prod,
            "cat": cat,
            "ts": raw["ts"].to_numpy(),
            "quantity": raw["quantity"].to_numpy(),
            "line_value": raw["line_value"].to_numpy(),
        }
    )
    # Latest known name and category of each product (by order time, then row order).
    latest = np.lexsort((np.arange(len(frame)), frame["ts"].to_numpy()))
    names = np.full(len(products), None, dtype=object)
    categories = np.full(len(products), -1, dtype=np.int64)
    names[prod[latest]] = raw["product_name"].to_numpy(dtype=object)[latest]
    categories[prod[latest]] = cat[latest]
    names = np.where(pd.isna(names), None, names)
    return _Lines(
        frame,
        np.asarray(customers, dtype=str),
        np.asarray(products, dtype=str),
        names,
        categories,
        np.asarray(category_names, dtype=object),
    )


def _sales_rank(frame: pd.DataFrame, n_products: int) -> np.ndarray:
    """Per product code: 0 for the best seller (units, then orders, then product id)."""
    units = np.bincount(frame["prod"], weights=frame["quantity"], minlength=n_products)
    pairs = frame[["order", "prod"]].drop_duplicates()
    orders = np.bincount(pairs["prod"], minlength=n_products)
    order = np.lexsort((np.arange(n_products), -orders, -units))
    rank = np.empty(n_products, dtype=np.int64)
    rank[order] = np.arange(n_products)
    return rank


def _co_occurrence_scores(
    frame: pd.DataFrame, bought: pd.DataFrame, rank: np.ndarray, neighbours: int, max_basket: int
) -> pd.DataFrame:
    baskets = frame[["order", "prod"]].drop_duplicates()
    containing = np.bincount(baskets["prod"], minlength=len(rank)).astype(np.float64)
    size = baskets.groupby("order")["prod"].transform("size")
    baskets = baskets[(size > 1) & (size <= max_basket)]
    if baskets.empty:
        return pd.DataFrame({"cust": [], "prod": [], "score": [], "rank": [], "source": []})
    pairs = baskets.merge(baskets, on="order", suffixes=("_a", "_b"))
    pairs = pairs[pairs["prod_a"] != pairs["prod_b"]]
    together = pairs.groupby(["prod_a", "prod_b"]).size().rename("together").reset_index()
    a, b = together["prod_a"].to_numpy(), together["prod_b"].to_numpy()
    together["similarity"] = together["together"] / np.sqrt(containing[a] * containing[b])
    together["rank_b"] = rank[b]
    together = together.sort_values(["prod_a", "similarity", "rank_b"], ascending=[True, False, True])
    together = together[together.groupby("prod_a").cumcount() < neighbours]
    candidates = bought.merge(together, left_on="prod", right_on="prod_a")
    scores = candidates.groupby(["cust", "prod_b"])["similarity"].sum().rename("score").reset_index()
    scores = scores.rename(columns={"prod_b": "prod"})
    return _not_owned(scores, bought, rank, source=0)


def _not_owned(picks: pd.DataFrame, bought: pd.DataFrame, rank: np.ndarray, source: int) -> pd.DataFrame:
    picks = picks.merge(bought.assign(owned=True), on=["cust", "prod"], how="left")
    picks = picks[picks["owned"].isna()].drop(columns="owned")
    if "score" not in picks:
        picks = picks.assign(score=0.0)
    return picks.assign(rank=rank[picks["prod"].to_numpy(dtype=np.int64)], source=source)


def _top(candidates: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Best `top_n` distinct products per customer: earlier source first, then score, then sales rank."""
    ranked = candidates.sort_values(
        ["cust", "source", "score", "rank"], ascending=[True, True, False, True]
    ).drop_duplicates(["cust", "prod"])
    return ranked[ranked.groupby("cust").cumcount() < top_n]


def _needing(bought: pd.DataFrame, ranked: pd.DataFrame, top_n: int) -> np.ndarray:
    n = int(bought["cust"].max()) + 1
    counts = np.bincount(ranked["cust"].to_numpy(dtype=np.int64), minlength=n)
    return np.flatnonzero(counts < top_n)


def _favourite_category(frame: pd.DataFrame, categories: np.ndarray) -> np.ndarray:
    """Per customer code: the category code with most units bought (ties: smaller code), -1 if none."""
    n = int(frame["cust"].max()) + 1
    with_category = frame[frame["cat"] >= 0]
    units = with_category.groupby(["cust", "cat"])["quantity"].sum().rename("units").reset_index()
    units = units.sort_values(["cust", "units", "cat"], ascending=[True, False, True]).drop_duplicates("cust")
    favourite = np.full(n, -1, dtype=np.int64)
    favourite[units["cust"].to_numpy()] = units["cat"].to_numpy()
    return favourite


def _lists(ranked: pd.DataFrame, n: int, top_n: int) -> list[list[int]]:
    """Per customer code, its ranked product codes (already in order inside `ranked`)."""
    table = np.full((n, top_n), -1, dtype=np.int64)
    position = ranked.groupby("cust").cumcount().to_numpy()
    table[ranked["cust"].to_numpy(dtype=np.int64), position] = ranked["prod"].to_numpy(dtype=np.int64)
    return [[int(p) for p in row if p >= 0] for row in table.tolist()]


def _last_products(frame: pd.DataFrame, n: int) -> np.ndarray:
    """Per customer code, the product of its latest completed order (largest line; ties: smaller id)."""
    ordered = frame.sort_values(
        ["cust", "ts", "order", "line_value", "prod"], ascending=[True, False, False, False, True]
    ).drop_duplicates("cust")
    last = np.full(n, -1, dtype=np.int64)
    last[ordered["cust"].to_numpy()] = ordered["prod"].to_numpy()
    return last
