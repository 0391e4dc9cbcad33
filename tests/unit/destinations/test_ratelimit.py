"""The client-side HubSpot limiter keeps every rolling window under its budget, across threads."""
from __future__ import annotations

import threading
from bisect import bisect_left

import pytest
from segflow.destinations.ratelimit import (
    WindowRateLimiter,
    budget,
    shared_connection_gate,
    shared_rate_limiter,
)

from tests.unit.destinations.doubles import VirtualClock


def max_in_any_window(times: list[float], window: float) -> int:
    """The most grants inside any half-open window [t, t + window) starting at a grant."""
    ordered = sorted(times)
    return max(bisect_left(ordered, t + window) - i for i, t in enumerate(ordered))


def test_budget_applies_the_margin_to_the_tier_limit() -> None:
    assert budget(100) == 90 and budget(190) == 171 and budget(1, 0.5) == 1
    with pytest.raises(ValueError):
        budget(100, 0.0)


def test_limiter_never_exceeds_its_budget_per_window_under_many_threads() -> None:
    clock = VirtualClock()
    limiter = WindowRateLimiter(9, 10.0, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            at = limiter.acquire()
            with lock:
                granted.append(at)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(granted) == 16 * 15
    assert max_in_any_window(granted, 10.0) <= 9
    # and it did not just crawl: 240 grants at 9 per 10 s need at least 26 windows' worth of time
    assert max(granted) - min(granted) >= (240 // 9 - 1) * 10.0


def test_limiter_grants_a_full_window_at_once_then_waits_for_the_oldest_to_expire() -> None:
    clock = VirtualClock(start=0.0)
    limiter = WindowRateLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire() == pytest.approx(10.0)
    assert clock.sleeps == [pytest.approx(10.0)]


def test_low_remaining_header_spaces_out_the_next_requests() -> None:
    clock = VirtualClock(start=0.0)
    limiter = WindowRateLimiter(90, 10.0, clock=clock, sleep=clock.sleep)
    limiter.observe(remaining=50, interval_s=10.0, server_max=100)  # plenty left: no change
    assert limiter.acquire() == 0.0
    limiter.observe(remaining=4, interval_s=10.0, server_max=100)  # another process is busy
    assert limiter.acquire() == pytest.approx(10.0 / 5)
    limiter.observe(remaining=0, interval_s=10.0, server_max=100)
    assert limiter.acquire() == pytest.approx(2.0 + 10.0)


def test_pause_holds_every_thread_back() -> None:
    clock = VirtualClock(start=0.0)
    limiter = WindowRateLimiter(100, 10.0, clock=clock, sleep=clock.sleep)
    limiter.pause(3.0)
    assert limiter.acquire() == pytest.approx(3.0)


def test_registries_share_one_limiter_and_one_gate_per_credential() -> None:
    first = shared_rate_limiter("token-a", 90)
    assert shared_rate_limiter("token-a", 171) is first and first.max_requests == 90
    assert shared_rate_limiter("token-b", 90) is not first
    assert shared_connection_gate("key-us6", 8) is shared_connection_gate("key-us6", 10)
