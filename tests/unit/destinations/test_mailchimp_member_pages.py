"""MailchimpClient.member_pages: the audience read of the nightly scan -- one status, 1000 members a page by
count/offset until total_items, only the fields the scan reads, the usual retries."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from segflow.destinations.http import RetryPolicy
from segflow.destinations.mailchimp import SCAN_FIELDS

from tests.unit.destinations.doubles import Reply, Seen
from tests.unit.destinations.test_mailchimp_client import LIST, client_for


class StatusAudience:
    """GET /lists/{id}/members over `count` members per status; `shrink_after_first`: members that leave the
    status once the first page was served; `throttle_first`: answer the first request 429."""

    def __init__(self, counts: dict[str, int], shrink_after_first: int = 0, throttle_first: bool = False) -> None:
        self.counts = dict(counts)
        self.shrink_after_first = shrink_after_first
        self.throttle_first = throttle_first

    def __call__(self, seen: Seen) -> Reply:
        assert seen.method == "GET" and seen.path == f"/3.0/lists/{LIST}/members", seen.path
        if self.throttle_first:
            self.throttle_first = False
            return Reply(429, {"title": "Too Many Requests"}, {"Retry-After": "0"})
        status = seen.query["status"][0]
        count, offset = int(seen.query["count"][0]), int(seen.query["offset"][0])
        total = self.counts[status]
        members = [{"email_address": f"{status}{i}@example.com", "id": f"h{i}", "status": status,
                    "last_changed": "2026-10-01T00:00:00+00:00"} for i in range(offset, min(offset + count, total))]
        if offset == 0:
            self.counts[status] -= self.shrink_after_first
        return Reply(200, {"members": members, "total_items": total})


def test_pages_1000_members_at_a_time_until_total_items_with_only_the_scanned_fields() -> None:
    client, transport = client_for(StatusAudience({"unsubscribed": 2345}))
    since = datetime(2026, 10, 31, 4, 0, 0, 500000, tzinfo=timezone(timedelta(hours=2)))
    pages = list(client.member_pages(LIST, "unsubscribed", since))

    assert [(p.offset, len(p.members), p.total_items) for p in pages] == [(0, 1000, 2345), (1000, 1000, 2345),
                                                                          (2000, 345, 2345)]
    assert len({m["email_address"] for p in pages for m in p.members}) == 2345
    queries = [s.query for s in transport.seen]
    assert [q["offset"] for q in queries] == [["0"], ["1000"], ["2000"]]
    for query in queries:
        assert query["count"] == ["1000"] and query["status"] == ["unsubscribed"]
        assert query["since_last_changed"] == ["2026-10-31T02:00:00+00:00"]  # UTC, ISO 8601, whole seconds
        assert query["fields"] == [",".join(SCAN_FIELDS)]
        assert set(query) == {"status", "since_last_changed", "fields", "count", "offset"}


def test_without_a_cursor_every_member_of_the_status_is_read_and_an_empty_status_costs_one_call() -> None:
    client, transport = client_for(StatusAudience({"cleaned": 0, "unsubscribed": 3}))
    assert [len(p.members) for p in client.member_pages(LIST, "cleaned")] == [0]
    assert [len(p.members) for p in client.member_pages(LIST, "unsubscribed")] == [3]
    assert len(transport.seen) == 2 and all("since_last_changed" not in s.query for s in transport.seen)


def test_a_scan_carried_on_starts_at_the_offset_it_reached() -> None:
    client, transport = client_for(StatusAudience({"cleaned": 2500}))
    pages = list(client.member_pages(LIST, "cleaned", None, 2000))
    assert [(p.offset, len(p.members)) for p in pages] == [(2000, 500)]
    assert [s.query["offset"] for s in transport.seen] == [["2000"]]


def test_a_total_that_moves_under_the_scan_is_reported_and_an_empty_page_ends_it() -> None:
    client, transport = client_for(StatusAudience({"unsubscribed": 2000}, shrink_after_first=1000))
    pages = list(client.member_pages(LIST, "unsubscribed"))
    assert [(p.offset, len(p.members), p.total_items) for p in pages] == [(0, 1000, 2000), (1000, 0, 1000)]
    assert len(transport.seen) == 2


def test_a_throttled_page_is_retried_like_any_call() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0, max_total_s=5.0)
    client, transport = client_for(StatusAudience({"unsubscribed": 5}, throttle_first=True), policy=policy)
    pages = list(client.member_pages(LIST, "unsubscribed"))
    assert [len(p.members) for p in pages] == [5] and len(transport.seen) == 2
    assert client.stats().retries == 1


def test_a_status_outside_the_spec_or_a_naive_time_is_refused_before_any_call() -> None:
    client, transport = client_for(StatusAudience({}))
    with pytest.raises(ValueError, match="status"):
        next(iter(client.member_pages(LIST, "gone")))
    with pytest.raises(ValueError, match="timezone"):
        next(iter(client.member_pages(LIST, "cleaned", datetime(2026, 10, 1))))
    assert transport.seen == []
