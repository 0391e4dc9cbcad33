"""A fake Mailchimp Marketing API v3 server on loopback (base path /3.0).

Auth: HTTP Basic with any user name and the API key as password. At most 10 requests in flight per
key: the 11th concurrent request is answered 429. Errors are application/problem+json.

Batch operations (POST /batches) run their operations through the same routes and rules as direct calls
(see mailchimp_batches.py); a batch is ONE request for the connection limit. Its operations are recorded in
`exchanges` too, marked with the BATCH_OPERATION_HEADER header, so checks over exchanges see every write.
Results archives are served by a second loopback server standing in for S3 (mailchimp_archive.py).

    with FakeMailchimp() as fake:
        requests.get(f"{fake.base_url}/lists", auth=("any", fake.api_key))
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import parse_qs

from segflow_local.fakes.common import (
    REDACTED,
    ApiError,
    Call,
    Exchange,
    FakeServer,
    Reply,
    Route,
    _decode_body,
    new_request_id,
    parse_int_arg,
    utc_iso,
)
from segflow_local.fakes.limits import ConcurrencyLimiter
from segflow_local.fakes.mailchimp_archive import ArchiveHost
from segflow_local.fakes.mailchimp_batches import (
    DEFAULT_POLLS_TO_FINISH,
    MAX_PENDING_BATCHES,
    RESULTS_PER_FILE,
    BatchBook,
    OperationOutcome,
)
from segflow_local.fakes.mailchimp_models import (
    BatchOperation,
    BatchRequest,
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

log = logging.getLogger("segflow_local.fakes")

DEFAULT_API_KEY = "fake0123456789abcdef-us6"
DEFAULT_LIST_ID = "a1b2c3d4e5"
ERROR_DOC_URL = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json"
MAX_PAGE = 1000
# GET /lists/{list_id}/members `status`: the spec's enum
MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")
BATCH_OPERATION_HEADER = "X-Segflow-Batch-Operation"  # marks exchanges that ran inside POST /batches

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


def is_batch_operation(exchange: Exchange) -> bool:
    """True for an operation that ran inside a batch (not an HTTP request of its own)."""
    return BATCH_OPERATION_HEADER in exchange.headers


def _timestamp_arg(call: Call, name: str) -> float | None:
    """An ISO 8601 query argument ("2015-10-21T15:41:36+00:00") as epoch seconds; UTC when it has no offset."""
    raw = call.arg(name)
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        message = f"{name} must be an ISO 8601 time, e.g. 2015-10-21T15:41:36+00:00"
        raise Problem(400, "Invalid Resource", message, [{"field": name, "message": message}]) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def select_fields(body: Any, fields: str | None) -> Any:
    """Only the named fields of a response: "total_items,members.id" keeps total_items and each member's id.
    No `fields` keeps everything; a name that matches nothing is left out, as Mailchimp does."""
    paths = [name.strip().split(".") for name in (fields or "").split(",") if name.strip()]
    return _select(body, paths) if paths else body


def _select(value: Any, paths: list[list[str]]) -> Any:
    if any(not path for path in paths):  # the whole value was asked for
        return value
    if isinstance(value, list):
        return [_select(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    by_head: dict[str, list[list[str]]] = {}
    for head, *rest in paths:
        by_head.setdefault(head, []).append(rest)
    return {name: _select(value[name], rest) for name, rest in by_head.items() if name in value}


def _query_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


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
        batch_polls_to_finish: int = DEFAULT_POLLS_TO_FINISH,
        max_pending_batches: int = MAX_PENDING_BATCHES,
        batch_results_per_file: int = RESULTS_PER_FILE,
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
        self.batches = BatchBook(
            max_pending=max_pending_batches,
            polls_to_finish=batch_polls_to_finish,
            results_per_file=batch_results_per_file,
        )
        self._batch_operations: Counter[str] = Counter()  # endpoint -> operations run inside batches
        super().__init__(**server_options)
        self.archives = ArchiveHost(self._host)
        self.default_list_id = default_list_id
        if default_list_id:
            self.add_list(default_list_name, list_id=default_list_id)

    # ---- lifecycle and observation (the archive host lives and dies with the API server) ----------

    def start(self) -> Self:
        self.archives.start()
        return super().start()

    def stop(self) -> None:
        super().stop()
        self.archives.stop()

    @property
    def batch_polls_to_finish(self) -> int:
        """Status reads a batch submitted from now on needs to finish (tests raise it to stall batches)."""
        return self.batches.polls_to_finish

    @batch_polls_to_finish.setter
    def batch_polls_to_finish(self, polls: int) -> None:
        if polls < 1:
            raise ValueError("a batch needs at least one status read to finish")
        with self._lock:
            self.batches.polls_to_finish = polls

    def stats(self) -> dict[str, Any]:
        found = super().stats()
        with self._meta_lock:
            found["batch_operations"] = dict(self._batch_operations)
        found["archive_downloads"] = len(self.archives.downloads())
        return found

    def reset_observations(self) -> None:
        super().reset_observations()
        with self._meta_lock:
            self._batch_operations.clear()
        self.archives.clear_downloads()

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
            Route("POST", f"{p}/batches", self._post_batch, BatchRequest),
            Route("GET", f"{p}/batches", self._get_batches),
            Route("GET", f"{p}/batches/{{batch_id}}", self._get_batch),
            Route("DELETE", f"{p}/batches/{{batch_id}}", self._delete_batch),
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
        """The spec's list read: `status` (one of its enum), `since_last_changed` (ISO 8601; members changed
        after it), count/offset, and `fields` (comma-separated, dot notation into each member)."""

        def run() -> Reply:
            audience = self.store.audience(call.params["list_id"])
            count, offset = self._page(call)
            status = call.arg("status")
            if status is not None and status not in MEMBER_STATUSES:
                raise Problem(400, "Invalid Resource", f"status must be one of {', '.join(MEMBER_STATUSES)}",
                              [{"field": "status", "message": "Value is not one of the allowed values"}])
            since = _timestamp_arg(call, "since_last_changed")
            members = [
                m
                for m in audience.members.values()
                if (status is None or m.status == status) and (since is None or m.last_changed > since)
            ]
            body = {
                "members": [self.store.member_json(audience, m) for m in members[offset : offset + count]],
                "list_id": audience.id,
                "total_items": len(members),
            }
            return Reply(200, select_fields(body, call.arg("fields")))

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

    # ---- batch operations ---------------------------------------------------------------------------

    def _post_batch(self, call: Call) -> Reply:
        def run() -> Reply:
            self.batches.check_capacity()
            request: BatchRequest = call.body
            batch_id = self.batches.new_id()
            outcomes = [
                self._run_operation(batch_id, index, operation, call.credential)
                for index, operation in enumerate(request.operations)
            ]
            batch = self.batches.add(batch_id, outcomes, self.clock())
            log.debug("fake mailchimp batch %s holds %d operations", batch_id, len(outcomes))
            return Reply(200, batch.as_json())

        return self._guarded(run)

    def _get_batch(self, call: Call) -> Reply:
        return self._guarded(
            lambda: Reply(
                200, self.batches.poll(call.params["batch_id"], self.clock(), self.archives.publish).as_json()
            )
        )

    def _get_batches(self, call: Call) -> Reply:
        def run() -> Reply:
            count, offset = self._page(call)
            batches = list(self.batches.batches.values())
            return Reply(
                200,
                {
                    "batches": [b.as_json() for b in batches[offset : offset + count]],
                    "total_items": len(batches),
                    "_links": [],
                },
            )

        return self._guarded(run)

    def _delete_batch(self, call: Call) -> Reply:
        def run() -> Reply:
            batch = self.batches.delete(call.params["batch_id"])
            if batch.archive_name:
                self.archives.withdraw(batch.archive_name)  # results of a deleted batch are gone
            return Reply(204)

        return self._guarded(run)

    def _run_operation(
        self, batch_id: str, index: int, operation: BatchOperation, credential: str
    ) -> OperationOutcome:
        """One operation through the regular route table: same validation, same member rules."""
        target = f"{self.base_path}{operation.path}"
        path, _, inline_query = target.partition("?")
        query = parse_qs(inline_query, keep_blank_values=True)
        for name, value in (operation.params or {}).items():
            query.setdefault(name, []).append(_query_value(value))
        route, params, path_known = self._match(operation.method, path)
        raw_body = (operation.body or "").encode()
        if route is None:
            reply = (
                self.error_reply(405, "method_not_allowed", "The requested method is not allowed.")
                if path_known
                else self.error_reply(404, "not_found", "The requested resource could not be found.")
            )
        elif route.handler == self._post_batch:
            reply = self._problem(400, "Invalid Resource", "A batch operation cannot start another batch.")
        else:
            try:
                body = self._validated_body(route, raw_body)
                reply = route.handler(Call(operation.method, path, params, query, body, credential))
            except ApiError as error:
                reply = error.reply
            except Exception:  # a bug in the fake must still give a result, like a real 500
                log.exception("fake mailchimp crashed on a batch operation %s", route.endpoint)
                reply = self.error_reply(500, "internal", "An unexpected error occurred.")
        endpoint = route.endpoint if route else f"{operation.method} <unmatched>"
        self._record_operation(batch_id, index, operation, path, query, raw_body, endpoint, reply)
        return OperationOutcome(operation.operation_id, reply.status, reply.body)

    def _record_operation(
        self,
        batch_id: str,
        index: int,
        operation: BatchOperation,
        path: str,
        query: dict[str, list[str]],
        raw_body: bytes,
        endpoint: str,
        reply: Reply,
    ) -> None:
        with self._meta_lock:
            self._batch_operations[endpoint] += 1
            if not self.record_exchanges:
                return
            headers = {"Authorization": f"Basic {REDACTED}", BATCH_OPERATION_HEADER: f"{batch_id}/{index}"}
            if raw_body:
                headers["Content-Type"] = "application/json"
            self.exchanges.append(
                Exchange(
                    method=operation.method,
                    path=path,
                    query=query,
                    headers=headers,
                    body=_decode_body(raw_body),
                    status=reply.status,
                    response_body=json.loads(json.dumps(reply.body)) if reply.body is not None else None,
                    response_headers={"Content-Type": reply.content_type} if reply.body is not None else {},
                )
            )

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
