"""Property-based tests: random and mutated inputs never crash the reader or the cleaner (other than
UnreadableFile), and every data row of a file is accounted for exactly once (clean or quarantined)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
from email_validator import validate_email
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from segflow.ingest.cleaning import RULES, clean_chunk
from segflow.ingest.contact import FAST_EMAIL, _fast_ok
from segflow.ingest.datasets import DATASETS
from segflow.ingest.dates import parse_timestamps
from segflow.ingest.money import parse_amount
from segflow.ingest.reader import UnreadableFile, read_table

from ._support import NOW

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATASET_NAMES = sorted(DATASETS)
HEADERS = {name: list(spec.fields) for name, spec in DATASETS.items()}

# Text that looks like a spreadsheet export: delimiters, quotes, line breaks, digits, dates, symbols, accents.
CSVISH = st.lists(
    st.sampled_from(
        list(",;\t\"'\n\r =+-@.:/€$£()0123456789abcxyzABCüéß ") + ["2026-01-02", "@ex.com", "paid"]
    ),
    max_size=200,
).map("".join)
CELL = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "paid",
            "refund",
            "2026-01-02",
            "03/04/2026",
            "1.234,50",
            "-5",
            "EUR",
            "a@b.com",
            "A@B.COM ",
            "+44 20 7946 0958",
            "uk",
            "opted_in",
            "page_view",
            "true",
            "0",
            "1e3",
            '"',
            "\n",
        ]
    ),
)


def run_pipeline(
    data: bytes, dataset: str, *, chunk_rows: int = 7, **clean_kwargs: object
) -> list[int] | None:
    """Read and clean `data`; return all row numbers the reader produced, after checking the accounting."""
    try:
        chunks = list(read_table(data, "prop", dataset, chunk_rows=chunk_rows))
    except UnreadableFile as err:
        assert err.reason and str(err)
        return None
    produced: list[int] = []
    for chunk in chunks:
        assert 0 < len(chunk.frame) <= chunk_rows
        assert all(pd.api.types.is_object_dtype(dtype) for dtype in chunk.frame.dtypes)
        result = clean_chunk(chunk, dataset, now=NOW, source_name="prop", **clean_kwargs)  # type: ignore[arg-type]
        accounted = sorted([int(r) for r in result.clean["_row"]] + [q.row for q in result.quarantined])
        assert accounted == sorted(chunk.rows.tolist()), "a row was lost or counted twice"
        assert all(q.reasons for q in result.quarantined)
        assert {r.rule for q in result.quarantined for r in q.reasons} <= RULES
        assert {r.rule for _, r in result.warnings} <= RULES
        assert all(r.value is None or len(r.value) <= 200 for q in result.quarantined for r in q.reasons)
        produced.extend(chunk.rows.tolist())
    assert produced == sorted(set(produced)), "row numbers must be unique and increasing"
    return produced


@PROPERTY
@given(data=st.binary(max_size=2048), dataset=st.sampled_from(DATASET_NAMES), compress=st.booleans())
def test_random_bytes(data: bytes, dataset: str, compress: bool) -> None:
    run_pipeline(gzip.compress(data) if compress else data, dataset)


@PROPERTY
@given(
    dataset=st.sampled_from(DATASET_NAMES),
    body=CSVISH,
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
    compress=st.booleans(),
    currency=st.sampled_from([None, "EUR"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_random_csvish_text_under_a_valid_header(
    dataset: str, body: str, delimiter: str, encoding: str, compress: bool, currency: str | None, zone: str
) -> None:
    text = delimiter.join(HEADERS[dataset]) + "\n" + body
    data = text.encode(encoding, errors="replace")
    run_pipeline(
        gzip.compress(data) if compress else data, dataset, default_currency=currency, default_timezone=zone
    )


@PROPERTY
@given(
    dataset=st.sampled_from(DATASET_NAMES),
    rows=st.lists(st.lists(CELL, min_size=1, max_size=12), max_size=25),
)
def test_random_cells_written_as_csv_are_read_back_and_accounted(dataset: str, rows: list[list[str]]) -> None:
    header = HEADERS[dataset]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    written = [(row + [""] * len(header))[: len(header)] if len(row) <= len(header) else row for row in rows]
    writer.writerows(written)
    produced = run_pipeline(buffer.getvalue().encode("utf-8"), dataset, default_currency="EUR")
    assert produced is not None
    expected = [i for i, row in enumerate(written, start=1) if any(cell.strip() for cell in row)]
    assert produced == expected
    frames = list(read_table(buffer.getvalue().encode("utf-8"), "prop", dataset))
    cells = pd.concat([c.frame for c in frames], ignore_index=True) if frames else pd.DataFrame()
    for position, row_number in enumerate(expected):
        row = written[row_number - 1]
        if len(row) == len(header):
            assert cells.loc[position, header].tolist() == [cell if cell != "" else None for cell in row]


@PROPERTY
@given(
    dataset=st.sampled_from(DATASET_NAMES),
    records=st.lists(
        st.dictionaries(
            st.sampled_from(
                list(DATASETS["consent"].fields) + list(DATASETS["orders"].fields) + ["extra", "Customer ID"]
            ),
            st.one_of(CELL, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none()),
            max_size=8,
        ),
        max_size=20,
    ),
    garbage=st.lists(st.integers(min_value=0, max_value=19), max_size=3),
)
def test_random_json_lines(dataset: str, records: list[dict], garbage: list[int]) -> None:  # type: ignore[type-arg]
    lines = [json.dumps(r) for r in records]
    for position in garbage:
        lines.insert(min(position, len(lines)), "{broken")
    run_pipeline(("\n".join(lines) + "\n").encode(), dataset)


def _valid_orders_file(n: int) -> bytes:
    lines = ["order_id,email,order_date,total,currency,status"]
    lines += [f"o{i},user{i}@example.com,2026-01-{i % 28 + 1:02d},{i}.50,EUR,paid" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


@PROPERTY
@given(
    positions=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
    replacement=st.binary(min_size=1, max_size=3),
    cut=st.integers(min_value=0, max_value=10_000),
    compress=st.booleans(),
)
def test_mutated_valid_files(positions: list[int], replacement: bytes, cut: int, compress: bool) -> None:
    data = bytearray(_valid_orders_file(40))
    if compress:
        data = bytearray(gzip.compress(bytes(data)))
    for position in positions:
        at = position % len(data)
        data[at : at + len(replacement)] = replacement
    data = data[: max(1, cut % (len(data) + 1))]
    run_pipeline(bytes(data), "orders")


# ---- parsers against their references ----------------------------------------------------------------

# Mostly-valid shapes (so few examples are filtered out), including over-long parts and special-use TLDs.
_LOCAL = st.from_regex(r"[a-z0-9_+'-]{1,70}(\.[a-z0-9_+'-]{1,10}){0,2}", fullmatch=True)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,66}[a-z0-9])?", fullmatch=True)
_TLD = st.one_of(
    st.from_regex(r"[a-z]{1,26}", fullmatch=True), st.sampled_from(["test", "invalid", "local", "arpa"])
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(local=_LOCAL, labels=st.lists(_LABEL, min_size=1, max_size=4), tld=_TLD)
def test_fast_email_path_is_a_subset_of_email_validator(local: str, labels: list[str], tld: str) -> None:
    address = f"{local}@{'.'.join(labels)}.{tld}"
    assume(_fast_ok(address))
    assert FAST_EMAIL.fullmatch(address)
    assert validate_email(address, check_deliverability=False).normalized == address


@PROPERTY
@given(
    value=st.decimals(
        min_value=Decimal("-999999999.99"),
        max_value=Decimal("999999999.99"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_formatted_amounts_parse_back_exactly(value: Decimal) -> None:
    us = f"{value:,.2f}"
    european = us.replace(",", "_").replace(".", ",").replace("_", ".")
    assert parse_amount(us) == value
    assert parse_amount(european) == value


@PROPERTY
@given(
    moment=st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
        ),
    )
)
def test_iso_timestamps_parse_to_the_same_instant(moment: datetime) -> None:
    parsed = parse_timestamps(pd.Series([moment.isoformat(), moment.isoformat(sep=" ")], dtype=object))
    expected = pd.Timestamp(moment).tz_convert("UTC")
    assert list(parsed.values) == [expected, expected]
    assert np.all(pd.isna(parsed.errors))
