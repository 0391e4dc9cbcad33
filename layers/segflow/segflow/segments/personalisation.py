"""Merge-field (Mailchimp) and custom-property (HubSpot) values for one contact.

preference_level decides what is personalised: "full" gets every field, "basic" only the fields not
marked `behavioural` (names, city), "none" nothing. A contact without a known preference is treated as
"basic": behavioural data is only used where the preference allows it.
Values: text is trimmed to Mailchimp's 255 characters (lists are joined with ", "), numbers stay numbers,
date fields become YYYY-MM-DD; a missing value is "" so a stale value in the destination is cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segflow.segments import expressions
from segflow.segments.config import MergeField
from segflow.segments.fields import CATALOGUE
from segflow.segments.rules import CompiledRules
from segflow.segments.timeutil import to_datetime

TEXT_LIMIT = 255
PREFERENCE_LEVELS = ("full", "basic", "none")
DEFAULT_PREFERENCE = "basic"


@dataclass(frozen=True)
class Personalisation:
    mailchimp: dict[str, Any]  # merge tag -> value
    hubspot: dict[str, Any]  # property name -> value


def personalise(
    compiled: CompiledRules, profile_view: Mapping[str, Any], preference_level: str | None = None
) -> Personalisation:
    level = preference_level or profile_view.get("preference_level") or DEFAULT_PREFERENCE
    if level not in PREFERENCE_LEVELS:
        level = DEFAULT_PREFERENCE
    mailchimp: dict[str, Any] = {}
    hubspot: dict[str, Any] = {}
    if level == "none":
        return Personalisation(mailchimp, hubspot)
    for field in compiled.config.merge_fields:
        if field.behavioural and level != "full":
            continue
        value = field_value(compiled, field, profile_view)
        mailchimp[field.tag] = value
        if field.hubspot_property:
            hubspot[field.hubspot_property] = value
    return Personalisation(mailchimp, hubspot)


def field_value(compiled: CompiledRules, field: MergeField, profile_view: Mapping[str, Any]) -> Any:
    if field.expression is not None:
        checked = compiled.merge_fields[field.tag]
        values = tuple(
            expressions.plain_value(profile_view.get(name), CATALOGUE[name].kind) for name in checked.fields
        )
        raw = expressions.run(checked, values)
        raw = None if raw is None else expressions.to_python(raw)
    else:
        raw = profile_view.get(field.source)
    return format_value(raw, field.type)


def format_value(raw: Any, kind: str) -> Any:
    if raw is None or raw == "" or (isinstance(raw, float) and raw != raw):
        return ""
    if kind == "number":
        if isinstance(raw, bool):
            return int(raw)
        if isinstance(raw, (int, float, Decimal)):
            number = float(raw)
            return int(number) if number.is_integer() else round(number, 2)
        return ""
    if kind in ("date", "birthday"):
        moment = to_datetime(raw)
        if moment is None:
            return ""
        return moment.strftime("%m/%d") if kind == "birthday" else moment.date().isoformat()
    if isinstance(raw, (list, tuple)):
        raw = ", ".join(str(v) for v in raw if v not in (None, ""))
    elif isinstance(raw, bool):
        raw = "yes" if raw else "no"
    text = " ".join(str(raw).split())
    return text[:TEXT_LIMIT]
