"""Row-level reads and rewrites of Parquet files (fastparquet + pandas), for erasure.

Only the erasure function imports this module (it carries the data layer); the light functions reach
it lazily, never at import time.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from segflow.store.parquet import read_parquet_bytes, to_parquet_bytes


def _python(value: Any) -> Any:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]


def read_rows(data: bytes, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every row as a dict of plain Python values (None for missing)."""
    frame = read_parquet_bytes(data, columns)
    return [{k: _python(v) for k, v in row.items()} for row in frame.to_dict("records")]


def iter_text_rows(data: bytes) -> list[dict[str, Any]]:
    """Rows restricted to their text columns: where names, emails, phones and ids live."""
    frame = read_parquet_bytes(data)
    return [{k: _python(v) for k, v in row.items()} for row in frame[text_columns(frame)].to_dict("records")]


def remove_rows(
    data: bytes, drop: Callable[[Mapping[str, Any]], bool], columns: Sequence[str] | None = None
) -> tuple[bytes | None, int]:
    """The file without the rows `drop` selects (it sees `columns`, default the text columns).

    Returns (data, 0) unchanged when nothing matched, (None, n) when no row is left (delete the object),
    else (new bytes, n). A rewrite carries no column statistics that could still name a removed value.
    """
    frame = read_parquet_bytes(data)
    seen = list(columns) if columns is not None else text_columns(frame)
    rows = frame[seen].to_dict("records")
    mask = [bool(drop({k: _python(v) for k, v in row.items()})) for row in rows]
    removed = sum(mask)
    if not removed:
        return data, 0
    if removed == len(frame):
        return None, removed
    kept = frame[[not m for m in mask]].reset_index(drop=True)
    return to_parquet_bytes(kept), removed
