"""Helpers shared by the ingest unit tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from segflow.ingest.cleaning import CleanResult, clean_chunk
from segflow.ingest.reader import RawChunk, read_table

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def read_all(data: Any, dataset: str, **kwargs: Any) -> list[RawChunk]:
    return list(read_table(data, "test-source", dataset, **kwargs))


def one_frame(data: Any, dataset: str, **kwargs: Any) -> pd.DataFrame:
    chunks = read_all(data, dataset, **kwargs)
    assert len(chunks) == 1, f"expected one chunk, got {len(chunks)}"
    return chunks[0].frame


def chunk_of(dataset: str, records: list[dict[str, Any]]) -> RawChunk:
    """A RawChunk built directly from dicts of raw text (None for empty)."""
    columns = sorted({k for r in records for k in r}, key=lambda k: [k in r for r in records].index(True))
    data = {c: pd.Series([r.get(c) for r in records], dtype=object) for c in columns}
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(records)))
    return RawChunk(frame, np.arange(1, len(records) + 1, dtype=np.int64), {c: c for c in columns})


def clean(dataset: str, records: list[dict[str, Any]], **kwargs: Any) -> CleanResult:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("source_name", "test-source")
    return clean_chunk(chunk_of(dataset, records), dataset, **kwargs)


def clean_csv(text: str, dataset: str, **kwargs: Any) -> CleanResult:
    chunks = read_all(text.encode("utf-8"), dataset)
    assert len(chunks) == 1
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("source_name", "test-source")
    return clean_chunk(chunks[0], dataset, **kwargs)


def rules_by_row(result: CleanResult) -> dict[int, set[str]]:
    return {q.row: {r.rule for r in q.reasons} for q in result.quarantined}


def warning_rules(result: CleanResult) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for row, reason in result.warnings:
        found.setdefault(row, set()).add(reason.rule)
    return found


def accounted_rows(results: list[CleanResult]) -> list[int]:
    """Row numbers across clean and quarantined outputs (duplicates kept, to catch double counts)."""
    rows: list[int] = []
    for result in results:
        rows.extend(int(r) for r in result.clean["_row"])
        rows.extend(q.row for q in result.quarantined)
    return sorted(rows)
