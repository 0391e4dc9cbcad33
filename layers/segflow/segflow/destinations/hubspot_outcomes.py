"""Turn HubSpot answers into one ContactResult per contact (pure functions, no HTTP)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segflow.destinations.errors import redact_emails
from segflow.destinations.hubspot_models import ContactUpsert, email_key
from segflow.destinations.results import ContactResult, Outcome
from segflow.observability import pii_hash

DESTINATION = "hubspot"
# a GDPR-deleted email is blocklisted for good: pushing it again is a consent question, not a retry
_COMPLIANCE_MARKERS = ("gdpr", "blocklist", "permanently deleted")
CODE_MISSING = "MISSING_FROM_RESPONSE"


def result(email: str, operation: str, outcome: Outcome, **details: Any) -> ContactResult:
    return ContactResult.for_email(DESTINATION, email, operation, outcome, **details)


def failed(email: str, operation: str, code: str, message: str | None, *, retryable: bool = False) -> ContactResult:
    return result(email, operation, Outcome.FAILED, error_code=code,
                  error_message=redact_emails(message) if message else None, retryable=retryable)


def trace_id(email: str) -> str:
    """objectWriteTraceId for an input: ties results and errors back to a contact without sending PII twice."""
    return pii_hash(email) or ""


def dedupe_contacts(contacts: Sequence[ContactUpsert]) -> tuple[list[ContactUpsert], list[ContactResult]]:
    """One input per email (case-insensitive): duplicates in a batch make HubSpot refuse it.

    Properties of repeats are merged (later values win); repeats are reported SKIPPED.
    """
    kept: dict[str, ContactUpsert] = {}
    skipped: list[ContactResult] = []
    for contact in contacts:
        key = email_key(contact.email)
        first = kept.get(key)
        if first is None:
            kept[key] = contact
            continue
        kept[key] = ContactUpsert(first.email, {**first.properties, **contact.properties})
        skipped.append(result(contact.email, "upsert", Outcome.SKIPPED, error_code="DUPLICATE_IN_INPUT"))
    return list(kept.values()), skipped


def _error_ids(error: Mapping[str, Any]) -> list[str]:
    context = error.get("context") or {}
    ids = [str(i) for i in context.get("ids") or []]
    for key in ("objectWriteTraceId",):
        for holder in (error, context):
            value = holder.get(key)
            if isinstance(value, list):
                ids += [str(v) for v in value]
            elif value:
                ids.append(str(value))
    return ids


def _error_code(error: Mapping[str, Any]) -> str:
    details = [d for d in error.get("errors") or [] if isinstance(d, Mapping)]
    return str((details[0].get("code") if details else None) or error.get("category") or "ERROR")


def _error_text(error: Mapping[str, Any]) -> str:
    details = [str(d.get("message", "")) for d in error.get("errors") or [] if isinstance(d, Mapping)]
    return "; ".join(t for t in [str(error.get("message", "")), *details] if t)


def is_compliance_error(error: Mapping[str, Any]) -> bool:
    text = f"{_error_text(error)} {_error_code(error)}".lower()
    return any(marker in text for marker in _COMPLIANCE_MARKERS)


def upsert_results(body: Mapping[str, Any], contacts: Sequence[ContactUpsert]) -> list[ContactResult]:
    """Map a 200/207 batch upsert answer back to each contact (results by trace id or email, errors by ids)."""
    by_key: dict[str, ContactUpsert] = {}
    for contact in contacts:
        by_key[email_key(contact.email)] = contact
        by_key[trace_id(contact.email)] = contact
    done: dict[str, ContactResult] = {}
    for item in body.get("results") or []:
        properties = item.get("properties") or {}
        contact = by_key.get(str(item.get("objectWriteTraceId", ""))) or by_key.get(
            email_key(str(properties.get("email") or "")))
        if contact is None:
            continue
        outcome = Outcome.CREATED if item.get("new") else Outcome.UPDATED
        done[email_key(contact.email)] = result(contact.email, "upsert", outcome, destination_id=str(item.get("id")))
    for error in body.get("errors") or []:
        for raw_id in _error_ids(error):
            contact = by_key.get(raw_id) or by_key.get(email_key(raw_id))
            if contact is None or email_key(contact.email) in done:
                continue
            key = email_key(contact.email)
            if is_compliance_error(error):
                done[key] = result(contact.email, "upsert", Outcome.COMPLIANCE, error_code=_error_code(error),
                                   error_message=redact_emails(_error_text(error)))
            else:
                done[key] = failed(contact.email, "upsert", _error_code(error), _error_text(error))
    return [
        done.get(email_key(c.email))
        or failed(c.email, "upsert", CODE_MISSING, "not reported by the batch response", retryable=True)
        for c in contacts
    ]


def subscription_result(email: str, body: Mapping[str, Any], subscription_id: int | None) -> ContactResult:
    """v4 statuses: UNSUBSCRIBED from the subscription (or from any, when none is named) is COMPLIANCE, and so
    is UNSUBSCRIBED from every subscription listed (unsubscribed from all email)."""
    listed = [s for s in body.get("results") or [] if isinstance(s, Mapping)]
    statuses = [
        s for s in listed
        if subscription_id is None or int(s.get("subscriptionId", -1)) == subscription_id
    ]
    unsubscribed = [s for s in statuses if s.get("status") == "UNSUBSCRIBED"]
    from_all = bool(listed) and all(s.get("status") == "UNSUBSCRIBED" for s in listed)
    if unsubscribed or from_all:
        return result(email, "subscription", Outcome.COMPLIANCE, error_code="UNSUBSCRIBED", status="UNSUBSCRIBED")
    status = "SUBSCRIBED" if any(s.get("status") == "SUBSCRIBED" for s in statuses) else "NOT_SPECIFIED"
    return result(email, "subscription", Outcome.OK, status=status)


def subscription_results(
    body: Mapping[str, Any], emails: Sequence[str], subscription_id: int | None
) -> dict[str, ContactResult]:
    """A 200/207 batch status read mapped to each asked email (lower-cased): statuses as in
    `subscription_result`; an error naming the contact FAILED; a contact the answer leaves out FAILED,
    retryable. A failed read says nothing about the contact's subscription."""
    asked = {email_key(e): e for e in emails}
    done: dict[str, ContactResult] = {}
    for item in body.get("results") or []:
        key = email_key(str(item.get("subscriberIdString") or ""))
        if key in asked and key not in done:
            statuses = {"results": item.get("statuses") or []}
            done[key] = subscription_result(asked[key], statuses, subscription_id)
    for error in body.get("errors") or []:
        for raw_id in _context_values(error):
            key = email_key(raw_id)
            if key in asked and key not in done:
                done[key] = failed(asked[key], "subscription", _error_code(error), _error_text(error))
    return {
        key: done.get(key)
        or failed(email, "subscription", CODE_MISSING, "not reported by the batch response", retryable=True)
        for key, email in asked.items()
    }


def _context_values(error: Mapping[str, Any]) -> list[str]:
    """Every string an error's context lists (HubSpot names the inputs under varying keys)."""
    context = error.get("context") or {}
    values = context.values() if isinstance(context, Mapping) else ()
    return [str(v) for found in values if isinstance(found, list) for v in found]
