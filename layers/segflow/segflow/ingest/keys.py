"""Where each drop's outputs live in the data bucket (one place, so every function agrees)."""
from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

RAW_PREFIX = "raw/"


def drop_id_for(dataset: str, key: str, version: str | None) -> str:
    """Stable id of one delivered object: the same object delivered twice gets the same id."""
    stem = PurePosixPath(key).name.split(".")[0]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "drop"
    digest = hashlib.sha256(f"{key}\0{version or ''}".encode()).hexdigest()[:12]
    return f"{dataset}-{slug}-{digest}"


def clean_key(dataset: str, drop_id: str) -> str:
    return f"clean/{dataset}/{drop_id}.parquet"


def clean_jsonl_key(dataset: str, drop_id: str) -> str:
    """A JSON Lines copy of small datasets (consent, erasure) that light functions read without pandas."""
    return f"clean/{dataset}/{drop_id}.jsonl"


def accounting_key(dataset: str, drop_id: str) -> str:
    return f"clean/{dataset}/{drop_id}.accounting.json"


def quarantine_key(dataset: str, drop_id: str) -> str:
    return f"quarantine/{dataset}/{drop_id}.jsonl"


def warnings_key(dataset: str, drop_id: str) -> str:
    return f"reports/warnings/{dataset}/{drop_id}.jsonl"


def pending_key(dataset: str, drop_id: str) -> str:
    return f"pending/{dataset}/{drop_id}.parquet"


def attached_key(dataset: str, pending_drop: str, drop_id: str) -> str:
    return f"clean/{dataset}/{pending_drop}--attached-by--{drop_id}.parquet"


def manifest_key(drop_id: str) -> str:
    return f"manifests/{drop_id}.customers.json"


def is_clean_data(key: str) -> bool:
    return key.startswith("clean/") and key.endswith(".parquet")


def is_clean_jsonl(key: str) -> bool:
    return key.startswith("clean/") and key.endswith(".jsonl")
