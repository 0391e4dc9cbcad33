"""Behaviour of the fake Mailchimp: the rules of the real API that sync code must survive."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from segflow_local.fakes import FakeMailchimp


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's subscriber hash


class Client:
    """Just enough HTTP to drive the fake in tests."""

    def __init__(self, fake: FakeMailchimp) -> None:
        self.fake = fake
        self.session = requests.Session()
        self.session.auth = ("segflow", fake.api_key)
        self.lists = f"{fake.base_url}/lists/{fake.default_list_id}"

    def batch(self, members: list[dict[str, Any]], **options: Any) -> requests.Response:
        return self.session.post(self.lists, json={"members": members, **options})

    def put(self, email: str, **fields: Any) -> requests.Response:
        return self.session.put(f"{self.lists}/members/{md5(email)}", json={"email_address": email, **fields})

    def merge_field(self, **body: Any) -> requests.Response:
        return self.session.post(f"{self.lists}/merge-fields", json=body)


@pytest.fixture
def fake() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as started:
        yield started


@pytest.fixture
def client(fake: FakeMailchimp) -> Iterator[Client]:
    wrapper = Client(fake)
    yield wrapper
    wrapper.session.close()


# ---- auth --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "title"),
    [
        (None, "API Key Missing"),
        (("segflow", "wrong0123456789abcdef-us6"), "API Key Invalid"),
        (("fake0123456789abcdef-us6", "segflow"), "API Key Invalid"),  # the key belongs in the password
    ],
)
def test_requests_without_the_api_key_are_rejected(fake: FakeMailchimp, auth: Any, title: str) -> None:
    reply = requests.get(f"{fake.base_url}/lists", auth=auth)
    assert reply.status_code == 401
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.json()["title"] == title
    assert fake.state()["lists"][fake.default_list_id]["members"] == {}


def test_bearer_token_is_not_basic_auth(fake: FakeMailchimp) -> None:
    reply = requests.get(f"{fake.base_url}/lists", headers={"Authorization": f"Bearer {fake.api_key}"})
    assert reply.status_code == 401


def test_exchanges_never_record_the_api_key(fake: FakeMailchimp, client: Client) -> None:
    client.session.get(f"{fake.base_url}/ping")
    recorded = json.dumps(fake.exchanges)
    assert fake.api_key not in recorded
    assert fake.exchanges[0].headers["Authorization"] == "Basic <redacted>"


# ---- batch subscribe -----------------------------------------------------------------------------


def test_batch_of_500_members_is_accepted_and_501_refused(fake: FakeMailchimp, client: Client) -> None:
    members = [{"email_address": f"u{i}@example.com", "status": "subscribed"} for i in range(501)]
    refused = client.batch(members)
    assert refused.status_code == 400
    assert refused.json()["errors"] == [{"field": "members", "message": "at most 500 items"}]
    assert fake.state()["lists"][fake.default_list_id]["members"] == {}
    accepted = client.batch(members[:500])
    assert accepted.status_code == 200 and accepted.json()["total_created"] == 500


@pytest.mark.parametrize(
    "member",
    [
        {"email_address": "a@example.com"},  # status is required
        {"status": "subscribed"},  # email_address is required
        {"email_address": "a@example.com", "status": "subscribed", "tags": ["vip"]},  # not a batch field
        {"email_address": "a@example.com", "status": "active"},  # not a member status
        {"email_address": "a@example.com", "status": "subscribed", "vip": "yes"},  # booleans are booleans
    ],
)
def test_batch_members_are_validated_strictly(client: Client, member: dict[str, Any]) -> None:
    reply = client.batch([member])
    assert reply.status_code == 400
    body = reply.json()
    assert body["title"] == "Invalid Resource" and body["errors"][0]["field"].startswith("members.0")


def test_unknown_top_level_fields_are_refused(client: Client) -> None:
    reply = client.session.post(client.lists, json={"members": [], "replace_all": True})
    assert reply.status_code == 400
    assert reply.json()["errors"] == [{"field": "replace_all", "message": "Extra inputs are not permitted"}]


def test_existing_members_need_update_existing(fake: FakeMailchimp, client: Client) -> None:
    fake.add_member("ana@example.com", merge_fields={"FNAME": "Ana"})
    member = {"email_address": "ANA@example.com", "status": "subscribed", "merge_fields": {"FNAME": "Anna"}}
    refused = client.batch([member]).json()
    assert refused["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert fake.member("ana@example.com")["merge_fields"]["FNAME"] == "Ana"
    updated = client.batch([member], update_existing=True).json()
    assert updated["total_updated"] == 1 and fake.member("ana@example.com")["merge_fields"]["FNAME"] == "Anna"


def test_duplicates_and_invalid_emails_fail_per_member(client: Client) -> None:
    result = client.batch(
        [
            {"email_address": "ana@example.com", "status": "subscribed"},
            {"email_address": "Ana@Example.com", "status": "subscribed"},
            {"email_address": "not-an-email", "status": "subscribed"},
        ]
    ).json()
    assert result["total_created"] == 1 and result["error_count"] == 2
    assert [e["email_address"] for e in result["errors"]] == ["Ana@Example.com", "not-an-email"]


# ---- compliance states ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["unsubscribed", "cleaned"])
def test_compliance_states_are_never_resubscribed_by_batch(
    fake: FakeMailchimp, client: Client, status: str
) -> None:
    fake.add_member("gone@example.com", status)
    result = client.batch(
        [
            {"email_address": "gone@example.com", "status": "subscribed"},
            {"email_address": "new@example.com", "status": "subscribed"},
        ],
        update_existing=True,
    ).json()
    assert result["total_created"] == 1 and result["error_count"] == 1
    error = result["errors"][0]
    assert error["email_address"] == "gone@example.com" and error["error_code"] == "ERROR_GENERIC"
    assert "compliance state" in error["error"]
    assert fake.member("gone@example.com")["status"] == status


@pytest.mark.parametrize("status", ["unsubscribed", "cleaned"])
def test_compliance_states_are_never_resubscribed_by_put(
    fake: FakeMailchimp, client: Client, status: str
) -> None:
    fake.add_member("gone@example.com", status)
    reply = client.put("gone@example.com", status_if_new="subscribed", status="subscribed")
    assert reply.status_code == 400
    assert reply.json()["title"] == "Member In Compliance State"
    assert fake.member("gone@example.com")["status"] == status


def test_put_without_status_updates_fields_but_keeps_an_unsubscribe(
    fake: FakeMailchimp, client: Client
) -> None:
    fake.add_member("gone@example.com", "unsubscribed")
    reply = client.put("gone@example.com", status_if_new="subscribed", merge_fields={"FNAME": "Gus"})
    assert reply.status_code == 200
    assert reply.json()["status"] == "unsubscribed" and reply.json()["merge_fields"]["FNAME"] == "Gus"


def test_pending_is_the_route_back_from_unsubscribed(fake: FakeMailchimp, client: Client) -> None:
    fake.add_member("gone@example.com", "unsubscribed")
    assert (
        client.put("gone@example.com", status_if_new="pending", status="pending").json()["status"]
        == "pending"
    )


def test_put_requires_status_if_new_and_a_matching_hash(client: Client) -> None:
    assert client.put("ana@example.com").status_code == 400
    mismatch = client.session.put(
        f"{client.lists}/members/{md5('bob@example.com')}",
        json={"email_address": "ana@example.com", "status_if_new": "subscribed"},
    )
    assert mismatch.status_code == 400


def test_forgotten_emails_cannot_be_reimported(fake: FakeMailchimp, client: Client) -> None:
    fake.add_member("erase@example.com", tags=["vip"])
    erase = client.session.post(f"{client.lists}/members/{md5('erase@example.com')}/actions/delete-permanent")
    assert erase.status_code == 204
    assert fake.is_forgotten("erase@example.com") and fake.member("erase@example.com") is None
    assert client.session.get(f"{client.lists}/members/{md5('erase@example.com')}").status_code == 404

    put = client.put("Erase@example.com", status_if_new="subscribed")
    assert put.status_code == 400 and put.json()["title"] == "Forgotten Email Not Subscribed"
    batch = client.batch([{"email_address": "erase@example.com", "status": "unsubscribed"}]).json()
    assert "permanently deleted" in batch["errors"][0]["error"]
    state = fake.state()["lists"][fake.default_list_id]
    assert state["segments"]["vip"]["members"] == [] and "erase@example.com" not in json.dumps(state)


# ---- merge fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["TOOLONGTAG1", "clv", "CLV-30D", "1CLV", ""])
def test_merge_tags_must_be_short_upper_case_names(fake: FakeMailchimp, client: Client, tag: str) -> None:
    reply = client.merge_field(name="Field", type="text", tag=tag)
    assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == "tag"
    assert len(fake.state()["lists"][fake.default_list_id]["merge_fields"]) == 5


def test_merge_tags_are_unique_and_generated_when_absent(client: Client) -> None:
    assert client.merge_field(name="CLV", type="number", tag="CLV").status_code == 200
    assert client.merge_field(name="CLV again", type="number", tag="CLV").status_code == 400
    generated = client.merge_field(name="No tag", type="text").json()["tag"]
    assert generated.startswith("MMERGE") and len(generated) <= 10


def test_audience_holds_at_most_30_merge_fields_including_the_defaults(
    fake: FakeMailchimp, client: Client
) -> None:
    defaults = len(fake.state()["lists"][fake.default_list_id]["merge_fields"])
    assert defaults == 5  # FNAME, LNAME, ADDRESS, PHONE, BIRTHDAY
    for n in range(30 - defaults):
        assert client.merge_field(name=f"F{n}", type="text", tag=f"F{n}").status_code == 200
    refused = client.merge_field(name="One more", type="text", tag="EXTRA")
    assert refused.status_code == 400 and "maximum of 30" in refused.json()["errors"][0]["message"]


def test_merge_field_limit_and_defaults_are_configurable() -> None:
    with FakeMailchimp(max_merge_fields=2, default_merge_fields=()) as fake:
        client = Client(fake)
        statuses = [client.merge_field(name=f"F{n}", type="text", tag=f"F{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 400]


def test_merge_field_listing_is_paginated_ten_by_default(client: Client) -> None:
    for n in range(8):
        client.merge_field(name=f"F{n}", type="text", tag=f"F{n}")
    first = client.session.get(f"{client.lists}/merge-fields").json()
    assert len(first["merge_fields"]) == 10 and first["total_items"] == 13
    rest = client.session.get(f"{client.lists}/merge-fields", params={"offset": 10}).json()
    assert [f["tag"] for f in rest["merge_fields"]] == ["F5", "F6", "F7"]


def test_dropdowns_need_choices_and_member_values_must_be_one(client: Client) -> None:
    assert client.merge_field(name="Tier", type="dropdown", tag="TIER").status_code == 400
    assert (
        client.merge_field(
            name="Tier", type="dropdown", tag="TIER", options={"choices": ["gold", "silver"]}
        ).status_code
        == 200
    )
    result = client.batch(
        [
            {"email_address": "a@example.com", "status": "subscribed", "merge_fields": {"TIER": "gold"}},
            {"email_address": "b@example.com", "status": "subscribed", "merge_fields": {"TIER": "bronze"}},
        ]
    ).json()
    assert result["total_created"] == 1
    assert result["errors"][0]["field"] == "TIER" and "choices" in result["errors"][0]["field_message"]


@pytest.mark.parametrize(
    ("merge_fields", "field"),
    [({"NOPE": "x"}, "NOPE"), ({"SCORE": "high"}, "SCORE"), ({"ADDRESS": {"addr1": "1 Main St"}}, "ADDRESS")],
)
def test_member_merge_values_are_checked(client: Client, merge_fields: dict[str, Any], field: str) -> None:
    client.merge_field(name="Score", type="number", tag="SCORE")
    result = client.batch(
        [{"email_address": "a@example.com", "status": "subscribed", "merge_fields": merge_fields}]
    )
    error = result.json()["errors"][0]
    assert error["field"] == field and error["error"] == "Your merge fields were invalid."


def test_required_merge_fields_can_be_skipped_on_request(client: Client) -> None:
    client.merge_field(name="Region", type="text", tag="REGION", required=True)
    member = {"email_address": "a@example.com", "status": "subscribed"}
    assert client.batch([member]).json()["errors"][0]["field"] == "REGION"
    skipped = client.session.post(
        client.lists, json={"members": [member]}, params={"skip_merge_validation": "true"}
    )
    assert skipped.json()["total_created"] == 1


# ---- tags, segments, reads -----------------------------------------------------------------------


def test_tags_are_static_segments(fake: FakeMailchimp, client: Client) -> None:
    fake.add_member("ana@example.com")
    url = f"{client.lists}/members/{md5('ana@example.com')}/tags"
    assert client.session.post(url, json={"tags": [{"name": "vip", "status": "active"}]}).status_code == 204
    segments = client.session.get(f"{client.lists}/segments").json()["segments"]
    assert [(s["name"], s["type"], s["member_count"]) for s in segments] == [("vip", "static", 1)]
    client.session.post(url, json={"tags": [{"name": "vip", "status": "inactive"}]})
    assert fake.state()["lists"][fake.default_list_id]["segments"]["vip"]["members"] == []
    assert fake.member("ana@example.com")["status"] == "subscribed"  # removing a tag is not an unsubscribe


def test_tag_bodies_need_a_status(fake: FakeMailchimp, client: Client) -> None:
    fake.add_member("ana@example.com")
    reply = client.session.post(
        f"{client.lists}/members/{md5('ana@example.com')}/tags", json={"tags": [{"name": "vip"}]}
    )
    assert reply.status_code == 400


def test_static_segment_changes_hold_at_most_500_emails(fake: FakeMailchimp, client: Client) -> None:
    segment = client.session.post(
        f"{client.lists}/segments", json={"name": "High CLV", "static_segment": []}
    ).json()
    url = f"{client.lists}/segments/{segment['id']}"
    emails = [f"u{i}@example.com" for i in range(501)]
    assert client.session.post(url, json={"members_to_add": emails}).status_code == 400
    assert client.session.post(url, json={"members_to_remove": emails}).status_code == 400
    for email in emails[:3]:
        fake.add_member(email)
    result = client.session.post(url, json={"members_to_add": emails[:500]}).json()
    assert result["total_added"] == 3 and result["error_count"] == 497


def test_segment_and_member_names_are_unique_per_audience(client: Client) -> None:
    assert client.session.post(f"{client.lists}/segments", json={"name": "vip"}).status_code == 200
    assert client.session.post(f"{client.lists}/segments", json={"name": "vip"}).status_code == 400


def test_member_reads_page_at_most_1000(fake: FakeMailchimp, client: Client) -> None:
    for n in range(12):
        fake.add_member(f"u{n}@example.com")
    default_page = client.session.get(f"{client.lists}/members").json()
    assert len(default_page["members"]) == 10 and default_page["total_items"] == 12
    assert client.session.get(f"{client.lists}/members", params={"count": 1001}).status_code == 400


def test_unknown_list_and_route_answer_404(fake: FakeMailchimp, client: Client) -> None:
    assert client.session.get(f"{fake.base_url}/lists/nope/members").status_code == 404
    assert client.session.get(f"{fake.base_url}/automations").status_code == 404
    assert client.session.delete(f"{fake.base_url}/lists").status_code == 405


# ---- connections and observation ----------------------------------------------------------------


def test_the_eleventh_concurrent_request_is_throttled(fake: FakeMailchimp) -> None:
    url, auth = f"{fake.base_url}/lists", ("segflow", fake.api_key)
    statuses: list[int] = []

    def call() -> None:
        statuses.append(requests.get(url, auth=auth, timeout=10).status_code)

    with fake.holding_requests():
        workers = [threading.Thread(target=call) for _ in range(10)]
        for worker in workers:
            worker.start()
        assert fake.wait_for_held(10), "ten requests should be in flight"
        eleventh = requests.get(url, auth=auth, timeout=10)
    for worker in workers:
        worker.join(timeout=10)
    assert eleventh.status_code == 429 and eleventh.json()["title"] == "Too Many Requests"
    assert statuses == [200] * 10
    assert requests.get(url, auth=auth, timeout=10).status_code == 200  # slots are released
    stats = fake.stats()
    assert stats["throttled"] == 1 and stats["max_in_flight"] == 11


def test_stats_count_requests_per_endpoint_and_errors(fake: FakeMailchimp, client: Client) -> None:
    client.session.get(f"{fake.base_url}/lists")
    client.batch([{"email_address": "a@example.com", "status": "subscribed"}])
    client.batch([{"email_address": "a@example.com"}])
    stats = fake.stats()
    assert stats["requests"] == {"GET /3.0/lists": 1, "POST /3.0/lists/{list_id}": 2}
    assert stats["responses_by_status"] == {"200": 2, "400": 1} and stats["errors"] == 1
    fake.reset_observations()
    assert fake.stats()["total_requests"] == 0 and fake.exchanges == []


def test_state_is_a_json_snapshot(fake: FakeMailchimp, client: Client) -> None:
    client.merge_field(name="CLV", type="number", tag="CLV")
    client.batch([{"email_address": "Ana@example.com", "status": "subscribed", "merge_fields": {"CLV": 10}}])
    fake.set_member_status("bob@example.com", "unsubscribed")
    snapshot = json.loads(json.dumps(fake.state()))
    members = snapshot["lists"][fake.default_list_id]["members"]
    assert members["ana@example.com"] == {
        "status": "subscribed",
        "merge_fields": {"CLV": 10},
        "tags": [],
        "vip": False,
        "language": "",
    }
    assert members["bob@example.com"]["status"] == "unsubscribed"


def test_more_lists_can_be_seeded(fake: FakeMailchimp, client: Client) -> None:
    second = fake.add_list("second audience")
    fake.add_member("ana@example.com", list_id=second)
    lists = client.session.get(f"{fake.base_url}/lists").json()
    assert lists["total_items"] == 2
    assert (
        fake.member("ana@example.com") is None and fake.member("ana@example.com", list_id=second) is not None
    )
