"""Look before the first push: which contacts sync-plan may push, given what each destination told about them.

A person who opted out in one destination must not be pushed to another, yet segflow learns such an opt-out
only by reading the destination. So, across all configured destinations (plain data, no API clients here):
- blocked: a SyncState in ANY destination records an observed opt-out (unsubscribed, cleaned, a compliance
  refusal, forgotten) -> only removals of segflow's own memberships, everywhere -- unless the consent view
  shows an explicit opt-in newer than that observation (the ledger's rule: a destination opt-out is undone
  only by a newer explicit opt-in). This holds while the consent function has not yet recorded the opt-out.
- cleared: every destination has been checked for the contact's current address -- HubSpot: its records and
  subscription status were read (`checked_email`); Mailchimp: a member status was observed (create answer,
  member read) or an audience scan of its opt-outs, queued for the contact, finished (`checked_email`).
  A contact with something to push and not cleared is deferred: the plan queues the missing checks, and the
  workers announce the checked contacts (ContactsChecked), which sync-plan plans again.
- a contact Mailchimp is about to create gets its HubSpot pushes only once the create was answered: the
  create is the only way to learn a forgotten (permanently deleted) Mailchimp address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segflow.sync.desired import DesiredContact, withheld
from segflow.sync.limits import MAILCHIMP, ceil_div
from segflow.sync.planner import ContactPlan, plan_contact
from segflow.sync.reconcile import SCAN_STATUSES
from segflow.sync.state import OBSERVED_OPT_OUTS, SyncState

NOTE_AWAITING_CHECK = "awaiting_check"  # deferred until every destination was checked
NOTE_AWAITING_CREATE = "awaiting_mailchimp_create"  # HubSpot waits for Mailchimp's answer to a create
HUBSPOT_READ_BATCH = 100  # addresses per HubSpot batch read (records, subscription statuses)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def observed_at(state: SyncState) -> datetime | None:
    """When segflow recorded the state's status (its last result, else its last sync); None: unknown."""
    return _moment((state.last_result or {}).get("at")) or _moment(state.synced_at)


def explicit_opt_in_after(view: Mapping[str, Any], moment: datetime | None) -> bool:
    """The consent view's current status is an explicit opt-in given after `moment` (unknown: never)."""
    given = _moment(view.get("consent_at"))
    if moment is None or given is None or given.tzinfo is None or moment.tzinfo is None:
        return False
    explicit = view.get("consent_status") == "opted_in" and view.get("consent_basis") == "consent"
    return explicit and given > moment


def opted_out_in_a_destination(view: Mapping[str, Any], states: Mapping[str, SyncState | None]) -> str | None:
    """The destination holding an opt-out observation the consent view does not override; None if none."""
    for destination, state in sorted(states.items()):
        if state is None or (state.status or "") not in OBSERVED_OPT_OUTS:
            continue
        if not explicit_opt_in_after(view, observed_at(state)):
            return destination
    return None


def checked(destination: str, state: SyncState | None, email: str) -> bool:
    """Segflow read what `destination` holds for this address (an upsert alone says nothing)."""
    if state is None or not email:
        return False
    if state.checked_email == email:
        return True
    if state.email != email:
        return False
    if (state.status or "") in OBSERVED_OPT_OUTS:  # a refusal or a read-back finding: an answer
        return True
    return destination == MAILCHIMP and (state.destination_id is not None or state.status is not None)


def pushes(contact: ContactPlan) -> bool:
    """The plan writes contact data or adds a membership (removals and unsubscribes are not pushes)."""
    return contact.upserts or bool(contact.adds)


@dataclass
class Clearance:
    """One chunk's contacts after the look: what each destination's plan gets, what was held back and why,
    and the checks to queue ({destination: {customer id: address to check}})."""

    desired: dict[str, list[DesiredContact]]
    held: dict[str, Counter[str]]
    checks: dict[str, dict[str, str]]


def clear(
    views: Sequence[Mapping[str, Any]],
    desired: Mapping[str, Sequence[DesiredContact]],
    states: Mapping[str, Mapping[str, SyncState]],
) -> Clearance:
    """`desired[d][i]` is views[i]'s desired contact in destination d (every configured destination)."""
    destinations = sorted(desired)
    out = Clearance(
        {d: [] for d in destinations}, {d: Counter() for d in destinations}, {d: {} for d in destinations}
    )
    for index, view in enumerate(views):
        wants = {d: desired[d][index] for d in destinations}
        customer_id = str(view["customer_id"])
        recorded = {d: states[d].get(customer_id) for d in destinations}
        if opted_out_in_a_destination(view, recorded):
            for d in destinations:
                out.desired[d].append(withheld(wants[d]))  # removals only (no work: counted unchanged)
            continue
        plans = {d: plan_contact(wants[d], recorded[d]) for d in destinations}
        if not any(pushes(p) for p in plans.values()):
            for d in destinations:
                out.desired[d].append(wants[d])
            continue
        email = next(w.email for w in wants.values())
        unchecked = [d for d in destinations if not checked(d, recorded[d], email)]
        if unchecked:
            for d in unchecked:
                out.checks[d][customer_id] = email
            for d in destinations:
                out.held[d][NOTE_AWAITING_CHECK] += 1
            continue
        creating = MAILCHIMP in plans and plans[MAILCHIMP].action == "create"
        for d in destinations:
            if creating and d != MAILCHIMP and pushes(plans[d]):
                out.held[d][NOTE_AWAITING_CREATE] += 1
            else:
                out.desired[d].append(wants[d])
    return out


def check_calls(destination: str, contacts: int) -> int:
    """Calls the checks of `contacts` make at least: HubSpot reads records and statuses, 100 a call each;
    Mailchimp scans its audience's opt-outs, a page of 1000 per status at least (more in a large audience)."""
    if not contacts:
        return 0
    if destination == MAILCHIMP:
        return len(SCAN_STATUSES)
    return 2 * ceil_div(contacts, HUBSPOT_READ_BATCH)
