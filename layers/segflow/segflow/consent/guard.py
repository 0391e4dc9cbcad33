"""The last line of defence before any destination write.

`may_push` re-derives the policy decision from the consent fields stored on the contact (see
`eligibility.profile_fields`) instead of trusting the `eligible` flag alone, so a stale flag, a missing
consent item or a malformed view can only ever block a push, never allow one. It covers writes that send a
contact's data or subscription to a destination; removing a tag or segment membership, propagating an
opt-out and erasure deletes are reductions and are not gated by it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from segflow.consent.eligibility import email_is_valid
from segflow.consent.models import ConsentState, as_utc
from segflow.consent.policy import ConsentPolicy, decide, default_policy, resolve_region

_STATUSES = {"opted_in", "opted_out", "unknown"}
_BASES = {"consent", "legitimate_interest", "contract"}
# Destination statuses under which an existing member may still receive our updates (never a status
# change). Anything else (unsubscribed, cleaned, forgotten, blocklisted, an unknown value) blocks.
PUSHABLE_DESTINATION_STATUSES = {"", "subscribed", "pending", "transactional", "archived", "not_specified"}
# Statuses under which a contact may be created or set as subscribed: absent, or never a subscriber.
SUBSCRIBABLE_DESTINATION_STATUSES = {"", "subscribed", "transactional", "not_specified"}


def state_from_view(view: Mapping[str, Any]) -> ConsentState:
    """The consent state as stored on a contact view (fields written by `profile_fields`)."""
    basis = view.get("consent_basis")
    return ConsentState(
        status=view["consent_status"],
        basis=basis if basis in _BASES else None,
        at=as_utc(view.get("consent_at")),
        source=view.get("consent_source"),
        explicit_opt_in=view.get("consent_explicit") is True,
        double_opt_in_confirmed=view.get("consent_double_opt_in") is True,
        destination_opt_out=view.get("destination_opt_out") is not False,
    )


def _destination_status(view: Mapping[str, Any], override: str | None = None) -> str:
    value = override if override is not None else view.get("destination_status")
    return str(value or "").strip().lower()


def _allowed(view: Mapping[str, Any], now: datetime | None, policy: ConsentPolicy | None) -> bool:
    policy = policy or default_policy()
    now = as_utc(now) or datetime.now(timezone.utc)
    if not email_is_valid(view.get("email")):
        return False
    if view.get("eligible") is not True or view.get("ineligible_reasons"):
        return False
    if view.get("suppressed") or view.get("erased") or view.get("tombstoned"):
        return False
    if view.get("consent_status") not in _STATUSES:
        return False
    if _destination_status(view) not in PUSHABLE_DESTINATION_STATUSES:
        return False
    state = state_from_view(view)
    region = resolve_region(view.get("consent_region"), view.get("country"), policy)
    return decide(state, region, view.get("last_order_at"), now, policy).allowed


def may_push(contact_view: Any, *, now: datetime | None = None, policy: ConsentPolicy | None = None) -> bool:
    """True only when the view proves the contact may be sent to a destination; False for anything else,
    including views that are malformed or missing fields (it never raises)."""
    try:
        return isinstance(contact_view, Mapping) and _allowed(contact_view, now, policy)
    except Exception:  # a guard fails closed: any surprise means "not provably allowed"
        return False


def may_subscribe_new(
    contact_view: Any,
    destination_status: str | None = None,
    *,
    now: datetime | None = None,
    policy: ConsentPolicy | None = None,
) -> bool:
    """May the contact be created (or set) as subscribed in a destination? Only with an opt-in the policy
    accepts, and never when the destination has it unsubscribed, cleaned, forgotten, archived or pending
    (pending is the destination's own confirmation flow; archived hides the member's real status)."""
    try:
        if not isinstance(contact_view, Mapping):
            return False
        status = _destination_status(contact_view, destination_status)
        if status not in SUBSCRIBABLE_DESTINATION_STATUSES:
            return False
        view = {**contact_view, "destination_status": status}
        return contact_view.get("consent_status") == "opted_in" and _allowed(view, now, policy)
    except Exception:
        return False
