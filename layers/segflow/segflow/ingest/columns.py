"""Header mapping: original column names to canonical field names through the alias table."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

import yaml

from segflow.ingest.datasets import DATASETS

# Columns the reader adds for rows it could not split properly; never taken from a file's header.
PARSE_ERROR = "__parse_error__"
EXTRA_FIELDS = "__extra_fields__"
INTERNAL_COLUMNS = frozenset({PARSE_ERROR, EXTRA_FIELDS})

_NOT_ALNUM = re.compile(r"[\W_]+")

UserAliases = Mapping[str, Mapping[str, str]]


def header_key(name: str) -> str:
    """Case, space and punctuation insensitive form: "Customer ID", "customer-id" -> "customerid"."""
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", name).casefold())


@lru_cache(maxsize=None)
def _builtin_table(dataset: str) -> dict[str, str]:
    raw = yaml.safe_load(resources.files("segflow.ingest").joinpath("aliases.yaml").read_text("utf-8"))
    fields = DATASETS[dataset].fields
    table: dict[str, str] = {}
    for section in ("common", dataset):  # dataset entries override common ones
        for canonical, aliases in (raw.get(section) or {}).items():
            if canonical in fields:
                table.update({header_key(alias): canonical for alias in aliases})
    return table


def alias_table(dataset: str, user_aliases: UserAliases | None = None) -> dict[str, str]:
    """header_key -> canonical field for one dataset, with the documented precedence applied."""
    fields = DATASETS[dataset].fields
    table = dict(_builtin_table(dataset))
    table.update({header_key(name): name for name in fields})
    for alias, canonical in ((user_aliases or {}).get(dataset) or {}).items():
        if canonical not in fields:
            raise ValueError(f"alias {alias!r} for {dataset} maps to unknown field {canonical!r}")
        table[header_key(alias)] = canonical
    return table


class ColumnResolver:
    """Assigns each header of a file a unique frame column name, first-come for canonical fields.

    Stateful so JSON Lines files, whose keys appear line by line, map the same way as CSV headers.
    """

    def __init__(self, dataset: str, user_aliases: UserAliases | None = None) -> None:
        self._table = alias_table(dataset, user_aliases)
        self._reserved = set(DATASETS[dataset].fields) | INTERNAL_COLUMNS | {"_row", "attributes"}
        self._taken: set[str] = set()
        self.columns_map: dict[str, str] = {}

    def resolve(self, header: str, position: int) -> str:
        original = header.replace("\ufeff", "").strip()
        canonical = self._table.get(header_key(original))
        if canonical is not None and canonical not in self._taken:
            name = canonical
        else:
            name = self._extra_name(original or f"column_{position + 1}")
        self._taken.add(name)
        self.columns_map.setdefault(original, name)
        return name

    def _extra_name(self, base: str) -> str:
        name, n = base, 1
        while name in self._taken or name in self._reserved:
            n += 1
            name = f"{base} ({n})"
        return name


def missing_columns(dataset: str, present: set[str]) -> list[str]:
    """Required columns (and one-of groups, written "a|b") that a header lacks."""
    spec = DATASETS[dataset]
    missing = [c for c in spec.required_columns if c not in present]
    missing += ["|".join(group) for group in spec.one_of if not present.intersection(group)]
    return missing
