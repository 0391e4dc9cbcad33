"""The fake HubSpot speaks the published CRM v3 / communication preferences v4 contracts: requests a
client makes and the responses the fake gives are validated against the vendor's OpenAPI files."""

from __future__ import annotations

import requests
from segflow_local.fakes import FakeHubSpot

from tests.contract.contract_recorder import HUBSPOT_HOST, HUBSPOT_SPECS, UNDOCUMENTED, SpecBook

CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = "/crm/v3/properties/contacts"
LISTS = "/crm/v3/lists"
PREFS = "/communication-preferences/v4"


def _upsert(*rows: tuple[str, dict[str, str]]) -> dict[str, object]:
    return {"inputs": [{"id": email, "idProperty": "email", "properties": props} for email, props in rows]}


def test_sync_flow_requests_and_responses_match_the_spec(
    checked_hubspot: FakeHubSpot, hubspot_session: requests.Session
) -> None:
    fake, s, base = checked_hubspot, hubspot_session, checked_hubspot.base_url

    assert (
        s.post(f"{base}{PROPERTIES}/groups", json={"name": "segflow", "label": "segflow"}).status_code == 201
    )
    assert s.get(f"{base}{PROPERTIES}/groups/segflow").json()["label"] == "segflow"
    assert "segflow" in {g["name"] for g in s.get(f"{base}{PROPERTIES}/groups").json()["results"]}
    tier = {
        "name": "segflow_tier",
        "label": "Tier",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "segflow",
        "options": [{"label": "Gold", "value": "gold", "hidden": False, "displayOrder": 0}],
    }
    assert s.post(f"{base}{PROPERTIES}", json=tier).status_code == 201
    clv = {
        "name": "segflow_clv",
        "label": "CLV",
        "type": "number",
        "fieldType": "number",
        "groupName": "segflow",
    }
    assert s.post(f"{base}{PROPERTIES}", json=clv).status_code == 201
    names = {p["name"] for p in s.get(f"{base}{PROPERTIES}").json()["results"]}
    assert {"email", "segflow_tier", "segflow_clv"} <= names

    first = s.post(
        f"{base}{CONTACTS}/batch/upsert",
        json=_upsert(
            ("ana@example.com", {"segflow_tier": "gold", "segflow_clv": "120.5"}),
            ("bob@example.com", {"firstname": "Bob"}),
        ),
    )
    assert first.status_code == 200 and all(r["new"] for r in first.json()["results"])
    partial = s.post(
        f"{base}{CONTACTS}/batch/upsert",
        json=_upsert(
            ("ana@example.com", {"segflow_tier": "platinum"}),
            ("cleo@example.com", {"lastname": "Lee"}),
        ),
    )
    assert partial.status_code == 207 and partial.json()["numErrors"] == 1
    read = s.post(
        f"{base}{CONTACTS}/batch/read",
        json={
            "idProperty": "email",
            "inputs": [{"id": "ana@example.com"}, {"id": "nobody@example.com"}],
            "properties": ["segflow_tier"],
            "propertiesWithHistory": [],
        },
    )
    assert read.status_code == 207 and read.json()["results"][0]["properties"]["segflow_tier"] == "gold"
    ana_id = read.json()["results"][0]["id"]
    assert s.get(f"{base}{CONTACTS}/{ana_id}", params={"properties": "segflow_tier"}).status_code == 200

    created = s.post(
        f"{base}{LISTS}", json={"name": "segflow: VIP", "objectTypeId": "0-1", "processingType": "MANUAL"}
    )
    list_id = created.json()["list"]["listId"]
    assert s.get(f"{base}{LISTS}/object-type-id/0-1/name/segflow: VIP").json()["list"]["listId"] == list_id
    assert s.get(f"{base}{LISTS}/{list_id}").status_code == 200
    assert (
        s.post(f"{base}{LISTS}/search", json={"query": "segflow", "offset": 0, "count": 10}).json()["total"]
        == 1
    )
    added = s.put(f"{base}{LISTS}/{list_id}/memberships/add", json=[ana_id, "999999"]).json()
    assert added == {"recordsIdsAdded": [ana_id], "recordIdsMissing": ["999999"]}
    assert s.get(f"{base}{LISTS}/{list_id}/memberships", params={"limit": 10}).json()["total"] == 1
    removed = s.put(f"{base}{LISTS}/{list_id}/memberships/remove", json=[ana_id]).json()
    assert removed["recordIdsRemoved"] == [ana_id]

    definitions = s.get(f"{base}{PREFS}/definitions").json()["results"]
    subscription_id = int(definitions[0]["id"])
    update = {
        "statusState": "SUBSCRIBED",
        "channel": "EMAIL",
        "subscriptionId": subscription_id,
        "legalBasis": "CONSENT_WITH_NOTICE",
        "legalBasisExplanation": "signed up at checkout",
    }
    assert s.post(f"{base}{PREFS}/statuses/bob@example.com", json=update).status_code == 200
    statuses = s.get(f"{base}{PREFS}/statuses/bob@example.com", params={"channel": "EMAIL"}).json()["results"]
    assert statuses[0]["status"] == "SUBSCRIBED"

    assert (
        s.post(
            f"{base}{CONTACTS}/gdpr-delete", json={"objectId": "bob@example.com", "idProperty": "email"}
        ).status_code
        == 204
    )
    assert len(fake.exchanges) == 21  # every one validated against the specs at teardown


def test_error_and_rate_limit_responses_match_the_spec(spec_book: SpecBook) -> None:
    ticks = [1_000.0]
    with FakeHubSpot(rate_limit=7, clock=lambda: ticks[0]) as fake, requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {fake.token}"
        base = fake.base_url
        fake.set_subscription_status("opted@example.com", "UNSUBSCRIBED")
        group = {"name": "segflow", "label": "segflow"}
        replies = [
            s.post(f"{base}{PROPERTIES}/groups", json=group),
            s.post(f"{base}{PROPERTIES}/groups", json=group),  # 409 duplicate
            s.post(
                f"{base}{CONTACTS}/batch/upsert", json=_upsert(("a@example.com", {}), ("A@example.com", {}))
            ),
            s.post(f"{base}{CONTACTS}/batch/upsert", json={"inputs": [], "extra": True}),
            s.get(f"{base}{LISTS}/object-type-id/0-1/name/missing"),
            s.post(
                f"{base}{PREFS}/statuses/opted@example.com",
                json={
                    "statusState": "SUBSCRIBED",
                    "channel": "EMAIL",
                    "subscriptionId": 1,
                    "legalBasis": "CONSENT_WITH_NOTICE",
                },
            ),
            requests.get(f"{base}{PROPERTIES}", headers={"Authorization": "Bearer wrong"}),
            s.get(f"{base}{PROPERTIES}"),
            s.get(f"{base}{PROPERTIES}"),  # 8th authenticated request in the window: 429
        ]
    assert [r.status_code for r in replies] == [201, 409, 400, 400, 404, 400, 401, 200, 429]
    assert replies[-1].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    spec_book.assert_valid("hubspot", fake.exchanges, responses_only=True)


def test_every_fake_route_is_an_operation_of_a_spec(spec_book: SpecBook) -> None:
    from openapi_core.templating.paths.finders import APICallPathFinder

    samples = {
        "{object_type}": "contacts",
        "{contact_id}": "101",
        "{group_name}": "segflow",
        "{property_name}": "segflow_tier",
        "{object_type_id}": "0-1",
        "{list_name}": "vip",
        "{list_id}": "7",
        "{subscriber}": "ana@example.com",
    }
    for route in FakeHubSpot().routes():
        path = route.template
        for placeholder, value in samples.items():
            path = path.replace(placeholder, value)
        if any(m == route.method and p.match(path) for m, p in UNDOCUMENTED):
            continue
        filename = next(f for prefix, f in HUBSPOT_SPECS if path.startswith(prefix))
        finder = APICallPathFinder(spec_book.app(filename).spec)
        url = f"{HUBSPOT_HOST}{path}" + ("/" if path == LISTS else "")
        assert finder.find(route.method.lower(), url).operation is not None, route.endpoint


def test_documented_rules_flag_oversized_and_duplicate_batches(spec_book: SpecBook) -> None:
    with FakeHubSpot() as fake:
        auth = {"Authorization": f"Bearer {fake.token}"}
        oversized = _upsert(*((f"u{i}@example.com", {}) for i in range(101)))
        duplicated = _upsert(("a@example.com", {}), ("A@EXAMPLE.com", {}))
        for body in (oversized, duplicated):
            assert (
                requests.post(f"{fake.base_url}{CONTACTS}/batch/upsert", json=body, headers=auth).status_code
                == 400
            )
    problems = spec_book.problems("hubspot", fake.exchanges)
    assert any("101 inputs; at most 100" in p for p in problems)
    assert any("repeats an id" in p for p in problems)
    assert all("documented rule" in p for p in problems)  # the spec copy itself accepts both


def test_batch_status_read_matches_the_single_reads_and_reports_bad_inputs(
    checked_hubspot: FakeHubSpot, hubspot_session: requests.Session
) -> None:
    fake, s, base = checked_hubspot, hubspot_session, checked_hubspot.base_url
    fake.set_subscription_status("opted@example.com", "UNSUBSCRIBED")
    read = f"{base}{PREFS}/statuses/batch/read"
    answer = s.post(read, params={"channel": "EMAIL"},
                    json={"inputs": ["Opted@example.com", "new@example.com", "opted@example.com"]})
    assert answer.status_code == 200
    by_subscriber = {r["subscriberIdString"]: r["statuses"] for r in answer.json()["results"]}
    assert list(by_subscriber) == ["opted@example.com", "new@example.com"]
    single = s.get(f"{base}{PREFS}/statuses/opted@example.com", params={"channel": "EMAIL"}).json()["results"]
    assert by_subscriber["opted@example.com"] == single and single[0]["status"] == "UNSUBSCRIBED"
    assert [x["status"] for x in by_subscriber["new@example.com"]] == ["NOT_SPECIFIED"]

    partial = s.post(read, params={"channel": "EMAIL"}, json={"inputs": ["new@example.com", "nobody"]})
    assert partial.status_code == 207 and partial.json()["numErrors"] == 1
    assert partial.json()["errors"][0]["context"] == {"ids": ["nobody"]}
    assert [r["subscriberIdString"] for r in partial.json()["results"]] == ["new@example.com"]


def test_batch_status_read_refuses_what_the_spec_and_the_batch_limit_refuse(spec_book: SpecBook) -> None:
    with FakeHubSpot() as fake, requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {fake.token}"
        read = f"{fake.base_url}{PREFS}/statuses/batch/read"
        replies = [
            s.post(read, json={"inputs": ["new@example.com"]}),  # no channel
            s.post(read, params={"channel": "EMAIL"}, json={"inputs": [f"u{i}@example.com" for i in range(101)]}),
            s.post(read, params={"channel": "EMAIL"}, json={"inputs": [{"id": "a@example.com"}]}),
        ]
    assert [r.status_code for r in replies] == [400, 400, 400]
    problems = spec_book.problems("hubspot", fake.exchanges)
    assert len(problems) == 3 and any("101 inputs; at most 100" in p for p in problems)
    spec_book.assert_valid("hubspot", fake.exchanges, responses_only=True)
