"""Retrying session: backoff schedule, Retry-After, bounded attempts and time, typed give-up, stats."""
from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
from segflow.destinations.errors import RequestRejected, RetriesExhausted
from segflow.destinations.http import ApiSession, RetryPolicy, parse_retry_after, render_route

from tests.unit.destinations.doubles import MaxRandom, Reply, ScriptedTransport, Seen, VirtualClock

SECRET = "topsecret-us6"


def make_session(
    transport: ScriptedTransport, clock: VirtualClock, policy: RetryPolicy | None = None, rng: object = None
) -> ApiSession:
    session = ApiSession("test", "https://api.test", policy=policy or RetryPolicy(), auth=("any", SECRET), sleep=clock.sleep,
                         clock=clock, wall_clock=clock, rng=rng or MaxRandom())
    session.session.mount("https://", transport)
    return session


def sequence(*replies: Reply | Exception):
    queue = list(replies)

    def handler(seen: Seen) -> Reply | Exception:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def test_backoff_doubles_from_the_base_up_to_the_cap_with_full_jitter_upper_bound() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(*[Reply(503)] * 6, Reply(200, {"ok": True})))
    policy = RetryPolicy(max_attempts=7, base_delay_s=0.5, max_delay_s=4.0, max_total_s=1_000)
    response = make_session(transport, clock, policy).request("GET", "/things")
    assert response.json() == {"ok": True}
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(transport.seen) == 7


def test_full_jitter_delays_stay_within_zero_and_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30.0)
    rng = random.Random(7)
    for failures in range(1, 10):
        ceiling = min(30.0, 0.5 * 2 ** (failures - 1))
        delays = [policy.backoff(failures, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # really spread over the range, not a constant


def test_retry_after_seconds_is_honoured_instead_of_backoff() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(Reply(429, headers={"Retry-After": "7"}), Reply(200, {})))
    make_session(transport, clock).request("POST", "/things", json={"a": 1})
    assert clock.sleeps == [7.0]


def test_retry_after_http_date_is_honoured() -> None:
    clock = VirtualClock(start=1_700_000_000.0)
    when = format_datetime(datetime.fromtimestamp(1_700_000_012, UTC), usegmt=True)
    transport = ScriptedTransport(sequence(Reply(503, headers={"Retry-After": when}), Reply(200, {})))
    make_session(transport, clock).request("GET", "/things")
    assert clock.sleeps == [pytest.approx(12.0)]


def test_parse_retry_after_rejects_garbage() -> None:
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("-3", 0.0) == 0.0


def test_gives_up_after_max_attempts_with_the_last_status_and_body() -> None:
    clock = VirtualClock()
    body = {"title": "Internal", "detail": "boom for ana@example.com"}
    transport = ScriptedTransport(sequence(Reply(500, body)))
    session = make_session(transport, clock, RetryPolicy(max_attempts=4, max_total_s=1_000))
    with pytest.raises(RetriesExhausted) as caught:
        session.request("GET", "/lists/{list_id}", path_params={"list_id": "abc"})
    error = caught.value
    assert len(transport.seen) == 4 and error.attempts == 4
    assert error.status == 500
    assert error.body["detail"] == "boom for <email>"
    assert "GET /lists/{list_id}" in str(error)
    assert SECRET not in str(error) and "example.com" not in str(error)
    assert len(clock.sleeps) == 3


def test_total_time_budget_stops_retries_before_the_attempt_budget() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(Reply(429, headers={"Retry-After": "30"})))
    session = make_session(transport, clock, RetryPolicy(max_attempts=10, max_total_s=100.0))
    with pytest.raises(RetriesExhausted):
        session.request("GET", "/things")
    assert sum(clock.sleeps) <= 100.0
    assert len(transport.seen) == 4  # waits of 30 s: 0, 30, 60, 90 -> a fourth wait would pass 100 s


def test_connection_errors_are_retried_then_reported_without_a_status() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(requests.ConnectionError("refused")))
    session = make_session(transport, clock, RetryPolicy(max_attempts=3, max_total_s=1_000))
    with pytest.raises(RetriesExhausted) as caught:
        session.request("GET", "/things")
    assert caught.value.status is None and "ConnectionError" in str(caught.value)
    assert len(transport.seen) == 3
    stats = session.snapshot()
    assert (stats.calls, stats.retries, stats.errors) == (3, 2, 3)


def test_a_connection_error_then_success_returns_the_answer() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(requests.ReadTimeout("slow"), Reply(200, {"n": 1})))
    assert make_session(transport, clock).request("GET", "/things").json() == {"n": 1}


def test_client_errors_are_not_retried() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(Reply(400, {"title": "Invalid Resource"})))
    with pytest.raises(RequestRejected) as caught:
        make_session(transport, clock).request("POST", "/things", json={})
    assert caught.value.status == 400 and caught.value.body == {"title": "Invalid Resource"}
    assert len(transport.seen) == 1 and clock.sleeps == []


def test_accepted_statuses_are_returned_to_the_caller() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(Reply(404, {"title": "Resource Not Found"})))
    assert make_session(transport, clock).request("GET", "/x", accept=(404,)).status_code == 404


def test_stats_count_calls_retries_throttles_errors_and_duration() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(Reply(429), Reply(502), Reply(200, {})))
    session = make_session(transport, clock, RetryPolicy(base_delay_s=1.0))
    session.request("GET", "/things")
    stats = session.snapshot()
    assert (stats.calls, stats.retries, stats.throttled, stats.errors) == (3, 2, 1, 1)
    assert stats.duration_s == pytest.approx(1.0 + 2.0)  # the virtual waits


def test_route_values_are_url_quoted_and_auth_is_sent() -> None:
    clock = VirtualClock()
    transport = ScriptedTransport(sequence(Reply(200, {})))
    make_session(transport, clock).request("GET", "/s/{email}", path_params={"email": "a+b@x.com"})
    assert transport.seen[0].path == "/s/a%2Bb%40x.com"
    assert transport.seen[0].headers["Authorization"].startswith("Basic ")
    assert render_route("/l/{id}/m", {"id": "a/b"}) == "/l/a%2Fb/m"
