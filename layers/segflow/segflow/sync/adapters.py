"""One shape for both destinations, so the applier does not care which it talks to.

An adapter wraps a destination client with what a sync needs around it: the target (Mailchimp audience,
HubSpot property group), the field and property definitions from the segments config, provisioning done
once per adapter (merge fields, properties, tags / static segments, lists: reads first, creates only for
what is missing) and the name -> id lookups of tags, segments and lists.

Memberships: the applier hands all of a work item's tag / static segment / list changes over at once
(change_all). Mailchimp sends small ones -- and the item's member updates with them -- as batch operations in
ONE POST /batches when that needs fewer requests than one call per name (see planner.MailchimpWrites, which
the call estimate shares); HubSpot keeps one call per list.

Unsubscribing: the clients have no call for it yet, so the adapters send it through the client's own
ApiSession (same retries, limits and statistics). Mailchimp: PUT the member with status "unsubscribed" (the
only status segflow ever sends to an existing member). HubSpot: communication preferences v4, UNSUBSCRIBED.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from segflow.destinations.errors import RequestRejected, redacted_body
from segflow.destinations.hubspot import HubSpotClient
from segflow.destinations.hubspot_models import ContactUpsert, PropertySpec
from segflow.destinations.hubspot_outcomes import is_compliance_error
from segflow.destinations.hubspot_outcomes import result as hubspot_result
from segflow.destinations.mailchimp import MEMBER, MailchimpClient, dedupe_members
from segflow.destinations.mailchimp_batches import BatchOperation
from segflow.destinations.mailchimp_models import (
    MemberUpsert,
    MergeFieldSpec,
    TagUpdate,
    email_key,
    subscriber_hash,
)
from segflow.destinations.mailchimp_outcomes import (
    batch_operation_result,
    member_result,
    problem_result,
    segment_operation_results,
    tags_operation_result,
)
from segflow.destinations.mailchimp_outcomes import result as mailchimp_result
from segflow.destinations.results import CallStats, ContactResult, Outcome
from segflow.sync.desired import Membership, SyncConfig
from segflow.sync.limits import HUBSPOT, MAILCHIMP
from segflow.sync.planner import MailchimpWrites

# segments-file merge field types -> HubSpot property types
HUBSPOT_TYPES = {
    "text": "string",
    "number": "number",
    "date": "date",
    "birthday": "string",
    "url": "string",
    "phone": "string",
    "zip": "string",
}
DEFAULT_GROUP = ("segflow", "segflow")
DEFAULT_SUBSCRIPTION_ID = 1


@dataclass(frozen=True)
class UpsertRequest:
    customer_id: str
    email: str
    fields: Mapping[str, Any]
    create: bool
    subscribe_if_new: bool


@dataclass
class MembershipResult:
    """Per member reference (Mailchimp email, HubSpot record id): confirmed or failed with a code.
    Adding someone already in, or removing someone not in, is confirmed: the end state is what was asked."""

    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    retryable: set[str] = field(default_factory=set)  # failed for now (throttled, server error, unreported)
    results: list[ContactResult] = field(default_factory=list)

    def confirm(self, ref: str, adding: bool) -> None:
        (self.added if adding else self.removed).add(ref)

    def fail(self, ref: str, code: str, retryable: bool = False) -> None:
        self.failed[ref] = code
        if retryable:
            self.retryable.add(ref)


@dataclass(frozen=True)
class MembershipChange:
    """Who joins and who leaves one tag / static segment / list (member references, see MembershipResult)."""

    membership: Membership
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass
class MembershipWrites:
    """What change_all confirmed: per membership, and the member updates sent along (Mailchimp)."""

    memberships: dict[Membership, MembershipResult] = field(default_factory=dict)
    upserts: list[ContactResult] = field(default_factory=list)

    def outcome(self, membership: Membership) -> MembershipResult:
        return self.memberships.setdefault(membership, MembershipResult())


class DestinationAdapter(Protocol):
    destination: str
    uses_record_ids: bool  # memberships refer to record ids (HubSpot) rather than emails (Mailchimp)

    def stats(self) -> CallStats: ...
    def prepare(
        self, upserting: bool, add_to: Collection[Membership], remove_from: Collection[Membership]
    ) -> None: ...
    def upsert(self, requests: Sequence[UpsertRequest]) -> list[ContactResult]: ...
    def change(
        self, membership: Membership, add: Sequence[str], remove: Sequence[str]
    ) -> MembershipResult: ...
    def unsubscribe(self, email: str) -> ContactResult: ...


class ChangesAllAtOnce(Protocol):
    """What an adapter offers when it can do better than one change() per membership (both adapters here)."""

    def bundles_updates(self, updates: int, changes: Sequence[MembershipChange]) -> bool:
        """True when member updates should wait and go to change_all together with these changes."""
        ...

    def change_all(
        self, changes: Sequence[MembershipChange], updates: Sequence[UpsertRequest] = ()
    ) -> MembershipWrites: ...


def change_each(adapter: DestinationAdapter, changes: Sequence[MembershipChange]) -> MembershipWrites:
    """One change() per membership, in order."""
    writes = MembershipWrites()
    for change in changes:
        writes.memberships[change.membership] = adapter.change(change.membership, change.add, change.remove)
    return writes


def _names(memberships: Collection[Membership]) -> set[str]:
    return {name for _, name in memberships}


def _pairs(changes: Sequence[MembershipChange], adding: bool) -> set[Membership]:
    return {c.membership for c in changes if (c.add if adding else c.remove)}


class MailchimpAdapter:
    destination = MAILCHIMP
    uses_record_ids = False

    def __init__(self, client: MailchimpClient, list_id: str, config: SyncConfig) -> None:
        self.client = client
        self.list_id = list_id
        self.field_specs = [MergeFieldSpec(f.tag, f.name[:50], f.type) for f in config.fields]  # type: ignore[arg-type]
        self._tags: dict[str, str] | None = None  # requested merge tag -> tag on the audience
        self._segments: dict[str, str] = {}  # tag / static segment name -> segment id

    def stats(self) -> CallStats:
        return self.client.stats()

    def prepare(
        self, upserting: bool, add_to: Collection[Membership], remove_from: Collection[Membership]
    ) -> None:
        if upserting and self._tags is None:
            self._tags = (
                self.client.ensure_merge_fields(self.list_id, self.field_specs) if self.field_specs else {}
            )
        if (_names(add_to) | _names(remove_from)) - self._segments.keys():
            self._refresh_segments()
        for name in sorted(_names(add_to) - self._segments.keys()):
            self._segments[name] = self._create_segment(name)

    def _refresh_segments(self) -> None:
        for segment in self.client.list_static_segments(self.list_id):
            self._segments[str(segment["name"])] = str(segment["id"])

    def _create_segment(self, name: str) -> str:
        try:
            return str(self.client.create_static_segment(self.list_id, name)["id"])
        except RequestRejected:
            self._refresh_segments()  # created meanwhile by a concurrent run, or a retried create that landed
            if name in self._segments:
                return self._segments[name]
            raise

    def _members(self, requests: Sequence[UpsertRequest]) -> list[MemberUpsert]:
        tags = self._tags or {}
        return [
            MemberUpsert(
                r.email,
                {tags.get(k, k): v for k, v in r.fields.items()},
                subscribe_if_new=r.create and r.subscribe_if_new,
            )
            for r in requests
        ]

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[ContactResult]:
        return self.client.upsert_members(self.list_id, self._members(requests))

    @staticmethod
    def _writes(updates: int, changes: Sequence[MembershipChange]) -> MailchimpWrites:
        tagged = {
            email_key(ref) for c in changes if c.membership[0] == "tag" for ref in (*c.add, *c.remove)
        }
        groups = {c.membership: (len(c.add), len(c.remove)) for c in changes}
        return MailchimpWrites(updates, len(tagged), groups)

    def bundles_updates(self, updates: int, changes: Sequence[MembershipChange]) -> bool:
        return updates > 0 and self._writes(updates, changes).batched()

    def change_all(
        self, changes: Sequence[MembershipChange], updates: Sequence[UpsertRequest] = ()
    ) -> MembershipWrites:
        """Updates (existing members, never a create) first, then the changes: all as batch operations in one
        POST /batches when small and cheaper, else single PUTs or an update batch, then one call per name."""
        if any(r.create for r in updates):
            raise ValueError("creates go through upsert(): only existing members are updated here")
        if self._writes(len(updates), changes).batched():
            return self._in_one_batch(changes, updates)
        upserts = self.upsert(updates) if updates else []
        return MembershipWrites(change_each(self, changes).memberships, upserts)

    def _in_one_batch(
        self, changes: Sequence[MembershipChange], updates: Sequence[UpsertRequest]
    ) -> MembershipWrites:
        self.prepare(bool(updates), _pairs(changes, True), _pairs(changes, False))
        writes = MembershipWrites({c.membership: MembershipResult() for c in changes})
        members, writes.upserts = dedupe_members(self._members(updates))
        operations: list[BatchOperation] = [
            self.client.member_update_operation(self.list_id, m) for m in members
        ]  # first: Mailchimp gets the updates before the memberships
        readers = []
        for address, tags in self._tag_changes(changes).items():
            operations.append(self.client.tags_operation(self.list_id, TagUpdate(address, tags)))
            readers.append(("tags", address, tags))
        for change in changes:
            if change.membership[0] == "tag":
                continue
            segment_id = self._segments.get(change.membership[1])
            if segment_id is None:  # not on the audience: nobody to remove (adds were provisioned above)
                writes.outcome(change.membership).removed.update(email_key(e) for e in change.remove)
                continue
            for operation, to_add, to_remove in self.client.segment_members_operations(
                self.list_id, segment_id, change.add, change.remove
            ):
                operations.append(operation)
                readers.append(("segment", change.membership, (to_add, to_remove)))
        if not operations:
            return writes
        outcomes = self.client.run_batch(operations)
        for member, found in zip(members, outcomes[: len(members)], strict=True):
            writes.upserts.append(
                batch_operation_result(member.email, found.status_code, found.response, "upsert")
            )
        for reader, found in zip(readers, outcomes[len(members) :], strict=True):
            if reader[0] == "tags":
                self._read_tags(writes, reader[1], reader[2], found.status_code, found.response)
            else:
                to_add, to_remove = reader[2]
                outcome = writes.outcome(reader[1])
                for item in segment_operation_results(found.status_code, found.response, to_add, to_remove):
                    self._read_member(outcome, item, item.operation == "segment_add")
        return writes

    @staticmethod
    def _tag_changes(changes: Sequence[MembershipChange]) -> dict[str, dict[str, bool]]:
        """address -> {tag: active}; an address both leaving and joining a tag (a case-only email change) ends
        up in it."""
        tags: dict[str, dict[str, bool]] = {}
        for change in changes:
            if change.membership[0] == "tag":
                for ref in change.remove:
                    tags.setdefault(email_key(ref), {})[change.membership[1]] = False
        for change in changes:
            if change.membership[0] == "tag":
                for ref in change.add:
                    tags.setdefault(email_key(ref), {})[change.membership[1]] = True
        return tags

    @classmethod
    def _read_tags(
        cls, writes: MembershipWrites, address: str, tags: dict[str, bool], status: int | None, body: Any
    ) -> None:
        item = tags_operation_result(address, tags, status, body)
        for name, active in tags.items():
            cls._read_member(writes.outcome(("tag", name)), item, active, record=False)
        writes.outcome(("tag", next(iter(tags)))).results.append(item)  # once per address

    @staticmethod
    def _read_member(
        outcome: MembershipResult, item: ContactResult, adding: bool, record: bool = True
    ) -> None:
        key = email_key(item.email)
        if record:
            outcome.results.append(item)
        if item.outcome in (Outcome.OK, Outcome.SKIPPED):
            outcome.confirm(key, adding)
        else:
            outcome.fail(key, item.error_code or "FAILED", item.retryable)

    def change(self, membership: Membership, add: Sequence[str], remove: Sequence[str]) -> MembershipResult:
        self.prepare(False, [membership] if add else [], [membership] if remove else [])  # looked up if new
        outcome = MembershipResult()
        segment_id = self._segments.get(membership[1])
        if segment_id is None:  # not on the audience: nobody to remove
            outcome.removed.update(email_key(e) for e in remove)
            return outcome
        for item in self.client.update_segment_members(self.list_id, segment_id, add, remove):
            self._read_member(outcome, item, item.operation == "segment_add")
        return outcome

    def unsubscribe(self, email: str) -> ContactResult:
        body = {"email_address": email, "status": "unsubscribed", "status_if_new": "unsubscribed"}
        try:
            response = self.client.http.request(
                "PUT",
                MEMBER,
                path_params={"list_id": self.list_id, "subscriber_hash": subscriber_hash(email)},
                json=body,
                accept=(400,),
            )
        except RequestRejected as exc:
            return mailchimp_result(email, "unsubscribe", Outcome.FAILED, error_code=f"HTTP_{exc.status}")
        if response.status_code == 400:  # forgotten: already out of the audience for good
            return problem_result(email, redacted_body(response.content), "unsubscribe", 400)
        member = response.json()
        if member.get("status") == "unsubscribed":
            return mailchimp_result(
                email, "unsubscribe", Outcome.OK, destination_id=member.get("id"), status="unsubscribed"
            )
        return member_result(email, member, "unsubscribe")


class HubSpotAdapter:
    destination = HUBSPOT
    uses_record_ids = True

    def __init__(
        self,
        client: HubSpotClient,
        config: SyncConfig,
        *,
        group: tuple[str, str] = DEFAULT_GROUP,  # (name, label) of the property group
        subscription_id: int = DEFAULT_SUBSCRIPTION_ID,  # the marketing email subscription to leave
    ) -> None:
        self.client = client
        self.group = group
        self.subscription_id = subscription_id
        self.property_specs = property_specs(config)
        self._properties_ready = False
        self._lists: dict[str, str | None] = {}  # list name -> id (None: not in the portal)

    def stats(self) -> CallStats:
        return self.client.stats()

    def prepare(
        self, upserting: bool, add_to: Collection[Membership], remove_from: Collection[Membership]
    ) -> None:
        if upserting and not self._properties_ready:
            self.client.ensure_property_group(*self.group)
            if self.property_specs:
                self.client.ensure_properties(self.property_specs, self.group[0])
            self._properties_ready = True
        for name in sorted(_names(add_to)):
            if self._lists.get(name) is None:
                self._lists[name] = self.client.ensure_list(name)
        for name in sorted(_names(remove_from) - self._lists.keys()):
            found = self.client.find_list(name)
            self._lists[name] = None if found is None else str(found["listId"])

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[ContactResult]:
        return self.client.upsert_contacts([ContactUpsert(r.email, dict(r.fields)) for r in requests])

    def bundles_updates(self, updates: int, changes: Sequence[MembershipChange]) -> bool:
        return False  # the upserts give the record ids that list memberships need

    def change_all(
        self, changes: Sequence[MembershipChange], updates: Sequence[UpsertRequest] = ()
    ) -> MembershipWrites:
        if updates:
            raise ValueError("HubSpot upserts go first: list memberships need their record ids")
        return change_each(self, changes)

    def change(self, membership: Membership, add: Sequence[str], remove: Sequence[str]) -> MembershipResult:
        self.prepare(False, [membership] if add else [], [membership] if remove else [])  # looked up if new
        outcome = MembershipResult()
        list_id = self._lists.get(membership[1])
        if list_id is None:  # not in the portal: nobody to remove
            outcome.removed.update(remove)
            return outcome
        if add:
            change = self.client.add_to_list(list_id, add)
            missing = set(change.missing)  # no such record: deleted or merged away in HubSpot
            outcome.added.update(r for r in add if r not in missing)
            outcome.failed.update(dict.fromkeys(missing, "RECORD_MISSING"))
        if remove:
            self.client.remove_from_list(list_id, remove)  # "missing" here means "not a member": done too
            outcome.removed.update(remove)
        return outcome

    def unsubscribe(self, email: str) -> ContactResult:
        route = f"{self.client.paths.preferences}/statuses/{{subscriber}}"
        body = {"statusState": "UNSUBSCRIBED", "channel": "EMAIL", "subscriptionId": self.subscription_id}
        try:
            response = self.client.http.request(
                "POST", route, path_params={"subscriber": email_key(email)}, json=body, accept=(400,)
            )
        except RequestRejected as exc:
            return hubspot_result(email, "unsubscribe", Outcome.FAILED, error_code=f"HTTP_{exc.status}")
        if response.status_code == 400:
            problem = redacted_body(response.content)
            if isinstance(problem, Mapping) and is_compliance_error(problem):  # GDPR-deleted: gone for good
                return hubspot_result(
                    email,
                    "unsubscribe",
                    Outcome.COMPLIANCE,
                    error_code="GDPR_BLOCKLISTED",
                    status="blocklisted",
                )
            return hubspot_result(email, "unsubscribe", Outcome.FAILED, error_code="HTTP_400")
        return hubspot_result(email, "unsubscribe", Outcome.OK, status="unsubscribed")


def property_specs(config: SyncConfig) -> list[PropertySpec]:
    """Custom properties: one per personalisation field with a HubSpot name, and one enumeration per
    segment-driven property whose options are the values the segments set."""
    specs = [
        PropertySpec(f.hubspot_property, f.name[:100], HUBSPOT_TYPES.get(f.type, "string"))  # type: ignore[arg-type]
        for f in config.fields
        if f.hubspot_property
    ]
    specs += [
        PropertySpec(name, name.replace("_", " ").capitalize(), "enumeration", options=tuple(values))
        for name, values in config.segment_properties().items()
    ]
    return specs
