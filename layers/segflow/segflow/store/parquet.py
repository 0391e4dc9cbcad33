"""Parquet in and out through fastparquet directly.

pyarrow does not fit a Lambda function beside pandas (about 157 MB on its own for arm64), and pandas 3
deprecates its fastparquet wrapper, so segflow calls fastparquet itself. Files are written to a
temporary path (Lambda's /tmp) because fastparquet writes to paths.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import fastparquet
import pandas as pd


# fastparquet encodes a row group's text columns in memory at once: bounded groups bound that peak
# (one group per file by default, which at 3M events costs hundreds of MB).
ROW_GROUP_ROWS = 250_000


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    frame = frame.reset_index(drop=True)
    # fastparquet needs plain object columns for nullable text; pandas 3 "str" columns are converted.
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]) and frame[column].dtype != object:
            frame[column] = frame[column].astype(object)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.parquet"
        fastparquet.write(str(path), frame, compression="SNAPPY", object_encoding="utf8", stats=False,
                          row_group_offsets=ROW_GROUP_ROWS)
        return path.read_bytes()


def read_parquet_bytes(data: bytes, columns: Sequence[str] | None = None) -> pd.DataFrame:
    with tempfile.NamedTemporaryFile(suffix=".parquet", delete=False) as handle:
        handle.write(data)
        path = handle.name
    try:
        return read_parquet_path(Path(path), columns)
    finally:
        os.unlink(path)


def read_parquet_path(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    parquet = fastparquet.ParquetFile(str(path))
    wanted = None if columns is None else [c for c in columns if c in parquet.columns]
    return parquet.to_pandas(columns=wanted)
