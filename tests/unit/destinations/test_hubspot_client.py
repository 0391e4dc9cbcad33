"""HubSpot client against an in-process transport: batching, dedupe, 207 mapping, DAILY, limiter, lists."""
from __future__ import annotations

from typing import Any

import pytest
from segflow.destinations.errors import DailyLimitReached, ProvisioningConflict
from segflow.destinations.http import RetryPolicy
from segflow.destinations.hubspot import HubSpotClient
from segflow.destinations.hubspot_models import ContactUpsert, PropertySpec
from segflow.destinations.ratelimit import WindowRateLimiter
from segflow.destinations.results import Outcome

from tests.unit.destinations.doubles import Reply, ScriptedTransport, Seen, VirtualClock, install

TOKEN = "pat-na1-test"
DAILY_429 = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
             "correlationId": "c", "policyName": "DAILY", "requestId": "r"}
SECONDLY_429 = {**DAILY_429, "policyName": "TEN_SECONDLY_ROLLING", "message": "You have reached your secondly limit."}


def upsert_ok(seen: Seen) -> Reply:
    results = [{"id": str(1000 + i), "new": True, "properties": dict(item["properties"]),
                "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
               for i, item in enumerate(seen.body["inputs"])]
    return Reply(200, {"status": "COMPLETE", "results": results, "startedAt": "x", "completedAt": "y"})


def client_for(handler: Any, **options: Any) -> tuple[HubSpotClient, ScriptedTransport, VirtualClock]:
    clock = VirtualClock()
    limiter = options.pop("limiter", None) or WindowRateLimiter(90, 10.0, clock=clock, sleep=clock.sleep)
    client = HubSpotClient(TOKEN, limiter=limiter, sleep=clock.sleep, clock=clock, **options)
    return client, install(client, ScriptedTransport(handler)), clock


def test_101_contacts_go_in_two_batches_of_at_most_100_with_bearer_auth() -> None:
    client, transport, _ = client_for(upsert_ok)
    results = client.upsert_contacts([ContactUpsert(f"c{i}@example.com", {"segflow_clv": 12.0}) for i in range(101)])
    calls = transport.calls("POST", "/crm/v3/objects/contacts/batch/upsert")
    assert [len(c.body["inputs"]) for c in calls] == [100, 1]
    assert calls[0].headers["Authorization"] == f"Bearer {TOKEN}"
    first = calls[0].body["inputs"][0]
    assert first["idProperty"] == "email" and first["id"] == "c0@example.com"
    assert first["properties"] == {"segflow_clv": "12", "email": "c0@example.com"}
    assert {r.outcome for r in results} == {Outcome.CREATED} and len(results) == 101


def test_duplicate_emails_in_a_batch_are_deduped_case_insensitively() -> None:
    client, transport, _ = client_for(upsert_ok)
    contacts = [ContactUpsert("Ana@Example.com", {"firstname": "Ana"}), ContactUpsert("ana@example.com", {"segflow_vip": True}),
                ContactUpsert("bob@example.com")]
    results = client.upsert_contacts(contacts)
    inputs = transport.seen[0].body["inputs"]
    assert [i["id"] for i in inputs] == ["ana@example.com", "bob@example.com"]
    assert inputs[0]["properties"] == {"firstname": "Ana", "segflow_vip": "true", "email": "ana@example.com"}
    assert sorted(r.outcome.value for r in results) == ["created", "created", "skipped"]


def test_multi_status_errors_are_mapped_back_to_each_contact() -> None:
    def handler(seen: Seen) -> Reply:
        ok = seen.body["inputs"][0]
        return Reply(207, {
            "status": "COMPLETE", "startedAt": "x", "completedAt": "y", "numErrors": 2,
            "results": [{"id": "7", "new": False, "properties": {"email": ok["id"]}, "createdAt": "x", "updatedAt": "y"}],
            "errors": [
                {"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
                 "context": {"ids": ["bad@example.com"]},
                 "errors": [{"message": '"platinum" was not one of the allowed options', "code": "INVALID_OPTION"}]},
                {"status": "error", "category": "VALIDATION_ERROR",
                 "message": "Contact gdpr@example.com was permanently deleted (GDPR) and cannot be used again.",
                 "context": {"ids": ["gdpr@example.com"]}},
            ],
        })

    client, _, _ = client_for(handler)
    contacts = [ContactUpsert("ok@example.com"), ContactUpsert("BAD@example.com"), ContactUpsert("gdpr@example.com"),
                ContactUpsert("lost@example.com")]
    results = {r.email: r for r in client.upsert_contacts(contacts)}
    assert results["ok@example.com"].outcome is Outcome.UPDATED and results["ok@example.com"].destination_id == "7"
    bad = results["BAD@example.com"]
    assert bad.outcome is Outcome.FAILED and bad.error_code == "INVALID_OPTION" and not bad.retryable
    gdpr = results["gdpr@example.com"]
    assert gdpr.outcome is Outcome.COMPLIANCE and "example.com" not in (gdpr.error_message or "")
    lost = results["lost@example.com"]
    assert lost.outcome is Outcome.FAILED and lost.retryable and lost.error_code == "MISSING_FROM_RESPONSE"


def test_daily_limit_stops_at_once_and_keeps_the_results_already_done() -> None:
    answers = iter([upsert_ok, lambda seen: Reply(429, DAILY_429)])

    def handler(seen: Seen) -> Reply:
        return next(answers)(seen)

    client, transport, clock = client_for(handler)
    with pytest.raises(DailyLimitReached) as caught:
        client.upsert_contacts([ContactUpsert(f"c{i}@example.com") for i in range(150)])
    assert len(transport.seen) == 2 and clock.sleeps == []  # no retry of a DAILY 429
    assert len(caught.value.results) == 100 and caught.value.status == 429
    assert caught.value.body["policyName"] == "DAILY"


def test_secondly_limit_is_retried_and_pauses_the_shared_limiter() -> None:
    answers = iter([lambda seen: Reply(429, SECONDLY_429), upsert_ok])
    client, transport, clock = client_for(lambda seen: next(answers)(seen), policy=RetryPolicy(base_delay_s=0.1))
    results = client.upsert_contacts([ContactUpsert("a@example.com")])
    assert results[0].outcome is Outcome.CREATED and len(transport.seen) == 2
    assert client.stats().throttled == 1 and client.stats().retries == 1
    assert sum(clock.sleeps) == pytest.approx(1.0)  # the backoff, then the rest of the limiter's 1 s pause


def test_rate_limit_headers_slow_the_limiter_down() -> None:
    def handler(seen: Seen) -> Reply:
        reply = upsert_ok(seen)
        reply.headers = {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "1",
                         "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        return reply

    client, _, clock = client_for(handler)
    client.upsert_contacts([ContactUpsert(f"c{i}@example.com") for i in range(300)])
    assert clock.sleeps == [pytest.approx(5.0), pytest.approx(5.0)]  # 10 s / (1 + 1) before each next call


def test_client_uses_the_configured_tier_budget_by_default() -> None:
    client = HubSpotClient("pat-tier-test", tier="professional")
    assert client.limiter.max_requests == 171


def test_ensure_properties_creates_missing_and_adds_missing_options_keeping_existing_ones() -> None:
    existing = {
        "segflow_tier": {"name": "segflow_tier", "type": "enumeration", "fieldType": "select",
                         "options": [{"label": "Gold", "value": "gold", "hidden": False, "displayOrder": 0}]},
        "segflow_clv": {"name": "segflow_clv", "type": "number", "fieldType": "number", "options": []},
    }

    def handler(seen: Seen) -> Reply:
        if seen.method == "GET":
            return Reply(200, {"results": list(existing.values())})
        if seen.method == "POST":
            return Reply(201, {**seen.body})
        return Reply(200, {"name": "segflow_tier", **seen.body})

    client, transport, _ = client_for(handler)
    specs = [PropertySpec("segflow_tier", "Tier", "enumeration", options=("gold", ("silver", "Silver"))),
             PropertySpec("segflow_clv", "CLV", "number"),
             PropertySpec("segflow_vip", "VIP", "bool")]
    report = client.ensure_properties(specs, "segflow")
    assert report.created == ["segflow_vip"] and report.options_added == {"segflow_tier": ["silver"]}
    assert report.unchanged == ["segflow_clv"]
    patch = transport.calls("PATCH", "/crm/v3/properties/contacts/segflow_tier")[0].body
    assert [o["value"] for o in patch["options"]] == ["gold", "silver"]
    created = transport.calls("POST", "/crm/v3/properties/contacts")[0].body
    assert created["groupName"] == "segflow" and created["fieldType"] == "booleancheckbox"
    assert [o["value"] for o in created["options"]] == ["true", "false"]


def test_ensure_properties_refuses_a_type_change() -> None:
    client, _, _ = client_for(lambda seen: Reply(200, {"results": [{"name": "segflow_clv", "type": "string"}]}))
    with pytest.raises(ProvisioningConflict):
        client.ensure_properties([PropertySpec("segflow_clv", "CLV", "number")], "segflow")


def test_property_names_and_enumerations_are_validated_client_side() -> None:
    with pytest.raises(ValueError):
        PropertySpec("Segflow Tier", "Tier")
    with pytest.raises(ValueError):
        PropertySpec("segflow_tier", "Tier", "enumeration")


def test_ensure_list_finds_by_name_or_creates_a_manual_contact_list() -> None:
    lists: dict[str, dict[str, Any]] = {}

    def handler(seen: Seen) -> Reply:
        if seen.method == "GET":
            name = seen.path.rsplit("/", 1)[-1].replace("%20", " ")
            found = lists.get(name)
            return Reply(200, {"list": found}) if found else Reply(404, {"status": "error", "message": "nope"})
        lists[seen.body["name"]] = {"listId": "9", "name": seen.body["name"], "processingType": seen.body["processingType"]}
        return Reply(200, {"list": lists[seen.body["name"]]})

    client, transport, _ = client_for(handler)
    assert client.ensure_list("High CLV") == "9"
    assert client.ensure_list("High CLV") == "9"
    created = transport.calls("POST", "/crm/v3/lists")
    assert len(created) == 1
    assert created[0].body == {"name": "High CLV", "objectTypeId": "0-1", "processingType": "MANUAL"}
    assert transport.seen[0].path == "/crm/v3/lists/object-type-id/0-1/name/High%20CLV"


def test_list_memberships_are_chunked_and_read_both_spellings() -> None:
    def handler(seen: Seen) -> Reply:
        ids = seen.body
        if seen.path.endswith("/add"):
            return Reply(200, {"recordsIdsAdded": ids[:-1], "recordIdsMissing": ids[-1:]})
        return Reply(200, {"recordIdsRemoved": ids})

    client, transport, _ = client_for(handler, membership_chunk=3)
    added = client.add_to_list("5", [str(i) for i in range(7)])
    assert [len(s.body) for s in transport.calls("PUT", "/memberships/add")] == [3, 3, 1]
    assert added.changed == ["0", "1", "3", "4"] and added.missing == ["2", "5", "6"]
    removed = client.remove_from_list("5", ["1", "1", "2"])
    assert removed.changed == ["1", "2"]


def test_unsubscribed_subscription_status_is_a_compliance_outcome() -> None:
    def handler(seen: Seen) -> Reply:
        assert seen.query == {"channel": ["EMAIL"]}
        status = "UNSUBSCRIBED" if "gone" in seen.path else "SUBSCRIBED"
        return Reply(200, {"status": "COMPLETE", "startedAt": "x", "completedAt": "y",
                           "results": [{"subscriptionId": 1, "status": status, "channel": "EMAIL"},
                                       {"subscriptionId": 2, "status": "SUBSCRIBED", "channel": "EMAIL"}]})

    client, transport, _ = client_for(handler)
    gone = client.subscription_status("gone@example.com")
    assert gone.outcome is Outcome.COMPLIANCE and gone.status == "UNSUBSCRIBED"
    assert client.subscription_status("gone@example.com", subscription_id=2).outcome is Outcome.OK
    assert client.subscription_status("here@example.com").status == "SUBSCRIBED"
    assert transport.seen[0].path == "/communication-preferences/v4/statuses/gone%40example.com"


def test_gdpr_delete_by_email_and_already_gone_is_skipped() -> None:
    answers = iter([Reply(204), Reply(404, {"status": "error", "message": "not found"})])
    client, transport, _ = client_for(lambda seen: next(answers))
    assert client.gdpr_delete("Ana@example.com").outcome is Outcome.OK
    assert client.gdpr_delete("ana@example.com").outcome is Outcome.SKIPPED
    assert transport.seen[0].body == {"objectId": "ana@example.com", "idProperty": "email"}


def test_batch_read_maps_records_by_email_and_reports_missing_as_none() -> None:
    def handler(seen: Seen) -> Reply:
        return Reply(207, {"status": "COMPLETE", "startedAt": "x", "completedAt": "y",
                           "results": [{"id": "1", "properties": {"email": "a@example.com", "segflow_clv": "3"}}]})

    client, transport, _ = client_for(handler)
    found = client.read_contacts(["A@example.com", "b@example.com"], ["segflow_clv"])
    assert found["a@example.com"]["id"] == "1" and found["b@example.com"] is None
    assert transport.seen[0].body["properties"] == ["email", "segflow_clv"]


def statuses_of(email: str, *pairs: tuple[int, str]) -> dict[str, Any]:
    return {"subscriberIdString": email, "statuses": [
        {"subscriptionId": sub, "status": status, "channel": "EMAIL", "subscriberIdString": email, "source": "x",
         "timestamp": "2026-01-01T00:00:00Z"} for sub, status in pairs]}


def test_subscription_statuses_are_read_in_batches_of_100_and_interpreted_per_contact() -> None:
    def handler(seen: Seen) -> Reply:
        assert seen.query == {"channel": ["EMAIL"]}
        results = []
        for email in seen.body["inputs"]:
            if email.startswith("out"):  # unsubscribed from the marketing subscription only
                results.append(statuses_of(email, (1, "UNSUBSCRIBED"), (2, "SUBSCRIBED")))
            elif email.startswith("all"):  # unsubscribed from all email
                results.append(statuses_of(email, (1, "UNSUBSCRIBED"), (2, "UNSUBSCRIBED")))
            elif email.startswith("other"):  # left another subscription only
                results.append(statuses_of(email, (1, "SUBSCRIBED"), (2, "UNSUBSCRIBED")))
            else:
                results.append(statuses_of(email, (1, "NOT_SPECIFIED")))
        return Reply(200, {"status": "COMPLETE", "startedAt": "x", "completedAt": "y", "results": results})

    client, transport, _ = client_for(handler)
    emails = ["Out@example.com", "all@example.com", "other@example.com", "out@example.com"]
    emails += [f"c{i}@example.com" for i in range(147)]
    found = client.subscription_statuses(emails, subscription_id=1)
    calls = transport.calls("POST", "/communication-preferences/v4/statuses/batch/read")
    assert [len(c.body["inputs"]) for c in calls] == [100, 50]  # deduped case-insensitively, lower-cased
    assert calls[0].body["inputs"][0] == "out@example.com" and set(calls[0].body) == {"inputs"}
    assert len(found) == 150
    assert found["out@example.com"].outcome is Outcome.COMPLIANCE
    assert found["all@example.com"].outcome is Outcome.COMPLIANCE
    assert found["other@example.com"].outcome is Outcome.OK and found["other@example.com"].status == "SUBSCRIBED"
    assert found["c0@example.com"].outcome is Outcome.OK and found["c0@example.com"].status == "NOT_SPECIFIED"
    # with no subscription named, leaving any of them counts
    assert client.subscription_statuses(["other@example.com"])["other@example.com"].outcome is Outcome.COMPLIANCE


def test_subscription_status_multi_status_errors_and_omissions_say_nothing_about_a_contact() -> None:
    answers = iter([
        Reply(207, {"status": "COMPLETE", "startedAt": "x", "completedAt": "y", "numErrors": 1,
                    "results": [statuses_of("out@example.com", (1, "UNSUBSCRIBED"))],
                    "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid email",
                                "context": {"emails": ["Bad@Example.com"]}}]}),
        Reply(400, {"status": "error", "message": "channel is required", "category": "VALIDATION_ERROR"}),
    ])
    client, _, _ = client_for(lambda seen: next(answers))
    found = client.subscription_statuses(["out@example.com", "bad@example.com", "lost@example.com"])
    assert found["out@example.com"].outcome is Outcome.COMPLIANCE
    bad, lost = found["bad@example.com"], found["lost@example.com"]
    assert bad.outcome is Outcome.FAILED and bad.error_code == "VALIDATION_ERROR" and not bad.retryable
    assert lost.outcome is Outcome.FAILED and lost.retryable and lost.status is None
    refused = client.subscription_statuses(["x@example.com"])["x@example.com"]
    assert refused.outcome is Outcome.FAILED and refused.error_code == "HTTP_400"
