"""Publishing events: a port, the EventBridge adapter and an in-memory fake for unit tests."""
from __future__ import annotations

import json
from typing import Any, Protocol, Sequence

from segflow.events.schemas import EventDetail

# EventBridge accepts at most 10 entries per PutEvents call.
PUT_EVENTS_BATCH = 10


class EventPublisher(Protocol):
    def publish(self, details: Sequence[EventDetail]) -> None: ...


class PublishError(RuntimeError):
    """Some entries were refused by the bus after retries."""


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str, max_attempts: int = 3) -> None:
        self._client = client
        self._bus_name = bus_name
        self._max_attempts = max_attempts

    def publish(self, details: Sequence[EventDetail]) -> None:
        entries = [
            {
                "EventBusName": self._bus_name,
                "Source": d.source,
                "DetailType": d.detail_type,
                "Detail": d.model_dump_json(),
            }
            for d in details
        ]
        for start in range(0, len(entries), PUT_EVENTS_BATCH):
            self._put(entries[start : start + PUT_EVENTS_BATCH])

    def _put(self, batch: list[dict[str, Any]]) -> None:
        # PutEvents reports per-entry failures in a 200 response; resend only the failed ones.
        for _ in range(self._max_attempts):
            response = self._client.put_events(Entries=batch)
            if not response.get("FailedEntryCount"):
                return
            batch = [e for e, r in zip(batch, response["Entries"]) if r.get("ErrorCode")]
        raise PublishError(f"{len(batch)} event(s) refused by bus {self._bus_name}")


class InMemoryPublisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, details: Sequence[EventDetail]) -> None:
        for d in details:
            self.events.append(
                {"source": d.source, "detail-type": d.detail_type, "detail": json.loads(d.model_dump_json())}
            )
