"""The limiters behind the fakes' 429s, driven by an injected clock (no sleeping)."""

from __future__ import annotations

from segflow_local.fakes.limits import ConcurrencyLimiter, DailyLimiter, RollingWindowLimiter

DAY = 86_400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_concurrency_limit_is_per_key_and_released() -> None:
    limiter = ConcurrencyLimiter(2)
    assert limiter.try_acquire("a") and limiter.try_acquire("a")
    assert not limiter.try_acquire("a")
    assert limiter.try_acquire("b")
    limiter.release("a")
    assert limiter.in_flight("a") == 1 and limiter.try_acquire("a")


def test_rolling_window_expires_hits_exactly_at_the_interval() -> None:
    clock = Clock(100.0)
    window = RollingWindowLimiter(limit=2, interval_s=10.0, clock=clock)
    assert window.hit().remaining == 1 and window.hit().remaining == 0
    assert not window.hit().allowed
    clock.now = 109.999
    assert not window.peek().allowed
    clock.now = 110.0
    assert window.peek().remaining == 2


def test_refused_hits_do_not_extend_the_window() -> None:
    clock = Clock(0.0)
    window = RollingWindowLimiter(limit=1, interval_s=10.0, clock=clock)
    window.hit()
    for second in range(1, 10):
        clock.now = float(second)
        assert not window.hit().allowed
    clock.now = 10.0
    assert window.hit().allowed


def test_daily_quota_resets_at_utc_midnight() -> None:
    clock = Clock(5 * DAY + DAY - 1)  # one second before midnight UTC
    daily = DailyLimiter(limit=1, clock=clock)
    assert daily.hit().allowed and not daily.hit().allowed
    clock.now = 6 * DAY
    assert daily.peek().remaining == 1 and daily.hit().allowed
