"""Reading the clean datasets back from the data bucket for scoring and training."""
from __future__ import annotations

import pandas as pd

from segflow.ingest.keys import is_clean_data
from segflow.store.objects import ObjectStore
from segflow.store.parquet import read_parquet_bytes


def load_clean(objects: ObjectStore, dataset: str) -> pd.DataFrame | None:
    """Every clean row of a dataset, oldest drop first (so "keep the last row" keeps the newest)."""
    parts = [
        read_parquet_bytes(objects.get_bytes(info.key))
        for info in objects.list(f"clean/{dataset}/")
        if is_clean_data(info.key)
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    frame = pd.concat(parts, ignore_index=True)
    if "_ingested_at" in frame:
        frame = frame.sort_values("_ingested_at", kind="stable", ignore_index=True)
    return frame
