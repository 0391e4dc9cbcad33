"""Optional read-back: what the destination says now versus what segflow recorded.

What a nightly run reads:
- every contact the destination confirmed (a recorded destination id, not gone), one by one: that read also
  sees deletions, archives and merges;
- in Mailchimp, when the run has eligible contacts segflow holds no member for because it may not subscribe
  them there (no opt-in: no create tells about them, yet they are pushed to HubSpot), ONE audience scan: the
  unsubscribed and cleaned members changed since the last scan, 1000 a page. Each scanned address that is a
  live customer's current address with no member recorded becomes an opt-out (`match_scanned`); the
  worker keeps the scan's cursor. HubSpot gets every eligible contact, so its confirmed ones are all there is.

Read the members / contacts with the clients' read methods (MailchimpClient.get_members and member_pages,
HubSpotClient.read_contacts and subscription_statuses), turn them into Observations, then `reconcile`:
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

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from segflow.destinations.results import ContactResult, Outcome
from segflow.sync.desired import DesiredContact
from segflow.sync.limits import HUBSPOT, MAILCHIMP, check_destination
from segflow.sync.state import GONE_STATUSES, SyncState, empty_state

OPT_OUT_STATUSES = ("unsubscribed", "cleaned")
SCAN_STATUSES = OPT_OUT_STATUSES  # the member statuses an audience scan pages through
# The next scan starts this long before the last one did: members changed while a scan ran, and clock
# differences between segflow and Mailchimp, are read again rather than missed.
SCAN_OVERLAP = timedelta(days=1)


@dataclass(frozen=True)
class Observation:
    present: bool
    destination_id: str | None = None
    status: str | None = None  # lower-cased destination status; None when the destination did not say
    checked: bool = True  # False: part of the read failed (a HubSpot status read), so nothing is known


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
        read = found is not None and found.outcome != Outcome.FAILED
        observed[key] = Observation(
            True, str(record.get("id")), "unsubscribed" if unsubscribed else None, checked=read
        )
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


def unconfirmed_to_scan(
    destination: str, desired: Iterable[DesiredContact], states: Mapping[str, SyncState]
) -> list[str]:
    """Plan side: the customer ids only an audience scan can tell about -- Mailchimp contacts that are eligible
    but not subscribed as new (a create would have told about an opt-out) and have no member recorded."""
    if destination != MAILCHIMP:
        return []
    return [
        d.customer_id
        for d in desired
        if d.eligible and d.email and not d.subscribe_if_new and unconfirmed(states.get(d.customer_id))
    ]


def confirmed_elsewhere(state: SyncState | None, email: str) -> bool:
    """The destination holds the contact under another address than the one to check."""
    return state is not None and bool(state.email) and state.email != email and not unconfirmed(state)


def mark_checked(
    destination: str,
    checks: Mapping[str, str],
    states: Mapping[str, SyncState],
    corrections: Iterable[SyncState],
    observations: Mapping[str, Observation],
    now: datetime,
) -> tuple[list[SyncState], list[tuple[str, str]]]:
    """After a check read: the states to write (the corrections found, and a checked marker on every contact
    the destination answered for -- `checks` maps customer id -> the address read) and the opt-outs to publish
    that `reconcile` cannot see: an opted-out new address of a contact the destination holds under its old
    one (the state describes the old member, so it is not marked; the ledger's opt-out ends the wait)."""
    out = {s.customer_id: s for s in corrections}
    opt_outs: list[tuple[str, str]] = []
    for customer_id, email in checks.items():
        seen = observations.get(email)
        if seen is None or not seen.checked:
            continue  # not answered: the contact stays unchecked
        state = out.get(customer_id) or states.get(customer_id)
        if confirmed_elsewhere(state, email) and seen.present and seen.status in OPT_OUT_STATUSES:
            opt_outs.append((customer_id, email))
            continue
        base = out.get(customer_id) or replace(
            state or empty_state(customer_id, destination), version=(state.version if state else 0) + 1
        )  # a correction already carries the next version
        out[customer_id] = replace(base, checked_email=email, checked_at=now.isoformat())
    return list(out.values()), opt_outs


@dataclass
class ScanMatches:
    states: list[SyncState] = field(default_factory=list)  # to reconcile, each under the scanned address
    unmatched: int = 0  # not the current address of a live customer
    known: int = 0  # a member or a refusal is recorded: the one-by-one reads follow those


def match_scanned(
    destination: str,
    emails: Iterable[str],
    owners: Mapping[str, str],
    current: Mapping[str, str],
    states: Mapping[str, SyncState],
) -> ScanMatches:
    """Worker side: which scanned addresses (lower-cased) concern a contact segflow holds no member for.
    `owners`: address -> customer id (the identity items); `current`: customer id -> the live profile's
    address (segflow pushes a customer under that one only); `states`: recorded states by customer id."""
    matches = ScanMatches()
    for email in dict.fromkeys(emails):
        customer_id = owners.get(email)
        if customer_id is None or current.get(customer_id) != email:
            matches.unmatched += 1
            continue
        state = states.get(customer_id)
        if not unconfirmed(state):
            matches.known += 1
            continue
        matches.states.append(replace(state or empty_state(customer_id, destination), email=email))
    return matches


@dataclass
class ScanTally:
    """An audience scan's totals over its pages."""

    pages: int = 0
    read: int = 0  # members read
    matched: int = 0  # contacts without a member the scan answered for
    unmatched: int = 0
    known: int = 0
    opt_outs: int = 0
    corrections: int = 0
    conflicts: int = 0
    findings: Counter[str] = field(default_factory=Counter)

    def add(self, matches: ScanMatches, found: Reconciliation, conflicts: int) -> None:
        self.matched += len(matches.states)
        self.unmatched += matches.unmatched
        self.known += matches.known
        self.opt_outs += len(found.opt_outs)
        self.corrections += len(found.corrections)
        self.conflicts += conflicts
        self.findings.update(found.findings)


@dataclass
class ScanProgress:
    """Where an audience scan is: the window it reads (members changed after `since`; None: all), when it
    started (the next cursor comes from that), the status being paged and how many of its members are done,
    the total_items each status reported, the tally so far, and how far the marking of deferred contacts got
    once the scan settled. Kept after every page and every marked chunk, so a delivery that ran out of time is
    continued by the next one."""

    since: datetime | None
    started: datetime
    status: str = SCAN_STATUSES[0]
    offset: int = 0
    totals: dict[str, list[int]] = field(default_factory=dict)
    tally: ScanTally = field(default_factory=ScanTally)
    marked: int = 0  # deferred contacts (in customer id order) already marked after the scan settled
    checked: int = 0  # of those, how many were marked checked and announced

    def page_done(self, status: str, offset: int, total_items: int) -> None:
        self.status, self.offset = status, offset
        seen = self.totals.setdefault(status, [])
        if total_items not in seen:
            seen.append(total_items)

    @property
    def settled(self) -> bool:
        """No status's total moved between pages: no member can have been skipped by shifted offsets."""
        return all(len(seen) <= 1 for seen in self.totals.values())

    def next_since(self) -> datetime:
        return self.started - SCAN_OVERLAP

    def to_json(self) -> str:
        tally = {**vars(self.tally), "findings": dict(self.tally.findings)}  # asdict would rebuild the Counter
        data = {
            "since": None if self.since is None else self.since.isoformat(),
            "started": self.started.isoformat(),
            "status": self.status,
            "offset": self.offset,
            "totals": self.totals,
            "tally": tally,
            "marked": self.marked,
            "checked": self.checked,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ScanProgress:
        data = json.loads(text)
        tally = dict(data["tally"])
        return cls(
            since=None if data["since"] is None else datetime.fromisoformat(data["since"]),
            started=datetime.fromisoformat(data["started"]),
            status=str(data["status"]),
            offset=int(data["offset"]),
            totals={k: [int(t) for t in v] for k, v in data["totals"].items()},
            tally=ScanTally(**{**tally, "findings": Counter(tally["findings"])}),
            marked=int(data.get("marked", 0)),  # progress kept before marking was resumable has none
            checked=int(data.get("checked", 0)),
        )


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
