"""Per-contact results and per-call statistics that the sync layer records."""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, astuple, dataclass, field
from enum import StrEnum
from typing import Any

from segflow.observability import pii_hash


class Outcome(StrEnum):
    OK = "ok"
    CREATED = "created"
    UPDATED = "updated"
    FAILED = "failed"
    COMPLIANCE = "compliance"  # the destination refuses for consent reasons: becomes a suppression, never a retry
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ContactResult:
    destination: str
    email_hash: str
    operation: str
    outcome: Outcome
    error_code: str | None = None
    error_message: str | None = None  # emails redacted
    destination_id: str | None = None  # Mailchimp subscriber hash, HubSpot record id
    status: str | None = None  # the destination's subscription status, when it told us
    retryable: bool = False
    email: str = field(default="", repr=False, compare=False)  # memory only: never logged or persisted

    @classmethod
    def for_email(cls, destination: str, email: str, operation: str, outcome: Outcome, **details: Any) -> ContactResult:
        return cls(destination, pii_hash(email) or "", operation, outcome, email=email, **details)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready record without the email address."""
        record = asdict(self)
        record.pop("email")
        record["outcome"] = self.outcome.value
        return record


def outcome_counts(results: Iterable[ContactResult]) -> dict[str, int]:
    return dict(Counter(r.outcome.value for r in results))


@dataclass(frozen=True)
class CallStats:
    calls: int = 0  # HTTP attempts sent (first tries and retries)
    retries: int = 0
    throttled: int = 0  # 429 answers
    errors: int = 0  # attempts that failed: connection errors, 5xx, unexpected 4xx
    duration_s: float = 0.0  # time spent inside request(), waits included

    def __add__(self, other: CallStats) -> CallStats:
        return CallStats(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: CallStats) -> CallStats:
        return CallStats(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def counters(self) -> dict[str, int]:
        """The counts sync history records keep (the duration is kept apart, in its own unit)."""
        return {"api_calls": self.calls, "retries": self.retries, "throttled": self.throttled, "errors": self.errors}


class StatsRecorder:
    """Thread-safe accumulation of CallStats; `snapshot()` before and after a step gives its delta."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = CallStats()

    def add(self, **deltas: float) -> None:
        with self._lock:
            self._total = self._total + CallStats(**deltas)  # type: ignore[arg-type]

    def snapshot(self) -> CallStats:
        with self._lock:
            return self._total
