"""Helpers shared by the JSON model artifacts: data fingerprints and artifact checks (numpy only)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1


def fingerprint(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """sha256 of the training table (ids, column names, values) in a row-order-independent form."""
    table = frame if columns is None else frame.loc[:, list(columns)]
    table = table.sort_index()
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, table.columns)).encode())
    digest.update("\x1e".join(map(str, table.index)).encode())
    digest.update(np.ascontiguousarray(table.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def model_version(kind: str, data_fingerprint: str, as_of: str | None) -> str:
    """Deterministic version id: the same data and settings give the same version."""
    stamp = "" if as_of is None else pd.Timestamp(as_of).strftime("%Y%m%dT%H%M%SZ") + "-"
    return f"{kind}-{stamp}{data_fingerprint[:12]}"


def require_kind(artifact: Mapping[str, Any], kind: str) -> None:
    if artifact.get("kind") != kind:
        raise ValueError(f"expected a {kind!r} artifact, got {artifact.get('kind')!r}")
    if artifact.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported {kind} schema_version {artifact.get('schema_version')!r}")


def plain(value: Any) -> Any:
    """numpy scalars/arrays (also nested in dicts and lists) to JSON-friendly Python values."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
