"""Realistic data problems injected into generated rows, each one counted.

Every row gets at most one problem (so counts can be checked against the files exactly), and
duplicates are only ever copies of clean rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

CLEAN = -1

UNPARSEABLE_DATES = ("2024-02-30", "31/13/2023", "not a date", "0000-00-00", "2023-1O-05", "yesterday")
UNKNOWN_CURRENCIES = ("XXY", "ABC", "EU")
UNKNOWN_STATUSES = ("on_hold", "backordered", "???")
UNKNOWN_EVENT_TYPES = ("add_to_wishlist", "pageview2", "app_open")
FORMULA_NAME = '=HYPERLINK("https://example.com/win","Claim prize")'


def assign(rng: np.random.Generator, n: int, rates: Mapping[str, float]) -> np.ndarray:
    """One category index per row (into `rates`' keys, in order) or CLEAN; rows are independent."""
    names = list(rates)
    p = np.array([rates[k] for k in names], dtype=float)
    draws = rng.choice(len(names) + 1, size=n, p=np.append(p, 1.0 - p.sum()))
    return np.where(draws == len(names), CLEAN, draws)


def apply(
    rng: np.random.Generator,
    category: np.ndarray,
    rates: Mapping[str, float],
    edits: Mapping[str, Callable[[np.random.Generator, np.ndarray], None]],
) -> dict[str, int]:
    """Run each category's edit on its rows (row indices); return how many rows each got."""
    counts: dict[str, int] = {}
    for index, name in enumerate(rates):
        rows = np.flatnonzero(category == index)
        if name in edits and rows.size:
            edits[name](rng, rows)
        counts[name] = int(rows.size)
    return counts


def mixed_case_spaced(rng: np.random.Generator, email: str) -> str:
    """ "  Maria.Rossi12@Example.COM " : same address, capitals and surrounding spaces added."""
    local, _, domain = email.partition("@")
    local = ".".join(part[:1].upper() + part[1:] for part in local.split("."))
    name, _, tld = domain.rpartition(".")
    cased = f"{local}@{name.capitalize()}.{tld.upper()}"
    left, right = (int(v) for v in rng.integers(0, 3, size=2))
    if left + right == 0:
        right = 1
    return " " * left + cased + " " * right


def invalid_email(rng: np.random.Generator, email: str) -> str:
    local, _, domain = email.partition("@")
    style = int(rng.integers(0, 4))
    if style == 0:
        return f"{local}@"  # "bob@"
    if style == 1:
        return f"{local}{domain.replace('.', '-')}"  # no at sign at all
    if style == 2:
        return f"@{domain}"
    return f"{local}@@{domain}"


def is_invalid_email(value: str) -> bool:
    """The shapes `invalid_email` produces (for tests and checks)."""
    return "@" not in value or value.count("@") > 1 or value.startswith("@") or value.endswith("@")


def pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(0, len(options), size=n)]


def non_numeric_total(cents: np.ndarray) -> np.ndarray:
    """12.50 -> "12,5O": decimal comma and a letter O typed for a zero."""
    cents = np.abs(cents)
    return np.array([f"{c // 100},{(c // 10) % 10}O" for c in cents.tolist()], dtype=object)


def duplicate_rows(rng: np.random.Generator, category: np.ndarray, rate: float) -> np.ndarray:
    """Indices of clean rows to write twice."""
    return np.flatnonzero((category == CLEAN) & (rng.random(len(category)) < rate))


def with_copies(columns: dict[str, np.ndarray], copies: np.ndarray) -> dict[str, np.ndarray]:
    """Rows with each row in `copies` repeated right after itself."""
    repeat = np.ones(len(next(iter(columns.values()))), dtype=np.int64)
    repeat[copies] = 2
    return {name: np.repeat(values, repeat) for name, values in columns.items()}
