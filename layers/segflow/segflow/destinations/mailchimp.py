"""Mailchimp Marketing API v3 client: merge fields, static segments, members, tags, permanent delete.

At most `max_connections` (<= 10, Mailchimp's per-key ceiling) requests are in flight per API key in
this process, whatever the number of threads or client objects. Members are never re-subscribed:
see MemberUpsert for how `status` is kept away from existing members.

Existing members are updated with PUT (no `status`). Batch subscribe cannot do it (it requires `status`), so
more than `batch_updates_above` updates go as PUT operations in ONE batch operations request (POST /batches,
see mailchimp_batches.py): a 1 % change costs a few calls instead of one per changed member. The same PUTs,
member tags and static segment changes are offered as BatchOperations (`*_operation(s)`) for callers that put
them in one batch together (the sync's MailchimpAdapter); mailchimp_outcomes reads their results.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Self, TypeVar

from segflow.destinations.errors import DestinationError, ProvisioningConflict, RequestRejected, redacted_body
from segflow.chunking import chunks
from segflow.destinations.http import DEFAULT_RETRY, ApiSession, RetryPolicy, Timeouts, render_route
from segflow.destinations.mailchimp_batches import (
    DEFAULT_POLLING,
    BatchOperation,
    BatchPolling,
    BatchRunner,
    OperationResult,
)
from segflow.destinations.mailchimp_models import (
    MAX_MERGE_FIELDS,
    MEMBER_STATUSES,
    MemberPage,
    MemberUpsert,
    MergeFieldSpec,
    TagUpdate,
    email_key,
    subscriber_hash,
)
from segflow.destinations.mailchimp_outcomes import (
    DESTINATION,
    batch_create_results,
    batch_operation_result,
    failed,
    member_result,
    problem_result,
    result,
    segment_results,
    tags_operation_result,
)
from segflow.destinations.ratelimit import Clock, Sleep, shared_connection_gate
from segflow.destinations.results import CallStats, ContactResult, Outcome
from segflow.observability import logger

MAX_CONNECTIONS = 10
DEFAULT_CONNECTIONS = 8
BATCH_SIZE = 500
SEGMENT_CHANGE_SIZE = 500
PAGE_SIZE = 1000  # Mailchimp's maximum `count`; the default page is only 10
MAILCHIMP_TIMEOUTS = Timeouts(connect_s=5.0, read_s=130.0)  # Mailchimp ends requests at 120 s
# Up to this many member updates go as single PUTs (a batch costs a submit, status reads and a download);
# more go in one batch operations request.
BATCH_UPDATES_ABOVE = 3

LISTS = "/lists/{list_id}"
MERGE_FIELDS = "/lists/{list_id}/merge-fields"
SEGMENTS = "/lists/{list_id}/segments"
SEGMENT = "/lists/{list_id}/segments/{segment_id}"
MEMBERS = "/lists/{list_id}/members"
MEMBER = "/lists/{list_id}/members/{subscriber_hash}"
MEMBER_TAGS = "/lists/{list_id}/members/{subscriber_hash}/tags"
DELETE_PERMANENT = "/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent"

# What an audience scan needs of each member (the rest of a member is ~2 KB of JSON it would not read).
SCAN_FIELDS = ("members.email_address", "members.id", "members.status", "members.last_changed", "total_items")

T = TypeVar("T")
R = TypeVar("R")
_NOT_RUN = object()


def data_center(api_key: str) -> str:
    """The data centre from the key suffix: "...-us6" -> "us6"."""
    prefix, sep, dc = api_key.strip().rpartition("-")
    if not sep or not prefix or not dc.isalnum():
        raise ValueError("a Mailchimp API key ends with -<data centre>, e.g. ...-us6")
    return dc


def base_url_for(api_key: str) -> str:
    return f"https://{data_center(api_key)}.api.mailchimp.com/3.0"


def dedupe_members(members: Sequence[MemberUpsert]) -> tuple[list[MemberUpsert], list[ContactResult]]:
    """One entry per email (case-insensitive; merge fields of repeats merged, later values winning).

    Repeats are reported SKIPPED: their data travels with the kept entry.
    """
    kept: dict[str, MemberUpsert] = {}
    skipped: list[ContactResult] = []
    for member in members:
        key = email_key(member.email)
        first = kept.get(key)
        if first is None:
            kept[key] = member
            continue
        kept[key] = MemberUpsert(
            email=first.email,
            merge_fields={**first.merge_fields, **member.merge_fields},
            subscribe_if_new=first.subscribe_if_new and member.subscribe_if_new,
            language=member.language if member.language is not None else first.language,
            vip=member.vip if member.vip is not None else first.vip,
        )
        skipped.append(result(member.email, "upsert", Outcome.SKIPPED, error_code="DUPLICATE_IN_INPUT"))
    return list(kept.values()), skipped


def segment_parts(add: Sequence[str], remove: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """A static segment change cut into calls of at most SEGMENT_CHANGE_SIZE adds and as many removals,
    duplicates dropped: [(to_add, to_remove), ...]."""
    adds = list(chunks(list(dict.fromkeys(add)), SEGMENT_CHANGE_SIZE))
    removes = list(chunks(list(dict.fromkeys(remove)), SEGMENT_CHANGE_SIZE))
    return [
        (list(adds[i]) if i < len(adds) else [], list(removes[i]) if i < len(removes) else [])
        for i in range(max(len(adds), len(removes)))
    ]


class MailchimpClient:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        max_connections: int = DEFAULT_CONNECTIONS,
        timeouts: Timeouts = MAILCHIMP_TIMEOUTS,
        policy: RetryPolicy = DEFAULT_RETRY,
        is_syncing: bool = False,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        session: Any = None,
        batch_updates_above: int | None = BATCH_UPDATES_ABOVE,
        batch_polling: BatchPolling = DEFAULT_POLLING,
        downloads: Any = None,
    ) -> None:
        """`batch_updates_above`: None always updates members with single PUTs. `downloads`: the requests
        Session that fetches batch results (no credentials on it)."""
        if not 1 <= max_connections <= MAX_CONNECTIONS:
            raise ValueError(f"max_connections must be 1-{MAX_CONNECTIONS} (Mailchimp's per-key ceiling)")
        self.max_connections = max_connections
        self.is_syncing = is_syncing  # true: tag changes do not fire tag-based automations
        gate = shared_connection_gate(api_key, max_connections)
        self.http = ApiSession(
            DESTINATION,
            base_url or base_url_for(api_key),
            pool_size=max_connections,
            timeouts=timeouts,
            policy=policy,
            auth=("segflow", api_key),
            gate=lambda: gate,
            sleep=sleep,
            clock=clock,
            rng=rng,
            session=session,
        )
        self.batch_updates_above = batch_updates_above
        self.batches = BatchRunner(self.http, polling=batch_polling, timeouts=timeouts, sleep=sleep, clock=clock,
                                   rng=rng, downloads=downloads)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.batches.close()

    def stats(self) -> CallStats:
        return self.http.snapshot()

    # ---- helpers ----------------------------------------------------------------------------------

    def _json(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.http.request(method, route, **kwargs)
        return response.json() if response.content else None

    def _paginate(self, route: str, key: str, list_id: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paged collection: count/offset until total_items, never the default 10."""
        items: list[dict[str, Any]] = []
        while True:
            page = self._json("GET", route, path_params={"list_id": list_id},
                              params={**(params or {}), "count": PAGE_SIZE, "offset": len(items)})
            batch = page.get(key) or []
            items.extend(batch)
            if not batch or len(items) >= int(page.get("total_items", 0)):
                return items

    def _parallel(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Run single-member calls side by side; the shared gate still caps connections per key.

        After the first DestinationError no new call starts; it is raised carrying the results done so far.
        """
        items = list(items)
        stop = threading.Event()
        errors: list[DestinationError] = []

        def guarded(item: T) -> R | object:
            if stop.is_set():
                return _NOT_RUN
            try:
                return work(item)
            except DestinationError as exc:
                stop.set()
                errors.append(exc)
                return _NOT_RUN

        if len(items) <= 1:
            outputs = [guarded(item) for item in items]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_connections, len(items))) as pool:
                outputs = list(pool.map(guarded, items))
        done = [o for o in outputs if o is not _NOT_RUN]
        if errors:
            errors[0].results = [*errors[0].results, *(r for r in done if isinstance(r, ContactResult))]
            raise errors[0]
        return done  # type: ignore[return-value]

    # ---- merge fields -----------------------------------------------------------------------------

    def list_merge_fields(self, list_id: str) -> list[dict[str, Any]]:
        return self._paginate(MERGE_FIELDS, "merge_fields", list_id)

    def create_merge_field(self, list_id: str, spec: MergeFieldSpec) -> dict[str, Any]:
        return self._json("POST", MERGE_FIELDS, path_params={"list_id": list_id}, json=spec.create_body())

    def ensure_merge_fields(self, list_id: str, specs: Sequence[MergeFieldSpec]) -> dict[str, str]:
        """Create only the missing fields; returns {requested tag: tag on the audience}.

        A field matches by tag, or by name when someone created it by hand under another tag.
        """
        existing = self.list_merge_fields(list_id)
        by_tag = {f["tag"]: f for f in existing}
        by_name = {str(f.get("name", "")).casefold(): f for f in existing}
        tags: dict[str, str] = {}
        missing: list[MergeFieldSpec] = []
        for spec in specs:
            found = by_tag.get(spec.tag) or by_name.get(spec.name.casefold())
            if found is None:
                missing.append(spec)
                continue
            if found.get("type") != spec.type:
                raise ProvisioningConflict(
                    f"merge field {found['tag']} is of type {found.get('type')}, segflow needs {spec.type}")
            tags[spec.tag] = found["tag"]
        if len(existing) + len(missing) > MAX_MERGE_FIELDS:
            raise ProvisioningConflict(
                f"audience has {len(existing)} merge fields; adding {len(missing)} would pass Mailchimp's "
                f"{MAX_MERGE_FIELDS}")
        for spec in missing:
            tags[spec.tag] = self._create_or_find(list_id, spec)
        logger.info("mailchimp merge fields ensured",
                    extra={"list_id": list_id, "fields_created": len(missing), "kept": len(specs) - len(missing)})
        return tags

    def _create_or_find(self, list_id: str, spec: MergeFieldSpec) -> str:
        try:
            return str(self.create_merge_field(list_id, spec)["tag"])
        except RequestRejected:
            # a retried create that did succeed, or a concurrent run: look again before failing
            again = {f["tag"]: f for f in self.list_merge_fields(list_id)}
            if spec.tag in again:
                return spec.tag
            raise

    # ---- static segments ---------------------------------------------------------------------------

    def list_static_segments(self, list_id: str) -> list[dict[str, Any]]:
        return self._paginate(SEGMENTS, "segments", list_id, {"type": "static"})

    def create_static_segment(self, list_id: str, name: str, emails: Sequence[str] = ()) -> dict[str, Any]:
        if len(emails) > SEGMENT_CHANGE_SIZE:
            raise ValueError(f"create with at most {SEGMENT_CHANGE_SIZE} emails; add the rest with update_segment_members")
        body = {"name": name, "static_segment": list(emails)}
        return self._json("POST", SEGMENTS, path_params={"list_id": list_id}, json=body)

    def ensure_static_segment(self, list_id: str, name: str) -> str:
        """The id of the static segment (tag) with this name, created empty when missing."""
        for segment in self.list_static_segments(list_id):
            if segment.get("name") == name:
                return str(segment["id"])
        try:
            return str(self.create_static_segment(list_id, name)["id"])
        except RequestRejected:
            for segment in self.list_static_segments(list_id):
                if segment.get("name") == name:
                    return str(segment["id"])
            raise

    def update_segment_members(
        self, list_id: str, segment_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[ContactResult]:
        """Add/remove emails, at most 500 of each per call. Removing is never an unsubscribe."""
        results: list[ContactResult] = []
        for to_add, to_remove in segment_parts(add, remove):
            body = {"members_to_add": to_add, "members_to_remove": to_remove}
            try:
                answer = self._json("POST", SEGMENT, path_params={"list_id": list_id, "segment_id": segment_id},
                                    json=body)
            except RequestRejected as exc:
                results += [failed(e, "segment_add", f"HTTP_{exc.status}", exc.reason) for e in to_add]
                results += [failed(e, "segment_remove", f"HTTP_{exc.status}", exc.reason) for e in to_remove]
                continue
            except DestinationError as exc:
                exc.results = results
                raise
            results += segment_results(answer, to_add, to_remove)
        return results

    # ---- members --------------------------------------------------------------------------------------

    def upsert_members(self, list_id: str, members: Sequence[MemberUpsert]) -> list[ContactResult]:
        """Create consented new contacts in create-only batches (<= 500); update everyone else without status."""
        unique, results = dedupe_members(members)
        to_create = [m for m in unique if m.subscribe_if_new]
        to_update = [m for m in unique if not m.subscribe_if_new]
        try:
            for chunk in chunks(to_create, BATCH_SIZE):
                chunk_results, existing = self._create_batch(list_id, chunk)
                results += chunk_results
                to_update += existing
            results += self._update_members(list_id, to_update)
        except DestinationError as exc:
            exc.results = results + exc.results
            raise
        logger.info("mailchimp members upserted", extra={"list_id": list_id, "contacts": len(members),
                                                         "created_batches": -(-len(to_create) // BATCH_SIZE),
                                                         "updates": len(to_update)})
        return results

    def _create_batch(self, list_id: str, chunk: list[MemberUpsert]) -> tuple[list[ContactResult], list[MemberUpsert]]:
        body = {"members": [m.create_item() for m in chunk], "update_existing": False}
        try:
            answer = self._json("POST", LISTS, path_params={"list_id": list_id}, json=body)
        except RequestRejected as exc:
            return [failed(m.email, "upsert", f"HTTP_{exc.status}", exc.reason) for m in chunk], []
        return batch_create_results(answer, chunk)

    def _update_members(self, list_id: str, members: list[MemberUpsert]) -> list[ContactResult]:
        if self.batch_updates_above is not None and len(members) > self.batch_updates_above:
            return self._update_members_in_batch(list_id, members)
        return self._parallel(lambda m: self._update_member(list_id, m), members)

    def _update_members_in_batch(self, list_id: str, members: list[MemberUpsert]) -> list[ContactResult]:
        """The same PUTs (no `status`) as batch operations; operation ids are subscriber hashes, not emails."""
        operations = [self.member_update_operation(list_id, m) for m in members]
        outcomes = self.run_batch(operations)
        return [batch_operation_result(m.email, o.status_code, o.response, "upsert")
                for m, o in zip(members, outcomes, strict=True)]

    # ---- batch operations (read their results with mailchimp_outcomes) ------------------------------------

    @staticmethod
    def member_update_operation(list_id: str, member: MemberUpsert) -> BatchOperation:
        """PUT of an existing member without `status`; its id is the subscriber hash."""
        member_id = subscriber_hash(member.email)
        path = render_route(MEMBER, {"list_id": list_id, "subscriber_hash": member_id})
        return BatchOperation("PUT", path, operation_id=member_id, body=member.update_body())

    def tags_operation(self, list_id: str, update: TagUpdate) -> BatchOperation:
        """update_tags as an operation; its id is "tags-" and the subscriber hash."""
        member_id = subscriber_hash(update.email)
        path = render_route(MEMBER_TAGS, {"list_id": list_id, "subscriber_hash": member_id})
        body = update.body(self.is_syncing)
        return BatchOperation("POST", path, operation_id=f"tags-{member_id}", body=body)

    @staticmethod
    def segment_members_operations(
        list_id: str, segment_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[tuple[BatchOperation, list[str], list[str]]]:
        """update_segment_members as operations (at most 500 adds and 500 removals each), with the emails each
        carries; ids are "segment-", the segment id and the part."""
        path = render_route(SEGMENT, {"list_id": list_id, "segment_id": segment_id})
        operations = []
        for index, (to_add, to_remove) in enumerate(segment_parts(add, remove)):
            body = {"members_to_add": to_add, "members_to_remove": to_remove}
            operation = BatchOperation("POST", path, operation_id=f"segment-{segment_id}-{index}", body=body)
            operations.append((operation, to_add, to_remove))
        return operations

    def run_batch(self, operations: Sequence[BatchOperation]) -> list[OperationResult]:
        """Run operations through POST /batches and wait for them: one result per operation, in order
        (status_code None when the results did not report it). Raises BatchNotCompleted (retryable) when the
        batch does not finish within the polling budget or its results cannot be read."""
        return self.batches.run(operations)

    def _update_member(self, list_id: str, member: MemberUpsert) -> ContactResult:
        try:
            response = self.http.request(
                "PUT", MEMBER, path_params={"list_id": list_id, "subscriber_hash": subscriber_hash(member.email)},
                json=member.update_body(), accept=(400,),
            )
        except RequestRejected as exc:
            return failed(member.email, "upsert", f"HTTP_{exc.status}", exc.reason)
        if response.status_code == 400:
            return problem_result(member.email, redacted_body(response.content), "upsert", 400)
        return member_result(member.email, response.json(), "upsert")

    def update_tags(self, list_id: str, update: TagUpdate) -> ContactResult:
        """Set tags active/inactive on one member (a 404 member cannot be tagged)."""
        try:
            response = self.http.request(
                "POST", MEMBER_TAGS, path_params={"list_id": list_id, "subscriber_hash": subscriber_hash(update.email)},
                json=update.body(self.is_syncing), accept=(404,),
            )
        except RequestRejected as exc:
            return failed(update.email, "tags", f"HTTP_{exc.status}", exc.reason)
        return tags_operation_result(update.email, update.tags, response.status_code, None)  # a 2xx or a 404

    def update_tags_many(self, list_id: str, updates: Sequence[TagUpdate]) -> list[ContactResult]:
        return self._parallel(lambda u: self.update_tags(list_id, u), updates)

    def delete_permanently(self, list_id: str, email: str) -> ContactResult:
        """Erase a member for good (GDPR). The email can never be imported again; 404 means already gone."""
        try:
            response = self.http.request(
                "POST", DELETE_PERMANENT, path_params={"list_id": list_id, "subscriber_hash": subscriber_hash(email)},
                accept=(404,),
            )
        except RequestRejected as exc:
            return failed(email, "delete", f"HTTP_{exc.status}", exc.reason)
        outcome = Outcome.SKIPPED if response.status_code == 404 else Outcome.OK
        return result(email, "delete", outcome, destination_id=subscriber_hash(email))

    def get_member(self, list_id: str, email: str) -> dict[str, Any] | None:
        response = self.http.request(
            "GET", MEMBER, path_params={"list_id": list_id, "subscriber_hash": subscriber_hash(email)}, accept=(404,),
        )
        return None if response.status_code == 404 else response.json()

    def get_members(self, list_id: str, emails: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """{lower-cased email: member or None} for reconciliation."""
        unique = list(dict.fromkeys(email_key(e) for e in emails))
        found = self._parallel(lambda e: self.get_member(list_id, e), unique)
        return dict(zip(unique, found, strict=True))

    def member_pages(
        self, list_id: str, status: str, since_last_changed: datetime | None = None, offset: int = 0
    ) -> Iterator[MemberPage]:
        """The audience's members in one status (changed after `since_last_changed` when given), 1000 a page
        with only SCAN_FIELDS: one call per 1000 members instead of one per member. Pages by count/offset from
        `offset` (a scan carried on) until the offset reaches total_items (as the latest page reports it) or a
        page comes back empty.
        A member who changes during the scan can shift the pages; MemberPage.total_items lets the caller see
        that the filter's total moved."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {MEMBER_STATUSES}")
        params: dict[str, Any] = {"status": status, "fields": ",".join(SCAN_FIELDS), "count": PAGE_SIZE}
        if since_last_changed is not None:
            if since_last_changed.tzinfo is None:
                raise ValueError("since_last_changed must be timezone-aware")
            since = since_last_changed.astimezone(timezone.utc)
            params["since_last_changed"] = since.isoformat(timespec="seconds")
        while True:
            page = self._json("GET", MEMBERS, path_params={"list_id": list_id}, params={**params, "offset": offset})
            members = list(page.get("members") or [])
            total = int(page.get("total_items", 0))
            yield MemberPage(members, offset, total)
            offset += len(members)
            if not members or offset >= total:
                return

    def member_statuses(self, list_id: str, emails: Sequence[str]) -> list[ContactResult]:
        """Read status per contact: unsubscribed/cleaned become COMPLIANCE, absent ones SKIPPED."""
        results = []
        for email, member in self.get_members(list_id, emails).items():
            if member is None:
                results.append(result(email, "read", Outcome.SKIPPED, error_code="MEMBER_NOT_FOUND"))
            else:
                results.append(member_result(email, member, "read", ok=Outcome.OK))
        return results
