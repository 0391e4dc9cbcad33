"""clean_chunk: per-dataset rules, severities, defaults, imputation, originals and output types."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from segflow.ingest.cleaning import RULES, clean_chunk
from segflow.ingest.datasets import DATASETS, dataset_for_key
from segflow.ingest.quarantine import rule_counts, to_jsonl, warning_counts

from ._support import NOW, accounted_rows, chunk_of, clean, clean_csv, read_all, rules_by_row, warning_rules

ORDER = {
    "order_id": "o1",
    "customer_id": "c1",
    "order_date": "2026-01-02",
    "total": "10.00",
    "currency": "EUR",
    "status": "paid",
}


def order(**changes: str | None) -> dict[str, str | None]:
    return {**ORDER, **changes}


# ---- customers -----------------------------------------------------------------------------------------


def test_customer_row_is_normalised_and_typed() -> None:
    result = clean(
        "customers",
        [
            {
                "customer_id": " 00123 ",
                "email": " Zoë.Müller@Example.COM ",
                "first_name": "Zoe\u0308  Ann",
                "last_name": "  Müller ",
                "phone": "020 7946 0958",
                "country": "uk",
                "city": " St.  Albans ",
                "postal_code": "AL1  1AA",
                "birth_date": "01.02.1990",
                "signup_date": "2024-01-15T10:00:00+02:00",
                "Loyalty Tier": "gold",
                "Notes": "  ",
            }
        ],
    )
    assert not result.quarantined
    row = result.clean.iloc[0]
    assert row["customer_id"] == "00123"
    assert row["email"] == "zoë.müller@example.com"
    assert row["email_original"] == " Zoë.Müller@Example.COM "
    assert row["first_name"] == "Zoë Ann" and row["last_name"] == "Müller"
    assert row["city"] == "St. Albans" and row["postal_code"] == "AL1 1AA"
    assert row["phone"] == "+442079460958" and row["phone_original"] == "020 7946 0958"
    assert row["country"] == "GB" and row["country_original"] == "uk"
    assert row["birth_date"] == pd.Timestamp("1990-02-01", tz="UTC")
    assert row["signup_date"] == pd.Timestamp("2024-01-15 08:00", tz="UTC")
    assert row["attributes"] == {"Loyalty Tier": "gold"}
    json.dumps(row["attributes"])
    assert row["_row"] == 1
    assert not row["country_imputed"]


def test_customer_output_dtypes_and_columns() -> None:
    frame = clean("customers", [{"email": "a@example.com"}]).clean
    spec_fields = list(DATASETS["customers"].fields)
    assert list(frame.columns[: len(spec_fields)]) == spec_fields
    assert str(frame["signup_date"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["birth_date"].dtype) == "datetime64[ns, UTC]"
    assert frame["_row"].dtype == np.int64
    assert frame["country_imputed"].dtype == bool
    for name in ("customer_id", "email", "phone", "country", "email_original", "attributes"):
        assert frame[name].dtype == object
    assert frame.loc[0, "customer_id"] is None and frame.loc[0, "email_original"] is None


def test_unchanged_values_leave_originals_null() -> None:
    row = clean(
        "customers",
        [
            {
                "customer_id": "c1",
                "email": "a@example.com",
                "phone": "+442079460958",
                "country": "GB",
                "signup_date": "2026-01-01T00:00:00Z",
            }
        ],
    ).clean.iloc[0]
    for name in ("email_original", "phone_original", "country_original", "signup_date_original"):
        assert row[name] is None


def test_invalid_customer_email_quarantines_even_with_an_id() -> None:
    result = clean("customers", [{"customer_id": "c1", "email": "not-an-email"}, {"customer_id": "c2"}])
    assert rules_by_row(result) == {1: {"email_syntax"}}
    assert result.clean["_row"].tolist() == [2]
    reason = result.quarantined[0].reasons[0]
    assert reason.field == "email" and reason.value == "not-an-email"
    assert result.quarantined[0].record == {"customer_id": "c1", "email": "not-an-email"}


def test_customer_without_id_or_email_is_quarantined() -> None:
    result = clean("customers", [{"customer_id": "  ", "email": None, "first_name": "Ann"}])
    assert rules_by_row(result) == {1: {"required"}}
    assert result.quarantined[0].reasons[0].field == "customer_id|email"


def test_invalid_optional_customer_values_are_warnings_with_originals() -> None:
    result = clean(
        "customers",
        [
            {
                "customer_id": "c1",
                "phone": "12",
                "country": "Atlantis",
                "birth_date": "31.02.1990",
                "signup_date": "2099-01-01",
                "updated_at": "soon",
            }
        ],
    )
    assert not result.quarantined
    assert warning_rules(result) == {1: {"phone", "country", "date_parse", "date_future"}}
    row = result.clean.iloc[0]
    assert row["phone"] is None and row["phone_original"] == "12"
    assert row["country"] is None and row["country_original"] == "Atlantis"
    assert pd.isna(row["birth_date"]) and row["birth_date_original"] == "31.02.1990"
    assert pd.isna(row["signup_date"]) and row["signup_date_original"] == "2099-01-01"
    assert pd.isna(row["updated_at"]) and row["updated_at_original"] == "soon"


def test_birth_date_before_1900_is_a_warning() -> None:
    result = clean("customers", [{"customer_id": "c1", "birth_date": "1850-01-01"}])
    assert warning_rules(result) == {1: {"date_range"}}
    assert pd.isna(result.clean.loc[0, "birth_date"])


def test_country_is_imputed_from_an_international_phone_only_when_empty() -> None:
    result = clean(
        "customers",
        [
            {"customer_id": "c1", "phone": "+1 415 555 2671", "country": None},
            {"customer_id": "c2", "phone": "+1 415 555 2671", "country": "Narnia"},
            {"customer_id": "c3", "phone": "020 7946 0958", "country": None},
        ],
    )
    frame = result.clean
    assert frame["country"].tolist() == ["US", None, None]
    assert frame["country_imputed"].tolist() == [True, False, False]
    assert frame["phone"].tolist() == ["+14155552671", "+14155552671", None]  # no country to read c3's in


def test_emails_differing_in_case_and_spaces_normalise_to_one_key() -> None:
    frame = clean(
        "customers",
        [{"email": "Ann@Example.com"}, {"email": " ann@example.COM\t"}, {"email": "ann@example.com"}],
    ).clean
    assert frame["email"].nunique() == 1
    assert frame["email_original"].tolist() == ["Ann@Example.com", " ann@example.COM\t", None]


def test_attributes_keep_only_non_empty_extra_values() -> None:
    frame = clean(
        "customers",
        [
            {"customer_id": "c1", "tier": "gold", "vip": " "},
            {"customer_id": "c2", "tier": None, "vip": "yes"},
        ],
    ).clean
    assert frame["attributes"].tolist() == [{"tier": "gold"}, {"vip": "yes"}]


# ---- orders ----------------------------------------------------------------------------------------------


def test_order_is_typed_with_exact_total() -> None:
    result = clean("orders", [order(total="1.234,50", currency="eur", status="Paid")])
    row = result.clean.iloc[0]
    assert row["total"] == 1234.5 and row["total_exact"] == "1234.5" and row["total_original"] == "1.234,50"
    assert row["currency"] == "EUR" and row["status"] == "completed"
    assert row["order_date"] == pd.Timestamp("2026-01-02", tz="UTC")
    assert result.clean["total"].dtype == np.float64


@pytest.mark.parametrize(
    ("changes", "rules"),
    [
        ({"order_id": None}, {"required"}),
        ({"customer_id": None}, {"required"}),
        ({"order_date": "someday"}, {"date_parse"}),
        ({"order_date": "2026-06-03T12:00:01Z"}, {"date_future"}),
        ({"total": "ten"}, {"numeric"}),
        ({"total": None}, {"required"}),
        ({"total": "-5"}, {"negative_total"}),
        ({"currency": "EURO"}, {"currency_code"}),
        ({"status": "pending"}, {"status"}),
        ({"status": "pending", "total": "-5"}, {"status"}),
        ({"customer_id": None, "email": "nope"}, {"email_syntax"}),
        ({"order_date": "03/04/2026", "total": "1,234"}, {"date_parse", "numeric"}),
    ],
)
def test_order_rules_that_quarantine(changes: dict[str, str | None], rules: set[str]) -> None:
    result = clean("orders", [order(**changes)])
    assert rules_by_row(result) == {1: rules}
    assert result.clean.empty


def test_negative_total_is_allowed_on_refunds() -> None:
    result = clean("orders", [order(total="-5", status="refund")])
    assert not result.quarantined
    assert result.clean.loc[0, "total_exact"] == "-5"


def test_future_tolerance_is_respected() -> None:
    inside = order(order_date=(NOW + timedelta(hours=23)).isoformat())
    outside = order(order_date=(NOW + timedelta(hours=25)).isoformat())
    assert not clean("orders", [inside]).quarantined
    assert rules_by_row(clean("orders", [outside])) == {1: {"date_future"}}
    assert not clean("orders", [outside], future_tolerance=timedelta(days=2)).quarantined


def test_invalid_email_with_customer_id_is_a_warning() -> None:
    result = clean("orders", [order(email="nope")])
    assert not result.quarantined
    assert warning_rules(result) == {1: {"email_syntax"}}
    assert result.clean.loc[0, "email"] is None and result.clean.loc[0, "email_original"] == "nope"


def test_currency_default_applies_to_absent_column_and_empty_cells() -> None:
    rows = [{k: v for k, v in order().items() if k != "currency"}]
    assert clean("orders", rows, default_currency="gbp").clean.loc[0, "currency"] == "GBP"
    assert clean("orders", [order(currency=" ")], default_currency="USD").clean.loc[0, "currency"] == "USD"
    missing = clean("orders", rows)
    assert rules_by_row(missing) == {1: {"required"}}
    assert "no default" in missing.quarantined[0].reasons[0].message


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        clean("orders", [order()], default_currency="XYZ")
    with pytest.raises(ValueError, match="time zone"):
        clean("orders", [order()], default_timezone="Mars/Olympus")


def test_date_order_and_decimal_separator_can_be_configured() -> None:
    row = order(order_date="03/04/2026", total="1,234")
    result = clean("orders", [row], date_order="dmy", decimal_separator=".")
    assert result.clean.loc[0, "order_date"] == pd.Timestamp("2026-04-03", tz="UTC")
    assert result.clean.loc[0, "total_exact"] == "1234"


def test_default_timezone_applies_to_naive_order_dates() -> None:
    result = clean("orders", [order(order_date="2026-01-02 09:00")], default_timezone="America/New_York")
    assert result.clean.loc[0, "order_date"] == pd.Timestamp("2026-01-02 14:00", tz="UTC")
    assert result.clean.loc[0, "order_date_original"] == "2026-01-02 09:00"


def test_all_fatal_reasons_are_listed_and_values_truncated() -> None:
    long_id = "x" * 500
    result = clean("orders", [order(order_date="never", total=long_id, status="lost")])
    reasons = result.quarantined[0].reasons
    assert {r.rule for r in reasons} == {"date_parse", "numeric", "status"}
    total_reason = next(r for r in reasons if r.field == "total")
    assert total_reason.value is not None and len(total_reason.value) == 200
    assert result.quarantined[0].record["total"] == long_id  # the record keeps the full raw value


# ---- order items, events, consent, erasure -----------------------------------------------------------


def test_order_items_quantity_and_price_rules() -> None:
    result = clean(
        "order_items",
        [
            {
                "order_id": "o1",
                "product_id": "p1",
                "quantity": "2",
                "unit_price": "9.99",
                "product_name": " Tea  Pot ",
            },
            {"order_id": "o1", "product_id": "p2", "quantity": "0", "unit_price": "1"},
            {"order_id": "o1", "product_id": "p3", "quantity": "1.5", "unit_price": "1"},
            {"order_id": "o1", "product_id": "p4", "quantity": "1", "unit_price": "-1"},
            {"order_id": "o1", "product_id": "p5", "quantity": "3", "unit_price": "0"},
        ],
    )
    assert rules_by_row(result) == {2: {"numeric"}, 3: {"numeric"}, 4: {"numeric"}}
    frame = result.clean
    assert frame["quantity"].dtype == np.int64 and frame["quantity"].tolist() == [2, 3]
    assert frame["unit_price_exact"].tolist() == ["9.99", "0"]
    assert frame.loc[0, "product_name"] == "Tea Pot"


def test_events_types_and_identity() -> None:
    result = clean(
        "events",
        [
            {"event_id": "e1", "email": "A@B.com", "event_type": "Add to Cart", "timestamp": "1767225600"},
            {"event_id": "e2", "customer_id": "c1", "event_type": "search", "timestamp": "2026-01-01"},
            {"event_id": "e3", "event_type": "page_view", "timestamp": "2026-01-01"},
            {"event_id": "e4", "customer_id": "c1", "event_type": "open", "timestamp": None},
        ],
    )
    assert rules_by_row(result) == {2: {"event_type"}, 3: {"required"}, 4: {"required"}}
    row = result.clean.iloc[0]
    assert row["event_type"] == "cart_add" and row["email"] == "a@b.com"
    assert row["timestamp"] == pd.Timestamp("2026-01-01", tz="UTC")


def test_consent_defaults_and_rules() -> None:
    result = clean(
        "consent",
        [
            {
                "email": "a@b.com",
                "status": "Opted In",
                "timestamp": "2026-01-01",
                "lawful_basis": "consent",
                "double_opt_in_confirmed": "yes",
            },
            {"email": "b@b.com", "channel": "", "status": "unsubscribed", "timestamp": "2026-01-01"},
            {"email": "c@b.com", "channel": "sms", "status": "opted_in", "timestamp": "2026-01-01"},
            {"email": "d@b.com", "status": "maybe", "timestamp": "2026-01-01"},
            {"email": "e@b.com", "status": "opted_in", "timestamp": "2026-01-01", "lawful_basis": "because"},
            {
                "email": "f@b.com",
                "status": "opted_in",
                "timestamp": "2026-01-01",
                "double_opt_in_confirmed": "perhaps",
            },
        ],
    )
    assert rules_by_row(result) == {3: {"channel"}, 4: {"consent_status"}, 5: {"lawful_basis"}}
    assert warning_rules(result) == {6: {"boolean"}}
    frame = result.clean.set_index("_row")
    assert frame["channel"].tolist() == ["email", "email", "email"]
    assert frame["status"].tolist() == ["opted_in", "opted_out", "opted_in"]
    assert frame["double_opt_in_confirmed"].tolist() == [True, False, False]
    assert frame["double_opt_in_confirmed"].dtype == bool
    assert frame.loc[2, "lawful_basis"] is None


def test_erasure_is_never_refused_for_its_date() -> None:
    result = clean(
        "erasure",
        [
            {"email": "a@b.com", "requested_at": "garbage"},
            {"customer_id": "c9", "requested_at": "2099-01-01"},
            {"requested_at": "2026-01-01"},
        ],
    )
    assert rules_by_row(result) == {3: {"required"}}
    assert warning_rules(result) == {1: {"date_parse"}, 2: {"date_future"}}


# ---- chunks from the reader ------------------------------------------------------------------------------


def test_row_shape_rows_are_quarantined_with_that_reason_only() -> None:
    text = (
        "order_id,customer_id,order_date,total,status\n"
        "o1,c1,2026-01-02,5,paid\no2,c2\no3,c3,2026-01-02,5,paid,x\n"
    )
    result = clean_csv(text, "orders", default_currency="EUR")
    assert rules_by_row(result) == {2: {"row_shape"}, 3: {"row_shape"}}
    assert result.clean["_row"].tolist() == [1]
    extra = next(q for q in result.quarantined if q.row == 3)
    assert extra.reasons[0].value == '["x"]'
    assert extra.record["__extra_fields__"] == '["x"]'
    assert "__parse_error__" not in extra.record


def test_every_row_is_accounted_for_once() -> None:
    rows = [f"o{i},c{i},2026-01-0{i % 9 + 1},{'-' if i % 3 == 0 else ''}{i},paid" for i in range(1, 40)]
    text = "order_id,customer_id,order_date,total,status\n" + "\n".join(rows) + "\n"
    chunks = read_all(text.encode(), "orders", chunk_rows=7)
    results = [clean_chunk(c, "orders", now=NOW, source_name="t", default_currency="EUR") for c in chunks]
    assert accounted_rows(results) == list(range(1, 40))
    assert sum(len(r.quarantined) for r in results) == 13


def test_empty_chunk_gives_an_empty_typed_frame() -> None:
    result = clean("orders", [])
    assert result.clean.empty and not result.quarantined and not result.warnings
    assert "total_exact" in result.clean.columns
    assert str(result.clean["order_date"].dtype) == "datetime64[ns, UTC]"


def test_every_reported_rule_is_documented() -> None:
    result = clean("orders", [order(order_date="x", total="y", currency="z", status="w", customer_id=None)])
    result2 = clean(
        "customers", [{"customer_id": "c", "phone": "1", "country": "?", "birth_date": "1800-01-01"}]
    )
    seen = {r.rule for q in result.quarantined for r in q.reasons} | {r.rule for _, r in result2.warnings}
    assert seen <= RULES


def test_quarantine_serialisation_and_counts() -> None:
    result = clean("orders", [order(status="pending"), order(total="x", status="x"), order()])
    assert rule_counts(result.quarantined) == {"status": 2, "numeric": 1}
    lines = (
        to_jsonl(result.quarantined, dataset="orders", source_name="raw/orders/a.csv").decode().splitlines()
    )
    assert [json.loads(line)["row"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["reasons"][0]["rule"] == "status"
    assert warning_counts([(1, result.quarantined[0].reasons[0])]) == {"status": 1}


def test_chunk_rows_are_reported_from_the_chunk_numbers() -> None:
    chunk = chunk_of("orders", [order(), order(status="x")])
    chunk.rows = np.array([10, 12], dtype=np.int64)
    result = clean_chunk(chunk, "orders", now=NOW, source_name="t")
    assert result.clean["_row"].tolist() == [10]
    assert result.quarantined[0].row == 12


# ---- datasets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "dataset"),
    [
        ("raw/orders/2026/x.csv.gz", "orders"),
        ("raw/customers/a.csv", "customers"),
        ("raw/activity/e.jsonl", "events"),
        ("raw/events/2026/01/e.parquet", "events"),
        ("raw/consent/c.csv", "consent"),
        ("raw/erasure/e.csv", "erasure"),
        ("raw/order_items/i.csv", "order_items"),
        ("raw/orders/", None),
        ("raw/orders.csv", None),
        ("clean/orders/x.parquet", None),
        ("raw/unknown/x.csv", None),
        ("/raw/Orders/x.csv", "orders"),
    ],
)
def test_dataset_for_key(key: str, dataset: str | None) -> None:
    assert dataset_for_key(key) == dataset


def test_dataset_specs_are_consistent() -> None:
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert set(spec.required_columns) <= set(spec.fields)
        assert {f for group in spec.one_of for f in group} <= set(spec.fields)
        assert set(spec.required) | set(spec.optional) == set(spec.fields)
        assert set(spec.key_fields) <= set(spec.fields)
