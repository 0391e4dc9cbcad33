"""Typed failures of destination calls. Messages carry route templates and statuses, never secrets or emails."""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segflow.destinations.results import ContactResult

EMAIL_PATTERN = re.compile(r"[^\s\"'<>(),;:\[\]]+@[^\s\"'<>(),;:\[\]]+\.[A-Za-z]{2,}")
MAX_BODY_CHARS = 2_000


def redact_emails(text: str) -> str:
    """Vendors echo email addresses in error texts; keep them out of logs and exception messages."""
    return EMAIL_PATTERN.sub("<email>", text)


def redacted_body(raw: str | bytes | None) -> Any:
    """A response body fit for an exception: truncated, emails removed, parsed as JSON when it is JSON."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = redact_emails(text[:MAX_BODY_CHARS])
    try:
        return json.loads(text)
    except ValueError:
        return text


class DestinationError(Exception):
    """A destination call that did not succeed.

    `results` holds the per-contact results of the chunks that completed before the failure, so a
    caller that stops (and resumes later) still records what was already pushed.
    """

    def __init__(
        self,
        destination: str,
        route: str,
        reason: str,
        *,
        status: int | None = None,
        body: Any = None,
        attempts: int = 0,
    ) -> None:
        self.destination = destination
        self.route = route
        self.reason = reason
        self.status = status
        self.body = body
        self.attempts = attempts
        self.results: list[ContactResult] = []
        super().__init__(self._message())

    def _message(self) -> str:
        status = f"status {self.status}" if self.status is not None else "no response"
        return f"{self.destination} {self.route}: {self.reason} ({status}, {self.attempts} attempt(s))"


class RequestRejected(DestinationError):
    """A non-retryable answer (4xx other than 429): retrying the same request cannot succeed."""


class RetriesExhausted(DestinationError):
    """Retryable failures (429, 5xx, connection errors) went on past the attempt or time budget."""


class DailyLimitReached(DestinationError):
    """HubSpot's DAILY policy answered 429: stop the run and resume after the quota resets."""


class ProvisioningConflict(Exception):
    """The destination already holds a definition that does not match what segflow needs."""
