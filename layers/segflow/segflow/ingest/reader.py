"""Read a dropped file (CSV, JSON Lines or Parquet, optionally gzip) into chunks of raw string cells.

What the reader guarantees (the cleaning step and the row accounting rely on it):
- Each RawChunk holds at most `chunk_rows` rows as an object-dtype DataFrame of str/None ("" becomes None),
  with canonical column names after alias mapping (see aliases.yaml); extra columns keep their header.
- `rows` numbers each row 1-based in file order, header excluded: the CSV record index after the header
  (= spreadsheet row - 1 unless cells contain line breaks), the line number in JSON Lines, the row index in
  Parquet. Blank records (no cell with content) carry no data: they are skipped, their number unused.
- A row with the wrong number of fields is kept: missing cells are None, surplus cells go to
  `__extra_fields__` (a JSON list) and `__parse_error__` says what was wrong. Same for a JSON Lines line
  that is not a JSON object.
- Empty and header-only files yield nothing. A header without a required column raises
  UnreadableFile("missing_columns") before any chunk is yielded (JSON Lines: checked on the keys of the
  first chunk). Other UnreadableFile codes may surface mid-iteration (e.g. a truncated gzip found late):
  treat the whole file as unreadable.
- CSV delimiter: a first line "sep=X" (Excel's hint) wins; else whichever of , ; TAB splits the first lines
  into the most consistent number of fields (ties: comma, then semicolon, then tab). Quote char '"'.
- Values from JSON and Parquet become text: integral floats lose ".0" (123.0 -> "123"), booleans are
  "true"/"false", timestamps ISO-8601 (tz-aware ones in UTC with "+00:00"), nested values JSON text.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from segflow.ingest.columns import EXTRA_FIELDS, PARSE_ERROR, ColumnResolver, UserAliases, missing_columns
from segflow.ingest.datasets import DATASETS
from segflow.ingest.decoding import FALLBACK_ERRORS, Source, UnreadableFile, detect, open_binary

__all__ = ["RawChunk", "UnreadableFile", "read_table"]

csv.field_size_limit(2**31 - 1)  # a 1 MB cell is legitimate; the default 128 KiB limit would abort the file

DataInput = bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str]


@dataclass
class RawChunk:
    frame: pd.DataFrame  # object dtype, str/None cells
    rows: np.ndarray  # int64, 1-based row numbers in the file
    columns_map: dict[str, str] = field(default_factory=dict)  # original header -> frame column


def read_table(
    data: DataInput,
    source_name: str,
    dataset: str,
    *,
    chunk_rows: int = 100_000,
    aliases: UserAliases | None = None,
) -> Iterator[RawChunk]:
    """Stream `data` (bytes, a binary file object or a path) as RawChunks of at most `chunk_rows` rows."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    with ExitStack() as stack:
        stream, opened = open_binary(data)
        if opened:
            stack.callback(stream.close)
        source = detect(stream)
        resolver = ColumnResolver(dataset, aliases)
        if source.format == "csv":
            yield from _read_csv(source, dataset, resolver, chunk_rows)
        elif source.format == "jsonl":
            yield from _read_jsonl(source, dataset, resolver, chunk_rows)
        elif source.format == "parquet":
            yield from _read_parquet(source, dataset, resolver, chunk_rows)


# ---- shared ---------------------------------------------------------------------------------------------


def _check_columns(dataset: str, names: Iterable[str], source_name_hint: str = "header") -> None:
    missing = missing_columns(dataset, set(names))
    if missing:
        raise UnreadableFile(
            "missing_columns", f"the {source_name_hint} lacks required column(s): {', '.join(missing)}"
        )


def _object_column(values: Iterable[Any], size: int) -> np.ndarray:
    column = np.empty(size, dtype=object)
    column[:] = list(values)
    column[column == ""] = None
    return column


def _frame(columns: dict[str, np.ndarray], size: int) -> pd.DataFrame:
    # dtype=object keeps None (pandas 3 would otherwise infer its "str" dtype with NaN for missing).
    return pd.DataFrame(
        {name: pd.Series(col, dtype=object) for name, col in columns.items()}, index=pd.RangeIndex(size)
    )


def _text_stream(source: Source) -> io.TextIOWrapper:
    return io.TextIOWrapper(source.stream, encoding=source.encoding, errors=FALLBACK_ERRORS, newline="")


# ---- CSV -------------------------------------------------------------------------------------------------


def _sniff_delimiter(sample_lines: list[str]) -> str:
    best, best_score = ",", (-1.0, 0)
    for delimiter in (",", ";", "\t"):
        try:
            records = [r for r in csv.reader(sample_lines, delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not records:
            continue
        widths = [len(r) for r in records]
        header = widths[0]
        if header < 2:
            continue
        consistency = sum(w == header for w in widths) / len(widths)
        score = (consistency, header)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_csv(source: Source, dataset: str, resolver: ColumnResolver, chunk_rows: int) -> Iterator[RawChunk]:
    text = _text_stream(source)
    first_line = text.readline()
    delimiter: str | None = None
    stripped = first_line.lstrip("\ufeff").strip()
    if stripped.lower().startswith("sep=") and len(stripped) == 5:
        delimiter, lines = stripped[4], []
    else:
        lines = [first_line] + [text.readline() for _ in range(49)]
        lines = [line for line in lines if line]
        delimiter = _sniff_delimiter(lines)
    records = csv.reader(itertools.chain(lines, text), delimiter=delimiter, quotechar='"', strict=False)
    try:
        yield from _csv_chunks(records, dataset, resolver, chunk_rows)
    except csv.Error as err:
        raise UnreadableFile("bad_csv", f"CSV parsing failed: {err}") from err


def _csv_chunks(
    records: Iterator[list[str]], dataset: str, resolver: ColumnResolver, chunk_rows: int
) -> Iterator[RawChunk]:
    header = next((r for r in records if any(cell.strip() for cell in r)), None)
    if header is None:
        return
    names = [resolver.resolve(cell, i) for i, cell in enumerate(header)]
    _check_columns(dataset, names)
    width = len(names)
    cells: list[tuple[str, ...]] = []
    numbers: list[int] = []
    problems: dict[int, tuple[str, list[str]]] = {}  # position in chunk -> (message, surplus cells)
    for row_number, record in enumerate(records, start=1):
        if len(record) == width:
            first = record[0]
            if (not first or first.isspace()) and not "".join(record).strip():  # blank record: no data
                continue
        else:
            if not "".join(record).strip():
                continue
            problems[len(cells)] = (f"row has {len(record)} fields, header has {width}", record[width:])
            record = (record + [""] * width)[:width]
        cells.append(tuple(record))  # tuples of str leave the GC's tracking; lists would not
        numbers.append(row_number)
        if len(cells) == chunk_rows:
            yield _csv_chunk(cells, numbers, problems, names, resolver)
            cells, numbers, problems = [], [], {}
    if cells:
        yield _csv_chunk(cells, numbers, problems, names, resolver)


def _csv_chunk(
    cells: list[tuple[str, ...]],
    numbers: list[int],
    problems: dict[int, tuple[str, list[str]]],
    names: list[str],
    resolver: ColumnResolver,
) -> RawChunk:
    size = len(cells)
    columns = {name: _object_column(values, size) for name, values in zip(names, zip(*cells))}
    _add_problems(columns, problems, size)
    return RawChunk(_frame(columns, size), np.asarray(numbers, dtype=np.int64), dict(resolver.columns_map))


def _add_problems(
    columns: dict[str, np.ndarray], problems: dict[int, tuple[str, list[Any]]], size: int
) -> None:
    if not problems:
        return
    errors = np.full(size, None, dtype=object)
    extras = np.full(size, None, dtype=object)
    for position, (message, surplus) in problems.items():
        errors[position] = message
        if surplus:
            extras[position] = json.dumps(surplus, ensure_ascii=False)
    columns[PARSE_ERROR] = errors
    columns[EXTRA_FIELDS] = extras


# ---- JSON Lines ----------------------------------------------------------------------------------------


def _read_jsonl(
    source: Source, dataset: str, resolver: ColumnResolver, chunk_rows: int
) -> Iterator[RawChunk]:
    names_by_key: dict[str, str] = {}
    objects: list[dict[str, str | None]] = []
    numbers: list[int] = []
    problems: dict[int, tuple[str, list[Any]]] = {}
    checked = False
    for line_number, line in enumerate(_text_stream(source), start=1):
        if not line.strip():
            continue
        record = _json_record(line.lstrip("\ufeff"))
        if isinstance(record, str):
            problems[len(objects)] = (record, [])
            record = {}
        else:
            for key in record:
                if key not in names_by_key:
                    names_by_key[key] = resolver.resolve(key, len(names_by_key))
        objects.append({names_by_key[k]: v for k, v in record.items()})
        numbers.append(line_number)
        if len(objects) == chunk_rows:
            checked = checked or _check_json_columns(dataset, names_by_key, objects, problems)
            yield _jsonl_chunk(objects, numbers, problems, names_by_key, resolver)
            objects, numbers, problems = [], [], {}
    if objects:
        if not checked:
            _check_json_columns(dataset, names_by_key, objects, problems)
        yield _jsonl_chunk(objects, numbers, problems, names_by_key, resolver)


def _check_json_columns(
    dataset: str, names_by_key: dict[str, str], objects: list[Any], problems: dict[int, Any]
) -> bool:
    if len(problems) < len(objects):  # only judge the keys when some lines were JSON objects
        _check_columns(dataset, names_by_key.values(), "JSON Lines records")
    return True


def _json_record(line: str) -> dict[str, str | None] | str:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as err:
        return f"line is not valid JSON ({str(err)[:120]})"
    if not isinstance(value, dict):
        return f"line is a JSON {type(value).__name__}, not an object"
    return {str(k): _as_text(v) for k, v in value.items()}


def _jsonl_chunk(
    objects: list[dict[str, str | None]],
    numbers: list[int],
    problems: dict[int, tuple[str, list[Any]]],
    names_by_key: dict[str, str],
    resolver: ColumnResolver,
) -> RawChunk:
    size = len(objects)
    columns = {
        name: _object_column((o.get(name) for o in objects), size)
        for name in dict.fromkeys(names_by_key.values())
    }
    _add_problems(columns, problems, size)
    return RawChunk(_frame(columns, size), np.asarray(numbers, dtype=np.int64), dict(resolver.columns_map))


def _as_text(value: Any) -> str | None:
    """One JSON/Parquet scalar as the text a CSV export would have held."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, (pd.Timestamp,)):
        return value.tz_convert("UTC").isoformat() if value.tzinfo else value.isoformat()
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors=FALLBACK_ERRORS)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


# ---- Parquet ---------------------------------------------------------------------------------------------


def _read_parquet(
    source: Source, dataset: str, resolver: ColumnResolver, chunk_rows: int
) -> Iterator[RawChunk]:
    import fastparquet  # only Parquet drops pay for the import

    buffer = io.BytesIO(source.stream.read())  # Parquet needs random access (footer first)
    try:
        parquet = fastparquet.ParquetFile(buffer)
        headers = list(parquet.columns)
    except Exception as err:  # fastparquet raises many types for corrupt files
        raise UnreadableFile("bad_parquet", f"not a readable Parquet file ({type(err).__name__})") from err
    names = [resolver.resolve(h, i) for i, h in enumerate(headers)]
    _check_columns(dataset, names)
    next_row = 1
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    for group in _row_groups(parquet):
        group = group[headers].set_axis(names, axis=1)
        pending.append(_text_frame(group))
        pending_rows += len(group)
        while pending_rows >= chunk_rows:
            frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            head, rest = (
                frame.iloc[:chunk_rows].reset_index(drop=True),
                frame.iloc[chunk_rows:].reset_index(drop=True),
            )
            yield _parquet_chunk(head, next_row, resolver)
            next_row += len(head)
            pending, pending_rows = ([rest] if len(rest) else []), len(rest)
    if pending_rows:
        frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        yield _parquet_chunk(frame, next_row, resolver)


def _row_groups(parquet: Any) -> Iterator[pd.DataFrame]:
    groups = parquet.iter_row_groups()
    while True:
        try:
            group = next(groups)
        except StopIteration:
            return
        except Exception as err:
            raise UnreadableFile(
                "bad_parquet", f"a Parquet row group is unreadable ({type(err).__name__})"
            ) from err
        yield group.reset_index(drop=True) if not isinstance(group.index, pd.RangeIndex) else group


def _parquet_chunk(frame: pd.DataFrame, first_row: int, resolver: ColumnResolver) -> RawChunk:
    rows = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return RawChunk(frame.reset_index(drop=True), rows, dict(resolver.columns_map))


def _text_frame(group: pd.DataFrame) -> pd.DataFrame:
    size = len(group)
    columns = {}
    for position, name in enumerate(group.columns):
        series = group.iloc[:, position]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            utc = series.dt.tz_convert("UTC") if series.dt.tz is not None else series
            values: Iterable[Any] = (_as_text(v) if not pd.isna(v) else None for v in utc)
        else:
            values = (_as_text(v) for v in series.astype(object).tolist())
        columns[name] = _object_column(values, size)
    return _frame(columns, size)
