"""What the sync engine needs from the outside, as small protocols the lead wires to real adapters."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from segflow.sync.desired import DesiredContact
from segflow.sync.state import SyncState

# The consent check the applier asks right before every write (upsert or add) for every contact.
Guard = Callable[[DesiredContact], bool]


class SyncStateStore(Protocol):
    def get_states(self, destination: str, customer_ids: Iterable[str]) -> dict[str, SyncState]:
        """Recorded states by customer id; contacts never synced are absent."""
        ...

    def put_states(self, states: Sequence[SyncState]) -> list[str]:
        """Write states whose `version` is one more than the stored one (or 1 for a new item); returns the
        customer ids whose item changed meanwhile (nothing is written for those)."""
        ...


class SuppressionSink(Protocol):
    def record(self, customer_id: str, email: str, destination: str, reason: str) -> None:
        """A destination refused a contact for consent reasons (unsubscribed, cleaned, forgotten, ...)."""
        ...


@dataclass(frozen=True)
class Suppression:
    customer_id: str
    email: str
    destination: str
    reason: str


class RecordingSuppressions:
    """A SuppressionSink that keeps what it is told (tests, dry runs, and batching before the ledger)."""

    def __init__(self) -> None:
        self.recorded: list[Suppression] = []
        self._lock = threading.Lock()

    def record(self, customer_id: str, email: str, destination: str, reason: str) -> None:
        with self._lock:
            self.recorded.append(Suppression(customer_id, email, destination, reason))
