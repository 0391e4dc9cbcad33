"""ConsentService with in-memory ports: ledger appends, evaluation, events, erasure, tombstones."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from segflow.consent.erasure import DestinationCall, ErasureRequest, tombstone
from segflow.consent.erasure_adapters import NoVersions, StoreErasureBackend, StoreItemDeleter
from segflow.consent.models import ConsentRecord
from segflow.consent.service import ConsentPorts, ConsentService, ErasureIncomplete
from segflow.consent.store import (
    ErasureGate,
    InMemoryIdentities,
    InMemoryLedger,
    InMemoryTombstones,
    LedgerArchive,
    ledger_pk_for_email,
)
from segflow.events.bus import InMemoryPublisher
from segflow.store.customers import InMemoryCustomerItems
from segflow.store.objects import LocalObjectStore
from segflow.store.parquet import read_parquet_bytes, to_parquet_bytes

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
SALT = "a-test-salt-of-sufficient-length"
ANN = "ann@example.com"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


class FakeEraser:
    def __init__(self, members: set[str], failing: bool = False) -> None:
        self.members, self.failing, self.calls = members, failing, []

    def erase(self, call: DestinationCall) -> bool:
        self.calls.append(call)
        if self.failing:
            raise ConnectionError("destination down")
        present = call.member_ref in self.members
        self.members.discard(call.member_ref)
        return present


class World:
    def __init__(self, root: Path) -> None:
        self.items = InMemoryCustomerItems()
        self.table = self.items.items  # one (pk, sk) table, as in DynamoDB
        self.identities = InMemoryIdentities(self.table)
        self.ledger = InMemoryLedger(self.table)
        self.tombstones = InMemoryTombstones(self.table)
        self.objects = LocalObjectStore(root)
        self.publisher = InMemoryPublisher()
        self.mailchimp = FakeEraser(set())
        self.hubspot = FakeEraser(set())
        self.backend = StoreErasureBackend(
            items=self.items, resolve=self.identities.resolve, ledger=self.ledger, objects=self.objects,
            versions=NoVersions(self.objects), tombstones=self.tombstones, item_deleter=StoreItemDeleter(self.items),
            destinations=lambda: {"mailchimp": self.mailchimp, "hubspot": self.hubspot}, mailchimp_list_id="aud1",
        )
        self.ports = ConsentPorts(
            objects=self.objects, items=self.items, identities=self.identities, ledger=self.ledger,
            tombstones=self.tombstones, publisher=self.publisher, erasure=self.backend, salt=lambda: SALT,
            archive=LedgerArchive(self.objects), clock=Clock(),
        )
        self.service = ConsentService(self.ports, now=lambda: NOW)

    def customer(self, customer_id: str, email: str | None, country: str = "DE", **fields: Any) -> None:
        profile = {"customer_id": customer_id, "email": email, "country": country,
                   "signup_date": "2026-06-01T00:00:00+00:00", **fields}
        self.table[(f"CUST#{customer_id}", "PROFILE")] = {"pk": f"CUST#{customer_id}", "sk": "PROFILE", **profile}
        self.identities.add("id", customer_id, customer_id)
        if email:
            self.identities.add("email", email, customer_id)

    def consent(self, customer_id: str) -> dict[str, Any]:
        return self.table[(f"CUST#{customer_id}", "CONSENT#email")]

    def events(self, detail_type: str) -> list[dict[str, Any]]:
        return [e["detail"] for e in self.publisher.events if e["detail-type"] == detail_type]


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path / "bucket")


def opt_in(email: str | None = ANN, days_ago: float = 30, **fields: Any) -> ConsentRecord:
    fields.setdefault("lawful_basis", "consent")
    return ConsentRecord(email=email, status="opted_in", timestamp=NOW - timedelta(days=days_ago),
                         source=fields.pop("source", "signup_form"), **fields)


def opt_out(email: str | None = ANN, days_ago: float = 1, **fields: Any) -> ConsentRecord:
    return ConsentRecord(email=email, status="opted_out", timestamp=NOW - timedelta(days=days_ago),
                         source=fields.pop("source", "preference_center"), **fields)


def event(detail_type: str, detail: dict[str, Any], source: str = "segflow.test", event_id: str = "e1") -> dict:
    return {"id": event_id, "source": source, "detail-type": detail_type, "detail": detail}


def test_records_are_appended_once_and_the_customer_evaluated(world):
    world.customer("C1", ANN)
    first = world.service.submit([opt_in()], trigger="test")
    assert first.appended == 1 and first.changed == ["C1"]
    item = world.consent("C1")
    assert item["eligible"] and item["eligibility_basis"] == "explicit_opt_in" and item["consent_region"] == "EU_EEA"
    assert world.events("ConsentChanged") == [
        {"records": [], "changed": {"count": 1, "customer_ids": ["C1"], "customer_ids_key": None, "everyone": False},
         "reason": "test"}]
    stored_at = item["evaluated_at"]
    again = world.service.submit([opt_in()], trigger="test")  # a replay
    assert again.appended == 0 and again.changed == []
    assert world.consent("C1")["evaluated_at"] == stored_at and len(world.events("ConsentChanged")) == 1
    archived = list(world.objects.list("ledger/"))
    assert len(archived) == 1 and ANN in world.objects.get_bytes(archived[0].key).decode()


def test_consent_before_the_customer_and_id_only_records(world):
    world.service.submit([opt_in("late@example.com")], trigger="test")
    assert (ledger_pk_for_email("late@example.com"), ) == tuple({pk for pk, _ in world.table if pk.startswith("CONSENT#")})
    world.customer("C3", "late@example.com", country="GB")
    outcome = world.service.evaluate(["C3"], trigger="DataIngested:customers")
    assert outcome.changed == ["C3"] and world.consent("C3")["consent_status"] == "opted_in"
    # A record naming only the customer id lands in the ledger of that customer's email.
    world.service.submit([ConsentRecord(customer_id="C3", status="opted_out", timestamp=NOW, source="import")],
                         trigger="test")
    assert world.consent("C3")["consent_status"] == "opted_out"
    assert len(world.ledger.records([ledger_pk_for_email("late@example.com")])[ledger_pk_for_email("late@example.com")]) == 2


def test_an_item_is_rewritten_only_when_it_changes_and_never_by_an_older_evaluation(world):
    world.customer("C1", ANN)
    world.service.submit([opt_in()], trigger="test")
    assert world.service.evaluate(["C1"], trigger="again").changed == []
    world.service.submit([opt_out()], trigger="test")
    assert world.consent("C1")["consent_status"] == "opted_out"
    newer = world.consent("C1")["evaluated_at"]
    # An evaluation stamped before the stored one loses, whatever it computed.
    world.ports.clock = lambda: datetime(2020, 1, 1, tzinfo=timezone.utc)
    world.ledger.table.pop(next(k for k in world.table if k[0].startswith("CONSENT#") and "opted_out" in str(world.table[k])))
    assert world.service.evaluate(["C1"], trigger="late").changed == []
    assert world.consent("C1")["evaluated_at"] == newer and world.consent("C1")["consent_status"] == "opted_out"


def test_handle_routes_each_trigger(world):
    world.customer("C1", ANN, country="US")
    world.customer("C2", "bob@example.com", country="US")
    scored = world.service.handle(event("ProfilesScored", {
        "run_id": "r", "mode": "all", "as_of": NOW.isoformat(), "model_version": None, "customers_scored": 2,
        "changed": {"count": 2, "everyone": True}}, source="segflow.score"))
    assert scored.evaluated == 2 and set(scored.changed) == {"C1", "C2"}
    assert world.consent("C1")["eligibility_basis"] == "opt_out_model"

    unsub = world.service.handle(event("CustomerActivity", {
        "event_id": "a1", "customer_id": "C1", "event_type": "unsubscribe", "timestamp": "2026-10-30T00:00:00Z"},
        source="segflow.activity"))
    assert unsub.appended == 1 and world.consent("C1")["consent_source"] == "activity:unsubscribe"
    view = world.service.handle(event("CustomerActivity", {
        "event_id": "a2", "customer_id": "C1", "event_type": "page_view", "timestamp": "2026-10-30T00:00:00Z"}))
    assert view.records_in == 0

    submitted = world.service.handle(event("ConsentChanged", {"records": [
        {"email": "bob@example.com", "status": "opted_out", "timestamp": "2026-10-01T00:00:00Z",
         "source": "destination:hubspot"}]}, source="segflow.sync"))
    assert submitted.changed == ["C2"]
    bob = world.consent("C2")
    assert bob["suppressed"] and bob["suppression_reason"] == "destination_unsubscribe" and not bob["eligible"]

    world.objects.put_bytes("manifests/d1.customers.json", json.dumps(["C2"]).encode())
    ingested = world.service.handle(event("DataIngested", {
        "drop_id": "d1", "dataset": "customers", "bucket": "b", "source_key": "raw/customers/x.csv",
        "clean_key": None, "quarantine_key": None, "accounting_key": "a",
        "counts": {"rows_in": 1, "clean": 1, "merged": 0, "quarantined": 0, "pending": 0},
        "customers_touched": 1, "customer_ids_key": "manifests/d1.customers.json",
        "ingested_at": NOW.isoformat()}, source="segflow.ingest"))
    assert ingested.evaluated == 1 and ingested.changed == []


def test_a_consent_drop_is_read_from_its_clean_parquet(world):
    world.customer("C1", ANN)
    frame = pd.DataFrame({
        "email": [ANN, "x@example.com", None], "customer_id": ["C1", None, None],
        "source_customer_id": [None, None, None], "channel": ["email"] * 3,
        "status": ["opted_in", "opted_out", "opted_in"],
        "timestamp": pd.to_datetime(["2026-01-10T09:00:00Z", "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
        "source": ["signup_form", "import", "import"], "lawful_basis": ["consent", None, "consent"],
        "double_opt_in_confirmed": [True, False, False], "region": [None, None, None],
    })
    world.objects.put_bytes("clean/consent/d1.parquet", to_parquet_bytes(frame))
    detail = {"drop_id": "d1", "dataset": "consent", "bucket": "b", "source_key": "raw/consent/d1.csv",
              "clean_key": "clean/consent/d1.parquet", "quarantine_key": None, "accounting_key": "a",
              "counts": {"rows_in": 3, "clean": 3, "merged": 0, "quarantined": 0, "pending": 0},
              "customers_touched": 0, "ingested_at": NOW.isoformat()}
    outcome = world.service.handle(event("DataIngested", detail, source="segflow.ingest"))
    assert (outcome.records_in, outcome.appended, outcome.invalid) == (2, 2, 1)  # the third has no identity
    assert outcome.changed == ["C1"] and world.consent("C1")["consent_double_opt_in"] is True


def seed_person(world: World) -> None:
    world.customer("C1", ANN, phone="+4915112345678")
    world.customer("C2", "bob@example.com")
    world.table[("CUST#C1", "SYNC#hubspot")] = {"pk": "CUST#C1", "sk": "SYNC#hubspot", "destination_id": "901"}
    world.identities.add("phone", "+4915112345678", "C1")
    world.service.submit([opt_in(), opt_in("bob@example.com")], trigger="test")
    orders = pd.DataFrame({"order_id": ["O1", "O2", "O3"], "customer_id": ["C1", "C2", "C1"],
                           "email": [None, None, ANN], "total": [1.0, 2.0, 3.0]})
    world.objects.put_bytes("clean/orders/orders-d1.parquet", to_parquet_bytes(orders))
    world.objects.put_bytes("clean/orders/orders-d1.accounting.json", json.dumps({"source_key": "raw/orders/d1.csv"}).encode())
    world.objects.put_bytes("raw/orders/d1.csv", b"order_id,customer_id\nO1,C1\n")
    world.objects.put_bytes("quarantine/customers/c-d2.jsonl", (
        json.dumps({"record": {"email": "ANN@example.com ", "phone": "01511 2345678"}}) + "\n"
        + json.dumps({"record": {"email": "zed@example.com"}}) + "\n").encode())
    world.objects.put_bytes("manifests/d1.customers.json", json.dumps(["C1", "C2"]).encode())
    world.mailchimp.members |= {__import__("hashlib").md5(ANN.encode()).hexdigest()}
    world.hubspot.members |= {ANN}


def test_erasure_removes_the_person_everywhere_and_is_reported_once(world):
    seed_person(world)
    requested = {"email": "Ann@Example.com", "requested_at": "2026-10-30T00:00:00Z"}
    outcome = world.service.handle(event("ErasureRequested", requested))
    report = outcome.erasures[0]
    assert report["complete"] and "@" not in json.dumps(report)
    removed = report["removed"]
    assert removed["mailchimp"] == 1 and removed["hubspot"] == 1 and removed["clean_rows"] == 2
    assert removed["quarantine_rows"] == 1 and removed["report_rows"] == 1 and removed["raw_objects"] == 1
    assert removed["ledger_rows"] == 1 and removed["identity_items"] == 3  # id, email, phone
    remaining = {k for k in world.table if "C1" in k[0] or k[0] == ledger_pk_for_email(ANN)}
    assert remaining == set()
    assert all(k[0].startswith("TOMB#") or "C2" in str(world.table[k]) or "bob" in str(world.table[k])
               or k[0].startswith(("IDENT#", "CONSENT#")) for k in world.table)
    left = read_parquet_bytes(world.objects.get_bytes("clean/orders/orders-d1.parquet"))
    assert left["order_id"].tolist() == ["O2"]
    assert json.loads(world.objects.get_bytes("manifests/d1.customers.json")) == ["C2"]
    assert not world.objects.exists("raw/orders/d1.csv")
    assert "zed@example.com" in world.objects.get_bytes("quarantine/customers/c-d2.jsonl").decode()
    for info in world.objects.list(""):
        body = world.objects.get_bytes(info.key).decode("latin-1").lower()
        assert ANN not in body and "c1" not in body.replace("c1-", ""), info.key
    completed = world.events("ErasureCompleted")
    assert len(completed) == 1 and completed[0]["subject_hash"] == tombstone(ANN, SALT, "email")

    gate = ErasureGate(world.tombstones, SALT)
    assert gate.is_erased(" ANN@example.com") and gate.is_erased("C1") and not gate.is_erased("C2")
    world.service.handle(event("ErasureRequested", requested, event_id="e2"))  # redelivered
    assert len(world.events("ErasureCompleted")) == 1


def test_an_erased_person_stays_out_until_a_new_explicit_opt_in(world):
    seed_person(world)
    world.service.handle(event("ErasureRequested", {"email": ANN, "requested_at": "2026-10-30T00:00:00Z"}))
    gate = ErasureGate(world.tombstones, SALT)
    stale = world.service.submit([opt_in(days_ago=100), opt_out(days_ago=2)], trigger="replayed drop")
    assert stale.refused_erased == 2 and stale.appended == 0 and gate.is_erased(ANN)
    soft = world.service.submit([opt_in(days_ago=0.5, lawful_basis="legitimate_interest")], trigger="checkout")
    assert soft.refused_erased == 1 and gate.is_erased(ANN)
    fresh = world.service.submit([opt_in(days_ago=0.5), opt_in(days_ago=100)], trigger="signup")
    assert fresh.appended == 1 and fresh.refused_erased == 1  # only what came after the erasure
    assert not gate.is_erased(ANN)


def test_an_erased_persons_rows_are_removed_from_a_later_consent_drop(world):
    seed_person(world)
    world.service.handle(event("ErasureRequested", {"email": ANN, "requested_at": "2026-10-30T00:00:00Z"}))
    frame = pd.DataFrame({"email": [ANN, "bob@example.com"], "status": ["opted_in", "opted_in"],
                          "timestamp": pd.to_datetime(["2026-01-01T00:00:00Z"] * 2),
                          "lawful_basis": ["consent", "consent"], "source": ["import", "import"]})
    world.objects.put_bytes("clean/consent/d9.parquet", to_parquet_bytes(frame))
    detail = {"drop_id": "d9", "dataset": "consent", "bucket": "b", "source_key": "raw/consent/d9.csv",
              "clean_key": "clean/consent/d9.parquet", "quarantine_key": None, "accounting_key": "a",
              "counts": {"rows_in": 2, "clean": 2, "merged": 0, "quarantined": 0, "pending": 0},
              "customers_touched": 0, "ingested_at": NOW.isoformat()}
    outcome = world.service.handle(event("DataIngested", detail, source="segflow.ingest"))
    assert outcome.refused_erased == 1
    assert read_parquet_bytes(world.objects.get_bytes("clean/consent/d9.parquet"))["email"].tolist() == ["bob@example.com"]


def test_a_failing_destination_keeps_the_profile_and_fails_the_event_for_a_retry(world):
    seed_person(world)
    world.mailchimp.failing = True
    with pytest.raises(ErasureIncomplete):
        world.service.handle(event("ErasureRequested", {"email": ANN, "requested_at": "2026-10-30T00:00:00Z"}))
    assert ("CUST#C1", "PROFILE") in world.table and world.events("ErasureCompleted") == []
    reports = [json.loads(world.objects.get_bytes(i.key)) for i in world.objects.list("reports/erasure/")]
    assert len(reports) == 1 and reports[0]["failures"] == {"mailchimp": "ConnectionError"}
    world.mailchimp.failing = False
    outcome = world.service.handle(event("ErasureRequested", {"email": ANN, "requested_at": "2026-10-30T00:00:00Z"}))
    assert outcome.erasures[0]["complete"] and ("CUST#C1", "PROFILE") not in world.table


def test_an_erasure_by_customer_id_only(world):
    seed_person(world)
    world.service.erase(ErasureRequest(customer_id="C1", requested_at=NOW))
    assert ("CUST#C1", "PROFILE") not in world.table and ErasureGate(world.tombstones, SALT).is_erased(ANN)
