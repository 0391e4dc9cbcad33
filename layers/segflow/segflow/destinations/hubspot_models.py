"""What segflow asks of a HubSpot portal: custom contact properties and contact upserts (plain data)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

PropertyType = Literal["string", "number", "date", "datetime", "enumeration", "bool", "phone_number"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_FIELD_TYPES: dict[str, str] = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
    "phone_number": "phonenumber",
}
BOOL_OPTIONS = (("true", "Yes"), ("false", "No"))
PropertyValue = str | int | float | bool | date | datetime | None


def email_key(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class PropertySpec:
    name: str
    label: str
    type: PropertyType = "string"
    field_type: str | None = None  # derived from `type` when not given
    options: Sequence[str | tuple[str, str]] = ()  # enumeration values, or (value, label)
    description: str = ""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"property name {self.name!r} must be lower-case letters, digits and _, starting with a letter")
        if self.type == "enumeration" and not self.options:
            raise ValueError(f"enumeration property {self.name!r} needs options")

    @property
    def resolved_field_type(self) -> str:
        return self.field_type or DEFAULT_FIELD_TYPES[self.type]

    def option_pairs(self) -> list[tuple[str, str]]:
        pairs = [(o, o) if isinstance(o, str) else (o[0], o[1]) for o in self.options]
        if not pairs and self.type == "bool":
            pairs = list(BOOL_OPTIONS)
        return pairs

    def option_bodies(self, start: int = 0) -> list[dict[str, Any]]:
        return [
            {"label": label, "value": value, "hidden": False, "displayOrder": start + i}
            for i, (value, label) in enumerate(self.option_pairs())
        ]

    def create_body(self, group_name: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.resolved_field_type,
            "groupName": group_name,
        }
        options = self.option_bodies()
        if options:
            body["options"] = options
        if self.description:
            body["description"] = self.description
        return body


def property_value(value: PropertyValue) -> str:
    """HubSpot takes every property value as a string; None clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ContactUpsert:
    email: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)

    def input_body(self, trace_id: str) -> dict[str, Any]:
        properties = {name: property_value(v) for name, v in self.properties.items() if name != "email"}
        # the email rides along so results can be matched back to the contact
        properties["email"] = email_key(self.email)
        return {"id": email_key(self.email), "idProperty": "email", "properties": properties,
                "objectWriteTraceId": trace_id}
