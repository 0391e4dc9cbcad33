"""Client-side limits: a rolling-window request limiter (HubSpot) and a connection gate (Mailchimp).

Both are shared by every thread of a process through small registries keyed by a hash of the
credential, because the vendors count per app / per key, not per client object.
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

HUBSPOT_WINDOW_S = 10.0
HUBSPOT_TIER_LIMITS: dict[str, int] = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}
DEFAULT_MARGIN = 0.9


def budget(limit: int, margin: float = DEFAULT_MARGIN) -> int:
    """Requests per window segflow allows itself: a margin under the vendor's ceiling, at least one."""
    if not 0 < margin <= 1:
        raise ValueError("margin must be in (0, 1]")
    return max(1, math.floor(limit * margin))


class WindowRateLimiter:
    """At most `max_requests` request starts in any rolling `window_s` seconds, across threads.

    `acquire()` blocks (through the injected sleep) until a slot is free. `observe()` reads the
    server's own count of what is left in its window, which also includes other processes of the
    same app: when little is left, requests are spaced out so the remainder lasts the interval.
    """

    def __init__(
        self,
        max_requests: int,
        window_s: float = HUBSPOT_WINDOW_S,
        *,
        low_watermark: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if max_requests < 1 or window_s <= 0:
            raise ValueError("max_requests must be >= 1 and window_s > 0")
        self.max_requests = max_requests
        self.window_s = window_s
        self.low_watermark = low_watermark
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._not_before = float("-inf")
        self._lock = threading.Lock()

    def _wait_needed(self, now: float) -> float:
        while self._starts and self._starts[0] <= now - self.window_s:
            self._starts.popleft()
        if now < self._not_before:
            return self._not_before - now
        if len(self._starts) >= self.max_requests:
            return self._starts[0] + self.window_s - now
        return 0.0

    def acquire(self) -> float:
        """Take a slot; returns the clock time at which it was granted."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._starts.append(now)
                    return now
            self._sleep(wait)  # outside the lock: other threads keep checking their own turn

    def pause(self, seconds: float) -> None:
        """No new request before `seconds` from now (e.g. after a 429 from another process's burst)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def observe(self, remaining: int | None, interval_s: float | None = None, server_max: int | None = None) -> None:
        """Slow down when the server says its window is nearly used up."""
        if remaining is None:
            return
        interval = interval_s or self.window_s
        watermark = self.low_watermark
        if watermark is None:
            # our own traffic alone leaves (server_max - max_requests) unused; half of that reached
            # means someone else shares the app's window
            headroom = (server_max - self.max_requests) if server_max else self.max_requests // 10
            watermark = max(1, headroom // 2)
        if remaining > watermark:
            return
        # spread what is left over the interval; nothing left -> wait a whole interval
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + interval / (remaining + 1))


def _key(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


_registry_lock = threading.Lock()
_limiters: dict[str, WindowRateLimiter] = {}
_gates: dict[str, threading.BoundedSemaphore] = {}


def shared_rate_limiter(credential: str, max_requests: int, window_s: float = HUBSPOT_WINDOW_S) -> WindowRateLimiter:
    """The process-wide limiter for one HubSpot app token (the first caller sets its budget)."""
    key = _key(credential)
    with _registry_lock:
        if key not in _limiters:
            _limiters[key] = WindowRateLimiter(max_requests, window_s)
        return _limiters[key]


def shared_connection_gate(credential: str, max_connections: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore capping simultaneous requests for one Mailchimp API key.

    One gate per key whatever each client asks for (the first caller sets its size): two gates for the
    same key would together pass the vendor's ceiling.
    """
    key = _key(credential)
    with _registry_lock:
        if key not in _gates:
            _gates[key] = threading.BoundedSemaphore(max_connections)
        return _gates[key]
