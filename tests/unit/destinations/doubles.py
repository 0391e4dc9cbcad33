"""In-process test doubles for destination clients: a scripted requests transport and a virtual clock."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


@dataclass
class Seen:
    """One request as the transport received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    host: str = ""


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is (e.g. a results archive) instead of `body` as JSON


Handler = Callable[[Seen], "Reply | Exception"]


class ScriptedTransport(BaseAdapter):
    """A requests adapter that answers from a Python handler and counts concurrent in-flight requests.

    The handler may block (e.g. on an Event) to hold requests open; `max_in_flight` is the highest
    number of requests that were inside the transport at the same time.
    """

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        split = urlsplit(request.url or "")
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        seen = Seen(
            method=request.method or "",
            path=split.path,
            query=parse_qs(split.query),
            headers=dict(request.headers),
            body=json.loads(raw) if raw else None,
            host=split.netloc,
        )
        with self._lock:
            self.seen.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            outcome = self.handler(seen)
        finally:
            with self._lock:
                self.in_flight -= 1
        if isinstance(outcome, Exception):
            raise outcome
        response = requests.Response()
        response.status_code = outcome.status
        response.headers = CaseInsensitiveDict(outcome.headers)
        if outcome.raw is not None:
            response._content = outcome.raw
        elif outcome.body is not None:
            response._content = json.dumps(outcome.body).encode()
            response.headers.setdefault("Content-Type", "application/json")
        else:
            response._content = b""
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def calls(self, method: str, path_suffix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.endswith(path_suffix)]


def install(client: Any, transport: ScriptedTransport) -> ScriptedTransport:
    """Route a client's sessions through the transport (replaces their pooled HTTP adapters), including the
    Mailchimp client's separate session for batch results downloads."""
    sessions = [client.http.session]
    batches = getattr(client, "batches", None)
    if batches is not None:
        sessions.append(batches.downloads)
    for session in sessions:
        session.mount("https://", transport)
        session.mount("http://", transport)
    return transport


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps on it (thread-safe)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(seconds, 0.0)


class MaxRandom:
    """A random.Random stand-in whose uniform(a, b) returns b: makes full-jitter backoff its upper bound."""

    def uniform(self, low: float, high: float) -> float:
        return high
