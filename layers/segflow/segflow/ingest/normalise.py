"""Column-level value normalisers shared by the cleaning step: ids, text, vocabularies, booleans.

Every parser works on an object Series of str/None and returns a `Parsed`: the normalised values (null where
the raw value was missing or invalid), an error message where a present value was invalid, and whether a
valid value was changed in a way a user would want to audit. Parsing runs once per unique raw value
(`parse_unique`), so repeated values — most of a real column — cost nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segflow.ingest import vocab

ParseResult = tuple[Any, str | None, bool]  # (value or None, error or None, changed)


@dataclass
class Parsed:
    values: Any  # array aligned with the input: object ndarray, float ndarray or a datetime ExtensionArray
    errors: np.ndarray  # object array: message where a present value was invalid, else None
    changed: np.ndarray  # bool array

    @property
    def invalid(self) -> np.ndarray:
        return pd.notna(self.errors)


def parse_unique(raw: pd.Series, parse: Callable[[str], ParseResult]) -> Parsed:
    """Apply `parse` once per distinct non-null raw value and spread the results over the column."""
    codes, per_unique = parse_uniques(raw, parse)
    return Parsed(per_unique.values[codes], per_unique.errors[codes], per_unique.changed[codes])


def parse_uniques(raw: pd.Series, parse: Callable[[str], ParseResult]) -> tuple[np.ndarray, Parsed]:
    """(codes, results per distinct value): code -1 (missing) indexes a final all-null slot."""
    codes, uniques = pd.factorize(raw.to_numpy(dtype=object), use_na_sentinel=True)
    results = [parse(str(text)) for text in uniques]
    results.append((None, None, False))
    values = np.empty(len(results), dtype=object)
    errors = np.empty(len(results), dtype=object)
    values[:] = [r[0] for r in results]
    errors[:] = [r[1] for r in results]
    changed = np.fromiter((r[2] for r in results), dtype=bool, count=len(results))
    return codes, Parsed(values, errors, changed)


def _strip(text: str) -> str | None:
    return text.strip() or None


def collapse(text: str) -> str | None:
    """NFC, trimmed, internal whitespace runs collapsed to one space; None when nothing is left."""
    return " ".join(unicodedata.normalize("NFC", text).split()) or None


def parse_ids(raw: pd.Series) -> Parsed:
    """Ids keep their text ("00123" stays "00123"); only surrounding whitespace goes."""
    # Ids are mostly unique, so a plain pass beats per-unique caching here.
    values = np.empty(len(raw), dtype=object)
    values[:] = [None if v is None or v != v else _strip(str(v)) for v in raw.to_numpy(dtype=object)]
    return Parsed(values, np.full(len(raw), None, dtype=object), np.zeros(len(raw), dtype=bool))


def parse_text(raw: pd.Series) -> Parsed:
    return parse_unique(raw, lambda text: (collapse(text), None, False))


def parse_vocab(raw: pd.Series, table: Mapping[str, str], what: str) -> Parsed:
    """Map a value through a vocabulary alias table (see vocab.py); unknown values are errors."""

    def parse(text: str) -> ParseResult:
        key = vocab.vocab_key(text)
        if not key:
            return None, None, False
        canonical = table.get(key)
        if canonical is None:
            return (
                None,
                f"unknown {what} {text.strip()[:60]!r}; expected one of {sorted(set(table.values()))}",
                False,
            )
        return canonical, None, False

    return parse_unique(raw, parse)


def parse_bools(raw: pd.Series) -> Parsed:
    """true/false, yes/no, y/n, 1/0, on/off (any case); empty stays None (the caller decides a default)."""

    def parse(text: str) -> ParseResult:
        key = vocab.vocab_key(text)
        if not key:
            return None, None, False
        if key in vocab.BOOLEAN:
            return vocab.BOOLEAN[key], None, False
        return None, f"not a boolean: {text.strip()[:60]!r}", False

    return parse_unique(raw, parse)
