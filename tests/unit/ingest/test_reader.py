"""read_table: formats, encodings, delimiters, compression, header mapping, broken rows and chunking."""

from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest
from segflow.ingest.columns import EXTRA_FIELDS, PARSE_ERROR, alias_table, header_key
from segflow.ingest.reader import UnreadableFile, read_table

from ._support import one_frame, read_all

ORDERS_HEADER = "order_id,customer_id,order_date,total,status"
ORDER_ROW = "1,c1,2026-01-02,10.50,paid"


def orders_csv(*rows: str, header: str = ORDERS_HEADER, delimiter: str = ",") -> bytes:
    lines = [header, *rows]
    return ("\n".join(line.replace(",", delimiter) for line in lines) + "\n").encode("utf-8")


class NonSeekable(io.RawIOBase):
    """A stream like an S3 body: read-only, no seek."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer):  # type: ignore[no-untyped-def]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# ---- formats and encodings ------------------------------------------------------------------------------


def test_comma_csv_yields_object_frame_with_canonical_names_and_row_numbers() -> None:
    chunks = read_all(orders_csv(ORDER_ROW, "2,c2,2026-01-03,,paid"), "orders")
    assert len(chunks) == 1
    frame = chunks[0].frame
    assert list(frame.columns) == ["order_id", "customer_id", "order_date", "total", "status"]
    assert all(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes)
    assert frame.loc[1, "total"] is None  # empty cell -> None, not ""
    assert chunks[0].rows.tolist() == [1, 2]
    assert chunks[0].rows.dtype == np.int64


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_delimiter_is_detected(delimiter: str) -> None:
    frame = one_frame(orders_csv(ORDER_ROW, header=ORDERS_HEADER, delimiter=delimiter), "orders")
    assert frame.loc[0, "customer_id"] == "c1"
    assert frame.loc[0, "total"] == "10.50"


def test_semicolon_file_with_decimal_commas_is_not_split_on_commas() -> None:
    data = (
        "order_id;customer_id;order_date;total;status\n"
        "1;c1;2026-01-02;1.234,50;paid\n2;c2;2026-01-02;3,5;paid\n"
    )
    frame = one_frame(data.encode(), "orders")
    assert frame["total"].tolist() == ["1.234,50", "3,5"]


def test_excel_sep_hint_line_sets_the_delimiter() -> None:
    data = "sep=|\norder_id|customer_id|order_date|total|status\n1|c1|2026-01-02|1,5|paid\n"
    chunk = read_all(data.encode(), "orders")[0]
    assert chunk.frame.loc[0, "total"] == "1,5"
    assert chunk.rows.tolist() == [1]


def test_utf8_bom_is_removed_from_the_first_header() -> None:
    frame = one_frame(b"\xef\xbb\xbf" + orders_csv(ORDER_ROW), "orders")
    assert "order_id" in frame.columns


def test_latin1_file_is_decoded() -> None:
    data = "order_id;customer_id;order_date;total;status\n1;Müller;2026-01-02;5;paid\n".encode("latin-1")
    assert one_frame(data, "orders").loc[0, "customer_id"] == "Müller"


def test_windows_1252_euro_sign_is_decoded() -> None:
    data = "order_id,customer_id,order_date,total,status\n1,Zoë,2026-01-02,€5,paid\n".encode("cp1252")
    frame = one_frame(data, "orders")
    assert frame.loc[0, "total"] == "€5"
    assert frame.loc[0, "customer_id"] == "Zoë"


def test_stray_invalid_byte_in_a_utf8_file_does_not_lose_the_file() -> None:
    head = orders_csv(*[f"{i},Zoë,2026-01-02,5,paid" for i in range(4000)])  # valid UTF-8 sample (> 64 KiB)
    data = head + b"9999,M\xfcller,2026-01-02,5,paid\n"  # Latin-1 byte after the sample
    frame = one_frame(data, "orders")
    assert frame["customer_id"].iloc[-1] == "Müller"
    assert frame["customer_id"].iloc[0] == "Zoë"


def test_utf16_with_bom_is_decoded() -> None:
    data = (ORDERS_HEADER.replace(",", "\t") + "\n1\tÅsa\t2026-01-02\t5\tpaid\n").encode("utf-16")
    assert one_frame(data, "orders").loc[0, "customer_id"] == "Åsa"


def test_gzip_is_detected_by_magic_bytes_not_name() -> None:
    frame = one_frame(gzip.compress(orders_csv(ORDER_ROW)), "orders")
    assert frame.loc[0, "order_id"] == "1"


def test_truncated_gzip_is_unreadable() -> None:
    data = gzip.compress(orders_csv(*[ORDER_ROW] * 50))[:-12]
    with pytest.raises(UnreadableFile) as info:
        read_all(data, "orders")
    assert info.value.reason == "bad_gzip"


def test_gzip_header_with_garbage_body_is_unreadable() -> None:
    with pytest.raises(UnreadableFile) as info:
        read_all(b"\x1f\x8b" + bytes(range(256)) * 4, "orders")
    assert info.value.reason == "bad_gzip"


def test_binary_garbage_is_unreadable() -> None:
    rng = np.random.default_rng(7)
    with pytest.raises(UnreadableFile) as info:
        read_all(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "orders")
    assert info.value.reason == "binary"


def test_control_characters_without_nul_are_binary() -> None:
    data = bytes(b % 31 + 1 for b in range(2000))
    with pytest.raises(UnreadableFile) as info:
        read_all(data, "orders")
    assert info.value.reason == "binary"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"PK\x03\x04rest-of-zip", "unsupported_format"),
        (b'[{"order_id": 1}]', "unsupported_format"),
        (b"BZh91AY&SY", "unsupported_format"),
    ],
)
def test_unsupported_containers_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile) as info:
        read_all(data, "orders")
    assert info.value.reason == reason


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\xef\xbb\xbf", gzip.compress(b"", mtime=0)], ids=["empty", "blank-lines", "bom-only", "empty-gzip"])
def test_empty_file_yields_nothing(data: bytes) -> None:
    assert read_all(data, "orders") == []


def test_header_only_file_yields_nothing() -> None:
    assert read_all(orders_csv(), "orders") == []
    assert read_all(orders_csv("", ""), "orders") == []


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(UnreadableFile) as info:
        read_all(b"order_id,customer_id,total\n1,c1,5\n", "orders")
    assert info.value.reason == "missing_columns"
    assert "order_date" in str(info.value) and "status" in str(info.value)


def test_missing_identity_group_is_reported_as_one_of() -> None:
    with pytest.raises(UnreadableFile) as info:
        read_all(b"order_id,order_date,total,status\n1,2026-01-01,5,paid\n", "orders")
    assert "customer_id|email" in str(info.value)


def test_huge_field_is_read() -> None:
    big = "x" * 1_500_000
    frame = one_frame(orders_csv(f'1,c1,2026-01-02,5,"{big}"'), "orders")
    assert len(frame.loc[0, "status"]) == 1_500_000


def test_quoted_newlines_and_delimiters_stay_in_one_cell() -> None:
    chunk = read_all(
        orders_csv('1,"c,1\nsecond line",2026-01-02,5,paid', "2,c2,2026-01-02,5,paid"), "orders"
    )[0]
    assert chunk.frame.loc[0, "customer_id"] == "c,1\nsecond line"
    assert chunk.rows.tolist() == [1, 2]


def test_rows_with_wrong_field_counts_are_kept_with_a_parse_error() -> None:
    chunk = read_all(orders_csv(ORDER_ROW, "2,c2,2026-01-02", "3,c3,2026-01-02,5,paid,EXTRA,MORE"), "orders")[
        0
    ]
    frame = chunk.frame
    assert chunk.rows.tolist() == [1, 2, 3]
    assert frame.loc[0, PARSE_ERROR] is None
    assert "3 fields" in frame.loc[1, PARSE_ERROR]
    assert frame.loc[1, "total"] is None
    assert "7 fields" in frame.loc[2, PARSE_ERROR]
    assert json.loads(frame.loc[2, EXTRA_FIELDS]) == ["EXTRA", "MORE"]
    assert frame.loc[2, "status"] == "paid"


def test_blank_records_are_skipped_but_keep_their_numbers() -> None:
    chunk = read_all(orders_csv(ORDER_ROW, "", ",,,,", "2,c2,2026-01-02,5,paid"), "orders")[0]
    assert chunk.rows.tolist() == [1, 4]


def test_chunks_hold_at_most_chunk_rows_and_number_rows_across_chunks() -> None:
    rows = [f"{i},c{i},2026-01-02,5,paid" for i in range(1, 26)]
    chunks = read_all(orders_csv(*rows), "orders", chunk_rows=10)
    assert [len(c.frame) for c in chunks] == [10, 10, 5]
    assert np.concatenate([c.rows for c in chunks]).tolist() == list(range(1, 26))
    assert chunks[2].frame.loc[0, "order_id"] == "21"
    assert chunks[2].frame.index.tolist() == list(range(5))


def test_path_and_non_seekable_stream_inputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = gzip.compress(orders_csv(ORDER_ROW))
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(data)
    assert one_frame(path, "orders").loc[0, "customer_id"] == "c1"
    assert one_frame(str(path), "orders").loc[0, "customer_id"] == "c1"
    assert one_frame(io.BufferedReader(NonSeekable(data)), "orders").loc[0, "customer_id"] == "c1"


def test_large_gzip_file_streams_in_chunks_lazily() -> None:
    rows = (f"{i},c{i},2026-01-02,5,paid" for i in range(1, 50_001))
    data = gzip.compress(orders_csv(*rows))
    iterator = read_table(data, "big", "orders", chunk_rows=20_000)
    first = next(iterator)
    assert len(first.frame) == 20_000
    assert sum(len(c.frame) for c in iterator) == 30_000


# ---- header mapping --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["Customer ID", "customer-id", "CUSTOMER_ID", "customerId", " Customer  Id "]
)
def test_header_variants_map_to_customer_id(header: str) -> None:
    data = f"{header},Email Address,First Name\nc1,a@b.com,Ann\n".encode()
    chunk = read_all(data, "customers")[0]
    assert list(chunk.frame.columns) == ["customer_id", "email", "first_name"]
    assert chunk.columns_map[header.strip()] == "customer_id"


@pytest.mark.parametrize(
    ("dataset", "header", "canonical"),
    [
        ("orders", "Order Date", "order_date"),
        ("orders", "Amount", "total"),
        ("customers", "E-mail", "email"),
        ("events", "Date", "timestamp"),
        ("order_items", "Qty", "quantity"),
        ("consent", "Legal Basis", "lawful_basis"),
    ],
)
def test_builtin_aliases(dataset: str, header: str, canonical: str) -> None:
    assert alias_table(dataset)[header_key(header)] == canonical


def test_user_aliases_extend_and_override_the_table() -> None:
    data = b"Kundennummer,Mail,Bestellung,Datum,Betrag,Zustand\nk1,a@b.com,o1,2026-01-02,5,paid\n"
    aliases = {
        "orders": {
            "Kundennummer": "customer_id",
            "Bestellung": "order_id",
            "Datum": "order_date",
            "Betrag": "total",
            "Zustand": "status",
        }
    }
    frame = one_frame(data, "orders", aliases=aliases)
    assert list(frame.columns) == ["customer_id", "email", "order_id", "order_date", "total", "status"]


def test_user_alias_to_unknown_field_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        read_all(orders_csv(ORDER_ROW), "orders", aliases={"orders": {"x": "nope"}})


def test_duplicate_headers_first_wins_and_later_ones_stay_as_extras() -> None:
    frame = one_frame(b"customer_id,Email,E-mail,Email\nc1,a@b.com,b@c.com,c@d.com\n", "customers")
    assert list(frame.columns) == ["customer_id", "email", "E-mail", "Email"]
    assert frame.loc[0, "email"] == "a@b.com"
    assert frame.loc[0, "Email"] == "c@d.com"


def test_blank_header_cells_get_positional_names() -> None:
    frame = one_frame(b"customer_id,,\nc1,x,y\n", "customers")
    assert list(frame.columns) == ["customer_id", "column_2", "column_3"]


# ---- JSON Lines ------------------------------------------------------------------------------------------


def test_json_lines_values_become_text_and_bad_lines_are_kept() -> None:
    lines = [
        json.dumps(
            {
                "id": "e1",
                "Customer ID": 123.0,
                "type": "page_view",
                "ts": "2026-01-01T00:00:00Z",
                "meta": {"a": [1, 2]},
                "flag": True,
                "price": 2.5,
                "none": None,
            }
        ),
        "",
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"id": "e2", "email": "x@y.com", "type": "purchase", "ts": 1767225600}),
    ]
    chunk = read_all(("\n".join(lines) + "\n").encode(), "events")[0]
    frame = chunk.frame
    assert chunk.rows.tolist() == [1, 3, 4, 5]
    assert frame.loc[0, "customer_id"] == "123"
    assert frame.loc[0, "meta"] == '{"a": [1, 2]}'
    assert frame.loc[0, "flag"] == "true"
    assert frame.loc[0, "price"] == "2.5"
    assert frame.loc[0, "none"] is None
    assert frame.loc[3, "email"] == "x@y.com" and frame.loc[3, "timestamp"] == "1767225600"
    assert "not valid JSON" in frame.loc[1, PARSE_ERROR]
    assert "not an object" in frame.loc[2, PARSE_ERROR]
    assert frame.loc[0, PARSE_ERROR] is None


def test_json_lines_missing_required_keys_is_unreadable() -> None:
    with pytest.raises(UnreadableFile) as info:
        read_all(b'{"event_id": "e1", "email": "a@b.com"}\n', "events")
    assert info.value.reason == "missing_columns"


# ---- Parquet ---------------------------------------------------------------------------------------------


def _parquet_bytes(frame: pd.DataFrame, tmp_path, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    import fastparquet

    path = tmp_path / "data.parquet"
    fastparquet.write(str(path), frame, **kwargs)
    return path.read_bytes()


def test_parquet_values_become_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = pd.DataFrame(
        {
            "Order ID": [123.0, 124.0, np.nan],
            "customer_id": ["00123", None, "c3"],
            "order_date": pd.to_datetime(["2026-01-02 10:00", "2026-01-03 00:00", None]).tz_localize(
                "Europe/Berlin"
            ),
            "total": [10.5, 3.0, 1e-5],
            "status": ["paid", "paid", "refund"],
            "vip": [True, False, True],
        }
    )
    chunk = read_all(_parquet_bytes(source, tmp_path), "orders")[0]
    frame = chunk.frame
    assert frame["order_id"].tolist() == ["123", "124", None]
    assert frame["customer_id"].tolist() == ["00123", None, "c3"]
    assert frame.loc[0, "order_date"] == "2026-01-02T09:00:00+00:00"
    assert frame.loc[2, "order_date"] is None
    assert frame["total"].tolist() == ["10.5", "3", "1e-05"]
    assert frame["vip"].tolist() == ["true", "false", "true"]
    assert chunk.rows.tolist() == [1, 2, 3]


def test_parquet_row_groups_are_rechunked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = pd.DataFrame(
        {
            "order_id": [str(i) for i in range(25)],
            "email": ["a@b.com"] * 25,
            "order_date": ["2026-01-02"] * 25,
            "total": ["1"] * 25,
            "status": ["paid"] * 25,
        }
    )
    data = _parquet_bytes(source, tmp_path, row_group_offsets=7)
    chunks = read_all(gzip.compress(data), "orders", chunk_rows=10)
    assert [len(c.frame) for c in chunks] == [10, 10, 5]
    assert np.concatenate([c.rows for c in chunks]).tolist() == list(range(1, 26))
    assert chunks[1].frame.loc[0, "order_id"] == "10"


def test_corrupt_parquet_is_unreadable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = _parquet_bytes(
        pd.DataFrame(
            {
                "order_id": ["1"],
                "email": ["a@b.com"],
                "order_date": ["2026-01-01"],
                "total": ["1"],
                "status": ["paid"],
            }
        ),
        tmp_path,
    )
    for broken in (data[:60], b"PAR1" + b"\x00" * 64):
        with pytest.raises(UnreadableFile) as info:
            read_all(broken, "orders")
        assert info.value.reason == "bad_parquet"


def test_written_by_csv_module_round_trips() -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["order_id", "email", "order_date", "total", "status"])
    writer.writerow(["1", 'a"quote@b.com', "2026-01-02", "1,234.50", "paid"])
    frame = one_frame(buffer.getvalue().encode(), "orders")
    assert frame.loc[0, "email"] == 'a"quote@b.com'
    assert frame.loc[0, "total"] == "1,234.50"
