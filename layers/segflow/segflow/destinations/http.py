"""One pooled, retrying HTTP session per destination.

Retries 429, 5xx and connection errors with exponential backoff and full jitter, honours
Retry-After, and stops after a bounded number of attempts or a bounded total time with a typed
exception. Sleep, clock and randomness are injected so tests never really wait.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from segflow.destinations.errors import DestinationError, RequestRejected, RetriesExhausted, redacted_body
from segflow.destinations.ratelimit import Clock, Sleep
from segflow.destinations.results import CallStats, StatsRecorder
from segflow.observability import logger

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "segflow/0.1 (+https://github.com/segflow)"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_total_s: float = 180.0  # the whole call, waits included
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(failures-1))]."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(failures - 1, 0))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 60.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect_s, self.read_s)


DEFAULT_RETRY = RetryPolicy()
DEFAULT_TIMEOUTS = Timeouts()


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def render_route(route: str, params: Mapping[str, str]) -> str:
    """Fill a route template ("/lists/{list_id}") with URL-quoted values; the template itself is what gets logged."""
    return route.format(**{name: quote(str(value), safe="") for name, value in params.items()})


# Hooks a destination plugs in
BeforeSend = Callable[[], None]  # e.g. take a rate-limit slot
ResponseObserver = Callable[[requests.Response], None]  # e.g. read rate-limit headers
FatalCheck = Callable[[requests.Response, str, int], DestinationError | None]  # e.g. DAILY 429 -> stop now
Gate = Callable[[], AbstractContextManager[Any]]  # e.g. a semaphore capping connections


class ApiSession:
    """A requests.Session with a sized connection pool, timeouts, retries and call statistics."""

    def __init__(
        self,
        destination: str,
        base_url: str,
        *,
        pool_size: int = 10,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        policy: RetryPolicy = DEFAULT_RETRY,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        gate: Gate | None = None,
        before_send: BeforeSend | None = None,
        on_response: ResponseObserver | None = None,
        fatal: FatalCheck | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.destination = destination
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.policy = policy
        self.stats = StatsRecorder()
        self._gate = gate or nullcontext
        self._before_send = before_send
        self._on_response = on_response
        self._fatal = fatal
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self.session = session or requests.Session()
        # retries are ours (they need stats, Retry-After and DAILY handling): the adapter never retries
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0, pool_block=True)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.session.headers.update(headers or {})
        if auth is not None:
            self.session.auth = auth

    def close(self) -> None:
        self.session.close()

    def snapshot(self) -> CallStats:
        return self.stats.snapshot()

    def request(
        self,
        method: str,
        route: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """Send with retries. Returns 2xx answers and those listed in `accept` (e.g. 404 on a lookup).

        Raises RequestRejected for other non-retryable answers, RetriesExhausted when the budget runs
        out, and whatever `fatal` returns (e.g. DailyLimitReached) at once.
        """
        url = self.base_url + render_route(route, path_params or {})
        label = f"{method} {route}"
        started = self._clock()
        failures = 0
        try:
            while True:
                attempt = failures + 1
                response, error = self._send(method, url, params, json)
                delay, failure = self._assess(response, error, label, attempt, accept)
                if delay is None and failure is None and response is not None:
                    return response
                failures += 1
                elapsed = self._clock() - started
                if delay is None or attempt >= self.policy.max_attempts or elapsed + delay > self.policy.max_total_s:
                    raise failure or self._exhausted(label, response, error, attempt)
                self.stats.add(retries=1)
                logger.info(
                    "destination call will be retried",
                    extra={"destination": self.destination, "route": label, "attempt": attempt,
                           "status": getattr(response, "status_code", None), "delay_s": round(delay, 3)},
                )
                self._sleep(delay)
        finally:
            self.stats.add(duration_s=self._clock() - started)

    def _send(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: Any
    ) -> tuple[requests.Response | None, requests.RequestException | None]:
        if self._before_send is not None:
            self._before_send()
        self.stats.add(calls=1)
        with self._gate():
            try:
                return self.session.request(
                    method, url, params=params, json=body, timeout=self.timeouts.as_tuple()
                ), None
            except (requests.ConnectionError, requests.Timeout) as exc:
                return None, exc

    def _assess(
        self,
        response: requests.Response | None,
        error: requests.RequestException | None,
        label: str,
        attempt: int,
        accept: Collection[int],
    ) -> tuple[float | None, DestinationError | None]:
        """(delay before a retry or None for no retry, the exception to raise when not retrying)."""
        if response is None:
            self.stats.add(errors=1)
            logger.warning("destination connection failed",
                           extra={"destination": self.destination, "route": label, "error": type(error).__name__})
            return self.policy.backoff(attempt, self._rng), None
        if self._on_response is not None:
            self._on_response(response)
        status = response.status_code
        if status == 429:
            self.stats.add(throttled=1)
        fatal = self._fatal(response, label, attempt) if self._fatal is not None else None
        if fatal is not None:
            return None, fatal
        if status < 400 or status in accept:
            return None, None
        self.stats.add(errors=0 if status == 429 else 1)
        if status not in self.policy.retry_statuses:
            return None, RequestRejected(
                self.destination, label, "request rejected", status=status,
                body=redacted_body(response.content), attempts=attempt,
            )
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())
        return (retry_after if retry_after is not None else self.policy.backoff(attempt, self._rng)), None

    def _exhausted(
        self, label: str, response: requests.Response | None, error: BaseException | None, attempts: int
    ) -> RetriesExhausted:
        if response is not None:
            return RetriesExhausted(self.destination, label, "gave up retrying", status=response.status_code,
                                    body=redacted_body(response.content), attempts=attempts)
        return RetriesExhausted(self.destination, label, f"gave up retrying after {type(error).__name__}",
                                attempts=attempts)
