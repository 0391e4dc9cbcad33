"""A delivered object, as ingest sees it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DropRef:
    bucket: str
    key: str
    version: str | None = None  # S3 version id when versioning is on, else the ETag
    size: int = 0
