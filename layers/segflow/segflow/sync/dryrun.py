"""Dry run: the plan as a JSON-ready report, without calling anything.

Contacts are named by customer id and an email hash; field values are left out unless asked for, so the
report can be logged or shared without personal data.
"""

from __future__ import annotations

from typing import Any

from segflow.observability import pii_hash
from segflow.sync.desired import split_memberships
from segflow.sync.planner import ContactPlan, Plan, estimate_calls


def _changes(contact: ContactPlan) -> dict[str, dict[str, list[str]]]:
    adds, removes = split_memberships(contact.adds), split_memberships(contact.removes)
    return {
        kind: {"add": sorted(adds[kind]), "remove": sorted(removes[kind])}
        for kind in ("tags", "segments", "lists")
        if adds[kind] or removes[kind]
    }


def render_contact(contact: ContactPlan, include_values: bool = False) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "customer_id": contact.customer_id,
        "email_hash": pii_hash(contact.email),
        "action": contact.action,
        "changed_fields": list(contact.changed_fields),
        **_changes(contact),
        "unsubscribe": contact.unsubscribe,
    }
    if include_values:
        rendered["fields"] = dict(contact.fields)
    if contact.note:
        rendered["note"] = contact.note
    return rendered


def render_plan(
    plan: Plan, *, include_values: bool = False, contacts_per_item: int | None = None
) -> dict[str, Any]:
    return {
        "destination": plan.destination,
        "totals": plan.totals(),
        "held": dict(plan.held),
        "estimated_calls": estimate_calls(plan, contacts_per_item),
        "contacts": [render_contact(c, include_values) for c in plan.contacts],
    }
