"""What one contact should look like in one destination, built from a profile view and the segments config.

A profile view is the plain dict merging a customer's PROFILE, SCORES, CONSENT#email and SEGMENTS items.
The segments config is accepted as plain data (SyncConfig, or anything shaped like the segments file:
a pydantic SegmentConfig or the dict loaded from YAML), so this module does not depend on segflow.segments.

Rules:
- only a contact that is eligible gets fields, tags, static segments and lists; an ineligible contact's
  desired memberships are empty (the planner then removes segflow's own ones) and its fields are not updated;
- only a withdrawn consent (consent_status "opted_out") asks for an unsubscribe;
- fields honour preference_level: "none" -> no personal fields, "basic" -> no behavioural fields, "full" ->
  all; an unknown level counts as "basic". Segment-driven HubSpot properties are memberships, not
  personalisation, and follow eligibility only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from segflow.sync.limits import HUBSPOT, MAILCHIMP, check_destination

PREFERENCE_LEVELS = ("full", "basic", "none")
DEFAULT_PREFERENCE = "basic"
TEXT_LIMIT = 255  # Mailchimp's text merge value limit
Membership = tuple[str, str]  # (kind, name); kind is "tag" / "segment" (Mailchimp) or "list" (HubSpot)
KINDS = {MAILCHIMP: ("tag", "segment"), HUBSPOT: ("list",)}

FieldValues = Callable[[Mapping[str, Any]], Mapping[str, Any]]  # profile view -> {merge tag: value}
ViewCheck = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class SegmentRoute:
    """Where membership of one segment shows in the destinations."""

    segment: str
    priority: int = 100  # lower wins when several segments set the same HubSpot property
    mailchimp_tag: str | None = None
    mailchimp_segment: str | None = None
    hubspot_list: str | None = None
    hubspot_property: str | None = None
    hubspot_value: str | None = None


@dataclass(frozen=True)
class FieldRoute:
    """One personalisation field: a Mailchimp merge tag and, optionally, a HubSpot property."""

    tag: str
    name: str
    type: str = "text"  # text, number, date, birthday, url, phone, zip
    source: str | None = None  # profile view field; None when the value comes from `field_values`
    behavioural: bool = False
    hubspot_property: str | None = None


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


@dataclass(frozen=True)
class SyncConfig:
    segments: tuple[SegmentRoute, ...] = ()
    fields: tuple[FieldRoute, ...] = ()

    @classmethod
    def from_segments(cls, config: Any) -> SyncConfig:
        """From the segments file as a SegmentConfig object or its plain dict (disabled segments left out)."""
        routes = []
        for segment in _get(config, "segments", ()) or ():
            if _get(segment, "enabled", True) is False:
                continue
            destinations = _get(segment, "destinations")
            mailchimp, hubspot = _get(destinations, "mailchimp"), _get(destinations, "hubspot")
            prop = _get(hubspot, "property")
            routes.append(
                SegmentRoute(
                    segment=_get(segment, "name"),
                    priority=int(_get(segment, "priority", 100)),
                    mailchimp_tag=_get(mailchimp, "tag"),
                    mailchimp_segment=_get(mailchimp, "static_segment"),
                    hubspot_list=_get(hubspot, "list"),
                    hubspot_property=_get(prop, "name"),
                    hubspot_value=None if prop is None else str(_get(prop, "value")),
                )
            )
        fields = [
            FieldRoute(
                tag=_get(f, "tag"),
                name=_get(f, "name"),
                type=_get(f, "type", "text"),
                source=_get(f, "source"),
                behavioural=bool(_get(f, "behavioural", False)),
                hubspot_property=_get(f, "hubspot_property"),
            )
            for f in _get(config, "merge_fields", ()) or ()
        ]
        return cls(tuple(routes), tuple(fields))

    def routes_by_segment(self) -> dict[str, SegmentRoute]:
        return {r.segment: r for r in self.segments}

    def segment_properties(self) -> dict[str, list[str]]:
        """HubSpot properties set by segment membership -> their possible values (enumeration options)."""
        found: dict[str, list[str]] = {}
        for route in sorted(self.segments, key=lambda r: (r.priority, r.segment)):
            if route.hubspot_property and route.hubspot_value is not None:
                values = found.setdefault(route.hubspot_property, [])
                if route.hubspot_value not in values:
                    values.append(route.hubspot_value)
        return found

    def managed(self, destination: str) -> frozenset[Membership]:
        """Every tag, static segment or list segflow manages in the destination."""
        pairs: set[Membership] = set()
        for route in self.segments:
            pairs |= _route_memberships(route, destination)
        return frozenset(pairs)


def _route_memberships(route: SegmentRoute, destination: str) -> set[Membership]:
    if destination == MAILCHIMP:
        return {(k, n) for k, n in (("tag", route.mailchimp_tag), ("segment", route.mailchimp_segment)) if n}
    return {("list", route.hubspot_list)} if route.hubspot_list else set()


def split_memberships(pairs: Iterable[Membership]) -> dict[str, frozenset[str]]:
    """{"tags": ..., "segments": ..., "lists": ...} from (kind, name) pairs."""
    grouped: dict[str, set[str]] = {"tag": set(), "segment": set(), "list": set()}
    for kind, name in pairs:
        grouped[kind].add(name)
    return {f"{kind}s": frozenset(names) for kind, names in grouped.items()}


@dataclass(frozen=True)
class DesiredContact:
    destination: str
    customer_id: str
    email: str
    fields: Mapping[str, Any] = field(default_factory=dict)  # merge tag / property name -> value
    tags: frozenset[str] = frozenset()  # Mailchimp tags
    segments: frozenset[str] = frozenset()  # Mailchimp static segments
    lists: frozenset[str] = frozenset()  # HubSpot lists
    subscribe_if_new: bool = False
    unsubscribe: bool = False
    eligible: bool = True

    def memberships(self) -> frozenset[Membership]:
        return frozenset(
            {("tag", t) for t in self.tags}
            | {("segment", s) for s in self.segments}
            | {("list", li) for li in self.lists}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "customer_id": self.customer_id,
            "email": self.email,
            "fields": dict(self.fields),
            "tags": sorted(self.tags),
            "segments": sorted(self.segments),
            "lists": sorted(self.lists),
            "subscribe_if_new": self.subscribe_if_new,
            "unsubscribe": self.unsubscribe,
            "eligible": self.eligible,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DesiredContact:
        return cls(
            destination=data["destination"],
            customer_id=data["customer_id"],
            email=data["email"],
            fields=dict(data.get("fields") or {}),
            tags=frozenset(data.get("tags") or ()),
            segments=frozenset(data.get("segments") or ()),
            lists=frozenset(data.get("lists") or ()),
            subscribe_if_new=bool(data.get("subscribe_if_new")),
            unsubscribe=bool(data.get("unsubscribe")),
            eligible=bool(data.get("eligible")),
        )


# ---- eligibility defaults (the lead may inject segflow.consent's checks instead) ----------------------


def default_eligible(view: Mapping[str, Any]) -> bool:
    """Eligible only when the view says so and nothing in it says otherwise (fails closed)."""
    return (
        view.get("eligible") is True
        and not view.get("ineligible_reasons")
        and not (view.get("suppressed") or view.get("erased") or view.get("tombstoned"))
        and view.get("consent_status") != "opted_out"
        and bool(view.get("email"))
    )


def default_subscribable(view: Mapping[str, Any]) -> bool:
    return default_eligible(view) and view.get("consent_status") == "opted_in"


def member_segments(view: Mapping[str, Any]) -> set[str]:
    """Segment names from the SEGMENTS item: {name: since} or a list of names."""
    memberships = view.get("memberships") or {}
    return set(memberships.keys() if isinstance(memberships, Mapping) else memberships)


def build_desired(
    view: Mapping[str, Any],
    destination: str,
    config: SyncConfig,
    *,
    field_values: FieldValues | None = None,
    eligible: ViewCheck = default_eligible,
    subscribable: ViewCheck = default_subscribable,
) -> DesiredContact:
    """The desired state of one contact. `field_values` (e.g. segflow.segments' personalisation) gives
    {merge tag: value}; without it values are read from each field's `source` and formatted here."""
    check_destination(destination)
    is_eligible = bool(eligible(view))
    routes = config.routes_by_segment()
    joined = [routes[name] for name in sorted(member_segments(view)) if name in routes] if is_eligible else []
    pairs: set[Membership] = set()
    for route in joined:
        pairs |= _route_memberships(route, destination)
    fields: dict[str, Any] = {}
    if is_eligible:
        fields = _personal_fields(view, destination, config, field_values)
        if destination == HUBSPOT:
            fields.update(_segment_property_values(joined, config))
    grouped = split_memberships(pairs)
    return DesiredContact(
        destination=destination,
        customer_id=str(view["customer_id"]),
        email=str(view.get("email") or "").strip().lower(),
        fields=fields,
        subscribe_if_new=is_eligible and bool(subscribable(view)),
        unsubscribe=view.get("consent_status") == "opted_out",
        eligible=is_eligible,
        tags=grouped["tags"],
        segments=grouped["segments"],
        lists=grouped["lists"],
    )


def _personal_fields(
    view: Mapping[str, Any], destination: str, config: SyncConfig, field_values: FieldValues | None
) -> dict[str, Any]:
    level = view.get("preference_level")
    level = level if level in PREFERENCE_LEVELS else DEFAULT_PREFERENCE
    if level == "none":
        return {}
    values = dict(field_values(view)) if field_values is not None else {}
    fields: dict[str, Any] = {}
    for route in config.fields:
        if route.behavioural and level != "full":
            continue
        if route.tag in values:
            value = values[route.tag]
        elif route.source is not None:
            value = format_value(view.get(route.source), route.type)
        else:
            continue  # an expression field without a value provider
        if destination == MAILCHIMP:
            fields[route.tag] = value
        elif route.hubspot_property:
            fields[route.hubspot_property] = value
    return fields


def _segment_property_values(joined: list[SegmentRoute], config: SyncConfig) -> dict[str, str]:
    """Each segment-driven property: the value of the highest-priority segment the contact is in, else ""
    (which clears a value left from a segment the contact has left)."""
    values = dict.fromkeys(config.segment_properties(), "")
    for route in sorted(joined, key=lambda r: (r.priority, r.segment), reverse=True):
        if route.hubspot_property and route.hubspot_value is not None:
            values[route.hubspot_property] = route.hubspot_value
    return values


def format_value(raw: Any, kind: str) -> Any:
    """A destination-ready value: "" for missing, numbers as numbers, dates as YYYY-MM-DD (birthdays
    MM/DD), lists joined, text single-spaced and cut to 255 characters."""
    if raw is None or raw == "" or (isinstance(raw, float) and math.isnan(raw)):
        return ""
    if kind == "number":
        if isinstance(raw, (bool, int, float, Decimal)):
            number = float(raw)
            return int(number) if number.is_integer() else round(number, 2)
        return ""
    if kind in ("date", "birthday"):
        moment = _as_date(raw)
        if moment is None:
            return ""
        return moment.strftime("%m/%d") if kind == "birthday" else moment.isoformat()
    if isinstance(raw, (list, tuple)):
        raw = ", ".join(str(v) for v in raw if v not in (None, ""))
    elif isinstance(raw, bool):
        raw = "yes" if raw else "no"
    return " ".join(str(raw).split())[:TEXT_LIMIT]


def _as_date(raw: Any) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return datetime.fromisoformat(str(raw)).date()
    except ValueError:
        return None


def withheld(desired: DesiredContact) -> DesiredContact:
    """The contact as if ineligible: nothing pushed, segflow's own tags, segments and lists removed."""
    return replace(
        desired,
        fields={},
        tags=frozenset(),
        segments=frozenset(),
        lists=frozenset(),
        subscribe_if_new=False,
        eligible=False,
    )
