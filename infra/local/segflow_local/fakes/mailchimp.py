"""A fake Mailchimp Marketing API v3 server on loopback (base path /3.0).

Auth: HTTP Basic with any user name and the API key as password. At most 10 requests in flight per
key: the 11th concurrent request is answered 429. Errors are application/problem+json.

    with FakeMailchimp() as fake:
        requests.get(f"{fake.base_url}/lists", auth=("any", fake.api_key))
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segflow_local.fakes.common import (
    ApiError,
    Call,
    FakeServer,
    Reply,
    Route,
    new_request_id,
    parse_int_arg,
    utc_iso,
)
from segflow_local.fakes.limits import ConcurrencyLimiter
from segflow_local.fakes.mailchimp_models import (
    BatchSubscribe,
    MemberTags,
    MergeFieldCreate,
    PutMember,
    SegmentCreate,
    SegmentMembersUpdate,
)
from segflow_local.fakes.mailchimp_store import (
    DEFAULT_MERGE_FIELDS,
    Audience,
    MailchimpStore,
    MemberRejected,
    Problem,
    subscriber_hash,
)

DEFAULT_API_KEY = "fake0123456789abcdef-us6"
DEFAULT_LIST_ID = "a1b2c3d4e5"
ERROR_DOC_URL = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json"
MAX_PAGE = 1000

_TITLES = {
    "not_found": "Resource Not Found",
    "method_not_allowed": "Method Not Allowed",
    "bad_json": "JSON Parse Exception",
    "invalid": "Invalid Resource",
    "throttled": "Too Many Requests",
    "internal": "Internal Server Error",
    "unauthorized": "API Key Invalid",
}


def _flag(call: Call, name: str) -> bool:
    return (call.arg(name) or "").lower() == "true"


class FakeMailchimp(FakeServer):
    vendor = "mailchimp"
    base_path = "/3.0"

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        default_list_id: str | None = DEFAULT_LIST_ID,
        default_list_name: str = "segflow test audience",
        max_connections: int = 10,
        max_merge_fields: int = 30,
        default_merge_fields: Sequence[tuple[str, str, str, dict[str, Any]]] = DEFAULT_MERGE_FIELDS,
        **server_options: Any,
    ) -> None:
        if "-" not in api_key:
            raise ValueError("a Mailchimp API key ends with -<datacenter>, e.g. ...-us6")
        self.api_key = api_key
        self.dc = api_key.rsplit("-", 1)[1]
        self.connections = ConcurrencyLimiter(max_connections)
        self.store = MailchimpStore(
            max_merge_fields=max_merge_fields, default_merge_fields=default_merge_fields
        )
        super().__init__(**server_options)
        self.default_list_id = default_list_id
        if default_list_id:
            self.add_list(default_list_name, list_id=default_list_id)

    # ---- vendor hooks --------------------------------------------------------------------------

    def error_reply(
        self, status: int, kind: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> Reply:
        return self._problem(status, _TITLES.get(kind, "Error"), message, errors)

    @staticmethod
    def _problem(status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None) -> Reply:
        body: dict[str, Any] = {
            "type": ERROR_DOC_URL,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": new_request_id(),
        }
        if errors:
            body["errors"] = errors
        return Reply(status, body, content_type=PROBLEM_JSON)

    def authenticate(self, headers: Mapping[str, str]) -> str:
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not header:
            raise ApiError(self._problem(401, "API Key Missing", "Your request did not include an API key."))
        scheme, _, encoded = header.partition(" ")
        password = ""
        if scheme.lower() == "basic":
            try:
                password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                password = ""
        if password != self.api_key:
            raise ApiError(
                self._problem(
                    401,
                    "API Key Invalid",
                    "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
                )
            )
        return password

    def admit(self, credential: str) -> Callable[[], None]:
        if not self.connections.try_acquire(credential):
            raise ApiError(
                self._problem(
                    429,
                    "Too Many Requests",
                    f"You have exceeded the limit of {self.connections.limit} simultaneous connections.",
                )
            )
        return lambda: self.connections.release(credential)

    # ---- routing -------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        p = self.base_path
        member = f"{p}/lists/{{list_id}}/members/{{subscriber_hash}}"
        return [
            Route("GET", f"{p}/ping", self._ping),
            Route("GET", f"{p}/lists", self._get_lists),
            Route("GET", f"{p}/lists/{{list_id}}", self._get_list),
            Route("POST", f"{p}/lists/{{list_id}}", self._batch_subscribe, BatchSubscribe),
            Route("GET", f"{p}/lists/{{list_id}}/merge-fields", self._get_merge_fields),
            Route("POST", f"{p}/lists/{{list_id}}/merge-fields", self._post_merge_field, MergeFieldCreate),
            Route("GET", f"{p}/lists/{{list_id}}/members", self._get_members),
            Route("GET", member, self._get_member),
            Route("PUT", member, self._put_member, PutMember),
            Route("GET", f"{member}/tags", self._get_member_tags),
            Route("POST", f"{member}/tags", self._post_member_tags, MemberTags),
            Route("POST", f"{member}/actions/delete-permanent", self._delete_permanent),
            Route("GET", f"{p}/lists/{{list_id}}/segments", self._get_segments),
            Route("POST", f"{p}/lists/{{list_id}}/segments", self._post_segment, SegmentCreate),
            Route("GET", f"{p}/lists/{{list_id}}/segments/{{segment_id}}", self._get_segment),
            Route(
                "POST",
                f"{p}/lists/{{list_id}}/segments/{{segment_id}}",
                self._post_segment_members,
                SegmentMembersUpdate,
            ),
            Route("GET", f"{p}/lists/{{list_id}}/segments/{{segment_id}}/members", self._get_segment_members),
        ]

    def _guarded(self, action: Callable[[], Reply]) -> Reply:
        """Translate store exceptions into problem+json replies."""
        try:
            return action()
        except Problem as problem:
            return self._problem(problem.status, problem.title, problem.detail, problem.errors)
        except MemberRejected as rejected:
            problem = rejected.as_problem()
            return self._problem(problem.status, problem.title, problem.detail, problem.errors)

    def _page(self, call: Call) -> tuple[int, int]:
        try:
            count = parse_int_arg(call, "count", 10, 1, MAX_PAGE)
            offset = parse_int_arg(call, "offset", 0, 0, None)
        except ValueError as exc:
            raise Problem(
                400, "Invalid Resource", str(exc), [{"field": "count/offset", "message": str(exc)}]
            ) from exc
        return count, offset

    # ---- handlers --------------------------------------------------------------------------------

    def _ping(self, call: Call) -> Reply:
        return Reply(200, {"health_status": "Everything's Chimpy!"})

    def _get_lists(self, call: Call) -> Reply:
        def run() -> Reply:
            count, offset = self._page(call)
            audiences = list(self.store.audiences.values())
            return Reply(
                200,
                {
                    "lists": [self.store.audience_json(a) for a in audiences[offset : offset + count]],
                    "total_items": len(audiences),
                    "constraints": {
                        "may_create": True,
                        "max_instances": 100,
                        "current_total_instances": len(audiences),
                    },
                },
            )

        return self._guarded(run)

    def _get_list(self, call: Call) -> Reply:
        return self._guarded(
            lambda: Reply(200, self.store.audience_json(self.store.audience(call.params["list_id"])))
        )

    def _batch_subscribe(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            result = self.store.batch_subscribe(
                audience,
                call.body,
                skip_merge_validation=_flag(call, "skip_merge_validation"),
                skip_duplicate_check=_flag(call, "skip_duplicate_check"),
                now=self.clock(),
            )
            return Reply(200, result)

        return self._guarded(run)

    def _get_merge_fields(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            count, offset = self._page(call)
            fields = audience.merge_fields
            return Reply(
                200,
                {
                    "merge_fields": [f.as_json(audience.id) for f in fields[offset : offset + count]],
                    "list_id": audience.id,
                    "total_items": len(fields),
                },
            )

        return self._guarded(run)

    def _post_merge_field(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            return Reply(200, self.store.add_merge_field(audience, call.body).as_json(audience.id))

        return self._guarded(run)

    def _get_members(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            count, offset = self._page(call)
            status = call.arg("status")
            members = [m for m in audience.members.values() if status is None or m.status == status]
            return Reply(
                200,
                {
                    "members": [
                        self.store.member_json(audience, m) for m in members[offset : offset + count]
                    ],
                    "list_id": audience.id,
                    "total_items": len(members),
                },
            )

        return self._guarded(run)

    def _get_member(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            return Reply(
                200,
                self.store.member_json(audience, self.store.member(audience, call.params["subscriber_hash"])),
            )

        return self._guarded(run)

    def _put_member(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            body: PutMember = call.body
            path_key = call.params["subscriber_hash"]
            path_hash = subscriber_hash(path_key) if "@" in path_key else path_key.lower()
            if path_hash != subscriber_hash(body.email_address):
                raise Problem(
                    400,
                    "Invalid Resource",
                    "The subscriber hash does not match the email address.",
                    [{"field": "email_address", "message": "must match the subscriber hash in the path"}],
                )
            member, _created = self.store.apply_member(
                audience,
                body,
                status=body.status,
                status_if_new=body.status_if_new,
                allow_existing=True,
                skip_merge_validation=_flag(call, "skip_merge_validation"),
                now=self.clock(),
            )
            return Reply(200, self.store.member_json(audience, member))

        return self._guarded(run)

    def _get_member_tags(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            member = self.store.member(audience, call.params["subscriber_hash"])
            count, offset = self._page(call)
            tags = [
                {"id": s.id, "name": s.name, "date_added": utc_iso(s.members[member.hash])}
                for s in audience.tags_of(member.hash)
            ]
            return Reply(200, {"tags": tags[offset : offset + count], "total_items": len(tags)})

        return self._guarded(run)

    def _post_member_tags(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            member = self.store.member(audience, call.params["subscriber_hash"])
            body: MemberTags = call.body
            self.store.set_tags(
                audience, member, [(t.name, t.status == "active") for t in body.tags], self.clock()
            )
            return Reply(204)

        return self._guarded(run)

    def _delete_permanent(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            self.store.forget(audience, call.params["subscriber_hash"])
            return Reply(204)

        return self._guarded(run)

    def _get_segments(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            count, offset = self._page(call)
            wanted = call.arg("type")
            segments = [s for s in audience.segments.values() if wanted is None or s.type == wanted]
            return Reply(
                200,
                {
                    "segments": [
                        self.store.segment_json(audience, s) for s in segments[offset : offset + count]
                    ],
                    "list_id": audience.id,
                    "total_items": len(segments),
                },
            )

        return self._guarded(run)

    def _post_segment(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            segment = self.store.create_segment(audience, call.body, self.clock())
            return Reply(200, self.store.segment_json(audience, segment))

        return self._guarded(run)

    def _get_segment(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            return Reply(
                200,
                self.store.segment_json(audience, self.store.segment(audience, call.params["segment_id"])),
            )

        return self._guarded(run)

    def _post_segment_members(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            segment = self.store.segment(audience, call.params["segment_id"])
            return Reply(200, self.store.update_segment_members(audience, segment, call.body, self.clock()))

        return self._guarded(run)

    def _get_segment_members(self, call: Call) -> Reply:
        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            segment = self.store.segment(audience, call.params["segment_id"])
            count, offset = self._page(call)
            hidden = {
                status
                for status, flag in (
                    ("unsubscribed", "include_unsubscribed"),
                    ("cleaned", "include_cleaned"),
                    ("transactional", "include_transactional"),
                )
                if not _flag(call, flag)
            }
            members = [
                audience.members[k] for k in segment.members if audience.members[k].status not in hidden
            ]
            return Reply(
                200,
                {
                    "members": [
                        self.store.member_json(audience, m) for m in members[offset : offset + count]
                    ],
                    "total_items": len(members),
                },
            )

        return self._guarded(run)

    # ---- seeding and inspection helpers for tests ------------------------------------------------

    def add_list(self, name: str, list_id: str | None = None) -> str:
        with self._lock:
            new_id = list_id or f"{len(self.store.audiences) + 1:010x}"
            self.store.add_audience(name, new_id, self.clock())
            return new_id

    def _audience(self, list_id: str | None) -> Audience:
        target = list_id or self.default_list_id
        if target is None:
            raise ValueError("no list id given and the fake has no default list")
        return self.store.audience(target)

    def add_member(
        self,
        email: str,
        status: str = "subscribed",
        *,
        merge_fields: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        list_id: str | None = None,
    ) -> str:
        """Seed a member in any status, bypassing compliance rules; returns its subscriber hash."""
        with self._lock:
            audience = self._audience(list_id)
            member_fields = PutMember(
                email_address=email, status_if_new="subscribed", merge_fields=merge_fields or {}
            )
            member, _ = self.store.apply_member(
                audience,
                member_fields,
                status=None,
                status_if_new=status,
                allow_existing=True,
                skip_merge_validation=True,
                now=self.clock(),
            )
            member.status = status
            self.store.set_tags(audience, member, [(t, True) for t in tags], self.clock())
            return member.hash

    def set_member_status(self, email: str, status: str, *, list_id: str | None = None) -> None:
        """Force a member's status (creating the member if needed), as a human in the Mailchimp UI could."""
        with self._lock:
            audience = self._audience(list_id)
            key = subscriber_hash(email)
            if key not in audience.members:
                self.add_member(email, status, list_id=list_id)
                return
            audience.members[key].status = status
            audience.members[key].last_changed = self.clock()

    def forget_member(self, email: str, *, list_id: str | None = None) -> None:
        with self._lock:
            self.store.forget(self._audience(list_id), email)

    def is_forgotten(self, email: str, *, list_id: str | None = None) -> bool:
        with self._lock:
            return subscriber_hash(email) in self._audience(list_id).forgotten

    def member(self, email: str, *, list_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            audience = self._audience(list_id)
            found = audience.members.get(subscriber_hash(email))
            return None if found is None else self.store.member_json(audience, found)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"lists": self.store.snapshot()}
