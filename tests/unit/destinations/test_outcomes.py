"""Pure mapping of vendor answers to per-contact results, and the result records themselves."""
from __future__ import annotations

import json
from datetime import UTC

from segflow.destinations.hubspot_models import ContactUpsert, property_value
from segflow.destinations.hubspot_outcomes import (
    dedupe_contacts,
    is_compliance_error,
    trace_id,
    upsert_results,
)
from segflow.destinations.mailchimp_models import MemberUpsert
from segflow.destinations.mailchimp_outcomes import (
    batch_create_results,
    compliance_code,
    member_result,
    problem_result,
    segment_results,
)
from segflow.destinations.results import CallStats, ContactResult, Outcome, outcome_counts
from segflow.observability import pii_hash


def test_compliance_classification_of_mailchimp_titles_and_batch_texts() -> None:
    assert compliance_code("Member In Compliance State") == "MEMBER_IN_COMPLIANCE_STATE"
    assert compliance_code("Forgotten Email Not Subscribed") == "FORGOTTEN_EMAIL"
    assert compliance_code("x is in a compliance state due to unsubscribe, bounce, or compliance review") == (
        "MEMBER_IN_COMPLIANCE_STATE")
    assert compliance_code("x was permanently deleted and cannot be re-imported.") == "FORGOTTEN_EMAIL"
    assert compliance_code("Invalid Resource", "Your merge fields were invalid.") is None


def test_put_problem_documents_become_compliance_or_failure() -> None:
    refused = problem_result("a@example.com", {"title": "Member In Compliance State", "status": 400,
                                               "detail": "<email> is in a compliance state"}, "upsert", 400)
    assert refused.outcome is Outcome.COMPLIANCE and not refused.retryable
    invalid = problem_result("a@example.com", {"title": "Invalid Resource", "detail": "Your merge fields were invalid.",
                                               "errors": [{"field": "CHURN", "message": "Please enter a number"}]},
                             "upsert", 400)
    assert invalid.outcome is Outcome.FAILED and invalid.error_code == "INVALID_RESOURCE"
    assert "CHURN: Please enter a number" in (invalid.error_message or "")


def test_cleaned_and_unsubscribed_members_are_compliance_outcomes() -> None:
    for status in ("cleaned", "unsubscribed"):
        found = member_result("a@example.com", {"id": "h", "status": status}, "upsert")
        assert found.outcome is Outcome.COMPLIANCE and found.status == status
    assert member_result("a@example.com", {"id": "h", "status": "pending"}, "upsert").outcome is Outcome.UPDATED


def test_batch_results_match_case_insensitively_and_route_existing_members_to_update() -> None:
    members = [MemberUpsert("Ana@Example.com", subscribe_if_new=True), MemberUpsert("bob@example.com", subscribe_if_new=True),
               MemberUpsert("cy@example.com", subscribe_if_new=True)]
    body = {"new_members": [{"email_address": "ana@example.com", "id": "h1", "status": "subscribed"}],
            "errors": [{"email_address": "BOB@example.com", "error": "bob@example.com is already a list member.",
                        "error_code": "ERROR_CONTACT_EXISTS"}]}
    results, existing = batch_create_results(body, members)
    assert [m.email for m in existing] == ["bob@example.com"]
    by_email = {r.email: r for r in results}
    assert by_email["Ana@Example.com"].outcome is Outcome.CREATED and by_email["Ana@Example.com"].destination_id == "h1"
    assert by_email["cy@example.com"].outcome is Outcome.FAILED and by_email["cy@example.com"].retryable


def test_segment_results_treat_no_ops_as_skipped_and_non_members_as_failed() -> None:
    body = {"members_added": [{"email_address": "a@example.com"}], "members_removed": [],
            "errors": [{"email_addresses": ["x@example.com"], "error": "Email addresses are not members of this list."},
                       {"email_addresses": ["r@example.com"], "error": "Email addresses are not in this segment."}]}
    results = segment_results(body, ["a@example.com", "already@example.com", "x@example.com"], ["r@example.com"])
    assert [r.outcome.value for r in results] == ["ok", "skipped", "failed", "skipped"]


def test_hubspot_results_match_by_trace_id_when_the_email_is_not_echoed() -> None:
    contacts = [ContactUpsert("a@example.com"), ContactUpsert("b@example.com")]
    body = {"results": [{"id": "5", "new": True, "properties": {}, "objectWriteTraceId": trace_id("b@example.com")}],
            "errors": [{"message": "bad", "category": "VALIDATION_ERROR",
                        "context": {"objectWriteTraceId": [trace_id("a@example.com")]}}]}
    results = upsert_results(body, contacts)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.CREATED]
    assert results[1].destination_id == "5"


def test_hubspot_gdpr_blocklist_errors_are_compliance() -> None:
    assert is_compliance_error({"message": "email address is blocklisted after a GDPR delete"})
    assert not is_compliance_error({"message": "Property values were not valid", "errors": [{"code": "INVALID_OPTION"}]})


def test_dedupe_keeps_the_first_spelling_and_merges_properties() -> None:
    unique, skipped = dedupe_contacts([ContactUpsert("A@x.com", {"a": 1}), ContactUpsert("a@X.com", {"a": 2, "b": 3})])
    assert len(unique) == 1 and unique[0].email == "A@x.com" and unique[0].properties == {"a": 2, "b": 3}
    assert skipped[0].outcome is Outcome.SKIPPED and skipped[0].error_code == "DUPLICATE_IN_INPUT"


def test_property_values_are_hubspot_strings() -> None:
    from datetime import date, datetime

    assert [property_value(v) for v in (True, False, None, 3.0, 2.5, 7)] == ["true", "false", "", "3", "2.5", "7"]
    assert property_value(date(2026, 1, 2)) == "2026-01-02"
    assert property_value(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_result_records_carry_a_hash_and_never_the_email() -> None:
    found = ContactResult.for_email("mailchimp", "Ana@Example.com", "upsert", Outcome.CREATED, destination_id="h")
    record = found.to_record()
    assert record["email_hash"] == pii_hash("ana@example.com") and record["outcome"] == "created"
    assert "Ana" not in json.dumps(record) and "email" not in record
    assert "Ana" not in repr(found)
    assert outcome_counts([found, found]) == {"created": 2}


def test_call_stats_add_and_subtract() -> None:
    total = CallStats(3, 1, 1, 0, 2.0) + CallStats(2, 0, 0, 1, 1.0)
    assert total == CallStats(5, 1, 1, 1, 3.0)
    assert total - CallStats(3, 1, 1, 0, 2.0) == CallStats(2, 0, 0, 1, 1.0)
