"""Turn Mailchimp answers into one ContactResult per contact (pure functions, no HTTP)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from segflow.destinations.errors import redact_emails
from segflow.destinations.mailchimp_models import MemberUpsert, email_key, subscriber_hash
from segflow.destinations.results import ContactResult, Outcome

DESTINATION = "mailchimp"
COMPLIANCE_STATUSES = frozenset({"unsubscribed", "cleaned"})
# Titles of the problem documents and the wording of batch errors[] for the same refusals
_COMPLIANCE_MARKERS = ("compliance state", "forgotten email", "permanently deleted", "cannot be re-imported")
_EXISTS_MARKERS = ("already a list member",)
CODE_COMPLIANCE = "MEMBER_IN_COMPLIANCE_STATE"
CODE_FORGOTTEN = "FORGOTTEN_EMAIL"
CODE_MISSING = "MISSING_FROM_RESPONSE"


def compliance_code(*texts: str | None) -> str | None:
    """The compliance code a Mailchimp error text denotes, or None when it is not a compliance refusal."""
    joined = " ".join(t for t in texts if t).lower()
    if not any(marker in joined for marker in _COMPLIANCE_MARKERS):
        return None
    if "forgotten" in joined or "permanently deleted" in joined or "re-imported" in joined:
        return CODE_FORGOTTEN
    return CODE_COMPLIANCE


def result(email: str, operation: str, outcome: Outcome, **details: Any) -> ContactResult:
    return ContactResult.for_email(DESTINATION, email, operation, outcome, **details)


def failed(email: str, operation: str, code: str, message: str | None, *, retryable: bool = False) -> ContactResult:
    return result(email, operation, Outcome.FAILED, error_code=code,
                  error_message=redact_emails(message) if message else None, retryable=retryable)


def _error_result(email: str, operation: str, code: str | None, message: str | None, detail: str | None) -> ContactResult:
    compliance = compliance_code(message, detail)
    if compliance is not None:
        return result(email, operation, Outcome.COMPLIANCE, error_code=compliance,
                      error_message=redact_emails(message or detail or ""), destination_id=subscriber_hash(email))
    return failed(email, operation, code or "ERROR_GENERIC", " ".join(t for t in (message, detail) if t))


def is_existing_member_error(error: Mapping[str, Any]) -> bool:
    text = str(error.get("error", "")).lower()
    return error.get("error_code") == "ERROR_CONTACT_EXISTS" or any(m in text for m in _EXISTS_MARKERS)


def batch_create_results(
    body: Mapping[str, Any], members: Sequence[MemberUpsert], operation: str = "upsert"
) -> tuple[list[ContactResult], list[MemberUpsert]]:
    """Results of a create-only batch, and the members that already exist (to be updated without status)."""
    by_key = {email_key(m.email): m for m in members}
    results: list[ContactResult] = []
    existing: list[MemberUpsert] = []
    seen: set[str] = set()
    for created in body.get("new_members") or []:
        key = email_key(str(created.get("email_address", "")))
        if key in by_key and key not in seen:
            seen.add(key)
            results.append(result(by_key[key].email, operation, Outcome.CREATED,
                                  destination_id=created.get("id") or subscriber_hash(key), status=created.get("status")))
    for updated in body.get("updated_members") or []:  # not expected with update_existing false
        key = email_key(str(updated.get("email_address", "")))
        if key in by_key and key not in seen:
            seen.add(key)
            results.append(member_result(by_key[key].email, updated, operation))
    for error in body.get("errors") or []:
        key = email_key(str(error.get("email_address", "")))
        if key not in by_key or key in seen:
            continue
        seen.add(key)
        if is_existing_member_error(error):
            existing.append(by_key[key])
            continue
        field = error.get("field")
        detail = f"{field}: {error.get('field_message')}" if field else None
        results.append(_error_result(by_key[key].email, operation, error.get("error_code"), error.get("error"), detail))
    for key, member in by_key.items():
        if key not in seen:
            results.append(failed(member.email, operation, CODE_MISSING, "not reported by the batch response",
                                  retryable=True))
    return results, existing


def member_result(email: str, member: Mapping[str, Any], operation: str, ok: Outcome = Outcome.UPDATED) -> ContactResult:
    """A member as Mailchimp returned it: unsubscribed or cleaned members are compliance outcomes."""
    status = member.get("status")
    destination_id = member.get("id") or subscriber_hash(email)
    if status in COMPLIANCE_STATUSES:
        return result(email, operation, Outcome.COMPLIANCE, error_code=f"STATUS_{str(status).upper()}",
                      destination_id=destination_id, status=status)
    return result(email, operation, ok, destination_id=destination_id, status=status)


def problem_result(email: str, problem: Any, operation: str, status_code: int) -> ContactResult:
    """A problem+json answer to a single-member call."""
    body = problem if isinstance(problem, Mapping) else {}
    title, detail = body.get("title"), body.get("detail")
    errors = body.get("errors") or []
    field_detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, Mapping))
    code = str(title or f"HTTP_{status_code}").upper().replace(" ", "_")
    outcome = _error_result(email, operation, code, title, " ".join(t for t in (detail, field_detail) if t))
    return outcome


def segment_results(
    body: Mapping[str, Any], to_add: Iterable[str], to_remove: Iterable[str]
) -> list[ContactResult]:
    """Static segment changes: a member already in (or already out of) the segment is a no-op success."""
    added = {email_key(str(m.get("email_address", ""))) for m in body.get("members_added") or []}
    refused: dict[str, str] = {}
    for error in body.get("errors") or []:
        for email in error.get("email_addresses") or []:
            refused[email_key(email)] = str(error.get("error", ""))
    results: list[ContactResult] = []
    for email in to_add:
        key = email_key(email)
        if key in refused and key not in added:
            results.append(failed(email, "segment_add", "NOT_ON_AUDIENCE", refused[key]))
        else:
            results.append(result(email, "segment_add", Outcome.OK if key in added else Outcome.SKIPPED,
                                  destination_id=subscriber_hash(email)))
    removed = {email_key(str(m.get("email_address", ""))) for m in body.get("members_removed") or []}
    for email in to_remove:
        key = email_key(email)
        outcome = Outcome.OK if key in removed else Outcome.SKIPPED  # not in the segment: nothing to remove
        results.append(result(email, "segment_remove", outcome, destination_id=subscriber_hash(email)))
    return results


def batch_operation_result(email: str, status_code: int | None, response: Any, operation: str) -> ContactResult:
    """One member operation of a batch, read like the same call made directly."""
    if status_code is not None and status_code < 300:
        return member_result(email, response if isinstance(response, Mapping) else {}, operation)
    if status_code is not None and not _retryable_status(status_code):
        return problem_result(email, response, operation, status_code)
    return _operation_failure(email, operation, status_code, response)  # unreported, throttled, server error


def _retryable_status(status_code: int | None) -> bool:
    return status_code is None or status_code == 429 or status_code >= 500


def _operation_failure(email: str, operation: str, status_code: int | None, response: Any) -> ContactResult:
    if status_code is None:
        return failed(email, operation, CODE_MISSING, "not reported by the batch results", retryable=True)
    title = response.get("title") if isinstance(response, Mapping) else None
    return failed(email, operation, f"HTTP_{status_code}", title, retryable=_retryable_status(status_code))


def tags_operation_result(
    email: str, tags: Mapping[str, bool], status_code: int | None, response: Any
) -> ContactResult:
    """A member tags operation of a batch, read like update_tags: a missing member cannot be tagged, but has
    no tag to lose either."""
    if status_code is not None and status_code < 300:
        return result(email, "tags", Outcome.OK, destination_id=subscriber_hash(email))
    if status_code == 404:
        if any(tags.values()):
            return failed(email, "tags", "MEMBER_NOT_FOUND", "the member is not on the audience")
        return result(email, "tags", Outcome.SKIPPED, error_code="MEMBER_NOT_FOUND")
    return _operation_failure(email, "tags", status_code, response)


def segment_operation_results(
    status_code: int | None, response: Any, to_add: Sequence[str], to_remove: Sequence[str]
) -> list[ContactResult]:
    """A static segment operation of a batch: per member like the direct call; a refused or unreported
    operation fails each of its members (retryable when throttled, a server error or unreported)."""
    if status_code is not None and status_code < 300:
        return segment_results(response if isinstance(response, Mapping) else {}, to_add, to_remove)
    return [_operation_failure(e, "segment_add", status_code, response) for e in to_add] + [
        _operation_failure(e, "segment_remove", status_code, response) for e in to_remove
    ]
