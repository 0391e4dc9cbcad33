"""Shared test data for the sync engine: a small segments config, profile views, an in-memory destination."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from segflow.destinations.errors import DestinationError
from segflow.destinations.mailchimp_models import email_key
from segflow.destinations.results import CallStats, ContactResult, Outcome
from segflow.sync.adapters import MembershipResult, UpsertRequest
from segflow.sync.desired import FieldRoute, Membership, SegmentRoute, SyncConfig

CONFIG = SyncConfig(
    segments=(
        SegmentRoute("Champions", 20, mailchimp_tag="segflow: Champions", hubspot_list="segflow - Champions"),
        SegmentRoute(
            "At risk",
            10,
            mailchimp_tag="segflow: At risk",
            mailchimp_segment="segflow - At risk",
            hubspot_list="segflow - At risk",
            hubspot_property="segflow_lifecycle",
            hubspot_value="at_risk",
        ),
        SegmentRoute(
            "High CLV",
            40,
            mailchimp_tag="segflow: High CLV",
            hubspot_property="segflow_lifecycle",
            hubspot_value="high_value",
        ),
        SegmentRoute(
            "Big spenders", 50, mailchimp_tag="segflow: Big spenders", hubspot_list="segflow - Big spenders"
        ),
    ),
    fields=(
        FieldRoute("FNAME", "First name", "text", "first_name", False, "segflow_first_name"),
        FieldRoute("CITY", "City", "text", "city", False, "segflow_city"),
        FieldRoute("CLVTIER", "CLV tier", "text", "clv_tier", True, "segflow_clv_tier"),
        FieldRoute("ORDERS", "Orders", "number", "frequency", True, "segflow_orders"),
    ),
)
SEGMENTS = [route.segment for route in CONFIG.segments]


def view(i: int, *segments: str, **overrides: Any) -> dict[str, Any]:
    """A profile view of an eligible, opted-in contact with full personalisation."""
    base: dict[str, Any] = {
        "customer_id": f"c{i:05d}",
        "email": f"user{i}@example.com",
        "first_name": f"Name{i}",
        "city": "Lyon",
        "clv_tier": "high" if i % 2 else "low",
        "frequency": i % 7,
        "eligible": True,
        "ineligible_reasons": [],
        "consent_status": "opted_in",
        "preference_level": "full",
        "memberships": {s: "2026-10-01T00:00:00+00:00" for s in segments},
    }
    base.update(overrides)
    return base


def opted_out(i: int, *segments: str) -> dict[str, Any]:
    return view(i, *segments, consent_status="opted_out", eligible=False, ineligible_reasons=["opted_out"])


@dataclass
class MemoryDestination:
    """An in-memory destination behind the DestinationAdapter protocol, with scripted failures.

    `fail_upsert` maps an email to a ContactResult outcome code ("compliance", "failed", "retryable");
    `raise_on` names a phase ("prepare", "upsert", "change", "unsubscribe") that raises `error` once.
    """

    destination: str = "mailchimp"
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> {fields, status, id}
    groups: dict[str, set[str]] = field(default_factory=dict)  # name -> member refs
    fail_upsert: dict[str, str] = field(default_factory=dict)
    raise_on: str | None = None
    error: DestinationError | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)  # emails written by upserts and adds
    _ids: int = 100

    @property
    def uses_record_ids(self) -> bool:
        return self.destination == "hubspot"

    def stats(self) -> CallStats:
        return CallStats(calls=len(self.calls))

    def _maybe_raise(self, phase: str, partial: list[ContactResult] | None = None) -> None:
        if self.raise_on == phase and self.error is not None:
            error, self.raise_on = self.error, None
            error.results = partial or []
            raise error

    def prepare(
        self, upserting: bool, add_to: Collection[Membership], remove_from: Collection[Membership]
    ) -> None:
        self.calls.append(("prepare", (upserting, sorted(add_to), sorted(remove_from))))
        self._maybe_raise("prepare")

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[ContactResult]:
        self.calls.append(("upsert", [r.email for r in requests]))
        results = []
        for request in requests:
            key = email_key(request.email)
            failure = self.fail_upsert.get(key)
            if failure == "compliance":
                results.append(
                    ContactResult.for_email(
                        self.destination,
                        key,
                        "upsert",
                        Outcome.COMPLIANCE,
                        error_code="STATUS_UNSUBSCRIBED",
                        status="unsubscribed",
                    )
                )
                continue
            if failure in ("failed", "retryable"):
                results.append(
                    ContactResult.for_email(
                        self.destination,
                        key,
                        "upsert",
                        Outcome.FAILED,
                        error_code="BOOM",
                        retryable=failure == "retryable",
                    )
                )
                continue
            member = self.members.get(key)
            if member is None:
                self._ids += 1
                member = self.members[key] = {"fields": {}, "status": "subscribed", "id": str(self._ids)}
            member["fields"].update(request.fields)
            self.writes.append(key)
            results.append(
                ContactResult.for_email(
                    self.destination,
                    key,
                    "upsert",
                    Outcome.CREATED if request.create else Outcome.UPDATED,
                    destination_id=member["id"],
                    status=member["status"] if self.destination == "mailchimp" else None,
                )
            )
            if len(results) == len(requests) // 2:
                self._maybe_raise("upsert-midway", results)
        return results

    def ref_of(self, email: str) -> str:
        return self.members[email]["id"] if self.uses_record_ids else email

    def change(self, membership: Membership, add: Sequence[str], remove: Sequence[str]) -> MembershipResult:
        self.calls.append(("change", (membership, list(add), list(remove))))
        self._maybe_raise("change")
        group = self.groups.setdefault(membership[1], set())
        known = {self.ref_of(e) for e in self.members}
        outcome = MembershipResult()
        for ref in add:
            if ref in known:
                group.add(ref)
                outcome.added.add(ref)
                self.writes.append(ref)
            else:
                outcome.failed[ref] = "NOT_ON_AUDIENCE"
        for ref in remove:
            group.discard(ref)
            outcome.removed.add(ref)
        return outcome

    def unsubscribe(self, email: str) -> ContactResult:
        self.calls.append(("unsubscribe", email))
        self._maybe_raise("unsubscribe")
        self.members.setdefault(email, {"fields": {}, "id": "x"})["status"] = "unsubscribed"
        return ContactResult.for_email(
            self.destination, email, "unsubscribe", Outcome.OK, status="unsubscribed"
        )

    def member_of(self, name: str) -> set[str]:
        return set(self.groups.get(name, set()))
