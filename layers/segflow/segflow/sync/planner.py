"""Diff desired destination state against the last confirmed state (pure: no I/O, no clock).

Per contact the plan says: create | update (with the changed field names) | none; which segflow tags,
static segments or lists to add and remove; and whether to propagate an unsubscribe. Safety rules:
- nothing but removals for a contact whose destination status is unsubscribed, cleaned, forgotten,
  archived, deleted or blocklisted, and never a subscribe;
- Mailchimp creates only contacts who may be subscribed as new (a marketing audience member without an
  opt-in cannot be mailed); everyone else already on the audience is updated without a status;
- removals only touch what segflow itself added (the recorded state), never other tags or lists;
- two customers with one email: the first (by customer id) is planned, the others are held.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from segflow.chunking import chunks
from segflow.sync.desired import DesiredContact, Membership
from segflow.sync.limits import (
    CONTACTS_PER_ITEM,
    HUBSPOT_MEMBERSHIP_CHUNK,
    HUBSPOT_UPSERT_BATCH,
    MAILCHIMP,
    MAILCHIMP_MEMBER_BATCH,
    MAILCHIMP_SEGMENT_CHANGE,
    ceil_div,
)
from segflow.sync.state import SyncState, empty_state

Action = Literal["create", "update", "none"]
NOTE_NOT_SUBSCRIBABLE = "not_subscribable"  # Mailchimp: not on the audience and no opt-in to add them with
NOTE_DUPLICATE_EMAIL = "duplicate_email"


@dataclass(frozen=True)
class ContactPlan:
    desired: DesiredContact
    action: Action = "none"
    fields: Mapping[str, Any] = field(
        default_factory=dict
    )  # values to send (all on create, changed on update)
    adds: frozenset[Membership] = frozenset()
    removes: frozenset[Membership] = frozenset()
    unsubscribe: bool = False
    previous_email: str | None = None  # the address removals and the unsubscribe apply to
    destination_id: str | None = None  # as recorded (HubSpot record id for list changes)
    note: str | None = None  # why writes were held back

    @property
    def customer_id(self) -> str:
        return self.desired.customer_id

    @property
    def destination(self) -> str:
        return self.desired.destination

    @property
    def email(self) -> str:
        return self.desired.email

    @property
    def removal_email(self) -> str:
        return self.previous_email or self.desired.email

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(sorted(self.fields))

    @property
    def upserts(self) -> bool:
        return self.action != "none"

    @property
    def has_work(self) -> bool:
        return self.upserts or bool(self.adds or self.removes) or self.unsubscribe

    def to_dict(self) -> dict[str, Any]:
        return {
            "desired": self.desired.to_dict(),
            "action": self.action,
            "fields": dict(self.fields),
            "adds": sorted(map(list, self.adds)),
            "removes": sorted(map(list, self.removes)),
            "unsubscribe": self.unsubscribe,
            "previous_email": self.previous_email,
            "destination_id": self.destination_id,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContactPlan:
        return cls(
            desired=DesiredContact.from_dict(data["desired"]),
            action=data.get("action", "none"),
            fields=dict(data.get("fields") or {}),
            adds=frozenset((k, n) for k, n in data.get("adds") or ()),
            removes=frozenset((k, n) for k, n in data.get("removes") or ()),
            unsubscribe=bool(data.get("unsubscribe")),
            previous_email=data.get("previous_email"),
            destination_id=data.get("destination_id"),
            note=data.get("note"),
        )


@dataclass(frozen=True)
class Plan:
    destination: str
    contacts: tuple[ContactPlan, ...] = ()  # contacts with something to do, by customer id
    unchanged: int = 0
    held: Mapping[str, int] = field(default_factory=dict)  # note -> contacts held back with nothing to do

    def totals(self) -> dict[str, int]:
        return {
            "contacts_with_work": len(self.contacts),
            "creates": sum(c.action == "create" for c in self.contacts),
            "updates": sum(c.action == "update" for c in self.contacts),
            "membership_adds": sum(len(c.adds) for c in self.contacts),
            "membership_removes": sum(len(c.removes) for c in self.contacts),
            "unsubscribes": sum(c.unsubscribe for c in self.contacts),
            "unchanged": self.unchanged,
            "held": sum(self.held.values()),
        }


def _same(a: Any, b: Any) -> bool:
    return ("" if a is None else a) == ("" if b is None else b)


def changed_fields(desired: Mapping[str, Any], pushed: Mapping[str, Any]) -> list[str]:
    """Names whose desired value differs from the last pushed one; a field no longer desired is cleared."""
    return sorted(n for n in set(desired) | set(pushed) if not _same(desired.get(n, ""), pushed.get(n, "")))


def plan_contact(desired: DesiredContact, state: SyncState | None) -> ContactPlan:
    state = state or empty_state(desired.customer_id, desired.destination)
    if state.destination != desired.destination or state.customer_id != desired.customer_id:
        raise ValueError("state and desired contact belong to different contacts or destinations")
    have = state.memberships()
    email_changed = bool(state.email) and state.email != desired.email
    previous_email, destination_id = state.email or None, state.destination_id
    if state.blocked and not email_changed:
        return ContactPlan(
            desired,
            removes=have,
            note=f"destination_status:{state.status}",
            previous_email=previous_email,
            destination_id=destination_id,
        )

    want = desired.memberships() if desired.eligible else frozenset()
    known = state.known and not email_changed
    action: Action = "none"
    fields: dict[str, Any] = {}
    note = None
    if desired.eligible and not known:
        if desired.destination == MAILCHIMP and not desired.subscribe_if_new:
            want, note = frozenset(), NOTE_NOT_SUBSCRIBABLE
        else:
            action, fields = "create", dict(desired.fields)
    elif desired.eligible:
        changed = changed_fields(desired.fields, state.fields)
        if changed:
            action, fields = "update", {n: desired.fields.get(n, "") for n in changed}
    adds, removes = (want, have) if email_changed else (want - have, have - want)
    unsubscribe = desired.unsubscribe and state.known and not state.blocked
    return ContactPlan(
        desired,
        action=action,
        fields=fields,
        adds=adds,
        removes=removes,
        unsubscribe=unsubscribe,
        note=note,
        previous_email=previous_email,
        destination_id=destination_id,
    )


def plan(
    desired: Iterable[DesiredContact], states: Mapping[str, SyncState], destination: str | None = None
) -> Plan:
    """One destination's plan. `states` maps customer id -> SyncState (absent: never synced)."""
    contacts: list[ContactPlan] = []
    held: Counter[str] = Counter()
    unchanged = 0
    owners: dict[str, str] = {}  # email -> the customer planned for it
    seen: set[str] = set()
    for wanted in sorted(desired, key=lambda d: d.customer_id):
        destination = destination or wanted.destination
        if wanted.destination != destination:
            raise ValueError("a plan covers one destination")
        if wanted.customer_id in seen:
            raise ValueError(f"customer {wanted.customer_id} is listed twice")
        seen.add(wanted.customer_id)
        if wanted.email and owners.setdefault(wanted.email, wanted.customer_id) != wanted.customer_id:
            held[NOTE_DUPLICATE_EMAIL] += 1
            continue
        contact = plan_contact(wanted, states.get(wanted.customer_id))
        if contact.has_work:
            contacts.append(contact)
        elif contact.note:
            held[contact.note] += 1
        else:
            unchanged += 1
    return Plan(destination or "", tuple(contacts), unchanged, dict(held))


# ---- call estimates ----------------------------------------------------------------------------------


def _membership_groups(contacts: Iterable[ContactPlan]) -> dict[Membership, tuple[int, int]]:
    """(kind, name) -> (contacts added, contacts removed): one call per pair and item in the applier."""
    adds: Counter[Membership] = Counter(pair for c in contacts for pair in c.adds)
    removes: Counter[Membership] = Counter(pair for c in contacts for pair in c.removes)
    return {pair: (adds[pair], removes[pair]) for pair in adds.keys() | removes.keys()}


# Mailchimp batch operations (mirrors of the client's constants; a unit test checks they match)
MAILCHIMP_BATCH_REQUESTS = 3  # POST /batches and its status reads (the results archive is read from S3)
MAILCHIMP_BATCH_OPERATIONS = 500  # segflow's cap per batch (mailchimp_batches.MAX_OPERATIONS)
MAILCHIMP_SINGLE_UPDATES = 3  # at most this many updates go as single PUTs (mailchimp.BATCH_UPDATES_ABOVE)
# Membership changes go in a batch only while they are small (at most half a batch): a batch's status reads
# grow with the time Mailchimp needs for its operations (one per tagged member), while one call per tag /
# static segment costs the same whatever the number of contacts. Full syncs stay on that path.
MAILCHIMP_BATCHED_MEMBERSHIP_OPERATIONS = 250


@dataclass(frozen=True)
class MailchimpWrites:
    """One work item's member updates and tag / static segment changes, priced both ways: direct calls (single
    PUTs or an update batch, then one call per name and 500 members) or everything in batch operations (one
    PUT per update, one tags call per member address, one static segment call per 500 members)."""

    updates: int
    tag_members: int  # member addresses whose tags change
    groups: Mapping[Membership, tuple[int, int]] = field(default_factory=dict)  # pair -> (adds, removes)

    def update_calls(self) -> int:
        if self.updates <= MAILCHIMP_SINGLE_UPDATES:
            return self.updates
        return MAILCHIMP_BATCH_REQUESTS * ceil_div(self.updates, MAILCHIMP_BATCH_OPERATIONS)

    def membership_calls(self) -> int:
        return sum(
            max(ceil_div(a, MAILCHIMP_SEGMENT_CHANGE), ceil_div(r, MAILCHIMP_SEGMENT_CHANGE))
            for a, r in self.groups.values()
        )

    def membership_operations(self) -> int:
        segment_calls = sum(
            max(ceil_div(a, MAILCHIMP_SEGMENT_CHANGE), ceil_div(r, MAILCHIMP_SEGMENT_CHANGE))
            for (kind, _), (a, r) in self.groups.items()
            if kind != "tag"
        )
        return self.tag_members + segment_calls

    def batch_calls(self) -> int:
        operations = self.updates + self.membership_operations()
        return MAILCHIMP_BATCH_REQUESTS * ceil_div(operations, MAILCHIMP_BATCH_OPERATIONS)

    def batched(self) -> bool:
        """Send the memberships (and the updates with them) as batch operations: small and fewer requests."""
        operations = self.membership_operations()
        return (
            0 < operations <= MAILCHIMP_BATCHED_MEMBERSHIP_OPERATIONS
            and self.batch_calls() < self.update_calls() + self.membership_calls()
        )


def mailchimp_writes(contacts: Iterable[ContactPlan]) -> MailchimpWrites:
    """What an item's contacts ask of Mailchimp after the creates (which always go in member batches)."""
    contacts = list(contacts)
    tagged = {c.email.strip().lower() for c in contacts if any(k == "tag" for k, _ in c.adds)}
    tagged |= {c.removal_email.strip().lower() for c in contacts if any(k == "tag" for k, _ in c.removes)}
    updates = sum(c.action == "update" for c in contacts)
    return MailchimpWrites(updates, len(tagged), _membership_groups(contacts))


def item_calls(destination: str, contacts: Sequence[ContactPlan]) -> dict[str, int]:
    """Calls one work item makes for its contacts (provisioning excluded), in the applier's order."""
    upserts = [c for c in contacts if c.upserts]
    single = batches = 0
    if destination == MAILCHIMP:
        creates = ceil_div(sum(c.action == "create" for c in upserts), MAILCHIMP_MEMBER_BATCH)
        writes = mailchimp_writes(contacts)
        if writes.batched():
            batches, membership = writes.batch_calls(), 0
        elif writes.updates > MAILCHIMP_SINGLE_UPDATES:
            batches, membership = writes.update_calls(), writes.membership_calls()
        else:
            single, membership = writes.updates, writes.membership_calls()
    else:
        creates = ceil_div(len(upserts), HUBSPOT_UPSERT_BATCH)
        membership = sum(
            ceil_div(a, HUBSPOT_MEMBERSHIP_CHUNK) + ceil_div(r, HUBSPOT_MEMBERSHIP_CHUNK)
            for a, r in _membership_groups(contacts).values()
        )
    return {
        "upsert_batches": creates,
        "member_updates": single,
        "batch_requests": batches,
        "membership": membership,
        "unsubscribe": sum(c.unsubscribe for c in contacts),
    }


def estimate_calls(plan: Plan, contacts_per_item: int | None = None) -> dict[str, int]:
    """API calls applying the plan makes, without calling anything.

    `contact_calls` is exact when the destination still matches the recorded state and no request is
    retried; Mailchimp batch operations (`batch_requests`) count a submit and two status reads per batch
    (the fake's pace; a real batch may need more reads) and leave out the results download from S3.
    `provisioning_reads` assume an adapter that has provisioned nothing yet in this process;
    `provisioning_creates_at_most` bounds the creates (fields, tags, segments, lists) on a new account.
    """
    size = contacts_per_item or CONTACTS_PER_ITEM.get(plan.destination, 1)
    totals: Counter[str] = Counter()
    for chunk in chunks(plan.contacts, size):
        totals.update(item_calls(plan.destination, chunk))
    upsert_fields = {name for c in plan.contacts if c.upserts for name in c.fields}
    used_names = {pair for c in plan.contacts for pair in c.adds | c.removes}
    added_names = {pair for c in plan.contacts for pair in c.adds}
    any_upsert = any(c.upserts for c in plan.contacts)
    if plan.destination == MAILCHIMP:
        reads = int(any_upsert) + int(bool(used_names))  # merge fields page, static segments page
        creates = len(upsert_fields) + len({name for _, name in added_names})
    else:
        reads = 2 * int(any_upsert) + len({name for _, name in used_names})  # group, properties, each list
        creates = int(any_upsert) + len(upsert_fields) + len(added_names)
    contact_calls = sum(totals.values())
    return {
        **{
            key: totals.get(key, 0)
            for key in ("upsert_batches", "member_updates", "batch_requests", "membership", "unsubscribe")
        },
        "contact_calls": contact_calls,
        "provisioning_reads": reads,
        "provisioning_creates_at_most": creates,
        "total": contact_calls + reads,
        "work_items": len(chunks(plan.contacts, size)),
    }
