"""Server-side limits the real APIs enforce: concurrent connections and request-count windows."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class ConcurrencyLimiter:
    """At most `limit` requests in flight per key (Mailchimp: 10 simultaneous connections per API key)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> bool:
        with self._lock:
            current = self._in_flight.get(key, 0)
            if current >= self.limit:
                return False
            self._in_flight[key] = current + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)

    def in_flight(self, key: str) -> int:
        with self._lock:
            return self._in_flight.get(key, 0)


@dataclass(frozen=True)
class WindowDecision:
    allowed: bool
    limit: int
    remaining: int


class RollingWindowLimiter:
    """At most `limit` accepted requests in any rolling `interval_s` seconds (HubSpot TEN_SECONDLY_ROLLING).

    Only accepted requests enter the window: a refused request does not extend the penalty, so a
    client that backs off recovers after the window rolls.
    """

    def __init__(self, limit: int, interval_s: float, clock: Clock) -> None:
        self.limit = limit
        self.interval_s = interval_s
        self._clock = clock
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._accepted and self._accepted[0] <= now - self.interval_s:
            self._accepted.popleft()

    def peek(self) -> WindowDecision:
        with self._lock:
            self._expire(self._clock())
            remaining = self.limit - len(self._accepted)
            return WindowDecision(remaining > 0, self.limit, max(remaining, 0))

    def hit(self) -> WindowDecision:
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._accepted) >= self.limit:
                return WindowDecision(False, self.limit, 0)
            self._accepted.append(now)
            return WindowDecision(True, self.limit, self.limit - len(self._accepted))


class DailyLimiter:
    """At most `limit` accepted requests per UTC day of the injected clock (HubSpot DAILY policy)."""

    def __init__(self, limit: int, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._day = -1
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        day = math.floor(self._clock() / 86_400)
        if day != self._day:
            self._day, self._used = day, 0

    def peek(self) -> WindowDecision:
        with self._lock:
            self._roll()
            remaining = self.limit - self._used
            return WindowDecision(remaining > 0, self.limit, max(remaining, 0))

    def hit(self) -> WindowDecision:
        with self._lock:
            self._roll()
            if self._used >= self.limit:
                return WindowDecision(False, self.limit, 0)
            self._used += 1
            return WindowDecision(True, self.limit, self.limit - self._used)
