"""Optional read-back: what the destination says now versus what segflow recorded.

Which contacts a reconcile item reads:
- every contact the destination confirmed (a recorded destination id, not gone);
- in Mailchimp also the eligible contacts segflow holds no member for because it may not subscribe them
  there (no opt-in): no create tells about them, yet they are pushed to HubSpot, so an unsubscribe they made
  in Mailchimp (another form, an earlier list) must be looked up. HubSpot gets every eligible contact, so
  its confirmed ones are all there is to read.

Read the members / contacts with the clients' read methods (MailchimpClient.get_members, HubSpotClient
.read_contacts and subscription_statuses), turn them into Observations, then `reconcile`:
- a manual unsubscribe (Mailchimp unsubscribed, HubSpot UNSUBSCRIBED from the marketing subscription or from
  all email) or a Mailchimp "cleaned" bounce -> a consent opt-out record with source "destination:<name>" for
  the ledger, and the state's status corrected (so nothing but removals follows) -- also for a contact segflow
  never confirmed there: its state then records the status, so segflow never tries to create it;
- a deletion (not found, HubSpot archived) or a Mailchimp archive -> the state corrected: no destination id,
  no memberships for a deleted contact; segflow does not re-create contacts removed by hand;
- a HubSpot merge (the email now resolves to another record id) -> the state takes the surviving id and
  forgets its lists, so the next sync adds the surviving record (adding an existing member is a no-op);
- a member back to subscribed / pending in the destination -> the status corrected, no consent inferred.
For a contact segflow never confirmed, only an opt-out counts: nothing else makes it a known member.
A forgotten (permanently deleted) Mailchimp email reads as absent, like one never added: it is learned only
from the refusal of a create.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from segflow.destinations.results import ContactResult, Outcome
from segflow.sync.desired import DesiredContact
from segflow.sync.limits import HUBSPOT, MAILCHIMP, check_destination
from segflow.sync.state import GONE_STATUSES, SyncState, empty_state

OPT_OUT_STATUSES = ("unsubscribed", "cleaned")


@dataclass(frozen=True)
class Observation:
    present: bool
    destination_id: str | None = None
    status: str | None = None  # lower-cased destination status; None when the destination did not say


def observe_mailchimp(members: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Observation]:
    """From MailchimpClient.get_members: {email: member or None}."""
    return {
        email.strip().lower(): Observation(False)
        if member is None
        else Observation(
            True, str(member.get("id") or "") or None, str(member.get("status") or "").lower() or None
        )
        for email, member in members.items()
    }


def observe_hubspot(
    records: Mapping[str, Mapping[str, Any] | None], subscriptions: Mapping[str, ContactResult] | None = None
) -> dict[str, Observation]:
    """From HubSpotClient.read_contacts ({email: record or None}) and, optionally, subscription_statuses.
    Only an unsubscribe becomes a status: a subscription status is not what segflow records as a contact's
    HubSpot status, and a failed status read says nothing."""
    observed = {}
    for email, record in records.items():
        key = email.strip().lower()
        if record is None or record.get("archived"):
            observed[key] = Observation(False)
            continue
        found = (subscriptions or {}).get(key)
        unsubscribed = found is not None and found.outcome == Outcome.COMPLIANCE
        observed[key] = Observation(True, str(record.get("id")), "unsubscribed" if unsubscribed else None)
    return observed


@dataclass
class Reconciliation:
    opt_outs: list[dict[str, Any]] = field(default_factory=list)  # consent records for the ledger
    corrections: list[SyncState] = field(default_factory=list)  # states to write (version bumped)
    findings: Counter[str] = field(default_factory=Counter)  # kind -> contacts

    def to_record(self) -> dict[str, Any]:
        return {
            "opt_outs": len(self.opt_outs),
            "corrections": len(self.corrections),
            "findings": dict(self.findings),
        }


def emails_to_read(states: Iterable[SyncState]) -> list[str]:
    """The addresses worth reading back: contacts the destination confirmed and that are not gone."""
    return sorted(
        {s.email for s in states if s.email and s.destination_id and (s.status or "") not in GONE_STATUSES}
    )


def unconfirmed(state: SyncState | None) -> bool:
    """No member segflow knows of and no refusal recorded: nothing says whether the person opted out there."""
    return state is None or (state.destination_id is None and not state.blocked)


def unconfirmed_to_read(
    destination: str, desired: Iterable[DesiredContact], states: Mapping[str, SyncState]
) -> list[str]:
    """Plan side: the customer ids to read back although segflow holds no member for them -- Mailchimp
    contacts that are eligible but not subscribed as new (a create would have told about an opt-out)."""
    if destination != MAILCHIMP:
        return []
    return [
        d.customer_id
        for d in desired
        if d.eligible and d.email and not d.subscribe_if_new and unconfirmed(states.get(d.customer_id))
    ]


def states_to_check(
    destination: str,
    customer_ids: Iterable[str],
    states: Mapping[str, SyncState],
    emails: Mapping[str, str],
) -> list[SyncState]:
    """Worker side: the recorded states, with each unconfirmed contact that has a current address (`emails`,
    from the profile) as its recorded state -- or an empty one -- under that address."""
    checked: list[SyncState] = []
    for customer_id in dict.fromkeys(customer_ids):
        state = states.get(customer_id)
        if state is not None and not unconfirmed(state):
            checked.append(state)
        elif emails.get(customer_id):
            checked.append(replace(state or empty_state(customer_id, destination), email=emails[customer_id]))
    return checked


def addresses(states: Iterable[SyncState]) -> list[str]:
    """Every address to read for `states_to_check`: confirmed contacts and unconfirmed ones."""
    states = list(states)
    extra = {s.email for s in states if s.email and unconfirmed(s)}
    return sorted(set(emails_to_read(states)) | extra)


def reconcile(
    destination: str, states: Iterable[SyncState], observations: Mapping[str, Observation], now: datetime
) -> Reconciliation:
    check_destination(destination)
    outcome = Reconciliation()
    for state in states:
        seen = observations.get((state.email or "").lower())
        if seen is None or state.destination != destination or (state.status or "") in GONE_STATUSES:
            continue
        kind, corrected = _compare(destination, state, seen)
        if kind is None:
            continue
        outcome.findings[kind] += 1
        last = {"outcome": "reconciled", "finding": kind, "at": now.isoformat()}
        outcome.corrections.append(replace(corrected, last_result=last, version=state.version + 1))
        if kind in OPT_OUT_STATUSES:
            outcome.opt_outs.append(
                {
                    "email": state.email,
                    "customer_id": state.customer_id,
                    "channel": "email",
                    "status": "opted_out",
                    "timestamp": now.isoformat(),
                    "source": f"destination:{destination}",
                    "reason": kind,
                }
            )
    return outcome


def _compare(destination: str, state: SyncState, seen: Observation) -> tuple[str | None, SyncState]:
    if unconfirmed(state):  # never confirmed there: only an opt-out is news (and worth a state)
        if seen.present and seen.status in OPT_OUT_STATUSES:
            return seen.status, replace(state, status=seen.status, destination_id=seen.destination_id)
        return None, state
    if not seen.present:
        if state.destination_id is None:
            return None, state
        return "deleted", replace(state.with_memberships(()), status="deleted", destination_id=None)
    status = seen.status
    if status in OPT_OUT_STATUSES and state.status != status:
        return status, replace(
            state, status=status, destination_id=seen.destination_id or state.destination_id
        )
    if status == "archived" and state.status != "archived":
        return "archived", replace(state, status="archived")
    if destination == HUBSPOT and state.destination_id and seen.destination_id != state.destination_id:
        return "merged", replace(state.with_memberships(()), destination_id=seen.destination_id)
    if status and state.status and status != state.status and status not in ("archived", *OPT_OUT_STATUSES):
        return "status_changed", replace(state, status=status)
    return None, state
