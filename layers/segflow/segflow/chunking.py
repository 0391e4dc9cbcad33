"""Cutting a sequence into consecutive slices: API batch limits, work items, reads and events all use it.

Its own module so the API clients and the sync planner share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(values: Sequence[T], size: int) -> list[Sequence[T]]:
    """Consecutive slices of at most `size` values, in order."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    return [values[start : start + size] for start in range(0, len(values), size)]
