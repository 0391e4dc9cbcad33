"""The fake Mailchimp speaks the published Marketing API v3 contract: requests a client makes and the
responses the fake gives are validated against the vendor's OpenAPI description."""

from __future__ import annotations

import hashlib

import pytest
import requests
from segflow_local.fakes import FakeMailchimp

from tests.contract.contract_recorder import MAILCHIMP_HOST, MAILCHIMP_SPEC, UNDOCUMENTED, SpecBook


def _hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's subscriber hash


def test_sync_flow_requests_and_responses_match_the_spec(
    checked_mailchimp: FakeMailchimp, mailchimp_session: requests.Session
) -> None:
    fake, s = checked_mailchimp, mailchimp_session
    base, list_id = fake.base_url, fake.default_list_id
    fake.add_member("gone@example.com", "unsubscribed")
    fake.add_member("erase@example.com")

    assert s.get(f"{base}/ping").status_code == 200
    lists = s.get(f"{base}/lists", params={"count": 100}).json()
    assert [a["id"] for a in lists["lists"]] == [list_id]

    created = s.post(
        f"{base}/lists/{list_id}/merge-fields", json={"name": "Churn risk", "type": "number", "tag": "CHURN"}
    )
    assert created.status_code == 200 and created.json()["tag"] == "CHURN"
    dropdown = {"name": "Tier", "type": "dropdown", "tag": "TIER", "options": {"choices": ["gold", "silver"]}}
    assert s.post(f"{base}/lists/{list_id}/merge-fields", json=dropdown).status_code == 200
    page = s.get(f"{base}/lists/{list_id}/merge-fields", params={"count": 3, "offset": 0}).json()
    assert len(page["merge_fields"]) == 3 and page["total_items"] == 7

    batch = {
        "members": [
            {
                "email_address": "ana@example.com",
                "status": "subscribed",
                "merge_fields": {"FNAME": "Ana", "CHURN": 0.2},
            },
            {"email_address": "gone@example.com", "status": "subscribed"},
            {"email_address": "bob@example.com", "status": "pending", "merge_fields": {"TIER": "gold"}},
        ],
        "update_existing": True,
    }
    result = s.post(f"{base}/lists/{list_id}", json=batch, params={"skip_merge_validation": "false"}).json()
    assert result["total_created"] == 2 and result["error_count"] == 1
    assert "compliance state" in result["errors"][0]["error"]

    put = {
        "email_address": "Cleo@Example.com",
        "status_if_new": "subscribed",
        "merge_fields": {"LNAME": "Lee"},
    }
    assert s.put(f"{base}/lists/{list_id}/members/{_hash('cleo@example.com')}", json=put).status_code == 200
    assert (
        s.get(f"{base}/lists/{list_id}/members/{_hash('ana@example.com')}").json()["status"] == "subscribed"
    )
    members = s.get(
        f"{base}/lists/{list_id}/members", params={"count": 2, "offset": 1, "status": "subscribed"}
    ).json()
    assert members["total_items"] == 3 and len(members["members"]) == 2

    tags = {"tags": [{"name": "vip", "status": "active"}, {"name": "lapsed", "status": "inactive"}]}
    assert (
        s.post(f"{base}/lists/{list_id}/members/{_hash('ana@example.com')}/tags", json=tags).status_code
        == 204
    )
    member_tags = s.get(f"{base}/lists/{list_id}/members/{_hash('ana@example.com')}/tags").json()
    assert [t["name"] for t in member_tags["tags"]] == ["vip"]

    segment = s.post(
        f"{base}/lists/{list_id}/segments", json={"name": "High CLV", "static_segment": []}
    ).json()
    change = {"members_to_add": ["ana@example.com", "nobody@example.com"], "members_to_remove": []}
    changed = s.post(f"{base}/lists/{list_id}/segments/{segment['id']}", json=change).json()
    assert changed["total_added"] == 1 and changed["errors"][0]["email_addresses"] == ["nobody@example.com"]
    assert s.get(f"{base}/lists/{list_id}/segments/{segment['id']}/members").json()["total_items"] == 1
    names = {
        seg["name"]
        for seg in s.get(f"{base}/lists/{list_id}/segments", params={"type": "static"}).json()["segments"]
    }
    assert names == {"vip", "High CLV"}

    erase = f"{base}/lists/{list_id}/members/{_hash('erase@example.com')}/actions/delete-permanent"
    assert s.post(erase).status_code == 204
    assert s.get(f"{base}/lists/{list_id}/members/{_hash('erase@example.com')}").status_code == 404
    assert len(fake.exchanges) == 17  # all of them validated against the spec at teardown


def test_error_responses_match_the_problem_document_schema(spec_book: SpecBook) -> None:
    with FakeMailchimp(fault_rate=0.0) as fake, requests.Session() as s:
        s.auth = ("segflow", fake.api_key)
        base, list_id = fake.base_url, fake.default_list_id
        fake.add_member("gone@example.com", "cleaned")
        fake.add_member("forgotten@example.com")
        fake.forget_member("forgotten@example.com")
        responses = [
            s.get(f"{base}/lists/nope/members"),
            s.post(f"{base}/lists/{list_id}", json={"members": [{"email_address": "a@example.com"}]}),
            s.post(
                f"{base}/lists/{list_id}", data=b"{not json", headers={"Content-Type": "application/json"}
            ),
            s.put(
                f"{base}/lists/{list_id}/members/{_hash('gone@example.com')}",
                json={
                    "email_address": "gone@example.com",
                    "status_if_new": "subscribed",
                    "status": "subscribed",
                },
            ),
            s.put(
                f"{base}/lists/{list_id}/members/{_hash('forgotten@example.com')}",
                json={"email_address": "forgotten@example.com", "status_if_new": "subscribed"},
            ),
            s.post(
                f"{base}/lists/{list_id}/merge-fields",
                json={"name": "Too long", "type": "text", "tag": "ELEVENCHARS"},
            ),
            requests.get(f"{base}/lists", auth=("segflow", "wrong-us6")),
        ]
        assert [r.status_code for r in responses] == [404, 400, 400, 400, 400, 400, 401]
        assert all(r.headers["Content-Type"].startswith("application/problem+json") for r in responses)
        assert responses[3].json()["title"] == "Member In Compliance State"
        assert responses[4].json()["title"] == "Forgotten Email Not Subscribed"
        spec_book.assert_valid("mailchimp", fake.exchanges, responses_only=True)


def test_throttled_and_faulted_responses_match_the_spec(spec_book: SpecBook) -> None:
    with FakeMailchimp(fault_rate=1.0, seed=7, fault_kinds=("429", "500")) as fake:
        statuses = {
            requests.get(f"{fake.base_url}/lists", auth=("u", fake.api_key)).status_code for _ in range(8)
        }
    assert statuses == {429, 500}
    spec_book.assert_valid("mailchimp", fake.exchanges)


def test_documented_rules_catch_what_the_spec_copy_lost(spec_book: SpecBook) -> None:
    with FakeMailchimp() as fake:
        lacking = {"members": [{"email_address": "a@example.com", "merge_fields": {"FNAME": "A"}}]}
        tagged = {"members": [{"email_address": "b@example.com", "status": "subscribed", "tags": ["vip"]}]}
        for body in (lacking, tagged):
            reply = requests.post(
                f"{fake.base_url}/lists/{fake.default_list_id}", json=body, auth=("u", fake.api_key)
            )
            assert reply.status_code == 400
    first, second = fake.exchanges
    # The spec copy alone accepts both requests ...
    spec_only = [
        p for p in spec_book.exchange_problems("mailchimp", first) if not p.startswith("documented rule")
    ]
    assert spec_only == []
    # ... the documented rules do not.
    assert spec_book.exchange_problems("mailchimp", first) == ["documented rule: members[0] lacks status"]
    assert any("sends tags" in p for p in spec_book.exchange_problems("mailchimp", second))


def test_every_fake_route_is_an_operation_of_the_spec(spec_book: SpecBook) -> None:
    from openapi_core.templating.paths.finders import APICallPathFinder

    finder = APICallPathFinder(spec_book.app(MAILCHIMP_SPEC).spec)
    fake = FakeMailchimp()
    for route in fake.routes():
        path = route.template.replace("{list_id}", "abc123").replace("{subscriber_hash}", "f" * 32)
        path = path.replace("{segment_id}", "42").replace("{batch_id}", "0123456789")
        if any(m == route.method and p.match(path) for m, p in UNDOCUMENTED):
            continue
        found = finder.find(route.method.lower(), f"{MAILCHIMP_HOST}{path}")
        assert found.operation is not None, route.endpoint


@pytest.mark.parametrize("count", [0, 1001])
def test_page_size_outside_the_documented_range_is_refused(spec_book: SpecBook, count: int) -> None:
    with FakeMailchimp() as fake:
        reply = requests.get(
            f"{fake.base_url}/lists/{fake.default_list_id}/members",
            params={"count": count},
            auth=("u", fake.api_key),
        )
    assert reply.status_code == 400
    spec_book.assert_valid("mailchimp", fake.exchanges, responses_only=True)


class SteppedClock:
    """The fake's clock, moved by hand: members get distinct last_changed times."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_member_list_filters_by_status_and_last_change_pages_and_keeps_only_the_asked_fields(
    spec_book: SpecBook,
) -> None:
    clock = SteppedClock(1_790_000_000.0)
    with FakeMailchimp(clock=clock) as fake:
        list_id = fake.default_list_id
        for i in range(5):
            fake.add_member(f"old{i}@example.com", "unsubscribed")
        fake.add_member("bounced@example.com", "cleaned")
        fake.add_member("fan@example.com", "subscribed")
        clock.now += 3600
        fake.set_member_status("fan@example.com", "unsubscribed")  # a status change moves last_changed
        fake.add_member("new@example.com", "unsubscribed")  # so does a create
        members_url = f"{fake.base_url}/lists/{list_id}/members"

        def read(**params: object) -> dict:
            reply = requests.get(members_url, params=params, auth=("u", fake.api_key))
            assert reply.status_code == 200, reply.text
            return reply.json()

        every = read(status="unsubscribed", count=1000)
        assert every["total_items"] == 7
        assert {m["status"] for m in every["members"]} == {"unsubscribed"}
        changes = sorted({m["last_changed"] for m in every["members"]})
        assert len(changes) == 2
        since = read(status="unsubscribed", since_last_changed=changes[0], count=1000)
        assert sorted(m["email_address"] for m in since["members"]) == ["fan@example.com", "new@example.com"]
        assert since["total_items"] == 2  # changed strictly after the time given
        assert read(status="cleaned", since_last_changed=changes[0])["total_items"] == 0
        assert read(status="cleaned")["members"][0]["email_address"] == "bounced@example.com"

        fields = "members.email_address,members.id,members.status,members.last_changed,total_items"
        pages = [read(status="unsubscribed", fields=fields, count=3, offset=offset) for offset in (0, 3, 6)]
        assert [len(p["members"]) for p in pages] == [3, 3, 1] and {p["total_items"] for p in pages} == {7}
        assert all(set(p) == {"members", "total_items"} for p in pages)  # list_id, _links... left out
        assert all(set(m) == {"email_address", "id", "status", "last_changed"} for p in pages for m in p["members"])
        assert len({m["id"] for p in pages for m in p["members"]}) == 7

        for bad in ({"status": "gone"}, {"since_last_changed": "yesterday"}):
            reply = requests.get(members_url, params=bad, auth=("u", fake.api_key))
            assert reply.status_code == 400 and reply.headers["Content-Type"].startswith("application/problem+json")
    spec_book.assert_valid("mailchimp", fake.exchanges[:-2])
    spec_book.assert_valid("mailchimp", fake.exchanges[-2:], responses_only=True)  # the refused queries
