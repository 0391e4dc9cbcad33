"""Recommendations from item-to-item co-occurrence on a small hand-made basket set."""

from __future__ import annotations

import pandas as pd
import pytest

from segflow.scoring.recommend import RECOMMEND_COLUMNS, recommend

CATEGORY = {
    "tent": "camping",
    "stove": "camping",
    "lamp": "camping",
    "mat": "camping",
    "shoes": "running",
    "socks": "running",
    "watch": "running",
    "bottle": "running",
}
PRICE = {
    "tent": 200.0,
    "stove": 50.0,
    "lamp": 20.0,
    "mat": 30.0,
    "shoes": 80.0,
    "socks": 5.0,
    "watch": 150.0,
    "bottle": 10.0,
}
# order id -> (customer, day of January 2026, status, {product: quantity})
BASKETS = {
    "o1": ("ann", 1, "completed", {"tent": 1, "stove": 1, "lamp": 1}),
    "o2": ("bob", 2, "completed", {"tent": 1, "stove": 1}),
    "o3": ("cat", 3, "completed", {"shoes": 1, "socks": 6}),
    "o4": ("dan", 4, "completed", {"tent": 1}),
    "o5": ("dan", 5, "cancelled", {"shoes": 1}),
    "o6": ("eve", 6, "completed", {"watch": 1}),
    "o7": ("fay", 7, "completed", {"tent": 1, "mat": 1}),
    "o8": ("gus", 8, "completed", {"shoes": 1, "bottle": 2}),
    "o9": ("ann", 9, "completed", {"socks": 1}),
}


def tables(baskets=BASKETS) -> tuple[pd.DataFrame, pd.DataFrame]:
    orders = pd.DataFrame(
        [
            {
                "order_id": oid,
                "customer_id": c,
                "order_date": f"2026-01-{day:02d}T10:00:00Z",
                "total": 1.0,
                "status": s,
            }
            for oid, (c, day, s, _) in baskets.items()
        ]
    )
    items = pd.DataFrame(
        [
            {
                "order_id": oid,
                "product_id": p,
                "product_name": p.title(),
                "category": CATEGORY[p],
                "quantity": q,
                "unit_price": PRICE[p],
            }
            for oid, (_, _, _, products) in baskets.items()
            for p, q in products.items()
        ]
    )
    return orders, items


@pytest.fixture(scope="module")
def result() -> pd.DataFrame:
    return recommend(*tables())


def test_shape(result):
    assert list(result.columns) == list(RECOMMEND_COLUMNS)
    assert list(result.index) == sorted({c for c, _, s, _ in BASKETS.values() if s == "completed"})
    assert all(len(r) == 3 for r in result["recommended_products"])


def test_co_occurrence_ranks_related_products_first(result):
    # dan bought a tent: stove was bought with a tent twice (o1, o2), lamp and mat once each.
    # cosine: stove 2/sqrt(4*2)=0.71, mat and lamp 1/sqrt(4*1)=0.5 -> tie on score and sales -> id
    assert result.loc["dan", "recommended_products"] == ["stove", "lamp", "mat"]
    assert result.loc["dan", "recommended_product_names"] == ["Stove", "Lamp", "Mat"]
    # bob (tent + stove): lamp relates to both, mat only to the tent.
    assert result.loc["bob", "recommended_products"][:2] == ["lamp", "mat"]


def test_never_recommends_what_was_bought(result):
    for customer, row in result.iterrows():
        bought = {
            p for c, _, s, items in BASKETS.values() if c == customer and s == "completed" for p in items
        }
        assert not bought & set(row["recommended_products"]), customer


def test_fallback_to_favourite_category_best_sellers(result):
    # eve bought only a watch (no co-purchases): running best-sellers are socks (7 units), then shoes and
    # bottle (2 units each; shoes are in 2 orders, the bottle in 1).
    assert result.loc["eve", "recommended_products"] == ["socks", "shoes", "bottle"]
    assert result.loc["eve", "favourite_category"] == "running"


def test_fallback_then_overall_best_sellers(result):
    # fay (tent + mat): co-occurrence gives stove, lamp; camping is then exhausted, so the overall
    # best-seller (socks, 7 units) fills the third place.
    assert result.loc["fay", "recommended_products"] == ["stove", "lamp", "socks"]


def test_last_product_and_cancelled_orders(result):
    # ann's latest completed order is o9 (socks); dan's cancelled o5 does not count.
    assert (result.loc["ann", "last_product_id"], result.loc["ann", "last_product_category"]) == (
        "socks",
        "running",
    )
    assert result.loc["dan", "last_product_id"] == "tent"
    # cat's latest order has shoes (80) and socks (6 x 5 = 30): the larger line wins.
    assert result.loc["cat", "last_product_name"] == "Shoes"
    assert result.loc["cat", "favourite_category"] == "running"


def test_as_of_ignores_later_orders():
    early = recommend(*tables(), as_of="2026-01-05T00:00:00Z")
    assert "eve" not in early.index and early.loc["ann", "last_product_id"] != "socks"


def test_empty_inputs():
    assert recommend(None, None).empty
    orders, items = tables()
    assert recommend(orders, items.iloc[0:0]).empty
