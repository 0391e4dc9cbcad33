"""Built-in segment families, usable without writing a rule.

`rfm:<segment>` (rfm_segment), `cluster:<label>` (cluster_label), `clv:<tier>` (clv_tier),
`churn:<risk>` (churn_risk) compare the profile's score field with the value (case-insensitive, spaces
trimmed); `trigger:<name>` is true when the behavioural trigger flag of that name is true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from segflow.segments.fields import BUILTIN_FIELDS, TRIGGER_FIELDS

Matcher = Callable[[Mapping[str, Any]], bool]


def matcher(builtin: str) -> Matcher:
    """A predicate over a profile view for `<family>:<value>` (validated by the config loader)."""
    family, _, value = builtin.partition(":")
    family, value = family.strip(), value.strip()
    if family == "trigger":
        if value not in TRIGGER_FIELDS:
            raise ValueError(f"unknown trigger '{value}'")
        return lambda view: view.get(value) is True
    if family not in BUILTIN_FIELDS:
        raise ValueError(f"unknown builtin family '{family}'")
    field, wanted = BUILTIN_FIELDS[family], _norm(value)
    return lambda view: isinstance(view.get(field), str) and _norm(view[field]) == wanted


def builtin_field(builtin: str) -> str:
    """The profile field a builtin reads."""
    family, _, value = builtin.partition(":")
    return value.strip() if family.strip() == "trigger" else BUILTIN_FIELDS[family.strip()]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()
