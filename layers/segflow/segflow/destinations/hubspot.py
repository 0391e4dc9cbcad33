"""HubSpot client: contact properties, batch upsert/read by email, lists v3, GDPR delete, subscriptions.

Every request first takes a slot from a rolling 10-second limiter shared by all threads of the process
(a margin under the app's tier limit), and the X-HubSpot-RateLimit-* headers slow it further when
other processes use the same app. A 429 with policy DAILY raises DailyLimitReached at once.
"""
from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import requests

from segflow.destinations.errors import (
    DailyLimitReached,
    DestinationError,
    ProvisioningConflict,
    RequestRejected,
    redacted_body,
)
from segflow.chunking import chunks
from segflow.destinations.http import ApiSession, RetryPolicy, Timeouts
from segflow.destinations.hubspot_models import ContactUpsert, PropertySpec, email_key
from segflow.destinations.hubspot_outcomes import (
    DESTINATION,
    dedupe_contacts,
    failed,
    result,
    subscription_result,
    subscription_results,
    trace_id,
    upsert_results,
)
from segflow.destinations.ratelimit import (
    DEFAULT_MARGIN,
    HUBSPOT_TIER_LIMITS,
    HUBSPOT_WINDOW_S,
    Clock,
    Sleep,
    WindowRateLimiter,
    budget,
    shared_rate_limiter,
)
from segflow.destinations.results import CallStats, ContactResult, Outcome
from segflow.observability import logger

HUBSPOT_URL = "https://api.hubapi.com"
BATCH_SIZE = 100  # contacts batch upsert/read; also the status batch read (its spec sets no limit)
MEMBERSHIP_CHUNK = 1_000
CONTACT_OBJECT_TYPE_ID = "0-1"
# the 10-second window frees slowly: start the backoff at a second
HUBSPOT_TIMEOUTS = Timeouts(connect_s=5.0, read_s=60.0)
HUBSPOT_RETRY = RetryPolicy(max_attempts=8, base_delay_s=1.0, max_delay_s=20.0, max_total_s=120.0)
Tier = Literal["free", "starter", "professional", "enterprise"]


@dataclass(frozen=True)
class HubSpotPaths:
    """Path prefixes; HubSpot is moving to date-versioned paths, so they are configuration."""

    contacts: str = "/crm/v3/objects/contacts"
    properties: str = "/crm/v3/properties/contacts"
    lists: str = "/crm/v3/lists"
    preferences: str = "/communication-preferences/v4"


@dataclass(frozen=True)
class PropertyReport:
    created: list[str] = field(default_factory=list)
    options_added: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MembershipChange:
    changed: list[str] = field(default_factory=list)  # record ids added (or removed)
    missing: list[str] = field(default_factory=list)  # record ids HubSpot did not find / were not members


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_policy(response: requests.Response) -> str | None:
    """policyName of a 429 body ("TEN_SECONDLY_ROLLING", "DAILY", ...), None when absent."""
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("policyName") if isinstance(body, dict) else None


class HubSpotClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = HUBSPOT_URL,
        paths: HubSpotPaths = HubSpotPaths(),
        tier: Tier = "free",
        rate_limit: int | None = None,  # requests per 10 s the app may make; defaults to the tier's
        margin: float = DEFAULT_MARGIN,
        limiter: WindowRateLimiter | None = None,
        pool_size: int = 10,
        timeouts: Timeouts = HUBSPOT_TIMEOUTS,
        policy: RetryPolicy = HUBSPOT_RETRY,
        membership_chunk: int = MEMBERSHIP_CHUNK,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        session: Any = None,
    ) -> None:
        self.paths = paths
        self.membership_chunk = membership_chunk
        allowed = budget(rate_limit or HUBSPOT_TIER_LIMITS[tier], margin)
        self.limiter = limiter or shared_rate_limiter(token, allowed, HUBSPOT_WINDOW_S)
        self.http = ApiSession(
            DESTINATION,
            base_url,
            pool_size=pool_size,
            timeouts=timeouts,
            policy=policy,
            headers={"Authorization": f"Bearer {token}"},
            before_send=self.limiter.acquire,
            on_response=self._observe,
            fatal=self._fatal,
            sleep=sleep,
            clock=clock,
            rng=rng,
            session=session,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def stats(self) -> CallStats:
        return self.http.snapshot()

    # ---- rate-limit hooks ----------------------------------------------------------------------------

    def _observe(self, response: requests.Response) -> None:
        interval_ms = _int_header(response, "X-HubSpot-RateLimit-Interval-Milliseconds")
        self.limiter.observe(
            _int_header(response, "X-HubSpot-RateLimit-Remaining"),
            interval_ms / 1000 if interval_ms else None,
            _int_header(response, "X-HubSpot-RateLimit-Max"),
        )
        if rate_limit_policy(response) == "TEN_SECONDLY_ROLLING":
            self.limiter.pause(1.0)  # someone else is using the app's window: everyone here steps back

    @staticmethod
    def _fatal(response: requests.Response, label: str, attempt: int) -> DestinationError | None:
        if rate_limit_policy(response) == "DAILY":
            return DailyLimitReached(DESTINATION, label, "daily request quota used up; resume after it resets",
                                     status=429, body=redacted_body(response.content), attempts=attempt)
        return None

    def _json(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.http.request(method, route, **kwargs)
        return response.json() if response.content else None

    # ---- properties -----------------------------------------------------------------------------------

    def ensure_property_group(self, name: str, label: str) -> None:
        group = f"{self.paths.properties}/groups/{{group_name}}"
        found = self.http.request("GET", group, path_params={"group_name": name}, accept=(404,))
        if found.status_code == 404:
            # 409: created meanwhile (a retried create or a concurrent run), which is what we want
            self.http.request("POST", f"{self.paths.properties}/groups", json={"name": name, "label": label},
                              accept=(409,))

    def list_properties(self) -> dict[str, dict[str, Any]]:
        body = self._json("GET", self.paths.properties)
        return {p["name"]: p for p in body.get("results") or []}

    def ensure_properties(self, specs: Sequence[PropertySpec], group_name: str) -> PropertyReport:
        """Create missing properties and add missing enumeration options; never change existing ones."""
        existing = self.list_properties()
        report = PropertyReport()
        for spec in specs:
            current = existing.get(spec.name)
            if current is None:
                created = self.http.request("POST", self.paths.properties, json=spec.create_body(group_name),
                                            accept=(409,))
                if created.status_code == 409:
                    current = self.list_properties()[spec.name]
                else:
                    report.created.append(spec.name)
                    continue
            if current.get("type") != spec.type:
                raise ProvisioningConflict(
                    f"HubSpot property {spec.name} is of type {current.get('type')}, segflow needs {spec.type}")
            added = self._add_missing_options(spec, current)
            if added:
                report.options_added[spec.name] = added
            else:
                report.unchanged.append(spec.name)
        logger.info("hubspot properties ensured", extra={"properties_created": len(report.created),
                                                         "options_added": len(report.options_added)})
        return report

    def _add_missing_options(self, spec: PropertySpec, current: dict[str, Any]) -> list[str]:
        if spec.type != "enumeration":
            return []
        options = [dict(o) for o in current.get("options") or []]
        have = {o.get("value") for o in options}
        missing = [(v, label) for v, label in spec.option_pairs() if v not in have]
        if not missing:
            return []
        start = max([int(o.get("displayOrder", -1)) for o in options] + [-1]) + 1
        options += [{"label": label, "value": v, "hidden": False, "displayOrder": start + i}
                    for i, (v, label) in enumerate(missing)]
        # PATCH replaces the option list, so it carries the existing options too
        self.http.request("PATCH", f"{self.paths.properties}/{{property_name}}",
                          path_params={"property_name": spec.name}, json={"options": options})
        return [v for v, _ in missing]

    # ---- contacts -------------------------------------------------------------------------------------

    def upsert_contacts(self, contacts: Sequence[ContactUpsert]) -> list[ContactResult]:
        """Batch upsert by email, <= 100 per call after a case-insensitive dedupe; 207 errors mapped per contact."""
        unique, results = dedupe_contacts(contacts)
        route = f"{self.paths.contacts}/batch/upsert"
        for chunk in chunks(unique, BATCH_SIZE):
            body = {"inputs": [c.input_body(trace_id(c.email)) for c in chunk]}
            try:
                answer = self._json("POST", route, json=body)
            except RequestRejected as exc:
                results += [failed(c.email, "upsert", f"HTTP_{exc.status}", exc.reason) for c in chunk]
                continue
            except DestinationError as exc:
                exc.results = results + exc.results
                raise
            results += upsert_results(answer, chunk)
        logger.info("hubspot contacts upserted", extra={"contacts": len(contacts), "unique": len(unique)})
        return results

    def read_contacts(self, emails: Sequence[str], properties: Sequence[str] = ()) -> dict[str, dict[str, Any] | None]:
        """{lower-cased email: contact record or None}, <= 100 per call."""
        wanted = list(dict.fromkeys(["email", *properties]))
        unique = list(dict.fromkeys(email_key(e) for e in emails))
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(unique)
        for chunk in chunks(unique, BATCH_SIZE):
            body = {"idProperty": "email", "inputs": [{"id": e} for e in chunk], "properties": wanted,
                    "propertiesWithHistory": []}  # required by the published schema
            answer = self._json("POST", f"{self.paths.contacts}/batch/read", json=body)
            for record in answer.get("results") or []:
                key = email_key(str((record.get("properties") or {}).get("email") or ""))
                if key in found:
                    found[key] = record
        return found

    def gdpr_delete(self, email: str) -> ContactResult:
        """Erase a contact for good; HubSpot blocklists the email afterwards. 404 means already gone."""
        try:
            response = self.http.request("POST", f"{self.paths.contacts}/gdpr-delete",
                                         json={"objectId": email_key(email), "idProperty": "email"}, accept=(404,))
        except RequestRejected as exc:
            return failed(email, "delete", f"HTTP_{exc.status}", exc.reason)
        return result(email, "delete", Outcome.SKIPPED if response.status_code == 404 else Outcome.OK)

    # ---- lists v3 -------------------------------------------------------------------------------------

    def find_list(self, name: str) -> dict[str, Any] | None:
        route = f"{self.paths.lists}/object-type-id/{{object_type_id}}/name/{{list_name}}"
        response = self.http.request("GET", route, path_params={"object_type_id": CONTACT_OBJECT_TYPE_ID,
                                                                "list_name": name}, accept=(404,))
        return None if response.status_code == 404 else response.json().get("list")

    def create_list(self, name: str) -> dict[str, Any]:
        body = {"name": name, "objectTypeId": CONTACT_OBJECT_TYPE_ID, "processingType": "MANUAL"}
        return self._json("POST", self.paths.lists, json=body)["list"]

    def ensure_list(self, name: str) -> str:
        """The id of the MANUAL contact list with this name, created when missing."""
        found = self.find_list(name)
        if found is None:
            try:
                found = self.create_list(name)
            except RequestRejected as exc:
                found = self.find_list(name) if exc.status == 409 else None
                if found is None:
                    raise
        if found.get("processingType") == "DYNAMIC":
            raise ProvisioningConflict(f"HubSpot list {found.get('listId')} is DYNAMIC: memberships cannot be set")
        return str(found["listId"])

    def add_to_list(self, list_id: str, record_ids: Sequence[str]) -> MembershipChange:
        return self._change_memberships(list_id, record_ids, "add")

    def remove_from_list(self, list_id: str, record_ids: Sequence[str]) -> MembershipChange:
        """Removing from a list is never an unsubscribe."""
        return self._change_memberships(list_id, record_ids, "remove")

    def _change_memberships(self, list_id: str, record_ids: Sequence[str], action: str) -> MembershipChange:
        route = f"{self.paths.lists}/{{list_id}}/memberships/{action}"
        report = MembershipChange()
        for chunk in chunks(list(dict.fromkeys(str(r) for r in record_ids)), self.membership_chunk):
            answer = self._json("PUT", route, path_params={"list_id": list_id}, json=chunk) or {}
            # HubSpot spells it recordsIdsAdded, and not every answer has every key
            changed = answer.get("recordIdsRemoved" if action == "remove" else "recordsIdsAdded")
            if changed is None and action == "add":
                changed = answer.get("recordIdsAdded")
            report.changed.extend(str(r) for r in changed or [])
            report.missing.extend(str(r) for r in answer.get("recordIdsMissing") or [])
        return report

    # ---- subscriptions (communication preferences v4) ---------------------------------------------------

    def subscription_status(self, email: str, subscription_id: int | None = None) -> ContactResult:
        """OK with the status, or COMPLIANCE when the contact unsubscribed (from `subscription_id`, or any)."""
        route = f"{self.paths.preferences}/statuses/{{subscriber}}"
        try:
            body = self._json("GET", route, path_params={"subscriber": email_key(email)}, params={"channel": "EMAIL"})
        except RequestRejected as exc:
            return failed(email, "subscription", f"HTTP_{exc.status}", exc.reason)
        return subscription_result(email, body, subscription_id)

    def subscription_statuses(
        self, emails: Sequence[str], subscription_id: int | None = None
    ) -> dict[str, ContactResult]:
        """{lower-cased email: status result} from batch reads of <= 100 addresses per call; each result as in
        `subscription_status`. A 207 reports some contacts as errors: those (and a chunk HubSpot refuses) come
        back FAILED, which says nothing about their subscription."""
        route = f"{self.paths.preferences}/statuses/batch/read"
        unique = list(dict.fromkeys(email_key(e) for e in emails))
        found: dict[str, ContactResult] = {}
        for chunk in chunks(unique, BATCH_SIZE):
            try:
                answer = self._json("POST", route, params={"channel": "EMAIL"}, json={"inputs": list(chunk)})
            except RequestRejected as exc:
                found.update({e: failed(e, "subscription", f"HTTP_{exc.status}", exc.reason) for e in chunk})
                continue
            found.update(subscription_results(answer or {}, chunk, subscription_id))
        return found
