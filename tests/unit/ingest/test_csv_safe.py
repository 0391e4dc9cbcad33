"""csv_safe: formula neutralisation for CSV written for people."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
from segflow.ingest.csv_safe import neutralise, write_people_csv


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+442079460958", "'+442079460958"),
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("\rfoo", "'\rfoo"),
        ("  =x", "'  =x"),
        ("-12.50", "-12.50"),
        ("-7", "-7"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise(value: str, expected: str) -> None:
    assert neutralise(value) == expected


def test_write_people_csv_neutralises_every_cell_and_header() -> None:
    buffer = io.StringIO(newline="")
    rows = [
        {
            "name": '=HYPERLINK("x")',
            "phone": "+4420",
            "total": -3.5,
            "when": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "ignored": "x",
        },
        {"name": "Zoë", "phone": None, "total": float("nan")},
    ]
    count = write_people_csv(rows, ["name", "phone", "total", "when", "=evil"], buffer)
    assert count == 2
    parsed = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert parsed[0] == ["name", "phone", "total", "when", "'=evil"]
    assert parsed[1] == ['\'=HYPERLINK("x")', "'+4420", "-3.5", "2026-01-01T00:00:00+00:00", ""]
    assert parsed[2] == ["Zoë", "", "", "", ""]
