"""RFM metrics, scores, segments and the one-customer thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import segflow.rfm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata
from segflow.scoring import (
    DEFAULT_SEGMENTS,
    SegmentTableError,
    compute_rfm,
    rfm_thresholds,
    score_one,
    segment_grid,
)
from segflow.scoring.rfm import rank_scores

AS_OF = "2024-03-31T12:00:00Z"


@pytest.fixture
def small_orders(orders_from_rows) -> pd.DataFrame:
    return orders_from_rows(
        [
            ("alice", "a1", "2024-01-01T10:00:00Z", 100.0, "completed"),
            ("alice", "a2", "2024-03-01T10:00:00Z", 50.0, "completed"),
            ("alice", "a3", "2024-03-05T10:00:00Z", 30.0, "refunded"),  # refund, positive sign
            ("alice", "a4", "2024-03-20T10:00:00Z", 999.0, "cancelled"),  # ignored
            ("bob", "b1", "2024-02-01T10:00:00Z", 20.0, "completed"),
            ("bob", "b2", "2024-02-10T10:00:00Z", 40.0, "completed"),
            ("bob", "b2", "2024-02-10T10:00:00Z", 40.0, "cancelled"),  # re-sent row wins: b2 cancelled
            ("bob", "b3", "2024-03-30T10:00:00Z", -5.0, "refunded"),  # refund, negative sign
            ("carol", "c1", "2024-03-31T12:00:00Z", 70.0, "completed"),  # exactly at as_of: counted
            ("carol", "c2", "2024-04-02T09:00:00Z", 500.0, "completed"),  # after as_of: ignored
            ("dave", "d1", "2024-01-15T10:00:00Z", 10.0, "refunded"),  # no completed order: not scored
            ("erin", "e1", "2024-01-01T10:00:00Z", 20.0, "completed"),
            ("erin", "e2", "2024-01-01T11:00:00Z", 20.0, "completed"),
        ]
    )


def test_metrics_follow_the_order_rules(small_orders: pd.DataFrame) -> None:
    rfm = compute_rfm(small_orders, AS_OF)
    assert list(rfm.index) == ["alice", "bob", "carol", "erin"]
    assert rfm.loc["alice", ["recency_days", "frequency", "monetary"]].tolist() == [30, 2, 120.0]
    assert rfm.loc["bob", ["recency_days", "frequency", "monetary"]].tolist() == [59, 1, 15.0]  # 2024 is leap
    assert rfm.loc["carol", ["recency_days", "frequency", "monetary"]].tolist() == [0, 1, 70.0]
    assert rfm.loc["erin", ["recency_days", "frequency", "monetary"]].tolist() == [90, 2, 40.0]


def test_scores_use_the_min_rank_formula(small_orders: pd.DataFrame) -> None:
    rfm = compute_rfm(small_orders, AS_OF)
    n = len(rfm)
    for score, metric, sign in (
        ("r_score", "recency_days", -1),
        ("f_score", "frequency", 1),
        ("m_score", "monetary", 1),
    ):
        rank_min = rankdata(sign * rfm[metric].to_numpy(), method="min")
        assert rfm[score].tolist() == [1 + (5 * (r - 1)) // n for r in rank_min]
    # frequency ties: alice and erin (2 orders) share the top rank, bob and carol (1) the bottom one
    assert rfm["f_score"].tolist() == [3, 1, 1, 3]


def test_segments_come_from_r_and_f(small_orders: pd.DataFrame) -> None:
    rfm = compute_rfm(small_orders, AS_OF)
    grid = segment_grid()
    for row in rfm.itertuples():
        assert row.rfm_segment == grid[row.r_score - 1, row.f_score - 1]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(min_value=-50, max_value=50), min_size=1, max_size=60))
def test_rank_scores_match_scipy_and_give_ties_equal_scores(values: list[int]) -> None:
    array = np.asarray(values, dtype=np.int64)
    expected = 1 + (5 * (rankdata(array, method="min").astype(np.int64) - 1)) // len(array)
    scores = rank_scores(array)
    assert scores.tolist() == expected.tolist()
    assert scores.min() >= 1 and scores.max() <= 5
    for value in set(values):
        assert len(set(scores[array == value])) == 1


def random_orders(make_orders, seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return make_orders(
        [
            (
                f"c{rng.integers(0, 60)}",
                f"o{i}",
                pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=int(rng.integers(0, 24 * 120))),
                float(np.round(rng.choice([-1, 1]) * rng.lognormal(3, 1), 2)),
                str(rng.choice(["completed", "completed", "completed", "refunded", "cancelled"])),
            )
            for i in range(n)
        ]
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_result_does_not_depend_on_row_order(orders_from_rows, seed: int) -> None:
    orders = random_orders(orders_from_rows, seed)
    expected = compute_rfm(orders, "2024-05-01")
    assert expected["frequency"].sum() > 0 and expected["r_score"].nunique() > 1
    pd.testing.assert_frame_equal(
        compute_rfm(orders.sample(frac=1.0, random_state=seed), "2024-05-01"), expected
    )


def test_duplicated_order_ids_keep_the_last_row(orders_from_rows) -> None:
    first = orders_from_rows(
        [
            ("x", "o1", "2024-01-01", 10.0, "completed"),
            ("x", "o1", "2024-01-01", 10.0, "refunded"),
            ("y", "o2", "2024-01-01", 10.0, "cancelled"),
            ("y", "o2", "2024-01-02", 12.0, "completed"),
        ]
    )
    rfm = compute_rfm(first, "2024-02-01")
    assert list(rfm.index) == ["y"]  # x's only order ended refunded
    assert rfm.loc["y", ["frequency", "monetary", "recency_days"]].tolist() == [1, 12.0, 30]


def test_monetary_sums_are_exact_whatever_the_row_order(orders_from_rows) -> None:
    make_orders = orders_from_rows
    amounts = [0.1, 0.2, 0.3, 1e6 + 0.01, 0.07]
    forward = make_orders([("x", f"o{i}", "2024-01-01", a, "completed") for i, a in enumerate(amounts)])
    backward = forward.iloc[::-1]
    other = make_orders([("y", "p", "2024-01-01", sum(sorted(amounts)), "completed")])
    a = compute_rfm(pd.concat([forward, other]), "2024-02-01")
    b = compute_rfm(pd.concat([backward, other]), "2024-02-01")
    assert a.loc["x", "monetary"] == b.loc["x", "monetary"] == a.loc["y", "monetary"]
    assert a.loc["x", "m_score"] == a.loc["y", "m_score"]


def test_naive_and_aware_as_of_agree(small_orders: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        compute_rfm(small_orders, pd.Timestamp("2024-03-31 12:00")), compute_rfm(small_orders, AS_OF)
    )


def test_empty_and_missing_orders() -> None:
    empty = compute_rfm(None, AS_OF)
    assert len(empty) == 0 and list(empty.columns) == [
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "rfm_segment",
    ]
    with pytest.raises(ValueError, match="missing columns"):
        compute_rfm(pd.DataFrame({"customer_id": ["a"]}), AS_OF)


def test_alias_module_reexports_compute_rfm() -> None:
    assert segflow.rfm.compute_rfm is compute_rfm


def test_default_segments_tile_the_grid() -> None:
    grid = segment_grid()
    assert grid.shape == (5, 5) and all(isinstance(name, str) for name in grid.ravel())
    assert grid[4, 4] == "Champions" and grid[0, 0] == "Hibernating" and grid[0, 4] == "Can't Lose Them"
    assert grid[4, 0] == "New Customers" and grid[3, 0] == "Promising" and grid[2, 2] == "Need Attention"
    assert set(grid.ravel()) == set(DEFAULT_SEGMENTS)


def test_replacement_table_is_validated() -> None:
    gap = {k: v for k, v in DEFAULT_SEGMENTS.items() if k != "Promising"}
    with pytest.raises(SegmentTableError, match=r"not covered: \[\(4, 1\)\]"):
        segment_grid(gap)
    overlap = {**DEFAULT_SEGMENTS, "Everyone Recent": {"r": [5, 5], "f": [1, 5]}}
    with pytest.raises(SegmentTableError, match="more than once"):
        segment_grid(overlap)
    with pytest.raises(SegmentTableError, match="1 <= lo <= hi <= 5"):
        segment_grid({"All": {"r": [0, 5], "f": [1, 5]}})


def test_replacement_table_is_applied(small_orders: pd.DataFrame) -> None:
    table = {
        "Recent": {"r": [4, 5], "f": [1, 5]},
        "Older": [{"r": [1, 3], "f": [1, 2]}, {"r": [1, 3], "f": [3, 5]}],
    }
    rfm = compute_rfm(small_orders, AS_OF, segments=table)
    expected = np.where(rfm["r_score"] >= 4, "Recent", "Older")
    assert rfm["rfm_segment"].astype(str).tolist() == expected.tolist()


def test_score_one_reproduces_the_batch_and_survives_json(shop: tuple, shop_as_of: pd.Timestamp) -> None:
    orders, _ = shop
    rfm = compute_rfm(orders, shop_as_of)
    thresholds = json.loads(json.dumps(rfm_thresholds(rfm)))
    for row in rfm.itertuples():
        assert score_one(row.recency_days, row.frequency, row.monetary, thresholds) == (
            row.r_score,
            row.f_score,
            row.m_score,
        )
    # a value beyond the batch still gets a sensible score
    assert score_one(0, 10_000, 1e9, thresholds) == (5, 5, 5)
    assert score_one(10_000, 0, -1.0, thresholds) == (1, 1, 1)


def test_cdnow_rfm_matches_an_independent_computation(cdnow_orders: pd.DataFrame) -> None:
    as_of = pd.Timestamp("1997-09-30", tz="UTC")
    rfm = compute_rfm(cdnow_orders, as_of)
    upto = cdnow_orders[cdnow_orders["order_date"] <= as_of]
    grouped = upto.groupby("customer_id")
    expected = pd.DataFrame(
        {
            "recency_days": (as_of - grouped["order_date"].max()).dt.days,
            "frequency": grouped["order_id"].nunique(),
            "monetary": grouped["total"].sum(),
        }
    )
    assert rfm.index.equals(expected.index)
    assert (rfm["recency_days"] == expected["recency_days"]).all()
    assert (rfm["frequency"] == expected["frequency"]).all()
    np.testing.assert_allclose(rfm["monetary"], expected["monetary"], rtol=1e-12, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["o1", "o2", "o3", "o10", ""])), max_size=30))
def test_the_last_row_of_each_order_id_is_kept_and_rows_without_one_always(ids: list[str | None]) -> None:
    from segflow.scoring.orders import _latest_row_per_order

    last = {order_id: i for i, order_id in enumerate(ids) if order_id is not None}
    expected = [order_id is None or last[order_id] == i for i, order_id in enumerate(ids)]
    assert _latest_row_per_order(np.array(ids, dtype=object)).tolist() == expected
