"""The segments file: segments, their destinations, merge fields, trigger windows and guardrails.

`load_segments(text_or_path)` parses YAML, validates the structure with pydantic and then checks meaning:
rules (syntax, unknown fields, types), built-ins, parents (exist, no cycles), duplicated names, tags and
lists, Mailchimp merge tags ([A-Z0-9_], at most 10 characters, at most 30 fields) and HubSpot property
names. Every problem is collected and raised at once in a SegmentConfigError naming the segment.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from segflow.segments import expressions
from segflow.segments.fields import BUILTIN_FIELDS, CATALOGUE, KNOWN_VALUES, TRIGGER_FIELDS
from segflow.segments.triggers import TriggerSettings

MAX_MERGE_FIELDS = 30
MERGE_TAG = re.compile(r"^[A-Z0-9_]{1,10}$")
HUBSPOT_PROPERTY = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
BUILTIN_FAMILIES = (*BUILTIN_FIELDS, "trigger")
DEFAULT_FILE = "default_segments.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MailchimpDestination(_Strict):
    tag: str | None = Field(None, min_length=1, max_length=100)
    static_segment: str | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _something(self) -> MailchimpDestination:
        if self.tag is None and self.static_segment is None:
            raise ValueError("mailchimp needs a tag and/or a static_segment")
        return self


class HubspotProperty(_Strict):
    name: str
    value: str = Field(min_length=1)

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return (
            str(value).lower()
            if isinstance(value, bool)
            else str(value)
            if isinstance(value, (int, float))
            else value
        )


class HubspotDestination(_Strict):
    list: str | None = Field(None, min_length=1, max_length=255)
    property: HubspotProperty | None = None

    @model_validator(mode="after")
    def _something(self) -> HubspotDestination:
        if self.list is None and self.property is None:
            raise ValueError("hubspot needs a list and/or a property")
        return self


class Destinations(_Strict):
    mailchimp: MailchimpDestination | None = None
    hubspot: HubspotDestination | None = None


class Segment(_Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    rule: str | None = None  # CEL over catalogue fields
    builtin: str | None = None  # "<family>:<value>"; with a rule, both must hold
    priority: int = 100  # lower wins: exclusive groups and frequency caps
    parent: str | None = None  # members must also be members of the parent
    group: str | None = None  # exclusive group: a contact is in at most one segment of a group
    trigger: bool | None = None  # frequency-capped, no exit hysteresis; default: inferred from rule/builtin
    enabled: bool = True
    destinations: Destinations = Destinations()

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        if name != name.strip() or not name.isprintable():
            raise ValueError("name must be printable without leading/trailing spaces")
        return name

    @model_validator(mode="after")
    def _has_condition(self) -> Segment:
        if not self.rule and not self.builtin:
            raise ValueError("segment needs a rule and/or a builtin")
        return self

    @property
    def builtin_family(self) -> str | None:
        return self.builtin.split(":", 1)[0].strip() if self.builtin else None

    @property
    def builtin_value(self) -> str | None:
        return self.builtin.split(":", 1)[1].strip() if self.builtin and ":" in self.builtin else None


MergeType = Literal["text", "number", "date", "birthday", "url", "phone", "zip"]


class MergeField(_Strict):
    tag: str  # Mailchimp merge tag
    name: str = Field(min_length=1, max_length=100)  # label in both destinations
    type: MergeType = "text"
    source: str | None = None  # a catalogue field
    expression: str | None = None  # or a CEL expression
    behavioural: bool = False  # skipped for contacts whose preference_level is "basic"
    hubspot_property: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MergeField:
        if (self.source is None) == (self.expression is None):
            raise ValueError("merge field needs exactly one of source or expression")
        return self


class Guardrails(_Strict):
    max_active_segments: PositiveInt = 20
    min_segment_size: int = Field(50, ge=0)


class FrequencyCap(_Strict):
    max_entries: PositiveInt = 2  # trigger-segment entries per contact ...
    window_days: PositiveInt = 7  # ... per rolling window


class Hysteresis(_Strict):
    # A member leaves a non-trigger segment only after its condition was false this many evaluations in a row.
    exit_after_evaluations: PositiveInt = 2


class SegmentConfig(_Strict):
    version: Literal[1] = 1
    guardrails: Guardrails = Guardrails()
    frequency_cap: FrequencyCap = FrequencyCap()
    hysteresis: Hysteresis = Hysteresis()
    triggers: TriggerSettings = TriggerSettings()
    # Extra accepted values for built-in families, e.g. renamed RFM segments: {rfm_segment: [...]}.
    vocabulary: dict[str, list[str]] = Field(default_factory=dict)
    segments: list[Segment] = Field(default_factory=list)
    merge_fields: list[MergeField] = Field(default_factory=list)

    @cached_property
    def by_name(self) -> dict[str, Segment]:
        return {s.name: s for s in self.segments if s.enabled}

    def describe(self) -> list[dict[str, Any]]:
        """Each enabled segment's definition as plain data (for segments.json and reports)."""
        return [
            {
                **segment.model_dump(exclude={"enabled"}, exclude_none=True),
                "trigger": self.is_trigger(segment),
            }
            for segment in self.segments
            if segment.enabled
        ]

    def is_trigger(self, segment: Segment) -> bool:
        if segment.trigger is not None:
            return segment.trigger
        if segment.builtin_family == "trigger":
            return True
        return bool(segment.rule) and bool(set(_rule_fields(segment.rule)) & TRIGGER_FIELDS.keys())


@dataclass(frozen=True)
class Problem:
    segment: str | None  # segment name, or None for file-level problems
    kind: str  # syntax, unknown_field, unknown_function, type, duplicate, merge_tag, ...
    message: str

    def __str__(self) -> str:
        return f"segment '{self.segment}': {self.message}" if self.segment else self.message


class SegmentConfigError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid segments file:\n" + "\n".join(f"- {p}" for p in problems))


def load_segments(text_or_path: str | Path | None = None) -> SegmentConfig:
    """Load and validate a segments file (path or YAML text); None loads the shipped default."""
    if text_or_path is None:
        text = resources.files("segflow.segments").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
    elif isinstance(text_or_path, Path) or (
        "\n" not in text_or_path
        and (text_or_path.endswith((".yaml", ".yml")) or Path(text_or_path).is_file())
    ):
        text = Path(text_or_path).read_text(encoding="utf-8")
    else:
        text = text_or_path
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SegmentConfigError([Problem(None, "syntax", f"not valid YAML: {error}")]) from None
    return parse_segments(raw if raw is not None else {})


def parse_segments(raw: Any) -> SegmentConfig:
    if not isinstance(raw, Mapping):
        raise SegmentConfigError([Problem(None, "structure", "the file must be a mapping")])
    try:
        config = SegmentConfig.model_validate(raw)
    except ValidationError as error:
        raise SegmentConfigError(_structure_problems(raw, error)) from None
    problems = validate(config)
    if problems:
        raise SegmentConfigError(problems)
    return config


def validate(config: SegmentConfig) -> list[Problem]:
    problems: list[Problem] = []
    problems += _duplicates(config)
    for segment in config.segments:
        problems += _segment_problems(config, segment)
    problems += _parent_problems(config)
    problems += _shared_property_problems(config)
    problems += _merge_field_problems(config)
    return problems


def _segment_problems(config: SegmentConfig, segment: Segment) -> list[Problem]:
    problems = []
    if segment.rule is not None:
        try:
            expressions.check(segment.rule)
        except expressions.ExpressionError as error:
            problems.append(Problem(segment.name, error.kind, f"rule {error}"))
    if segment.builtin is not None:
        message = _builtin_problem(config, segment)
        if message:
            problems.append(Problem(segment.name, "builtin", message))
    hubspot = segment.destinations.hubspot
    if hubspot and hubspot.property and not HUBSPOT_PROPERTY.match(hubspot.property.name):
        problems.append(Problem(segment.name, "hubspot_property", _property_message(hubspot.property.name)))
    return problems


def _builtin_problem(config: SegmentConfig, segment: Segment) -> str | None:
    family, value = segment.builtin_family, segment.builtin_value
    if family not in BUILTIN_FAMILIES or not value:
        families = ", ".join(BUILTIN_FAMILIES)
        return f"builtin '{segment.builtin}' must be <family>:<value> with family one of {families}"
    if family == "trigger":
        return (
            None
            if value in TRIGGER_FIELDS
            else f"unknown trigger '{value}' (known: {', '.join(TRIGGER_FIELDS)})"
        )
    field = BUILTIN_FIELDS[family]
    known = (*KNOWN_VALUES.get(field, ()), *config.vocabulary.get(field, ()))
    if known and _norm(value) not in {_norm(k) for k in known}:
        return f"builtin '{segment.builtin}': unknown {field} '{value}' (known: {', '.join(known)})"
    return None


def _duplicates(config: SegmentConfig) -> list[Problem]:
    problems = []

    def report(label: str, values: list[tuple[str, str | None]]) -> None:
        counts = Counter(v for v, _ in values)
        for value, owner in values:
            if counts[value] > 1:
                problems.append(Problem(owner, "duplicate", f"{label} '{value}' is used more than once"))
                counts[value] = 0  # report each duplicated value once

    segments = config.segments
    report("segment name", [(s.name, s.name) for s in segments])
    mailchimp = [s for s in segments if s.destinations.mailchimp]
    report(
        "Mailchimp tag",
        [(s.destinations.mailchimp.tag, s.name) for s in mailchimp if s.destinations.mailchimp.tag],
    )
    report(
        "Mailchimp static segment",
        [
            (s.destinations.mailchimp.static_segment, s.name)
            for s in mailchimp
            if s.destinations.mailchimp.static_segment
        ],
    )
    hubspot = [s for s in segments if s.destinations.hubspot]
    report(
        "HubSpot list",
        [(s.destinations.hubspot.list, s.name) for s in hubspot if s.destinations.hubspot.list],
    )
    pairs = [s for s in hubspot if s.destinations.hubspot.property]
    report(
        "HubSpot property value",
        [
            (f"{s.destinations.hubspot.property.name}={s.destinations.hubspot.property.value}", s.name)
            for s in pairs
        ],
    )
    report("merge tag", [(f.tag, None) for f in config.merge_fields])
    report("merge field name", [(f.name, None) for f in config.merge_fields])
    report(
        "HubSpot property",
        [(f.hubspot_property, None) for f in config.merge_fields if f.hubspot_property]
        + [(s.destinations.hubspot.property.name, s.name) for s in pairs if _is_merge_property(config, s)],
    )
    return problems


def _is_merge_property(config: SegmentConfig, segment: Segment) -> bool:
    name = segment.destinations.hubspot.property.name
    return any(f.hubspot_property == name for f in config.merge_fields)


def _parent_problems(config: SegmentConfig) -> list[Problem]:
    problems = []
    names = {s.name for s in config.segments}
    parents = {s.name: s.parent for s in config.segments if s.parent is not None}
    for child, parent in parents.items():
        if parent not in names:
            problems.append(Problem(child, "parent", f"parent '{parent}' does not exist"))
        elif parent == child:
            problems.append(Problem(child, "parent", "a segment cannot be its own parent"))
    reported: set[str] = set()
    for start in parents:
        path, node = [], start
        while node in parents and node not in path:
            path.append(node)
            node = parents[node]
        if node in path and node not in reported and len(path) - path.index(node) > 1:
            cycle = path[path.index(node) :]
            reported.update(cycle)
            problems.append(Problem(node, "parent", "parent cycle: " + " -> ".join([*cycle, node])))
    return problems


def _shared_property_problems(config: SegmentConfig) -> list[Problem]:
    """Segments writing one HubSpot property must be exclusive: a contact in two would get two values."""
    by_property: dict[str, list[Segment]] = {}
    for segment in config.segments:
        hubspot = segment.destinations.hubspot
        if hubspot and hubspot.property:
            by_property.setdefault(hubspot.property.name, []).append(segment)
    problems = []
    for name, segments in by_property.items():
        groups = {s.group for s in segments}
        if len(segments) > 1 and (len(groups) > 1 or None in groups):
            problems.append(
                Problem(
                    segments[1].name,
                    "hubspot_property",
                    f"HubSpot property '{name}' is also set by '{segments[0].name}': "
                    "segments sharing a property must be in the same exclusive group",
                )
            )
    return problems


def _merge_field_problems(config: SegmentConfig) -> list[Problem]:
    problems = []
    fields = config.merge_fields
    if len(fields) > MAX_MERGE_FIELDS:
        problems.append(
            Problem(
                None,
                "merge_fields",
                f"{len(fields)} merge fields, Mailchimp allows at most {MAX_MERGE_FIELDS}",
            )
        )
    for field in fields:
        where = f"merge field '{field.tag}'"
        if not MERGE_TAG.match(field.tag):
            problems.append(
                Problem(
                    None, "merge_tag", f"{where}: a Mailchimp merge tag is 1-10 characters of A-Z, 0-9 and _"
                )
            )
        if field.source is not None and field.source not in CATALOGUE:
            problems.append(Problem(None, "unknown_field", f"{where}: unknown source field '{field.source}'"))
        if field.expression is not None:
            try:
                expressions.check(field.expression, expect_bool=False)
            except expressions.ExpressionError as error:
                problems.append(Problem(None, error.kind, f"{where}: expression {error}"))
        if field.hubspot_property is not None and not HUBSPOT_PROPERTY.match(field.hubspot_property):
            problems.append(
                Problem(None, "hubspot_property", f"{where}: {_property_message(field.hubspot_property)}")
            )
    return problems


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _property_message(name: str) -> str:
    return f"HubSpot property '{name}' must be lowercase letters, digits and _, starting with a letter"


def _rule_fields(rule: str) -> set[str]:
    try:
        return expressions.free_identifiers(expressions.parse(rule))
    except expressions.ExpressionError:
        return set()


def _structure_problems(raw: Mapping[str, Any], error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = item.get("loc", ())
        segment = None
        if len(loc) >= 2 and loc[0] == "segments" and isinstance(loc[1], int):
            entries = raw.get("segments") or []
            entry = entries[loc[1]] if loc[1] < len(entries) else None
            segment = entry.get("name") if isinstance(entry, Mapping) else None
            segment = str(segment) if segment is not None else f"#{loc[1] + 1}"
            loc = loc[2:]
        elif len(loc) >= 2 and loc[0] == "merge_fields" and isinstance(loc[1], int):
            entries = raw.get("merge_fields") or []
            entry = entries[loc[1]] if loc[1] < len(entries) else None
            tag = entry.get("tag") if isinstance(entry, Mapping) else None
            loc = (f"merge field '{tag}'" if tag else f"merge field #{loc[1] + 1}", *loc[2:])
        where = ".".join(str(part) for part in loc)
        message = item.get("msg", "invalid")
        problems.append(Problem(segment, "structure", f"{where}: {message}" if where else message))
    return problems
