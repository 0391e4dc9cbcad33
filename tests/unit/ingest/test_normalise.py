"""Value parsers: dates, amounts, currencies, emails, phones, countries, vocabularies, text."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from segflow.ingest import vocab
from segflow.ingest.contact import normalise_email, parse_emails, parse_phones
from segflow.ingest.countries import country_code, parse_countries
from segflow.ingest.dates import parse_timestamps
from segflow.ingest.money import currency_code, exact_text, parse_amount, parse_amounts, parse_quantities
from segflow.ingest.normalise import parse_bools, parse_ids, parse_text, parse_unique, parse_vocab


def col(*values: str | None) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# ---- dates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "changed"),
    [
        ("2026-03-01", "2026-03-01T00:00", False),
        ("2026-03-01T14:05:09Z", "2026-03-01T14:05:09", False),
        ("2026-03-01 14:05:09.250+02:00", "2026-03-01T12:05:09.250", True),
        ("2026-03-01T14:05-0130", "2026-03-01T15:35", True),
        ("2026-3-1", "2026-03-01T00:00", False),
        ("2026/03/01 07:30", "2026-03-01T07:30", True),
        ("01.03.2026", "2026-03-01T00:00", True),
        ("31/01/2026", "2026-01-31T00:00", True),
        ("01/31/2026", "2026-01-31T00:00", True),
        ("05/05/2026", "2026-05-05T00:00", True),
        ("01/31/2026 3:04 PM", "2026-01-31T15:04", True),
        ("01/31/2026 12:00 am", "2026-01-31T00:00", True),
        ("2026-03-01 14:05 UTC", "2026-03-01T14:05", False),
        ("1767225600", "2026-01-01T00:00", True),
        ("1767225600123", "2026-01-01T00:00:00.123", True),
        ("  2026-03-01  ", "2026-03-01T00:00", False),
    ],
)
def test_accepted_date_forms(raw: str, expected: str, changed: bool) -> None:
    parsed = parse_timestamps(col(raw))
    assert parsed.errors[0] is None
    assert parsed.values[0] == utc(expected)
    assert bool(parsed.changed[0]) is changed


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("03/04/2026", "ambiguous"),
        ("2026-02-30", "not a valid"),
        ("31.13.2026", "not a valid"),
        ("yesterday", "unrecognised"),
        ("2026-01-01T25:00", "not a valid"),
        ("13/13/2026", "not a valid"),
        ("0999-01-01", "out of range"),
        ("2026", "unrecognised"),
        ("2026-01-01T10:00+15:00", "offset"),
        ("1 March 2026", "unrecognised"),
        ("13:00 PM 01/31/2026", "unrecognised"),
    ],
)
def test_rejected_date_forms(raw: str, fragment: str) -> None:
    parsed = parse_timestamps(col(raw))
    assert pd.isna(parsed.values[0])
    assert fragment in parsed.errors[0]


def test_configured_slash_order_settles_ambiguous_dates() -> None:
    assert parse_timestamps(col("03/04/2026"), slash_order="dmy").values[0] == utc("2026-04-03")
    assert parse_timestamps(col("03/04/2026"), slash_order="mdy").values[0] == utc("2026-03-04")


def test_naive_values_use_the_default_timezone_and_aware_ones_keep_their_offset() -> None:
    parsed = parse_timestamps(
        col("2026-07-01 12:00", "2026-07-01T12:00:00Z", "01.07.2026 12:00", "2026-01-15"),
        default_timezone="Europe/Berlin",
    )
    assert list(parsed.values) == [
        utc("2026-07-01 10:00"),
        utc("2026-07-01 12:00"),
        utc("2026-07-01 10:00"),
        utc("2026-01-14 23:00"),
    ]
    assert parsed.changed.tolist() == [True, False, True, True]


def test_dst_gaps_shift_forward_and_overlaps_take_the_first_occurrence() -> None:
    parsed = parse_timestamps(col("2026-03-29 02:30", "2026-10-25 02:30"), default_timezone="Europe/Berlin")
    assert parsed.values[0] == utc("2026-03-29 01:00")  # 02:30 does not exist: 03:00 CEST
    assert parsed.values[1] == utc("2026-10-25 00:30")  # first 02:30 is CEST (UTC+2)


def test_calendar_dates_ignore_time_and_zone() -> None:
    parsed = parse_timestamps(
        col("1990-05-01", "1990-05-01T23:30:00-05:00", "01.05.1990"),
        date_only=True,
        default_timezone="Asia/Tokyo",
    )
    assert all(v == utc("1990-05-01") for v in parsed.values)
    assert parsed.changed.tolist() == [False, True, True]


def test_dates_dtype_and_missing_values() -> None:
    parsed = parse_timestamps(col(None, "", "2026-01-01"))
    series = pd.Series(parsed.values)
    assert str(series.dtype) == "datetime64[ns, UTC]"
    assert series.isna().tolist() == [True, True, False]
    assert parsed.errors.tolist() == [None, None, None]


# ---- money ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "exact"),
    [
        ("12.50", "12.5"),
        ("1,234.50", "1234.5"),
        ("1.234,50", "1234.5"),
        ("12,5", "12.5"),
        ("0,125", "0.125"),
        ("1234,567", "1234.567"),
        ("1,234,567", "1234567"),
        ("1.234.567,89", "1234567.89"),
        ("1 234,50", "1234.5"),
        ("1'234.50", "1234.5"),
        ("€12.50", "12.5"),
        ("US$ 1,200.00", "1200"),
        ("EUR 1.234,50", "1234.5"),
        ("12,50 eur", "12.5"),
        ("199 kr", "199"),
        ("-12.50", "-12.5"),
        ("(12.50)", "-12.5"),
        ("\u221212", "-12"),
        ("-€12", "-12"),
        ("1200", "1200"),
        ("0.00", "0"),
        ("-0", "0"),
        ("1e3", "1000"),
        ("1.5e-05", "0.000015"),
        (".5", "0.5"),
    ],
)
def test_amounts(raw: str, exact: str) -> None:
    assert exact_text(parse_amount(raw)) == exact


@pytest.mark.parametrize(
    "raw",
    ["1,234", "abc", "12kg", "1,2,3", "1.23,4", "--5", "nan", "inf", "1e400", "99999999999999999", "12-", ""],
)
def test_rejected_amounts(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(raw)


def test_configured_decimal_separator_settles_ambiguity() -> None:
    assert parse_amount("1,234", ".") == Decimal("1234")
    assert parse_amount("1,234", ",") == Decimal("1.234")
    assert parse_amount("1.234", ",") == Decimal("1234")
    with pytest.raises(ValueError):
        parse_amount("12.5", ",")


def test_parse_amounts_gives_exact_text_float_and_audit_flag() -> None:
    parsed, floats = parse_amounts(col("1.234,50", "10", None, "x"))
    assert parsed.values.tolist() == ["1234.5", "10", None, None]
    assert floats[:2].tolist() == [1234.5, 10.0]
    assert np.isnan(floats[2]) and np.isnan(floats[3])
    assert parsed.changed.tolist() == [True, False, False, False]
    assert parsed.errors[3] is not None and parsed.errors[2] is None


def test_quantities_are_whole_numbers() -> None:
    parsed = parse_quantities(col("2", "2.0", "2.5", "x", None))
    assert parsed.values.tolist()[:2] == [2, 2]
    assert parsed.invalid.tolist() == [False, False, True, True, False]


@pytest.mark.parametrize(
    ("raw", "code"),
    [("eur", "EUR"), (" GBP ", "GBP"), ("XYZ", None), ("EURO", None), ("XXX", None), ("", None)],
)
def test_currency_codes(raw: str, code: str | None) -> None:
    assert currency_code(raw) == code


# ---- email ---------------------------------------------------------------------------------------------


def test_emails_are_trimmed_and_case_folded() -> None:
    parsed = parse_emails(col(" John.Doe@Example.COM ", "john.doe@example.com", "JOHN.DOE@EXAMPLE.COM"))
    assert set(parsed.values) == {"john.doe@example.com"}
    assert parsed.changed.tolist() == [True, False, True]


@pytest.mark.parametrize(
    "raw",
    [
        "plainaddress",
        "a@b",
        "a..b@x.com",
        "a@x.invalid",
        "a@localhost",
        "@x.com",
        "a@-x.com",
        "a b@x.com",
        "a@[1.2.3.4]",
        "a@x..com",
    ],
)
def test_invalid_emails(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zoë@Bücher.de", "zoë@bücher.de"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_valid_emails_outside_the_fast_path(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


# ---- phones --------------------------------------------------------------------------------------------


def test_phones_use_the_row_country_and_report_international_regions() -> None:
    parsed, regions = parse_phones(
        col("020 7946 0958", "+1 415 555 2671", "0044 20 7946 0958", "030 1234567", "12", None, "555-0100"),
        np.array(["GB", None, None, "DE", "GB", "GB", None], dtype=object),
    )
    assert parsed.values.tolist()[:4] == ["+442079460958", "+14155552671", "+442079460958", "+49301234567"]
    assert regions.tolist()[:4] == [None, "US", "GB", None]
    assert parsed.invalid.tolist() == [False, False, False, False, True, False, True]
    assert "no country" in parsed.errors[6]


# ---- countries -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("276", "DE"),
        ("Germany", "DE"),
        ("deutschland", "DE"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("uk", "GB"),
        ("England", "GB"),
        ("Holland", "NL"),
        ("Österreich", "AT"),
        ("Côte d'Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Korea, Republic of", "KR"),
        ("Türkiye", "TR"),
        ("  united   kingdom ", "GB"),
        ("Kosovo", "XK"),
        ("Narnia", None),
        ("", None),
        ("Korea", None),
    ],
)
def test_country_codes(raw: str, code: str | None) -> None:
    assert country_code(raw) == code


def test_country_parse_marks_changes_and_unknowns() -> None:
    parsed = parse_countries(col("GB", "uk", "Atlantis"))
    assert parsed.values.tolist() == ["GB", "GB", None]
    assert parsed.changed.tolist() == [False, True, False]
    assert parsed.invalid.tolist() == [False, False, True]


# ---- vocabularies, booleans, text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Paid", "completed"),
        ("complete", "completed"),
        ("FULFILLED", "completed"),
        ("refund", "refunded"),
        ("Canceled", "cancelled"),
        ("void", "cancelled"),
        ("pending", None),
    ],
)
def test_order_status_aliases(raw: str, expected: str | None) -> None:
    parsed = parse_vocab(col(raw), vocab.ORDER_STATUS, "order status")
    assert parsed.values[0] == expected
    assert bool(parsed.invalid[0]) is (expected is None)


def test_vocab_keys_ignore_case_spaces_and_hyphens() -> None:
    parsed = parse_vocab(
        col("Opted In", "opted-in", "OPTED_IN", "unsubscribed"), vocab.CONSENT_STATUS, "consent"
    )
    assert parsed.values.tolist() == ["opted_in", "opted_in", "opted_in", "opted_out"]


def test_booleans() -> None:
    parsed = parse_bools(col("TRUE", "yes", "1", "N", "off", "maybe", None))
    assert parsed.values.tolist()[:5] == [True, True, True, False, False]
    assert parsed.invalid.tolist() == [False] * 5 + [True, False]


def test_text_is_nfc_with_collapsed_whitespace() -> None:
    decomposed = "Zoe\u0308  \t Ann\u00a0 "
    assert parse_text(col(decomposed, "   ")).values.tolist() == ["Zoë Ann", None]


def test_ids_keep_their_text() -> None:
    assert parse_ids(col(" 00123 ", "123.0", "  ")).values.tolist() == ["00123", "123.0", None]


def test_parse_unique_calls_the_parser_once_per_distinct_value() -> None:
    calls: list[str] = []

    def parse(text: str):  # type: ignore[no-untyped-def]
        calls.append(text)
        return text.upper(), None, False

    parsed = parse_unique(col("a", "b", "a", None, "a"), parse)
    assert parsed.values.tolist() == ["A", "B", "A", None, "A"]
    assert sorted(calls) == ["a", "b"]
