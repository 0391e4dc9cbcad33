"""A fake HubSpot API server on loopback: CRM v3 contacts, properties, lists and communication
preferences v4.

Auth: `Authorization: Bearer <token>`. Rate limits per app: a rolling 10-second window (100 requests,
190 on Professional/Enterprise) and a daily quota, both measured with an injectable clock, answered
429 with HubSpot's RATE_LIMIT body and X-HubSpot-RateLimit-* headers on every response.

    with FakeHubSpot() as fake:
        auth = {"Authorization": f"Bearer {fake.token}"}
        requests.get(f"{fake.base_url}/crm/v3/properties/contacts", headers=auth)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from segflow_local.fakes.common import (
    ApiError,
    Call,
    FakeServer,
    Reply,
    Route,
    new_request_id,
    parse_int_arg,
    utc_iso_millis,
)
from segflow_local.fakes.hubspot_models import (
    BatchRead,
    BatchUpsert,
    GdprDelete,
    ListCreate,
    ListSearch,
    PropertyCreate,
    PropertyGroupCreate,
    PropertyUpdate,
    RecordIds,
    StatusUpdate,
)
from segflow_local.fakes.hubspot_store import (
    CONTACT_OBJECT_TYPE_ID,
    DEFAULT_SUBSCRIPTIONS,
    MAX_BATCH_INPUTS,
    Contact,
    HubSpotError,
    HubSpotStore,
    SubscriptionStatus,
    email_hash,
)
from segflow_local.fakes.limits import DailyLimiter, RollingWindowLimiter

DEFAULT_TOKEN = "pat-na1-00000000-fake-4000-8000-000000000000"
WINDOW_SECONDS = 10.0
Tier = Literal["free", "starter", "professional", "enterprise"]
TIER_LIMITS: dict[str, tuple[int, int]] = {  # (requests per 10 s, requests per day)
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
}
_CATEGORIES = {
    "not_found": "OBJECT_NOT_FOUND",
    "method_not_allowed": "METHOD_NOT_ALLOWED",
    "bad_json": "VALIDATION_ERROR",
    "invalid": "VALIDATION_ERROR",
    "internal": "INTERNAL_ERROR",
}
_OBJECT_TYPES = {"contacts", CONTACT_OBJECT_TYPE_ID, "contact"}


class StatusBatchRead(BaseModel):
    """POST /communication-preferences/v4/statuses/batch/read: the subscribers' email addresses."""

    model_config = ConfigDict(extra="forbid", strict=True)
    inputs: list[str]


class FakeHubSpot(FakeServer):
    vendor = "hubspot"
    base_path = ""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        tier: Tier = "free",
        rate_limit: int | None = None,
        daily_limit: int | None = None,
        subscriptions: Sequence[tuple[int, str]] = DEFAULT_SUBSCRIPTIONS,
        allow_resubscribe: bool = False,
        require_legal_basis: bool = True,
        **server_options: Any,
    ) -> None:
        super().__init__(**server_options)
        self.token = token
        window_default, daily_default = TIER_LIMITS[tier]
        self.window = RollingWindowLimiter(rate_limit or window_default, WINDOW_SECONDS, self.clock)
        self.daily = DailyLimiter(daily_limit or daily_default, self.clock)
        self.store = HubSpotStore(
            now=self.clock(),
            subscriptions=subscriptions,
            allow_resubscribe=allow_resubscribe,
            require_legal_basis=require_legal_basis,
        )

    # ---- vendor hooks --------------------------------------------------------------------------

    @staticmethod
    def _error(
        status: int,
        message: str,
        category: str,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
    ) -> Reply:
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": new_request_id(),
            "category": category,
        }
        if errors:
            body["errors"] = errors
        if context:
            body["context"] = context
        return Reply(status, body)

    @staticmethod
    def _rate_limited(policy: str) -> Reply:
        name = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "daily"
        return Reply(
            429,
            {
                "status": "error",
                "message": f"You have reached your {name} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": new_request_id(),
                "policyName": policy,
                "requestId": new_request_id(),
                "category": "RATE_LIMITS",
            },
        )

    def error_reply(
        self, status: int, kind: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> Reply:
        if kind == "throttled":
            return self._rate_limited("TEN_SECONDLY_ROLLING")
        details = None
        if errors:
            details = [
                {"message": f"{e['field']}: {e['message']}", "in": e["field"], "code": "INVALID_INPUT"}
                for e in errors
            ]
            message = f"Invalid input JSON: {details[0]['message']}"
        return self._error(status, message, _CATEGORIES.get(kind, "VALIDATION_ERROR"), details)

    def authenticate(self, headers: Mapping[str, str]) -> str:
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise ApiError(
                self._error(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
                    "private app access tokens.",
                    "INVALID_AUTHENTICATION",
                )
            )
        return token.strip()

    def admit(self, credential: str) -> Callable[[], None]:
        if not self.daily.peek().allowed:
            raise ApiError(self._rate_limited("DAILY"))
        if not self.window.hit().allowed:
            raise ApiError(self._rate_limited("TEN_SECONDLY_ROLLING"))
        self.daily.hit()
        return lambda: None

    def response_headers(self, credential: str | None) -> dict[str, str]:
        if credential is None:
            return {}
        window, daily = self.window.peek(), self.daily.peek()
        return {
            "X-HubSpot-RateLimit-Max": str(window.limit),
            "X-HubSpot-RateLimit-Remaining": str(window.remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW_SECONDS * 1000)),
            "X-HubSpot-RateLimit-Daily": str(daily.limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily.remaining),
        }

    # ---- routing -------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        contacts, props, lists = (
            "/crm/v3/objects/contacts",
            "/crm/v3/properties/{object_type}",
            "/crm/v3/lists",
        )
        preferences = "/communication-preferences/v4"
        statuses = f"{preferences}/statuses/{{subscriber}}"
        return [
            Route("POST", f"{contacts}/batch/upsert", self._batch_upsert, BatchUpsert),
            Route("POST", f"{contacts}/batch/read", self._batch_read, BatchRead),
            Route("POST", f"{contacts}/gdpr-delete", self._gdpr_delete, GdprDelete),
            Route("GET", f"{contacts}/{{contact_id}}", self._get_contact),
            # groups before {property_name}: "groups" would otherwise match as a property name
            Route("GET", f"{props}/groups", self._get_groups),
            Route("POST", f"{props}/groups", self._post_group, PropertyGroupCreate),
            Route("GET", f"{props}/groups/{{group_name}}", self._get_group),
            Route("GET", props, self._get_properties),
            Route("POST", props, self._post_property, PropertyCreate),
            Route("GET", f"{props}/{{property_name}}", self._get_property),
            Route("PATCH", f"{props}/{{property_name}}", self._patch_property, PropertyUpdate),
            Route("POST", lists, self._post_list, ListCreate),
            Route("POST", f"{lists}/search", self._search_lists, ListSearch),
            Route(
                "GET", f"{lists}/object-type-id/{{object_type_id}}/name/{{list_name}}", self._get_list_by_name
            ),
            Route("GET", f"{lists}/{{list_id}}", self._get_list),
            Route("PUT", f"{lists}/{{list_id}}/memberships/add", self._add_members, RecordIds),
            Route("PUT", f"{lists}/{{list_id}}/memberships/remove", self._remove_members, RecordIds),
            Route("GET", f"{lists}/{{list_id}}/memberships", self._get_memberships),
            Route("GET", "/communication-preferences/v4/definitions", self._get_definitions),
            Route("POST", f"{preferences}/statuses/batch/read", self._batch_statuses, StatusBatchRead),
            Route("GET", statuses, self._get_status),
            Route("POST", statuses, self._post_status, StatusUpdate),
        ]

    def _guarded(self, action: Callable[[], Reply]) -> Reply:
        try:
            return action()
        except HubSpotError as error:
            return self._error(error.status, error.message, error.category, error.errors, error.context)

    @staticmethod
    def _object_type(call: Call) -> None:
        if call.params.get("object_type") not in _OBJECT_TYPES:
            raise HubSpotError(
                400,
                f"Object type {call.params.get('object_type')!r} is not supported by the fake "
                "(contacts only).",
            )

    # ---- handlers: contacts -------------------------------------------------------------------

    def _batch_upsert(self, call: Call) -> Reply:
        def run() -> Reply:
            status, body = self.store.batch_upsert(call.body, self.clock())
            return Reply(status, body)

        return self._guarded(run)

    def _batch_read(self, call: Call) -> Reply:
        def run() -> Reply:
            status, body = self.store.batch_read(call.body, self.clock())
            return Reply(status, body)

        return self._guarded(run)

    def _gdpr_delete(self, call: Call) -> Reply:
        def run() -> Reply:
            self.store.gdpr_delete(call.body.objectId, call.body.idProperty)
            return Reply(204)

        return self._guarded(run)

    def _get_contact(self, call: Call) -> Reply:
        def run() -> Reply:
            contact = self.store.find_contact(call.params["contact_id"], call.arg("idProperty"))
            if contact is None:
                raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND")
            wanted = [p for value in call.query.get("properties", []) for p in value.split(",") if p]
            return Reply(200, self.store.contact_json(contact, wanted or ["email", "firstname", "lastname"]))

        return self._guarded(run)

    # ---- handlers: properties and groups ------------------------------------------------------

    def _get_groups(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            return Reply(200, {"results": [dict(g) for g in self.store.groups.values()]})

        return self._guarded(run)

    def _post_group(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            return Reply(201, self.store.create_group(call.body))

        return self._guarded(run)

    def _get_group(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            return Reply(200, self.store.group(call.params["group_name"]))

        return self._guarded(run)

    def _get_properties(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            return Reply(200, {"results": [p.as_json() for p in self.store.properties.values()]})

        return self._guarded(run)

    def _post_property(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            return Reply(201, self.store.create_property(call.body, self.clock()).as_json())

        return self._guarded(run)

    def _get_property(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            definition = self.store.properties.get(call.params["property_name"])
            if definition is None:
                raise HubSpotError(
                    404, f"Property {call.params['property_name']} does not exist.", "OBJECT_NOT_FOUND"
                )
            return Reply(200, definition.as_json())

        return self._guarded(run)

    def _patch_property(self, call: Call) -> Reply:
        def run() -> Reply:
            self._object_type(call)
            updated = self.store.update_property(call.params["property_name"], call.body, self.clock())
            return Reply(200, updated.as_json())

        return self._guarded(run)

    # ---- handlers: lists -----------------------------------------------------------------------

    def _post_list(self, call: Call) -> Reply:
        return self._guarded(
            lambda: Reply(200, {"list": self.store.create_list(call.body, self.clock()).as_json()})
        )

    def _search_lists(self, call: Call) -> Reply:
        return self._guarded(lambda: Reply(200, self.store.search_lists(call.body)))

    def _get_list_by_name(self, call: Call) -> Reply:
        def run() -> Reply:
            if call.params["object_type_id"] != CONTACT_OBJECT_TYPE_ID:
                raise HubSpotError(400, "The fake supports contact lists (0-1) only.")
            found = self.store.list_by_name(call.params["list_name"])
            if found is None:
                raise HubSpotError(
                    404, f"List with name {call.params['list_name']} does not exist.", "OBJECT_NOT_FOUND"
                )
            return Reply(200, {"list": found.as_json()})

        return self._guarded(run)

    def _get_list(self, call: Call) -> Reply:
        return self._guarded(
            lambda: Reply(200, {"list": self.store.hs_list(call.params["list_id"]).as_json()})
        )

    def _add_members(self, call: Call) -> Reply:
        return self._change_members(call, add=True)

    def _remove_members(self, call: Call) -> Reply:
        return self._change_members(call, add=False)

    def _change_members(self, call: Call, *, add: bool) -> Reply:
        def run() -> Reply:
            hs_list = self.store.hs_list(call.params["list_id"])
            return Reply(200, self.store.change_memberships(hs_list, call.body, add, self.clock()))

        return self._guarded(run)

    def _get_memberships(self, call: Call) -> Reply:
        def run() -> Reply:
            hs_list = self.store.hs_list(call.params["list_id"])
            try:
                limit = parse_int_arg(call, "limit", 100, 1, 250)
                start = parse_int_arg(call, "after", 0, 0, None)
            except ValueError as exc:
                raise HubSpotError(400, str(exc)) from exc
            members = list(hs_list.members.items())
            page = members[start : start + limit]
            body: dict[str, Any] = {
                "results": [{"recordId": rid, "membershipTimestamp": utc_iso_millis(ts)} for rid, ts in page],
                "total": len(members),
            }
            if start + limit < len(members):
                after = str(start + limit)
                body["paging"] = {
                    "next": {"after": after, "link": f"{call.path}?after={after}&limit={limit}"}
                }
            return Reply(200, body)

        return self._guarded(run)

    # ---- handlers: communication preferences v4 -----------------------------------------------

    def _status_envelope(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        now = utc_iso_millis(self.clock())
        return {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}

    def _get_definitions(self, call: Call) -> Reply:
        return Reply(200, self._status_envelope(self.store.definitions_json()))

    @staticmethod
    def _email_channel(call: Call) -> None:
        channel = call.arg("channel")
        if channel is None:
            raise HubSpotError(400, "The channel query parameter is required.")
        if channel != "EMAIL":
            raise HubSpotError(400, f"Channel {channel} is not supported by the fake (EMAIL only).")

    def _get_status(self, call: Call) -> Reply:
        def run() -> Reply:
            self._email_channel(call)
            return Reply(200, self._status_envelope(self.store.status_results(call.params["subscriber"])))

        return self._guarded(run)

    def _batch_statuses(self, call: Call) -> Reply:
        """Every subscription's status per address; inputs that are no email address are 207 errors."""

        def run() -> Reply:
            self._email_channel(call)
            inputs: list[str] = call.body.inputs
            if len(inputs) > MAX_BATCH_INPUTS:  # as the CRM batch endpoints (the spec sets no limit)
                raise HubSpotError(400, f"Batch input may contain at most {MAX_BATCH_INPUTS} inputs.")
            unique = list(dict.fromkeys(i.strip().lower() for i in inputs))
            invalid = [i for i in unique if "@" not in i]
            found = [{"subscriberIdString": i, "statuses": self.store.status_results(i)} for i in unique]
            body = self._status_envelope([f for f in found if "@" in f["subscriberIdString"]])
            if not invalid:
                return Reply(200, body)
            body["numErrors"] = 1
            body["errors"] = [
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "Some inputs are not valid email addresses.",
                    "context": {"ids": invalid},
                }
            ]
            return Reply(207, body)

        return self._guarded(run)

    def _post_status(self, call: Call) -> Reply:
        def run() -> Reply:
            result = self.store.set_status(call.params["subscriber"], call.body, self.clock())
            return Reply(200, self._status_envelope([result]))

        return self._guarded(run)

    # ---- seeding and inspection helpers for tests ----------------------------------------------

    def add_contact(self, email: str, properties: dict[str, str] | None = None) -> str:
        """Seed a contact directly (no validation, no rate limit); returns its record id."""
        with self._lock:
            key = email.strip().lower()
            contact = self.store.contact_by_email(key) or self.store.create_contact(key, self.clock())
            contact.properties.update(properties or {})
            return contact.id

    def contact(self, email: str) -> dict[str, Any] | None:
        with self._lock:
            found: Contact | None = self.store.contact_by_email(email)
            return None if found is None else self.store.contact_json(found)

    def set_subscription_status(self, email: str, status: str, subscription_id: int | None = None) -> None:
        """Seed a subscription status (e.g. a contact who unsubscribed through an email footer)."""
        with self._lock:
            sub_id = subscription_id if subscription_id is not None else min(self.store.subscription_names)
            self.store.statuses[(email.strip().lower(), sub_id)] = SubscriptionStatus(status, self.clock())

    def subscription_status(self, email: str, subscription_id: int | None = None) -> str:
        with self._lock:
            sub_id = subscription_id if subscription_id is not None else min(self.store.subscription_names)
            current = self.store.statuses.get((email.strip().lower(), sub_id))
            return current.status if current else "NOT_SPECIFIED"

    def is_blocklisted(self, email: str) -> bool:
        with self._lock:
            return email_hash(email) in self.store.blocklist

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self.store.snapshot()
