"""Mailchimp client against an in-process transport: batching, no re-subscription, pagination, concurrency."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from segflow.destinations.errors import ProvisioningConflict, RetriesExhausted
from segflow.destinations.http import RetryPolicy
from segflow.destinations.mailchimp import MailchimpClient, base_url_for, data_center
from segflow.destinations.mailchimp_models import MemberUpsert, MergeFieldSpec, TagUpdate, subscriber_hash
from segflow.destinations.results import Outcome

from tests.unit.destinations.doubles import Reply, ScriptedTransport, Seen, VirtualClock, install

KEY = "0123456789abcdef0123456789abcdef-us6"
LIST = "abc123"


class MiniAudience:
    """Just enough Mailchimp behaviour to drive the client: members, merge fields, errors."""

    def __init__(self, existing: dict[str, str] | None = None, merge_tags: int = 0) -> None:
        self.members = dict(existing or {})  # lower email -> status
        self.merge_fields = [{"tag": f"F{i}", "name": f"Field {i}", "type": "text"} for i in range(merge_tags)]

    def __call__(self, seen: Seen) -> Reply:
        path = seen.path.removeprefix("/3.0")
        if seen.method == "POST" and path == f"/lists/{LIST}":
            return self.batch(seen.body)
        if seen.method == "PUT" and "/members/" in path:
            email = seen.body["email_address"].lower()
            status = self.members.setdefault(email, seen.body["status_if_new"])
            if "status" in seen.body:
                self.members[email] = seen.body["status"]
            return Reply(200, {"id": subscriber_hash(email), "email_address": email, "status": status})
        if seen.method == "GET" and path.endswith("/merge-fields"):
            count, offset = int(seen.query["count"][0]), int(seen.query["offset"][0])
            page = self.merge_fields[offset:offset + count]
            return Reply(200, {"merge_fields": page, "total_items": len(self.merge_fields)})
        if seen.method == "POST" and path.endswith("/merge-fields"):
            self.merge_fields.append(dict(seen.body))
            return Reply(200, dict(seen.body))
        if seen.method == "POST" and path.endswith("/tags"):
            return Reply(204)
        raise AssertionError(f"unexpected {seen.method} {path}")

    def batch(self, body: dict[str, Any]) -> Reply:
        new, errors = [], []
        for item in body["members"]:
            email = item["email_address"].lower()
            if email in self.members and not body["update_existing"]:
                errors.append({"email_address": item["email_address"], "error": f"{email} is already a list member.",
                               "error_code": "ERROR_CONTACT_EXISTS"})
            elif email.startswith("forgotten"):
                errors.append({"email_address": item["email_address"], "error_code": "ERROR_GENERIC",
                               "error": f"{email} was permanently deleted and cannot be re-imported."})
            elif email.startswith("badmerge"):
                errors.append({"email_address": item["email_address"], "error": "Your merge fields were invalid.",
                               "error_code": "ERROR_GENERIC", "field": "CHURN", "field_message": "Please enter a number"})
            else:
                self.members[email] = item["status"]
                new.append({"id": subscriber_hash(email), "email_address": email, "status": item["status"]})
        return Reply(200, {"new_members": new, "updated_members": [], "errors": errors,
                           "total_created": len(new), "total_updated": 0, "error_count": len(errors)})


def client_for(handler: Any, clock: VirtualClock | None = None, **options: Any) -> tuple[MailchimpClient, ScriptedTransport]:
    clock = clock or VirtualClock()
    client = MailchimpClient(KEY, sleep=clock.sleep, clock=clock, **options)
    return client, install(client, ScriptedTransport(handler))


def test_data_centre_comes_from_the_key_suffix() -> None:
    assert data_center(KEY) == "us6"
    assert base_url_for("abc-us21") == "https://us21.api.mailchimp.com/3.0"
    with pytest.raises(ValueError):
        data_center("no-dash-suffix-")
    with pytest.raises(ValueError):
        data_center("nodatacentre")


def test_requests_use_the_key_data_centre_and_basic_auth() -> None:
    client, transport = client_for(MiniAudience())
    client.update_tags(LIST, TagUpdate("ana@example.com", {"vip": True}))
    seen = transport.seen[0]
    assert seen.path == f"/3.0/lists/{LIST}/members/{subscriber_hash('ana@example.com')}/tags"
    assert seen.headers["Authorization"].startswith("Basic ")
    assert seen.body == {"tags": [{"name": "vip", "status": "active"}], "is_syncing": False}


def test_merge_tag_longer_than_ten_characters_is_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="1-10"):
        MergeFieldSpec("CHURNRISK12", "Churn risk", "number")
    with pytest.raises(ValueError):
        MergeFieldSpec("churn", "Churn risk", "number")
    with pytest.raises(ValueError):
        MergeFieldSpec("TIER", "Tier", "dropdown")  # no choices


def test_501_new_members_go_in_two_batches_of_at_most_500() -> None:
    audience = MiniAudience()
    client, transport = client_for(audience)
    members = [MemberUpsert(f"u{i}@example.com", {"CHURN": i}, subscribe_if_new=True) for i in range(501)]
    results = client.upsert_members(LIST, members)
    batches = transport.calls("POST", f"/lists/{LIST}")
    assert [len(b.body["members"]) for b in batches] == [500, 1]
    assert all(b.body["update_existing"] is False for b in batches)
    assert [r.outcome for r in results].count(Outcome.CREATED) == 501
    assert len(audience.members) == 501


def test_existing_members_are_updated_without_status_and_never_resubscribed() -> None:
    audience = MiniAudience({"gone@example.com": "unsubscribed", "kept@example.com": "subscribed",
                             "wait@example.com": "pending"})
    client, transport = client_for(audience)
    members = [
        MemberUpsert("Gone@Example.com", {"CHURN": 1}, subscribe_if_new=True),
        MemberUpsert("kept@example.com", {"CHURN": 2}),
        MemberUpsert("wait@example.com", {"CHURN": 3}, subscribe_if_new=True),
        MemberUpsert("new@example.com", {"CHURN": 4}, subscribe_if_new=True),
    ]
    results = {r.email.lower(): r for r in client.upsert_members(LIST, members)}
    # the only `status` ever sent is in the create-only batch, which cannot touch existing members
    for seen in transport.seen:
        if seen.method == "PUT":
            assert "status" not in seen.body and seen.body["status_if_new"] in ("subscribed", "transactional")
    batch = transport.calls("POST", f"/lists/{LIST}")
    assert [m["email_address"] for m in batch[0].body["members"]] == ["Gone@Example.com", "wait@example.com",
                                                                       "new@example.com"]
    assert audience.members == {"gone@example.com": "unsubscribed", "kept@example.com": "subscribed",
                                "wait@example.com": "pending", "new@example.com": "subscribed"}
    assert results["gone@example.com"].outcome is Outcome.COMPLIANCE
    assert results["gone@example.com"].status == "unsubscribed"
    assert results["kept@example.com"].outcome is Outcome.UPDATED
    assert results["wait@example.com"].outcome is Outcome.UPDATED
    assert results["new@example.com"].outcome is Outcome.CREATED
    # a contact without consent for a new membership is created (only if it vanished) as transactional
    kept_put = next(s for s in transport.seen if s.method == "PUT" and s.body["email_address"] == "kept@example.com")
    assert kept_put.body["status_if_new"] == "transactional"


def test_batch_errors_are_mapped_back_to_each_contact_by_email() -> None:
    client, _ = client_for(MiniAudience())
    members = [MemberUpsert("ok@example.com", subscribe_if_new=True),
               MemberUpsert("Forgotten@example.com", subscribe_if_new=True),
               MemberUpsert("badmerge@example.com", {"CHURN": "high"}, subscribe_if_new=True)]
    results = {r.email: r for r in client.upsert_members(LIST, members)}
    assert results["ok@example.com"].outcome is Outcome.CREATED
    forgotten = results["Forgotten@example.com"]
    assert forgotten.outcome is Outcome.COMPLIANCE and forgotten.error_code == "FORGOTTEN_EMAIL"
    assert not forgotten.retryable and "example.com" not in (forgotten.error_message or "")
    bad = results["badmerge@example.com"]
    assert bad.outcome is Outcome.FAILED and "CHURN: Please enter a number" in (bad.error_message or "")


def test_duplicate_emails_are_merged_case_insensitively_before_sending() -> None:
    client, transport = client_for(MiniAudience())
    members = [MemberUpsert("ana@example.com", {"FNAME": "Ana"}, subscribe_if_new=True),
               MemberUpsert("ANA@example.com", {"CHURN": 1}, subscribe_if_new=True)]
    results = client.upsert_members(LIST, members)
    sent = transport.calls("POST", f"/lists/{LIST}")[0].body["members"]
    assert len(sent) == 1 and sent[0]["merge_fields"] == {"FNAME": "Ana", "CHURN": 1}
    assert sorted(r.outcome.value for r in results) == ["created", "skipped"]


def test_merge_fields_are_paged_with_count_and_offset_and_only_missing_ones_created() -> None:
    audience = MiniAudience(merge_tags=0)
    audience.merge_fields = [{"tag": f"F{i}", "name": f"Field {i}", "type": "text"} for i in range(1_500)]
    client, transport = client_for(audience)
    client_fields = client.list_merge_fields(LIST)
    assert len(client_fields) == 1_500
    gets = transport.calls("GET", "/merge-fields")
    assert [(g.query["count"], g.query["offset"]) for g in gets] == [(["1000"], ["0"]), (["1000"], ["1000"])]


def test_ensure_merge_fields_creates_only_missing_and_matches_by_name() -> None:
    audience = MiniAudience()
    audience.merge_fields = [{"tag": "CHURN", "name": "Churn risk", "type": "number"},
                             {"tag": "MMERGE7", "name": "Tier", "type": "dropdown"}]
    client, transport = client_for(audience)
    specs = [MergeFieldSpec("CHURN", "Churn risk", "number"),
             MergeFieldSpec("TIER", "Tier", "dropdown", ("gold",)),
             MergeFieldSpec("CLV", "Predicted CLV", "number")]
    assert client.ensure_merge_fields(LIST, specs) == {"CHURN": "CHURN", "TIER": "MMERGE7", "CLV": "CLV"}
    assert [s.body["tag"] for s in transport.calls("POST", "/merge-fields")] == ["CLV"]
    assert client.ensure_merge_fields(LIST, specs)["CLV"] == "CLV"
    assert len(transport.calls("POST", "/merge-fields")) == 1  # second run creates nothing


def test_ensure_merge_fields_refuses_to_pass_thirty_fields_or_change_a_type() -> None:
    client, transport = client_for(MiniAudience(merge_tags=29))
    with pytest.raises(ProvisioningConflict, match="30"):
        client.ensure_merge_fields(LIST, [MergeFieldSpec("A1", "A1"), MergeFieldSpec("A2", "A2")])
    assert transport.calls("POST", "/merge-fields") == []
    with pytest.raises(ProvisioningConflict, match="type"):
        client.ensure_merge_fields(LIST, [MergeFieldSpec("F1", "Field 1", "number")])


def test_concurrency_never_exceeds_ten_even_with_many_threads_and_clients() -> None:
    release = threading.Event()

    def slow(seen: Seen) -> Reply:
        release.wait(timeout=5)
        return Reply(200, {"id": "x", "email_address": seen.body["email_address"], "status": "subscribed"})

    transport = ScriptedTransport(slow)
    key = "concurrency0123456789-us6"  # its own process-wide gate, sized 10 by the first client
    # single PUTs (no batch operations): the per-member path is the one that needs the gate
    clients = [MailchimpClient(key, max_connections=10, batch_updates_above=None) for _ in range(3)]
    for client in clients:
        install(client, transport)
    members = [MemberUpsert(f"u{i}@example.com") for i in range(40)]
    workers = [threading.Thread(target=c.upsert_members, args=(LIST, members)) for c in clients]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 5
    while transport.in_flight < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert transport.in_flight == 10
    release.set()
    for worker in workers:
        worker.join(timeout=10)
    assert transport.max_in_flight == 10
    assert len(transport.calls("PUT")) == 120


def test_max_connections_is_capped_at_mailchimps_ceiling() -> None:
    with pytest.raises(ValueError):
        MailchimpClient(KEY, max_connections=11)


def test_a_failing_update_stops_the_rest_and_keeps_the_done_results() -> None:
    calls = {"n": 0}
    lock = threading.Lock()

    def handler(seen: Seen) -> Reply:
        with lock:
            calls["n"] += 1
        if seen.body["email_address"] == "u0@example.com":
            return Reply(503)
        return Reply(200, {"id": "x", "email_address": seen.body["email_address"], "status": "subscribed"})

    client, _ = client_for(handler, max_connections=1, policy=RetryPolicy(max_attempts=2))
    members = [MemberUpsert("u1@example.com"), MemberUpsert("u0@example.com"), MemberUpsert("u2@example.com")]
    with pytest.raises(RetriesExhausted) as caught:
        client.upsert_members(LIST, members)
    assert [r.email for r in caught.value.results] == ["u1@example.com"]
    assert calls["n"] == 3  # u1 once, u0 twice, u2 never started


def test_tag_removal_for_a_missing_member_is_skipped_and_addition_failed() -> None:
    client, _ = client_for(lambda seen: Reply(404, {"title": "Resource Not Found"}))
    assert client.update_tags(LIST, TagUpdate("a@example.com", {"vip": False})).outcome is Outcome.SKIPPED
    assert client.update_tags(LIST, TagUpdate("a@example.com", {"vip": True})).outcome is Outcome.FAILED


def test_segment_changes_are_split_into_500_per_call() -> None:
    def handler(seen: Seen) -> Reply:
        added = [{"email_address": e} for e in seen.body["members_to_add"]]
        removed = [{"email_address": e} for e in seen.body["members_to_remove"]]
        return Reply(200, {"members_added": added, "members_removed": removed, "errors": [],
                           "total_added": len(added), "total_removed": len(removed), "error_count": 0})

    client, transport = client_for(handler)
    adds = [f"a{i}@example.com" for i in range(1_001)]
    removes = [f"r{i}@example.com" for i in range(501)]
    results = client.update_segment_members(LIST, "42", add=adds, remove=removes)
    bodies = [s.body for s in transport.calls("POST", "/segments/42")]
    assert [(len(b["members_to_add"]), len(b["members_to_remove"])) for b in bodies] == [(500, 500), (500, 1), (1, 0)]
    assert len(results) == 1_502 and {r.outcome for r in results} == {Outcome.OK}
