"""Fault injection answers 429 / 500 / slowly BEFORE any state change, so a client retry is safe."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
import requests
from segflow_local.fakes import FakeHubSpot, FakeMailchimp
from segflow_local.fakes.faults import FaultInjector


def test_same_seed_same_faults() -> None:
    first = FaultInjector(rate=0.3, seed=42)
    second = FaultInjector(rate=0.3, seed=42)
    assert [first.draw() for _ in range(200)] == [second.draw() for _ in range(200)]


def test_rate_and_kinds_are_respected() -> None:
    never = FaultInjector(rate=0.0, seed=1)
    always = FaultInjector(rate=1.0, seed=1, kinds=("500",))
    quarter = FaultInjector(rate=0.25, seed=3)
    sometimes = Counter(quarter.draw() for _ in range(4000))
    assert {never.draw() for _ in range(100)} == {None}
    assert {always.draw() for _ in range(100)} == {"500"}
    assert 0.2 < 1 - sometimes[None] / 4000 < 0.3
    assert set(sometimes) == {None, "429", "500", "slow"}


@pytest.mark.parametrize(("rate", "kinds"), [(1.5, ("500",)), (0.1, ()), (0.1, ("503",))])
def test_invalid_configuration_is_refused(rate: float, kinds: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        FaultInjector(rate=rate, kinds=kinds)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["429", "500"])
def test_mailchimp_faults_happen_before_state_changes(kind: str) -> None:
    with FakeMailchimp(fault_rate=1.0, seed=1, fault_kinds=(kind,)) as fake:
        reply = requests.post(
            f"{fake.base_url}/lists/{fake.default_list_id}",
            json={"members": [{"email_address": "ana@example.com", "status": "subscribed"}]},
            auth=("u", fake.api_key),
        )
        assert reply.status_code == int(kind)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert fake.state()["lists"][fake.default_list_id]["members"] == {}
        assert fake.stats()["faults_injected"] == {kind: 1}


@pytest.mark.parametrize("kind", ["429", "500"])
def test_hubspot_faults_happen_before_state_changes(kind: str) -> None:
    with FakeHubSpot(fault_rate=1.0, seed=1, fault_kinds=(kind,)) as fake:
        fake.add_contact("ana@example.com")
        reply = requests.post(
            f"{fake.base_url}/crm/v3/objects/contacts/gdpr-delete",
            json={"objectId": "ana@example.com", "idProperty": "email"},
            headers={"Authorization": f"Bearer {fake.token}"},
        )
        assert reply.status_code == int(kind)
        assert fake.contact("ana@example.com") is not None and not fake.is_blocklisted("ana@example.com")
    if kind == "429":
        assert reply.json()["errorType"] == "RATE_LIMIT"


def test_slow_faults_still_complete_the_request() -> None:
    with FakeMailchimp(fault_rate=1.0, seed=1, fault_kinds=("slow",), fault_delay_s=0.01) as fake:
        reply = requests.get(f"{fake.base_url}/lists", auth=("u", fake.api_key))
    assert reply.status_code == 200 and fake.stats()["faults_injected"] == {"slow": 1}


def test_retrying_until_success_applies_the_change_exactly_once() -> None:
    email = "ana@example.com"
    kinds = ("429", "500")
    # a seed whose first request is faulted, so the retry path is exercised
    seed = next(s for s in range(100) if FaultInjector(0.5, s, kinds).draw() is not None)
    with FakeMailchimp(fault_rate=0.5, seed=seed, fault_kinds=kinds) as fake, requests.Session() as session:
        session.auth = ("u", fake.api_key)
        url = (
            f"{fake.base_url}/lists/{fake.default_list_id}/members/{hashlib.md5(email.encode()).hexdigest()}"
        )
        statuses = []
        for _ in range(50):
            reply = session.put(
                url,
                json={
                    "email_address": email,
                    "status_if_new": "subscribed",
                    "merge_fields": {"FNAME": "Ana"},
                },
            )
            statuses.append(reply.status_code)
            if reply.ok:
                break
        tags_url = f"{url}/tags"
        for _ in range(50):
            if (
                session.post(tags_url, json={"tags": [{"name": "vip", "status": "active"}]}).status_code
                == 204
            ):
                break
        state = fake.state()["lists"][fake.default_list_id]
    assert statuses[-1] == 200 and len(statuses) > 1
    assert list(state["members"]) == [email]
    assert state["segments"]["vip"]["members"] == [email]
    assert sum(fake.stats()["faults_injected"].values()) >= 1
