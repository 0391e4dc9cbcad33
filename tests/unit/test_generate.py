"""Tests for the sample data generator (segflow_local.generate)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from segflow_local import generate as generate_module
from segflow_local.generate import FILES, GenerateSummary, generate_dataset
from segflow_local.generate_behaviour import chunk_bounds
from segflow_local.generate_dirty import is_invalid_email

AS_OF = pd.Timestamp("2026-11-01", tz="UTC")
CUSTOMERS, ORDERS = 500, 6_000
EVENT_TYPES = {
    "page_view",
    "product_view",
    "cart_add",
    "checkout",
    "purchase",
    "email_open",
    "email_click",
    "unsubscribe",
}
EXAMPLE_DOMAINS = {"example.com", "example.org", "example.net"}


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _read_events(path: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


def _load(summary: GenerateSummary) -> dict[str, pd.DataFrame]:
    return {
        name: _read_events(f.path) if name == "events" else _read_csv(f.path)
        for name, f in summary.files.items()
    }


@pytest.fixture(scope="module")
def dirty_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerateSummary, dict[str, pd.DataFrame]]:
    summary = generate_dataset(tmp_path_factory.mktemp("dirty"), customers=CUSTOMERS, orders=ORDERS, seed=11)
    return summary, _load(summary)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerateSummary, dict[str, pd.DataFrame]]:
    summary = generate_dataset(
        tmp_path_factory.mktemp("clean"), customers=CUSTOMERS, orders=ORDERS, seed=11, dirty=False
    )
    return summary, _load(summary)


# determinism -------------------------------------------------------------------------------------------
def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_dataset(tmp_path / "a", customers=200, orders=1_500, seed=3)
    second = generate_dataset(tmp_path / "b", customers=200, orders=1_500, seed=3)
    for name in FILES:
        assert first.files[name].path.read_bytes() == second.files[name].path.read_bytes(), name
    assert first.injected == second.injected


def test_different_seeds_give_different_data(tmp_path: Path) -> None:
    first = generate_dataset(tmp_path / "a", customers=200, orders=1_500, seed=3)
    second = generate_dataset(tmp_path / "b", customers=200, orders=1_500, seed=4)
    for name in FILES:
        assert first.files[name].path.read_bytes() != second.files[name].path.read_bytes(), name


def test_clean_and_dirty_runs_share_the_underlying_data(dirty_run, clean_run) -> None:
    _, dirty = dirty_run
    _, clean = clean_run
    assert set(dirty["orders"].order_id) == set(clean["orders"].order_id)
    merged = clean["orders"].merge(
        dirty["orders"].drop_duplicates("order_id"), on="order_id", suffixes=("", "_d")
    )
    same = (merged.order_date == merged.order_date_d) & (merged.total == merged.total_d)
    assert same.mean() > 0.9
    assert dirty["order_items"].equals(clean["order_items"])


# files, columns, counts --------------------------------------------------------------------------------
def test_files_and_columns(dirty_run) -> None:
    summary, frames = dirty_run
    assert {p.name for p in summary.out_dir.iterdir()} == {file for file, _ in FILES.values()}
    for name, (file, columns) in FILES.items():
        assert summary.files[name].path == summary.out_dir / file
        assert tuple(frames[name].columns) == columns, name
    header = (summary.out_dir / "customers.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == (
        "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,"
        "signup_date,loyalty_tier"
    )


def test_row_counts_match_request_and_summary(dirty_run, clean_run) -> None:
    summary, frames = dirty_run
    for name, frame in frames.items():
        assert summary.files[name].rows == len(frame), name
    injected = summary.injected
    assert len(frames["customers"]) == (
        CUSTOMERS + injected["customers"]["exact_duplicate_row"] + injected["customers"]["duplicate_person"]
    )
    assert len(frames["orders"]) == ORDERS + injected["orders"]["duplicate_order_row"]
    assert frames["orders"].order_id.nunique() == ORDERS

    clean_summary, clean = clean_run
    assert clean_summary.injected == {}
    assert len(clean["customers"]) == CUSTOMERS
    assert len(clean["orders"]) == ORDERS == clean["orders"].order_id.nunique()
    assert clean_summary.to_dict()["files"]["orders"]["rows"] == ORDERS
    json.dumps(clean_summary.to_dict())  # serialisable for the CLI


def test_events_are_json_lines_about_three_per_order(dirty_run) -> None:
    summary, frames = dirty_run
    lines = summary.files["events"].path.read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert 2.5 * ORDERS <= len(lines) <= 3.5 * ORDERS
    assert list(json.loads(lines[0])) == list(FILES["events"][1])


def test_zero_orders_and_bad_arguments(tmp_path: Path) -> None:
    summary = generate_dataset(tmp_path, customers=20, orders=0)
    assert summary.files["orders"].rows == 0
    assert (tmp_path / "orders.csv").read_text().strip() == ",".join(FILES["orders"][1])
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, customers=0, orders=10)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, customers=-1, orders=0)


# references --------------------------------------------------------------------------------------------
def test_orders_reference_generated_customers(dirty_run) -> None:
    summary, frames = dirty_run
    customer_ids = set(frames["customers"].customer_id) - {""}
    orders = frames["orders"]
    with_id = orders[orders.customer_id != ""]
    known = with_id.customer_id.isin(customer_ids)
    assert known.mean() > 0.98
    assert (~known).sum() == summary.injected["orders"]["unknown_customer_id"]
    email_only = orders[(orders.customer_id == "") & (orders.email != "")]
    assert 0.03 < len(email_only) / len(orders) < 0.08
    emails = set(frames["customers"].email.str.strip().str.lower())
    assert email_only.email.str.strip().str.lower().isin(emails).all()
    assert frames["order_items"].order_id.isin(set(orders.order_id)).all()


def test_events_and_consent_reference_generated_customers(clean_run) -> None:
    _, frames = clean_run
    ids = set(frames["customers"].customer_id)
    emails = set(frames["customers"].email)
    events = frames["events"]
    assert events.customer_id.dropna().isin(ids).all()
    assert events.email.dropna().isin(emails).all()
    assert events[["customer_id", "email"]].notna().any(axis=1).all()
    consent = frames["consent"]
    assert consent.customer_id[consent.customer_id != ""].isin(ids).all()
    assert consent.email[consent.email != ""].isin(emails).all()


# realism -----------------------------------------------------------------------------------------------
def test_clean_values_are_valid(clean_run) -> None:
    _, frames = clean_run
    customers, orders = frames["customers"], frames["orders"]
    assert customers.customer_id.is_unique and customers.email.is_unique
    assert not customers.email.map(is_invalid_email).any()
    assert (customers.email == customers.email.str.strip().str.lower()).all()
    assert set(customers.email.str.split("@").str[1]) <= EXAMPLE_DOMAINS
    assert customers.email.map(str.isascii).all()  # Unicode names are transliterated: José -> jose
    assert set(customers.country) <= {"US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "IE", "AU", "JP", "BR"}
    assert customers.country.nunique() >= 10
    assert set(orders.status) == {"completed", "refunded", "cancelled"}
    assert set(orders.currency) == {"EUR"}
    dates = pd.to_datetime(orders.order_date, utc=True, format="ISO8601")
    assert dates.min() >= AS_OF - pd.Timedelta(days=730) and dates.max() < AS_OF
    signups = pd.to_datetime(customers.signup_date, utc=True)
    assert signups.max() < AS_OF and signups.min() >= AS_OF - pd.Timedelta(days=1_461)


def test_names_are_international_and_phones_valid_for_their_country(clean_run) -> None:
    _, frames = clean_run
    customers = frames["customers"]
    names = set(customers.first_name) | set(customers.last_name)
    assert any(not name.isascii() for name in names)
    assert any("\u4e00" <= ch <= "\u9fff" for name in names for ch in name)  # CJK (e.g. 山田)
    with_phone = customers[customers.phone != ""]
    assert len(with_phone) > 0.8 * len(customers)
    valid = [
        phonenumbers.is_valid_number(phonenumbers.parse(p, c))
        for p, c in zip(with_phone.phone, with_phone.country, strict=False)
    ]
    assert all(valid)
    assert not with_phone.phone.str.startswith("+").any()  # local formats


def test_order_shares_and_item_sums(clean_run) -> None:
    _, frames = clean_run
    orders, items = frames["orders"], frames["order_items"]
    share = orders.status.value_counts(normalize=True)
    assert 0.03 < share["refunded"] < 0.07 and 0.015 < share["cancelled"] < 0.05
    total = orders.total.astype(float)
    assert (total[orders.status == "refunded"] < 0).all() and (total[orders.status != "refunded"] > 0).all()
    items = items.assign(value=items.quantity.astype(int) * items.unit_price.astype(float))
    item_sum = items.groupby("order_id").value.sum().reindex(orders.order_id).to_numpy()
    assert np.allclose(np.abs(total.to_numpy()), item_sum, atol=0.001)
    per_order = items.groupby("order_id").size()
    assert per_order.between(1, 3).all() and per_order.max() == 3
    assert items.product_id.nunique() > 100 and items.category.nunique() == 10


def test_baskets_keep_to_one_category_more_often_than_chance(clean_run) -> None:
    _, frames = clean_run
    items = frames["order_items"]
    multi = items[items.order_id.duplicated(keep=False)]
    single_category = (multi.groupby("order_id").category.nunique() == 1).mean()
    popularity = items.category.value_counts(normalize=True)
    chance_two_same = float((popularity**2).sum())  # two independent picks in one category
    assert single_category > chance_two_same + 0.2
    top = items.product_id.value_counts()
    assert top.iloc[:20].sum() > 0.2 * len(items)  # popularity skew: 10 % of products, >20 % of lines


def test_customer_behaviour_has_signal(clean_run) -> None:
    _, frames = clean_run
    orders = frames["orders"]
    orders = orders[(orders.status == "completed") & (orders.customer_id != "")]
    dates = pd.to_datetime(orders.order_date, utc=True, format="ISO8601")
    per_customer = (
        orders.assign(date=dates).groupby("customer_id").agg(n=("order_id", "size"), last=("date", "max"))
    )
    recency = (AS_OF - per_customer["last"]).dt.days
    assert (recency < 30).mean() > 0.15 and (recency > 180).mean() > 0.15  # active and lapsed customers
    counts = per_customer.n.sort_values(ascending=False)
    assert counts.iloc[: len(counts) // 5].sum() > 0.5 * counts.sum()  # heterogeneous purchase rates
    spend = orders.assign(total=orders.total.astype(float)).groupby("customer_id").total.mean()
    assert spend.quantile(0.95) > 2 * spend.median() and spend.max() > 4 * spend.median()  # big spenders


def test_event_patterns(clean_run) -> None:
    _, frames = clean_run
    events = frames["events"]
    assert set(events.event_type) == EVENT_TYPES
    times = pd.to_datetime(events.timestamp, utc=True, format="ISO8601")
    assert times.min() >= AS_OF - pd.Timedelta(days=60) and times.max() < AS_OF
    web = events[events.customer_id.notna()]
    carts = web[web.event_type == "cart_add"].groupby("customer_id").product_id.apply(set)
    bought = web[web.event_type == "purchase"].groupby("customer_id").product_id.apply(set)
    abandoned = [c for c, products in carts.items() if products - bought.get(c, set())]
    assert abandoned
    views = web[web.event_type == "product_view"].groupby(["customer_id", "product_id"]).size()
    assert (views >= 3).any()
    kinds = events.event_type.value_counts()
    assert kinds["email_open"] > kinds["email_click"] > 0
    assert events.event_id.is_unique
    assert events.loc[events.event_type.isin(["email_open", "email_click"]), "campaign_id"].notna().all()
    assert events.loc[events.event_type == "cart_add", "product_id"].notna().all()


def test_consent_histories(clean_run) -> None:
    _, frames = clean_run
    consent = frames["consent"]
    assert set(consent.status) == {"opted_in", "opted_out"}
    assert set(consent.channel) == {"email"}
    assert set(consent.double_opt_in_confirmed) == {"true", "false"}
    assert set(consent.lawful_basis) <= {"consent", "legitimate_interest", "contract"}
    keyed = consent[consent.email != ""]
    records = keyed.groupby("email").size()
    assert (records > 1).any()
    assert keyed.email.nunique() < 0.95 * CUSTOMERS  # some customers have no consent record at all
    out_of_order = keyed.groupby("email").timestamp.apply(lambda t: not t.is_monotonic_increasing)
    assert out_of_order.any()


# injected problems are counted exactly -----------------------------------------------------------------
def test_customer_problems_counted(dirty_run) -> None:
    summary, frames = dirty_run
    counts = summary.injected["customers"]
    customers = frames["customers"]
    email = customers.email
    assert email.map(is_invalid_email).sum() == counts["invalid_email"] > 0
    spaced_mixed_case = (email != email.str.strip()) & (email.str.strip().str.lower() != email.str.strip())
    assert spaced_mixed_case.sum() == counts["email_case_space"] > 0
    assert (email != email.str.strip().str.lower()).sum() == counts["email_case_space"]  # nothing else is
    assert customers.first_name.str.startswith("=").sum() == counts["formula_name"]
    assert (customers.customer_id == "").sum() == counts["empty_customer_id"]
    assert customers.duplicated().sum() == counts["exact_duplicate_row"] > 0
    people = customers.drop_duplicates()
    same_email = people[people.email.duplicated(keep=False) & ~people.email.map(is_invalid_email)]
    assert same_email.email.duplicated().sum() == counts["duplicate_person"] > 0
    assert (~customers.country.str.fullmatch(r"[A-Z]{2}")).sum() == counts["country_name"] > 0


def test_order_and_event_problems_counted(dirty_run) -> None:
    summary, frames = dirty_run
    counts = summary.injected["orders"]
    orders = frames["orders"]
    assert pd.to_numeric(orders.total, errors="coerce").isna().sum() == counts["non_numeric_total"] > 0
    assert orders.order_id.duplicated().sum() == counts["duplicate_order_row"] > 0
    assert (orders.currency != "EUR").sum() == counts["unknown_currency"] > 0
    known = orders.status.isin(["completed", "refunded", "cancelled"])
    assert (~known).sum() == counts["unknown_status"] > 0
    total = pd.to_numeric(orders.total, errors="coerce")
    negative_completed = (orders.status == "completed") & (total < 0)
    assert negative_completed.sum() == counts["negative_total_completed"] > 0

    event_counts = summary.injected["events"]
    events = frames["events"]
    assert (~events.event_type.isin(EVENT_TYPES)).sum() == event_counts["unknown_event_type"]
    assert events.event_id.duplicated().sum() == event_counts["duplicate_event_row"]


# scale and chunking ------------------------------------------------------------------------------------
def test_many_chunks_keep_ids_unique_and_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        generate_module, "chunk_bounds", lambda plan: chunk_bounds(plan, max_customers=40, max_work=400)
    )
    summary = generate_dataset(tmp_path, customers=300, orders=2_000, dirty=False)
    frames = _load(summary)
    assert frames["customers"].customer_id.tolist() == [f"C{i:08d}" for i in range(1, 301)]
    assert frames["orders"].order_id.tolist() == [f"O{i:09d}" for i in range(1, 2_001)]
    assert frames["events"].event_id.is_unique
    assert frames["order_items"].order_id.isin(set(frames["orders"].order_id)).all()


def test_as_of_moves_the_whole_history(tmp_path: Path) -> None:
    summary = generate_dataset(tmp_path, customers=100, orders=800, as_of=date(2021, 6, 1), dirty=False)
    dates = pd.to_datetime(_read_csv(summary.files["orders"].path).order_date, utc=True, format="ISO8601")
    as_of = pd.Timestamp("2021-06-01", tz="UTC")
    assert dates.max() < as_of and dates.min() >= as_of - pd.Timedelta(days=730)


@pytest.mark.slow
def test_hundred_thousand_orders(tmp_path: Path) -> None:
    summary = generate_dataset(tmp_path, customers=10_000, orders=100_000)
    assert summary.files["orders"].rows == 100_000 + summary.injected["orders"]["duplicate_order_row"]
    with summary.files["orders"].path.open(encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == summary.files["orders"].rows + 1
