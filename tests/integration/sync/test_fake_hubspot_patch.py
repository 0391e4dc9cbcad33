"""The fake HubSpot's PATCH /crm/v3/properties/{objectType}/{propertyName}: options replace the list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from segflow_local.fakes import FakeHubSpot

ROUTE = "/crm/v3/properties/contacts"


@pytest.fixture
def session() -> Iterator[tuple[FakeHubSpot, requests.Session]]:
    with FakeHubSpot() as fake, requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {fake.token}"
        assert http.post(f"{fake.base_url}{ROUTE}/groups", json={"name": "segflow", "label": "segflow"}).ok
        tier = {
            "name": "tier",
            "label": "Tier",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "segflow",
            "options": [{"label": "Gold", "value": "gold", "hidden": False, "displayOrder": 0}],
        }
        assert http.post(f"{fake.base_url}{ROUTE}", json=tier).status_code == 201
        yield fake, http


def option(value: str, order: int) -> dict[str, object]:
    return {"label": value.title(), "value": value, "hidden": False, "displayOrder": order}


def test_patch_replaces_options_and_other_given_fields(session: tuple[FakeHubSpot, requests.Session]) -> None:
    fake, http = session
    answer = http.patch(
        f"{fake.base_url}{ROUTE}/tier",
        json={"options": [option("gold", 0), option("silver", 1)], "label": "Customer tier"},
    )
    assert answer.status_code == 200 and answer.json()["label"] == "Customer tier"
    assert fake.state()["properties"]["tier"]["options"] == ["gold", "silver"]
    upsert = {"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {"tier": "silver"}}]}
    assert http.post(f"{fake.base_url}/crm/v3/objects/contacts/batch/upsert", json=upsert).status_code == 200


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("missing", {"label": "x"}, 404),
        ("email", {"label": "Mail"}, 400),  # HubSpot-defined properties are read-only
        ("tier", {"options": [option("gold", 0), option("gold", 1)]}, 400),
        ("tier", {"options": []}, 400),
        ("tier", {"type": "number"}, 400),  # select is not a field type of a number
        ("tier", {"groupName": "nope"}, 400),
        ("tier", {"unknown": True}, 400),
    ],
)
def test_patch_refusals(
    session: tuple[FakeHubSpot, requests.Session], name: str, body: dict, status: int
) -> None:
    fake, http = session
    assert http.patch(f"{fake.base_url}{ROUTE}/{name}", json=body).status_code == status
    assert fake.state()["properties"]["tier"]["options"] == ["gold"]
