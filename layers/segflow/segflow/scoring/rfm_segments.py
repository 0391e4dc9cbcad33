"""Named RFM segments: a table of (r_score, f_score) rectangles that must tile the 5x5 grid exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SCORES = range(1, 6)

# name -> rectangle (inclusive score ranges), or a list of rectangles for non-rectangular segments.
DEFAULT_SEGMENTS: dict[str, dict[str, tuple[int, int]]] = {
    "Champions": {"r": (5, 5), "f": (4, 5)},
    "Loyal Customers": {"r": (3, 4), "f": (4, 5)},
    "Potential Loyalists": {"r": (4, 5), "f": (2, 3)},
    "New Customers": {"r": (5, 5), "f": (1, 1)},
    "Promising": {"r": (4, 4), "f": (1, 1)},
    "Need Attention": {"r": (3, 3), "f": (3, 3)},
    "About to Sleep": {"r": (3, 3), "f": (1, 2)},
    "At Risk": {"r": (1, 2), "f": (3, 4)},
    "Can't Lose Them": {"r": (1, 2), "f": (5, 5)},
    "Hibernating": {"r": (1, 2), "f": (1, 2)},
}


class SegmentTableError(ValueError):
    """The segment table does not assign every (r, f) cell to exactly one segment."""


def segment_grid(table: Mapping[str, Any] | None = None) -> np.ndarray:
    """5x5 object array: grid[r - 1, f - 1] is the segment name. Validates the table."""
    table = DEFAULT_SEGMENTS if table is None else table
    owners: dict[tuple[int, int], list[str]] = {(r, f): [] for r in SCORES for f in SCORES}
    for name, spec in table.items():
        for rect in _rectangles(name, spec):
            for r in _score_range(name, rect, "r"):
                for f in _score_range(name, rect, "f"):
                    owners[(r, f)].append(str(name))
    uncovered = [cell for cell, names in owners.items() if not names]
    overlapping = {cell: names for cell, names in owners.items() if len(names) > 1}
    if uncovered or overlapping:
        problems = []
        if uncovered:
            problems.append(f"cells (r, f) not covered: {uncovered}")
        if overlapping:
            problems.append(
                "cells covered more than once: " + ", ".join(f"{c} by {n}" for c, n in overlapping.items())
            )
        raise SegmentTableError(
            "RFM segment table must cover all 25 (r, f) cells exactly once; " + "; ".join(problems)
        )
    grid = np.empty((5, 5), dtype=object)
    for (r, f), names in owners.items():
        grid[r - 1, f - 1] = names[0]
    return grid


def _rectangles(name: str, spec: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(spec, Mapping):
        return [spec]
    if isinstance(spec, Sequence) and not isinstance(spec, str) and all(isinstance(s, Mapping) for s in spec):
        return spec
    raise SegmentTableError(f"segment {name!r}: expected {{'r': [lo, hi], 'f': [lo, hi]}} or a list of them")


def _score_range(name: str, rect: Mapping[str, Any], axis: str) -> range:
    if axis not in rect:
        raise SegmentTableError(f"segment {name!r}: missing {axis!r} range")
    bounds = rect[axis]
    pair = (bounds, bounds) if isinstance(bounds, int) else tuple(bounds)
    if len(pair) != 2 or not all(isinstance(b, int) for b in pair):
        raise SegmentTableError(f"segment {name!r}: {axis} range {bounds!r} must be an int or [lo, hi]")
    lo, hi = pair
    if not (1 <= lo <= hi <= 5):
        raise SegmentTableError(f"segment {name!r}: {axis} range {bounds!r} must satisfy 1 <= lo <= hi <= 5")
    return range(lo, hi + 1)
