"""Text formatting and file writing for the sample data generator.

Rows are written a chunk at a time with whole-column string operations: the csv module and pandas
both spend microseconds per row, too slow for millions of rows. Output follows the csv module's
QUOTE_MINIMAL rules and standard JSON, and is byte-identical for identical input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from itertools import starmap
from pathlib import Path
from typing import IO

import numpy as np

Columns = dict[str, np.ndarray]

_CSV_SPECIAL = (",", '"', "\n", "\r")
_HUNDREDTHS = np.array([f".{i:02d}" for i in range(100)], dtype=object)
_NULL = "\x1e"  # JSON null while lines are assembled (real control characters are escaped by then)


def ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """["C00000001", ...] as an object array."""
    out = np.empty(len(numbers), dtype=object)
    out[:] = [f"{prefix}{n:0{width}d}" for n in np.asarray(numbers, dtype=np.int64).tolist()]
    return out


def _split_days(as_of: np.datetime64, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ISO date per moment, second of its day); dates are formatted once per distinct day."""
    moments = (as_of + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")).astype(np.int64)
    day = np.floor_divide(moments, 86_400)
    distinct, which = np.unique(day, return_inverse=True)
    names = np.datetime_as_string(distinct.astype("datetime64[D]")).astype(object)
    return names[which], moments - day * 86_400


@lru_cache(maxsize=1)
def _clock() -> np.ndarray:
    return np.array(
        [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86_400)], dtype=object
    )


def dates(as_of: np.datetime64, seconds: np.ndarray) -> np.ndarray:
    """ISO dates ("2026-10-31") for moments given in seconds relative to as_of."""
    return _split_days(as_of, seconds)[0]


def timestamps(as_of: np.datetime64, seconds: np.ndarray) -> np.ndarray:
    """ISO UTC timestamps ("2026-10-31T18:02:11Z") for moments in seconds relative to as_of."""
    day, second = _split_days(as_of, seconds)
    return day + _clock()[second]  # elementwise str concatenation on object arrays


def money(cents: np.ndarray) -> np.ndarray:
    """Exact decimal strings from integer cents ("-12.50"): no float rounding involved."""
    cents = np.asarray(cents, dtype=np.int64)
    size = np.abs(cents)
    whole = (size // 100).astype(str).astype(object)
    return np.where(cents < 0, "-", "").astype(object) + whole + _HUNDREDTHS[size % 100]


def _csv_cells(values: np.ndarray) -> list[str]:
    cells: list[str] = values.tolist()
    joined = "\x1f".join(cells)
    if any(ch in joined for ch in _CSV_SPECIAL):  # fast whole-column scans; quote only where needed
        cells = [
            '"' + c.replace('"', '""') + '"' if ("," in c or '"' in c or "\n" in c or "\r" in c) else c
            for c in cells
        ]
    return cells


def _json_cells(values: np.ndarray) -> list[object]:
    """Cell text to put between quotes in a JSON line; None becomes the null marker."""
    if values.dtype != object:  # numbers: formatted by the line template
        return values.tolist()
    null = values == None  # noqa: E711 - elementwise comparison
    joined = "".join(values[~null].tolist())
    # isprintable() is False for every control character (and a few harmless ones: then we escape anyway).
    if not joined.isprintable() or '"' in joined or "\\" in joined:
        values = np.array(
            [v if v is None else json.dumps(v, ensure_ascii=False)[1:-1] for v in values.tolist()],
            dtype=object,
        )
    return np.where(null, _NULL, values).tolist()


class Sink:
    """One output file: a CSV (header + rows) or JSON Lines (one object per row, fields in order)."""

    def __init__(self, path: Path, fh: IO[str], columns: tuple[str, ...], formats: Mapping[str, str]) -> None:
        self.path, self.fh, self.columns = path, fh, columns
        self.jsonl = path.suffix == ".jsonl"
        self.rows = 0
        if self.jsonl:
            # A str.format template such as {{"event_id":"E{:010d}","email":"{}"}}: cells arrive
            # escaped, and quoted null markers become null afterwards.
            fields = ",".join('"' + name + '":"' + formats.get(name, "{}") + '"' for name in columns)
            self._line = "{{" + fields + "}}"
        else:
            fh.write(",".join(columns) + "\n")

    def write(self, columns: Columns) -> None:
        n = len(columns[self.columns[0]])
        if n == 0:
            return
        if self.jsonl:
            cells = [_json_cells(np.asarray(columns[name])) for name in self.columns]
            text = "\n".join(starmap(self._line.format, zip(*cells, strict=False)))
            self.fh.write(text.replace(f'"{_NULL}"', "null") + "\n")
        else:
            cells = [_csv_cells(np.asarray(columns[name], dtype=object)) for name in self.columns]
            self.fh.write("\n".join(map(",".join, zip(*cells, strict=False))) + "\n")
        self.rows += n


@contextmanager
def open_sink(
    path: Path, columns: tuple[str, ...], formats: Mapping[str, str] | None = None
) -> Iterator[Sink]:
    with path.open("w", encoding="utf-8", newline="") as fh:
        yield Sink(path, fh, columns, formats or {})
