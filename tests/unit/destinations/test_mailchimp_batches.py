"""Mailchimp batch operations in the client: submit, poll with backoff, download results without the API key,
map every result back to its contact; and the member-update path that uses them."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest
from segflow.destinations.errors import RetriesExhausted
from segflow.destinations.http import RetryPolicy
from segflow.destinations.mailchimp import MailchimpClient
from segflow.destinations.mailchimp_batches import (
    MAX_OPERATIONS,
    BatchNotCompleted,
    BatchOperation,
    BatchPolling,
    read_results_archive,
)
from segflow.destinations.mailchimp_models import MemberUpsert, subscriber_hash
from segflow.destinations.results import Outcome

from tests.unit.destinations.doubles import MaxRandom, Reply, ScriptedTransport, Seen, VirtualClock, install

KEY = "0123456789abcdef0123456789abcdef-us6"
LIST = "abc123"
RESULTS_HOST = "mc-batch-results.s3.amazonaws.com"
POLLING = BatchPolling(first_delay_s=1.0, factor=2.0, max_delay_s=4.0, budget_s=60.0)


def archive(entries: list[dict[str, Any]], per_file: int = 2) -> bytes:
    """A results archive as Mailchimp publishes it: a folder and several JSON files of results."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo("results")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for n, start in enumerate(range(0, len(entries), per_file)):
            payload = json.dumps(entries[start : start + per_file]).encode()
            info = tarfile.TarInfo(f"results/{n}.json")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def problem(title: str, detail: str) -> str:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": 400, "detail": detail, "instance": "x"}
    )


class MiniBatches:
    """Batch endpoints with Mailchimp's shape: each batch finishes on status read `polls_to_finish`.

    Member rules by email prefix: gone* are unsubscribed, forgotten* were deleted for good, boom* fail with
    a 500 inside the batch, lost* are missing from the results.
    """

    def __init__(self, polls_to_finish: int = 2, download_failures: list[int] | None = None) -> None:
        self.polls_to_finish = polls_to_finish
        self.download_failures = list(download_failures or [])
        self.batches: dict[str, dict[str, Any]] = {}

    def __call__(self, seen: Seen) -> Reply:
        if seen.host == RESULTS_HOST:
            return self.download(seen)
        path = seen.path.removeprefix("/3.0")
        if seen.method == "POST" and path == "/batches":
            batch_id = f"b{len(self.batches) + 1}"
            self.batches[batch_id] = {"operations": seen.body["operations"], "polls": 0}
            return Reply(200, self.view(batch_id))
        if seen.method == "GET" and path.startswith("/batches/"):
            batch = self.batches[path.rsplit("/", 1)[1]]
            batch["polls"] += 1
            return Reply(200, self.view(path.rsplit("/", 1)[1]))
        if seen.method == "DELETE" and path.startswith("/batches/"):
            self.batches.pop(path.rsplit("/", 1)[1], None)
            return Reply(204)
        if seen.method == "POST" and path == f"/lists/{LIST}":  # create-only batch: everyone already exists
            errors = [
                {
                    "email_address": m["email_address"],
                    "error": "is already a list member",
                    "error_code": "ERROR_CONTACT_EXISTS",
                }
                for m in seen.body["members"]
            ]
            return Reply(
                200,
                {
                    "new_members": [],
                    "updated_members": [],
                    "errors": errors,
                    "total_created": 0,
                    "total_updated": 0,
                    "error_count": len(errors),
                },
            )
        if seen.method == "PUT" and "/members/" in path:
            return Reply(
                200, {"id": "x", "email_address": seen.body["email_address"], "status": "subscribed"}
            )
        raise AssertionError(f"unexpected {seen.method} {seen.path}")

    def view(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        finished = batch["polls"] >= self.polls_to_finish
        status = "finished" if finished else ("started" if batch["polls"] else "pending")
        url = f"https://{RESULTS_HOST}/{batch_id}.tar.gz?X-Amz-Signature=abc" if finished else ""
        return {
            "id": batch_id,
            "status": status,
            "total_operations": len(batch["operations"]),
            "response_body_url": url,
        }

    def download(self, seen: Seen) -> Reply:
        if self.download_failures:
            return Reply(self.download_failures.pop(0), raw=b"<Error/>")
        batch = self.batches[seen.path.strip("/").removesuffix(".tar.gz")]
        return Reply(
            200, raw=archive([e for op in batch["operations"] if (e := self.result(op)) is not None])
        )

    @staticmethod
    def result(op: dict[str, Any]) -> dict[str, Any] | None:
        body = json.loads(op.get("body") or "{}")
        email = str(body.get("email_address", "")).lower()
        if email.startswith("lost"):
            return None
        if email.startswith("forgotten"):
            return {
                "status_code": 400,
                "operation_id": op["operation_id"],
                "response": problem(
                    "Forgotten Email Not Subscribed",
                    f"{email} was permanently deleted and cannot be re-imported.",
                ),
            }
        if email.startswith("boom"):
            return {
                "status_code": 500,
                "operation_id": op["operation_id"],
                "response": json.dumps({"title": "Internal Server Error", "status": 500}),
            }
        status = "unsubscribed" if email.startswith("gone") else "subscribed"
        member = {"id": subscriber_hash(email), "email_address": email, "status": status}
        return {"status_code": 200, "operation_id": op["operation_id"], "response": json.dumps(member)}


def client_for(
    handler: Any, clock: VirtualClock | None = None, **options: Any
) -> tuple[MailchimpClient, ScriptedTransport]:
    clock = clock or VirtualClock()
    options.setdefault("batch_polling", POLLING)
    client = MailchimpClient(KEY, sleep=clock.sleep, clock=clock, rng=MaxRandom(), **options)  # type: ignore[arg-type]
    return client, install(client, ScriptedTransport(handler))


def put(email: str) -> BatchOperation:
    return BatchOperation(
        "PUT",
        f"/lists/{LIST}/members/{subscriber_hash(email)}",
        subscriber_hash(email),
        body={"email_address": email, "status_if_new": "transactional"},
    )


# ---- run_batch ---------------------------------------------------------------------------------------------


def test_run_batch_submits_once_polls_with_backoff_and_returns_results_in_order() -> None:
    clock = VirtualClock()
    batches = MiniBatches(polls_to_finish=3)
    client, transport = client_for(batches, clock)
    emails = ["a@example.com", "lost@example.com", "b@example.com"]
    results = client.run_batch([put(e) for e in emails])

    [submitted] = transport.calls("POST", "/batches")
    sent = submitted.body["operations"]
    assert [op["method"] for op in sent] == ["PUT"] * 3
    assert all(isinstance(op["body"], str) for op in sent)  # the API takes the body as a JSON string
    assert json.loads(sent[0]["body"]) == {"email_address": "a@example.com", "status_if_new": "transactional"}
    assert [op["operation_id"] for op in sent] == [subscriber_hash(e) for e in emails]
    assert len(transport.calls("GET", "/batches/b1")) == 3
    assert clock.sleeps == [1.0, 2.0, 4.0]  # backoff between status reads, capped at max_delay_s
    assert [r.operation_id for r in results] == [subscriber_hash(e) for e in emails]
    assert [r.status_code for r in results] == [200, None, 200]  # lost@ was not in the results
    assert results[0].response["email_address"] == "a@example.com"  # the JSON string is parsed


def test_results_are_downloaded_without_the_api_key() -> None:
    client, transport = client_for(MiniBatches())
    client.run_batch([put("a@example.com")])
    downloads = [s for s in transport.seen if s.host == RESULTS_HOST]
    api_calls = [s for s in transport.seen if s.host != RESULTS_HOST]
    assert len(downloads) == 1
    assert "Authorization" not in downloads[0].headers
    assert all(s.headers["Authorization"].startswith("Basic ") for s in api_calls)
    assert client.stats().calls == len(transport.seen)  # the download is counted as a call


def test_a_batch_that_never_finishes_is_deleted_and_raises_a_retryable_error() -> None:
    clock = VirtualClock()
    batches = MiniBatches(polls_to_finish=10_000)
    client, transport = client_for(batches, clock)
    with pytest.raises(BatchNotCompleted) as caught:
        client.run_batch([put("a@example.com")])
    assert isinstance(caught.value, RetriesExhausted)  # the applier leaves the contacts retryable
    assert sum(clock.sleeps) <= POLLING.budget_s and clock.now - 1_000.0 <= POLLING.budget_s
    assert len(transport.calls("GET", "/batches/b1")) == len(clock.sleeps) >= 5
    assert len(transport.calls("DELETE", "/batches/b1")) == 1 and batches.batches == {}
    assert not [s for s in transport.seen if s.host == RESULTS_HOST]


def test_archive_downloads_retry_5xx_and_give_up_on_a_refusal() -> None:
    client, transport = client_for(MiniBatches(download_failures=[503, 500]))
    assert client.run_batch([put("a@example.com")])[0].status_code == 200
    assert len([s for s in transport.seen if s.host == RESULTS_HOST]) == 3
    assert client.stats().retries == 2

    client, transport = client_for(MiniBatches(download_failures=[403]))
    with pytest.raises(BatchNotCompleted) as caught:
        client.run_batch([put("a@example.com")])
    assert caught.value.status == 403
    assert len([s for s in transport.seen if s.host == RESULTS_HOST]) == 1  # a refusal is not retried


def test_operations_beyond_500_go_in_further_batches() -> None:
    client, transport = client_for(MiniBatches())
    emails = [f"u{i}@example.com" for i in range(MAX_OPERATIONS + 1)]
    results = client.run_batch([put(e) for e in emails])
    assert [len(s.body["operations"]) for s in transport.calls("POST", "/batches")] == [500, 1]
    assert [r.status_code for r in results] == [200] * len(emails)


def test_operation_ids_must_be_unique() -> None:
    client, transport = client_for(MiniBatches())
    with pytest.raises(ValueError, match="unique"):
        client.run_batch([put("a@example.com"), put("A@example.com")])
    assert transport.seen == []


def test_results_archive_reader_takes_every_file_and_refuses_garbage() -> None:
    entries = [
        {"status_code": 200, "operation_id": "one", "response": json.dumps({"id": "1"})},
        {"status_code": 204, "operation_id": "two", "response": ""},
        {"status_code": 400, "operation_id": "three", "response": {"title": "already parsed"}},
    ]
    found = read_results_archive(archive(entries, per_file=1))
    assert {k: (v.status_code, v.response) for k, v in found.items()} == {
        "one": (200, {"id": "1"}),
        "two": (204, None),
        "three": (400, {"title": "already parsed"}),
    }
    with pytest.raises(ValueError):
        read_results_archive(b"not an archive")


# ---- member updates through batches ----------------------------------------------------------------------


def test_more_than_three_existing_members_are_updated_in_one_batch_without_status() -> None:
    client, transport = client_for(MiniBatches())
    members = [MemberUpsert(f"u{i}@example.com", {"CHURN": i}) for i in range(4)]
    members += [
        MemberUpsert("Gone@example.com", {"CHURN": 9}, subscribe_if_new=True),
        MemberUpsert("forgotten@example.com", {"CHURN": 9}, subscribe_if_new=True),
        MemberUpsert("boom@example.com"),
        MemberUpsert("lost@example.com"),
    ]
    results = {r.email: r for r in client.upsert_members(LIST, members)}

    assert transport.calls("PUT") == [] and len(transport.calls("POST", "/batches")) == 1
    operations = transport.calls("POST", "/batches")[0].body["operations"]
    assert len(operations) == len(members)
    for op in operations:
        body = json.loads(op["body"])
        assert (
            op["method"] == "PUT"
            and "status" not in body
            and body["status_if_new"] in ("subscribed", "transactional")
        )
        assert op["path"] == f"/lists/{LIST}/members/{subscriber_hash(body['email_address'])}"
        assert "@" not in op["operation_id"]  # a hash, no email
    assert {results[f"u{i}@example.com"].outcome for i in range(4)} == {Outcome.UPDATED}
    gone = results["Gone@example.com"]
    assert (gone.outcome, gone.error_code, gone.status) == (
        Outcome.COMPLIANCE,
        "STATUS_UNSUBSCRIBED",
        "unsubscribed",
    )
    forgotten = results["forgotten@example.com"]
    assert (forgotten.outcome, forgotten.error_code) == (Outcome.COMPLIANCE, "FORGOTTEN_EMAIL")
    assert "example.com" not in (forgotten.error_message or "")  # emails redacted from messages
    assert (results["boom@example.com"].outcome, results["boom@example.com"].retryable) == (
        Outcome.FAILED,
        True,
    )
    assert (results["lost@example.com"].outcome, results["lost@example.com"].retryable) == (
        Outcome.FAILED,
        True,
    )


def test_up_to_three_updates_stay_single_puts_and_the_threshold_is_configurable() -> None:
    client, transport = client_for(MiniBatches())
    client.upsert_members(LIST, [MemberUpsert(f"u{i}@example.com") for i in range(3)])
    assert len(transport.calls("PUT")) == 3 and transport.calls("POST", "/batches") == []

    client, transport = client_for(MiniBatches(), batch_updates_above=None)
    client.upsert_members(LIST, [MemberUpsert(f"u{i}@example.com") for i in range(10)])
    assert len(transport.calls("PUT")) == 10 and transport.calls("POST", "/batches") == []


def test_existing_members_found_by_the_create_batch_join_the_update_batch() -> None:
    client, transport = client_for(MiniBatches())
    members = [MemberUpsert(f"u{i}@example.com", subscribe_if_new=True) for i in range(5)]
    results = client.upsert_members(LIST, members)
    assert len(transport.calls("POST", f"/lists/{LIST}")) == 1  # the create-only batch said "exists"
    assert len(transport.calls("POST", "/batches")[0].body["operations"]) == 5
    assert {r.outcome for r in results} == {Outcome.UPDATED}


def test_an_unfinished_update_batch_keeps_the_results_already_known() -> None:
    clock = VirtualClock()
    client, _ = client_for(MiniBatches(polls_to_finish=10_000), clock, policy=RetryPolicy(max_attempts=2))
    members = [MemberUpsert(f"u{i}@example.com", subscribe_if_new=True) for i in range(4)]
    members.append(MemberUpsert("dup@example.com"))
    members.append(MemberUpsert("DUP@example.com"))
    with pytest.raises(BatchNotCompleted) as caught:
        client.upsert_members(LIST, members)
    assert [r.outcome for r in caught.value.results] == [Outcome.SKIPPED]  # the duplicate, already settled


def test_running_out_of_time_deletes_every_unfinished_batch() -> None:
    batches = MiniBatches(polls_to_finish=10_000)
    client, transport = client_for(batches)
    with pytest.raises(BatchNotCompleted):
        client.run_batch([put(f"u{i}@example.com") for i in range(MAX_OPERATIONS + 1)])
    assert [s.path.rsplit("/", 1)[1] for s in transport.calls("DELETE")] == ["b1", "b2"]
    assert batches.batches == {}


# ---- membership operations (the sync puts them in one batch with the updates) -----------------------------


def test_tags_and_static_segment_changes_as_operations() -> None:
    from segflow.destinations.mailchimp_models import TagUpdate

    client = MailchimpClient(KEY, is_syncing=True)
    tags = client.tags_operation(LIST, TagUpdate("Ana@Example.com", {"vip": True, "old": False}))
    member = subscriber_hash("ana@example.com")
    assert (tags.method, tags.path, tags.operation_id) == ("POST", f"/lists/{LIST}/members/{member}/tags",
                                                           f"tags-{member}")
    assert json.loads(tags.as_json()["body"]) == {
        "tags": [{"name": "vip", "status": "active"}, {"name": "old", "status": "inactive"}],
        "is_syncing": True,
    }
    adds = [f"a{i}@example.com" for i in range(501)]
    parts = client.segment_members_operations(LIST, "17", adds + adds[:1], ["gone@example.com"])
    assert [(op.path, op.operation_id, len(a), len(r)) for op, a, r in parts] == [
        (f"/lists/{LIST}/segments/17", "segment-17-0", 500, 1),
        (f"/lists/{LIST}/segments/17", "segment-17-1", 1, 0),
    ]  # at most 500 of each per call, repeats dropped
    assert parts[0][0].body == {"members_to_add": adds[:500], "members_to_remove": ["gone@example.com"]}


def test_membership_operation_results_per_member() -> None:
    from segflow.destinations.mailchimp_outcomes import segment_operation_results, tags_operation_result

    assert tags_operation_result("a@example.com", {"vip": True}, 204, None).outcome is Outcome.OK
    missing = tags_operation_result("a@example.com", {"vip": True}, 404, {"title": "Resource Not Found"})
    assert missing.outcome is Outcome.FAILED and missing.error_code == "MEMBER_NOT_FOUND"
    assert not missing.retryable
    gone = tags_operation_result("a@example.com", {"vip": False}, 404, None)  # nothing to lose
    assert gone.outcome is Outcome.SKIPPED
    for status in (429, 503, None):  # throttled, a server error, or not in the results: later
        late = tags_operation_result("a@example.com", {"vip": True}, status, None)
        assert late.outcome is Outcome.FAILED and late.retryable
    body = {
        "members_added": [{"email_address": "a@example.com"}],
        "members_removed": [],
        "errors": [{"email_addresses": ["x@example.com"], "error": "not on the audience"}],
    }
    results = segment_operation_results(200, body, ["a@example.com", "x@example.com"], ["r@example.com"])
    assert [(r.email, r.operation, r.outcome) for r in results] == [
        ("a@example.com", "segment_add", Outcome.OK),
        ("x@example.com", "segment_add", Outcome.FAILED),
        ("r@example.com", "segment_remove", Outcome.SKIPPED),  # was not in it: done
    ]
    problem = {"title": "Invalid Resource"}
    refused = segment_operation_results(400, problem, ["a@example.com"], ["r@example.com"])
    assert [(r.outcome, r.error_code, r.retryable) for r in refused] == [
        (Outcome.FAILED, "HTTP_400", False),
        (Outcome.FAILED, "HTTP_400", False),
    ]
    assert all(r.retryable for r in segment_operation_results(500, None, ["a@example.com"], []))
