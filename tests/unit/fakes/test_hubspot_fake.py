"""Behaviour of the fake HubSpot: the rules of the real API that sync code must survive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from segflow_local.fakes import FakeHubSpot

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES = "/crm/v3/properties/contacts"
LISTS = "/crm/v3/lists"
STATUSES = "/communication-preferences/v4/statuses"
DAY = 86_400.0


class FakeClock:
    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Client:
    def __init__(self, fake: FakeHubSpot) -> None:
        self.base = fake.base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {fake.token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.base}{path}", **kwargs)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=body)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(f"{self.base}{path}", json=body)

    def upsert(self, *rows: tuple[str, dict[str, str]]) -> requests.Response:
        return self.post(
            UPSERT, {"inputs": [{"id": e, "idProperty": "email", "properties": p} for e, p in rows]}
        )


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as started:
        yield started


@pytest.fixture
def client(fake: FakeHubSpot) -> Iterator[Client]:
    wrapper = Client(fake)
    yield wrapper
    wrapper.session.close()


def _tier_property(client: Client) -> None:
    client.post(f"{PROPERTIES}/groups", {"name": "segflow", "label": "segflow"})
    reply = client.post(
        PROPERTIES,
        {
            "name": "segflow_tier",
            "label": "Tier",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "segflow",
            "options": [
                {"label": "Gold", "value": "gold", "hidden": False},
                {"label": "Silver", "value": "silver", "hidden": False},
            ],
        },
    )
    assert reply.status_code == 201


# ---- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic cGF0Og=="])
def test_requests_without_the_private_app_token_are_rejected(fake: FakeHubSpot, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    reply = requests.post(
        f"{fake.base_url}{UPSERT}",
        headers=headers,
        json={"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {}}]},
    )
    assert reply.status_code == 401
    assert reply.json()["category"] == "INVALID_AUTHENTICATION"
    assert fake.state()["contacts"] == {}
    assert fake.token not in json.dumps(fake.exchanges)


# ---- batch upsert ----------------------------------------------------------------------------------


def test_upsert_creates_then_updates_by_email(fake: FakeHubSpot, client: Client) -> None:
    created = client.upsert(("Ana@Example.com", {"firstname": "Ana"}))
    assert created.status_code == 200 and created.json()["results"][0]["new"] is True
    updated = client.upsert(("ana@example.com", {"lastname": "Lopez"})).json()["results"][0]
    assert updated["new"] is False and updated["id"] == created.json()["results"][0]["id"]
    assert fake.state()["contacts"]["ana@example.com"]["properties"]["firstname"] == "Ana"


def test_batches_hold_at_most_100_inputs(fake: FakeHubSpot, client: Client) -> None:
    rows = [(f"u{i}@example.com", {}) for i in range(101)]
    assert client.upsert(*rows).status_code == 400
    assert fake.state()["contacts"] == {}
    assert client.upsert(*rows[:100]).status_code == 200
    read = client.post(
        "/crm/v3/objects/contacts/batch/read",
        {"idProperty": "email", "inputs": [{"id": e} for e, _ in rows], "properties": []},
    )
    assert read.status_code == 400


def test_duplicate_emails_in_one_batch_fail_the_whole_batch(fake: FakeHubSpot, client: Client) -> None:
    reply = client.upsert(("ana@example.com", {}), ("bob@example.com", {}), ("ANA@example.com", {}))
    assert reply.status_code == 400 and "Duplicate IDs" in reply.json()["message"]
    assert fake.state()["contacts"] == {}


def test_unknown_properties_and_invalid_options_fail_per_input_with_207(
    fake: FakeHubSpot, client: Client
) -> None:
    _tier_property(client)
    reply = client.upsert(
        ("ana@example.com", {"segflow_tier": "gold"}),
        ("bob@example.com", {"segflow_tier": "platinum"}),
        ("cleo@example.com", {"segflow_score": "7"}),
        ("dan@example.com", {"hs_object_id": "1"}),
    )
    assert reply.status_code == 207
    body = reply.json()
    assert body["numErrors"] == 3 and [r["properties"]["email"] for r in body["results"]] == [
        "ana@example.com"
    ]
    by_id = {e["context"]["ids"][0]: e["errors"][0]["code"] for e in body["errors"]}
    assert by_id == {
        "bob@example.com": "INVALID_OPTION",
        "cleo@example.com": "PROPERTY_DOESNT_EXIST",
        "dan@example.com": "READ_ONLY_VALUE",
    }
    assert sorted(fake.state()["contacts"]) == ["ana@example.com"]


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {}}], "mode": "fast"},
        {"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {}, "associations": []}]},
        {"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {"firstname": 7}}]},
        {"inputs": [{"idProperty": "email", "properties": {}}]},
        {"inputs": [{"id": "a@example.com", "idProperty": "email"}]},
        {},
    ],
)
def test_request_shapes_are_validated_strictly(
    fake: FakeHubSpot, client: Client, body: dict[str, Any]
) -> None:
    reply = client.post(UPSERT, body)
    assert reply.status_code == 400
    assert reply.json()["category"] == "VALIDATION_ERROR" and reply.json()["errors"]
    assert fake.state()["contacts"] == {}


def test_upsert_requires_id_property_email(client: Client) -> None:
    reply = client.post(UPSERT, {"inputs": [{"id": "a@example.com", "properties": {}}]})
    assert reply.status_code == 400


# ---- properties, groups, lists ---------------------------------------------------------------------


def test_groups_and_properties_are_unique(client: Client) -> None:
    _tier_property(client)
    assert client.post(f"{PROPERTIES}/groups", {"name": "segflow", "label": "x"}).status_code == 409
    duplicate = client.post(
        PROPERTIES,
        {"name": "segflow_tier", "label": "T", "type": "string", "fieldType": "text", "groupName": "segflow"},
    )
    assert duplicate.status_code == 409 and duplicate.json()["category"] == "CONFLICT"


@pytest.mark.parametrize(
    "definition",
    [
        {"name": "Segflow Tier", "type": "string", "fieldType": "text", "groupName": "segflow"},  # bad name
        {"name": "segflow_x", "type": "string", "fieldType": "text", "groupName": "missing"},  # no such group
        {
            "name": "segflow_x",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "segflow",
        },  # no options
        {"name": "segflow_x", "type": "number", "fieldType": "select", "groupName": "segflow"},  # bad pairing
    ],
)
def test_property_definitions_are_checked(client: Client, definition: dict[str, Any]) -> None:
    client.post(f"{PROPERTIES}/groups", {"name": "segflow", "label": "segflow"})
    assert client.post(PROPERTIES, {"label": "X", **definition}).status_code == 400


def test_lists_have_unique_names_and_are_found_by_name(client: Client) -> None:
    body = {"name": "segflow: VIP", "objectTypeId": "0-1", "processingType": "MANUAL"}
    list_id = client.post(LISTS, body).json()["list"]["listId"]
    assert client.post(LISTS, {**body, "name": "SEGFLOW: vip"}).status_code == 409
    assert client.get(f"{LISTS}/object-type-id/0-1/name/segflow: VIP").json()["list"]["listId"] == list_id
    assert client.get(f"{LISTS}/object-type-id/0-1/name/other").status_code == 404


def test_list_memberships_take_record_ids(fake: FakeHubSpot, client: Client) -> None:
    ana = fake.add_contact("ana@example.com")
    list_id = client.post(LISTS, {"name": "vip", "objectTypeId": "0-1", "processingType": "MANUAL"}).json()[
        "list"
    ]["listId"]
    assert client.put(f"{LISTS}/{list_id}/memberships/add", [ana, "404"]).json() == {
        "recordsIdsAdded": [ana],
        "recordIdsMissing": ["404"],
    }
    assert client.put(f"{LISTS}/{list_id}/memberships/add", [ana]).json()["recordsIdsAdded"] == []
    assert fake.state()["lists"]["vip"]["members"] == ["ana@example.com"]
    assert client.put(f"{LISTS}/{list_id}/memberships/add", ["ana@example.com", 1]).status_code == 400
    removed = client.put(f"{LISTS}/{list_id}/memberships/remove", [ana]).json()
    assert removed == {"recordIdsRemoved": [ana], "recordIdsMissing": []}
    assert fake.contact("ana@example.com") is not None  # leaving a list does not touch the contact


def test_dynamic_lists_cannot_be_edited_by_hand(fake: FakeHubSpot, client: Client) -> None:
    branch = {"filterBranchType": "OR", "filterBranches": [], "filters": [], "filterBranchOperator": "OR"}
    created = client.post(
        LISTS, {"name": "dyn", "objectTypeId": "0-1", "processingType": "DYNAMIC", "filterBranch": branch}
    )
    list_id = created.json()["list"]["listId"]
    assert (
        client.put(f"{LISTS}/{list_id}/memberships/add", [fake.add_contact("a@example.com")]).status_code
        == 400
    )


def test_membership_pages_follow_the_after_cursor(fake: FakeHubSpot, client: Client) -> None:
    ids = [fake.add_contact(f"u{i}@example.com") for i in range(5)]
    list_id = client.post(LISTS, {"name": "all", "objectTypeId": "0-1", "processingType": "MANUAL"}).json()[
        "list"
    ]["listId"]
    client.put(f"{LISTS}/{list_id}/memberships/add", ids)
    seen, params = [], {"limit": 2}
    while True:
        page = client.get(f"{LISTS}/{list_id}/memberships", params=params).json()
        seen += [r["recordId"] for r in page["results"]]
        if "paging" not in page:
            break
        params = {"limit": 2, "after": page["paging"]["next"]["after"]}
    assert seen == ids


# ---- GDPR delete and subscriptions ----------------------------------------------------------------


def test_gdpr_delete_erases_and_blocklists_the_email(fake: FakeHubSpot, client: Client) -> None:
    ana = fake.add_contact("ana@example.com", {"firstname": "Ana"})
    list_id = client.post(LISTS, {"name": "vip", "objectTypeId": "0-1", "processingType": "MANUAL"}).json()[
        "list"
    ]["listId"]
    client.put(f"{LISTS}/{list_id}/memberships/add", [ana])
    deleted = client.post(
        "/crm/v3/objects/contacts/gdpr-delete", {"objectId": "Ana@example.com", "idProperty": "email"}
    )
    assert deleted.status_code == 204
    assert fake.contact("ana@example.com") is None and fake.is_blocklisted("ana@example.com")
    assert fake.state()["lists"]["vip"]["members"] == []
    assert "ana@example.com" not in json.dumps(fake.state())

    again = client.upsert(("ana@example.com", {"firstname": "Ana"}), ("bob@example.com", {}))
    assert again.status_code == 207 and again.json()["errors"][0]["errors"][0]["code"] == "GDPR_BLOCKLISTED"
    assert sorted(fake.state()["contacts"]) == ["bob@example.com"]
    resubscribe = {
        "statusState": "SUBSCRIBED",
        "channel": "EMAIL",
        "subscriptionId": 1,
        "legalBasis": "CONSENT_WITH_NOTICE",
    }
    assert client.post(f"{STATUSES}/ana@example.com", resubscribe).status_code == 400


def test_gdpr_delete_by_unknown_record_id_is_404(client: Client) -> None:
    assert client.post("/crm/v3/objects/contacts/gdpr-delete", {"objectId": "12345"}).status_code == 404


def test_unsubscribed_contacts_stay_unsubscribed(fake: FakeHubSpot, client: Client) -> None:
    fake.set_subscription_status("ana@example.com", "UNSUBSCRIBED")
    body = {
        "statusState": "SUBSCRIBED",
        "channel": "EMAIL",
        "subscriptionId": 1,
        "legalBasis": "CONSENT_WITH_NOTICE",
    }
    refused = client.post(f"{STATUSES}/ana@example.com", body)
    assert refused.status_code == 400 and fake.subscription_status("ana@example.com") == "UNSUBSCRIBED"
    read = client.get(f"{STATUSES}/ana@example.com", params={"channel": "EMAIL"}).json()
    assert read["results"][0]["status"] == "UNSUBSCRIBED"
    unsubscribe = {"statusState": "UNSUBSCRIBED", "channel": "EMAIL", "subscriptionId": 1}
    assert client.post(f"{STATUSES}/ana@example.com", unsubscribe).json()["results"][0][
        "setStatusSuccessReason"
    ] == ("NO_STATUS_CHANGE")


def test_subscribing_needs_a_legal_basis_and_a_known_subscription(fake: FakeHubSpot, client: Client) -> None:
    body = {"statusState": "SUBSCRIBED", "channel": "EMAIL", "subscriptionId": 1}
    assert client.post(f"{STATUSES}/bob@example.com", body).status_code == 400
    assert (
        client.post(
            f"{STATUSES}/bob@example.com", {**body, "legalBasis": "CONSENT_WITH_NOTICE", "subscriptionId": 99}
        ).status_code
        == 400
    )
    ok = client.post(f"{STATUSES}/bob@example.com", {**body, "legalBasis": "CONSENT_WITH_NOTICE"})
    assert ok.json()["results"][0]["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"
    assert fake.subscription_status("bob@example.com") == "SUBSCRIBED"


def test_resubscribe_can_be_allowed_explicitly() -> None:
    with FakeHubSpot(allow_resubscribe=True) as fake:
        fake.set_subscription_status("ana@example.com", "UNSUBSCRIBED")
        body = {
            "statusState": "SUBSCRIBED",
            "channel": "EMAIL",
            "subscriptionId": 1,
            "legalBasis": "CONSENT_WITH_NOTICE",
        }
        reply = Client(fake).post(f"{STATUSES}/ana@example.com", body)
    assert reply.json()["results"][0]["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"


# ---- rate limits ---------------------------------------------------------------------------------


def test_ten_second_rolling_window_with_an_injected_clock() -> None:
    clock = FakeClock()
    with FakeHubSpot(rate_limit=5, clock=clock) as fake:
        client = Client(fake)
        replies = [client.get(PROPERTIES) for _ in range(5)]
        assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in replies] == ["4", "3", "2", "1", "0"]
        throttled = client.get(PROPERTIES)
        clock.advance(9.9)
        still_throttled = client.get(PROPERTIES)
        clock.advance(0.2)
        recovered = client.get(PROPERTIES)
    assert throttled.status_code == 429 and still_throttled.status_code == 429
    body = throttled.json()
    assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["correlationId"] and body["requestId"]
    assert throttled.headers["X-HubSpot-RateLimit-Max"] == "5"
    assert throttled.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert recovered.status_code == 200
    assert fake.stats()["throttled"] == 2


def test_window_is_rolling_not_fixed() -> None:
    clock = FakeClock()
    with FakeHubSpot(rate_limit=4, clock=clock) as fake:
        client = Client(fake)
        for _ in range(2):
            client.get(PROPERTIES)
        clock.advance(6)
        for _ in range(2):
            client.get(PROPERTIES)
        clock.advance(6)  # the first two left the window, the last two have not
        statuses = [client.get(PROPERTIES).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize(
    ("tier", "limit"), [("free", "100"), ("starter", "100"), ("professional", "190"), ("enterprise", "190")]
)
def test_tier_sets_the_ten_second_ceiling(tier: Any, limit: str) -> None:
    with FakeHubSpot(tier=tier) as fake:
        reply = Client(fake).get(PROPERTIES)
    assert reply.headers["X-HubSpot-RateLimit-Max"] == limit


def test_daily_policy_with_an_injected_clock() -> None:
    clock = FakeClock(start=20_000 * DAY + 3_600)
    with FakeHubSpot(daily_limit=3, clock=clock) as fake:
        client = Client(fake)
        statuses = [client.get(PROPERTIES).status_code for _ in range(3)]
        clock.advance(60)
        exhausted = client.get(PROPERTIES)
        clock.advance(DAY)
        next_day = client.get(PROPERTIES)
    assert statuses == [200, 200, 200]
    assert exhausted.status_code == 429 and exhausted.json()["policyName"] == "DAILY"
    assert exhausted.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert next_day.status_code == 200 and next_day.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "2"


def test_throttled_requests_change_nothing() -> None:
    clock = FakeClock()
    with FakeHubSpot(rate_limit=1, clock=clock) as fake:
        client = Client(fake)
        client.get(PROPERTIES)
        assert client.upsert(("ana@example.com", {})).status_code == 429
        assert fake.state()["contacts"] == {}
