"""CSV for people: cells a spreadsheet would execute as a formula are neutralised.

A cell starting with "=", "+", "-", "@", a tab or a carriage return (also after leading spaces) is prefixed
with a single quote ('), which spreadsheets display as text and do not evaluate. The value stays readable:
a phone "+442079460958" is written "'+442079460958". Plain negative numbers ("-12.50") are left alone:
they are numbers, not formulas, and reports need them numeric. Use this for every CSV segflow writes for
people (reports, exports); machine files (Parquet, JSON Lines) keep values verbatim.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TextIO

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NEGATIVE_NUMBER = re.compile(r"-\d+(?:\.\d+)?")


def neutralise(value: str) -> str:
    if _NEGATIVE_NUMBER.fullmatch(value):
        return value
    if value.lstrip(" ").startswith(_TRIGGERS):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, datetime)) and value != value:  # NaN, NaT
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return neutralise(str(value))


def write_people_csv(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str], fh: TextIO) -> int:
    """Write rows (missing keys empty, extra keys ignored) with a header; returns the number of rows.

    Open `fh` with newline="" so the csv module controls line endings.
    """
    writer = csv.writer(fh)
    writer.writerow([neutralise(name) for name in fieldnames])
    count = 0
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in fieldnames])
        count += 1
    return count
