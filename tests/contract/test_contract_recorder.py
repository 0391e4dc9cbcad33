"""The contract recorder itself: it must flag requests and responses that break the specs."""

from __future__ import annotations

from typing import Any

from segflow_local.fakes import Exchange

from tests.contract.contract_recorder import SpecBook

JSON = {"Content-Type": "application/json"}


def _exchange(
    method: str,
    path: str,
    body: Any,
    status: int,
    response: Any,
    *,
    auth: str = "Basic <redacted>",
    query: dict[str, list[str]] | None = None,
) -> Exchange:
    headers = {"Authorization": auth, **JSON} if auth else dict(JSON)
    return Exchange(method, path, query or {}, headers, body, status, response, dict(JSON))


def test_a_valid_exchange_has_no_problems(spec_book: SpecBook) -> None:
    ok = _exchange("GET", "/3.0/lists", None, 200, {"lists": [], "total_items": 0})
    assert spec_book.exchange_problems("mailchimp", ok) == []


def test_request_violations_are_flagged(spec_book: SpecBook) -> None:
    bad_status = _exchange(
        "POST",
        "/3.0/lists/abc",
        {"members": [{"email_address": "a@example.com", "status": "active"}]},
        200,
        {},
    )
    problems = spec_book.exchange_problems("mailchimp", bad_status)
    assert any("'active' is not one of" in p for p in problems)


def test_response_violations_are_flagged(spec_book: SpecBook) -> None:
    wrong_type = _exchange("GET", "/3.0/lists", None, 200, {"lists": "none"})
    assert any("InvalidData" in p for p in spec_book.exchange_problems("mailchimp", wrong_type))
    missing_results = _exchange(
        "POST",
        "/crm/v3/objects/contacts/batch/upsert",
        {"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {}}]},
        200,
        {"status": "COMPLETE", "startedAt": "2025-01-01T00:00:00Z", "completedAt": "2025-01-01T00:00:00Z"},
        auth="Bearer <redacted>",
    )
    assert any(
        "'results' is a required property" in p
        for p in spec_book.exchange_problems("hubspot", missing_results)
    )


def test_missing_credentials_and_unknown_operations_are_flagged(spec_book: SpecBook) -> None:
    anonymous = _exchange("GET", "/3.0/lists", None, 200, {"lists": []}, auth="")
    assert any("Security" in p for p in spec_book.exchange_problems("mailchimp", anonymous))
    unknown = _exchange(
        "DELETE", "/crm/v3/objects/contacts/batch/upsert", None, 200, {}, auth="Bearer <redacted>"
    )
    assert spec_book.exchange_problems("hubspot", unknown) == ["operation not found in the spec"]


def test_problems_are_labelled_with_the_exchange(spec_book: SpecBook) -> None:
    bad = _exchange("GET", "/3.0/lists", None, 200, {"lists": "none"})
    problems = spec_book.problems("mailchimp", [bad])
    assert problems and all(p.startswith("#0 GET /3.0/lists -> 200: ") for p in problems)
