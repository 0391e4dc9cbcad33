"""Right to erasure: tombstones, re-ingest blocking, the plan, running it through ports, the report."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from segflow.consent.erasure import (
    DestinationCall,
    DestinationTarget,
    ErasureInventory,
    ErasurePorts,
    ErasureReport,
    ErasureRequest,
    FileHit,
    ItemKey,
    RowMatch,
    Tombstone,
    admissible,
    blocks_reingest,
    is_tombstoned,
    plan_erasure,
    run_erasure,
    subscriber_hash,
    tombstone,
)
from segflow.store.profiles import identity_key

from ._support import EMAIL, NOW, at, opt_in, opt_out

SALT = "test-salt-0123456789abcdef"


def test_tombstone_is_a_keyed_hash_of_the_normalised_value():
    digest = tombstone(" Ann@Example.com ", SALT)
    assert digest == hmac.new(SALT.encode(), b"email:ann@example.com", hashlib.sha256).hexdigest()
    assert tombstone("ann@example.com", SALT) == digest
    assert tombstone("ann@example.com", SALT + "x") != digest  # another salt, another hash
    assert tombstone("C1", SALT) == tombstone("C1", SALT, "customer_id") != tombstone("c1", SALT)
    with pytest.raises(ValueError, match="salt"):
        tombstone(EMAIL, "short")


def test_is_tombstoned_accepts_sets_lists_and_mappings():
    digest = tombstone(EMAIL, SALT)
    for collection in ({digest}, [digest], {digest: {"requested_at": "x"}}):
        assert is_tombstoned("ANN@example.com", SALT, collection)
        assert not is_tombstoned("bob@example.com", SALT, collection)


def stone(days_ago: float = 10) -> Tombstone:
    return Tombstone(digest=tombstone(EMAIL, SALT), kind="email", requested_at=at(days_ago), request_id="r1")


def test_only_a_new_explicit_opt_in_after_the_request_lifts_the_tombstone():
    assert blocks_reingest(stone(), [])
    assert blocks_reingest(stone(), [opt_in(20)])  # given before the erasure
    assert blocks_reingest(stone(), [opt_in(10)])  # at the very moment of the request
    assert blocks_reingest(stone(), [opt_in(5, basis="legitimate_interest"), opt_out(4)])
    assert not blocks_reingest(stone(), [opt_in(5)])
    assert blocks_reingest(stone(), [opt_in(5)], require_double_opt_in=True)
    assert not blocks_reingest(stone(), [opt_in(5, double_opt_in_confirmed=True)], require_double_opt_in=True)
    other_person = opt_in(5, email="bob@example.com")
    assert blocks_reingest(stone(), [other_person], salt=SALT)
    assert not blocks_reingest(stone(), [opt_in(5, email="ANN@example.com")], salt=SALT)


def test_admissible_records_are_only_those_after_the_request_once_lifted():
    old = opt_in(30)
    assert admissible(stone(), [old, opt_in(5, basis="contract")]) == []
    lifted = admissible(stone(), [old, opt_in(5), opt_out(2)])
    assert lifted == [opt_in(5), opt_out(2)]


def inventory(**changes) -> ErasureInventory:
    base = dict(
        customer_ids=["C1", "C1-old"],
        emails=["Ann@Example.com", "ann.work@example.com"],
        phones=["+4915112345678"],
        items=[ItemKey(pk="CUST#C1", sk="PROFILE"), ItemKey(pk="CUST#C1", sk="SCORES"),
               ItemKey(pk="CUST#C1", sk="CONSENT#email"), ItemKey(pk="CUST#C1", sk="LEDGER#2026#abc"),
               ItemKey(pk="CUST#C1", sk="SYNC#mailchimp")],
        clean_files=[FileHit(key="clean/orders/d1.parquet", rows=3),
                     FileHit(key="clean/customers/d1.parquet", rows=1)],
        quarantine_files=[FileHit(key="quarantine/customers/d2.jsonl", rows=1)],
        ledger_objects=["ledger/consent/C1/2026.jsonl"],
        destinations=[DestinationTarget(destination="mailchimp", audience_id="aud1"),
                      DestinationTarget(destination="hubspot", member_id="901")],
    )
    return ErasureInventory(**{**base, **changes})


def test_plan_lists_what_to_remove_where():
    request = ErasureRequest(email=" ANN@example.com", requested_at=None)
    plan = plan_erasure(request, inventory(), salt=SALT, now=NOW)
    assert plan.requested_at == NOW and plan.subject_hash == tombstone(EMAIL, SALT)
    assert {(t.kind, t.digest) for t in plan.tombstones} == {
        ("email", tombstone(EMAIL, SALT)), ("email", tombstone("ann.work@example.com", SALT)),
        ("customer_id", tombstone("C1", SALT, "customer_id")),
        ("customer_id", tombstone("C1-old", SALT, "customer_id")),
    }
    expected_identities = [
        identity_key("id", "C1"), identity_key("id", "C1-old"), identity_key("email", EMAIL),
        identity_key("email", "ann.work@example.com"), identity_key("phone", "+4915112345678"),
    ]
    assert [k.model_dump() for k in plan.identity_items] == expected_identities
    assert ItemKey(pk="CUST#C1-old", sk="PROFILE") in plan.profile_items  # an alias's own profile, if any
    assert len(plan.profile_items) == 6
    assert plan.match == RowMatch(customer_ids=("C1", "C1-old"), emails=(EMAIL, "ann.work@example.com"),
                                  phones=("+4915112345678",))
    mailchimp = [c for c in plan.destination_calls if c.destination == "mailchimp"]
    expected_hashes = {subscriber_hash(EMAIL), subscriber_hash("ann.work@example.com")}
    assert {c.member_ref for c in mailchimp} == expected_hashes
    assert all(c.action == "delete_permanent" and c.audience_id == "aud1" for c in mailchimp)
    hubspot = [c for c in plan.destination_calls if c.destination == "hubspot"]
    assert [(c.action, c.id_property, c.member_ref) for c in hubspot] == [
        ("gdpr_delete", "hs_object_id", "901")]
    assert "@" not in repr(plan)  # personal fields stay out of logs by accident


def test_plan_by_customer_id_and_hubspot_without_a_record_id_uses_the_email():
    plan = plan_erasure(ErasureRequest(customer_id="C1", requested_at=at(1)),
                        inventory(destinations=[DestinationTarget(destination="hubspot")]),
                        salt=SALT, now=NOW)
    assert plan.subject_hash == tombstone("C1", SALT, "customer_id") and plan.requested_at == at(1)
    assert [(c.id_property, c.member_ref) for c in plan.destination_calls] == [
        ("email", EMAIL), ("email", "ann.work@example.com")]
    again = plan_erasure(ErasureRequest(customer_id="C1", requested_at=at(1)), inventory(),
                         salt=SALT, now=at(-5))
    assert again.request_id == plan.request_id  # a redelivered request is the same request


def test_requests_and_targets_are_validated():
    with pytest.raises(ValidationError):
        ErasureRequest(email=" ", customer_id=None)
    with pytest.raises(ValidationError, match="audience_id"):
        DestinationTarget(destination="mailchimp")


def test_the_report_refuses_to_hold_an_email():
    base = dict(request_id="r", subject_hash="h", requested_at=NOW, completed_at=NOW, complete=True,
                removed={})
    ErasureReport(**base)
    with pytest.raises(ValidationError, match="email"):
        ErasureReport(**{**base, "failures": {"ann@example.com": "KeyError"}})


# ---- running a plan against in-memory fakes -----------------------------------------------------------

@dataclass
class FakeWorld:
    """Stores holding one person's data (and someone else's), with switchable failures."""
    tombstones: dict[str, Tombstone] = field(default_factory=dict)
    items: set[tuple[str, str]] = field(default_factory=set)
    files: dict[str, list[dict]] = field(default_factory=dict)
    objects: set[str] = field(default_factory=set)
    members: dict[str, set[str]] = field(default_factory=dict)  # destination -> member refs
    failing: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failing:
            raise ConnectionError(name)

    def put_tombstones(self, tombstones):
        self._check("tombstones")
        self.tombstones.update({t.digest: t for t in tombstones})
        return len(tombstones)

    def delete_items(self, keys):
        self._check("items")
        found = {(k.pk, k.sk) for k in keys} & self.items
        self.items -= found
        return len(found)

    def rewrite_without(self, key, match: RowMatch):
        self._check("files")
        rows = self.files.get(key, [])
        kept = [r for r in rows if r.get("customer_id") not in match.customer_ids
                and r.get("email") not in match.emails]
        self.files[key] = kept
        return len(rows) - len(kept)

    def delete_objects(self, keys):
        self._check("objects")
        found = set(keys) & self.objects
        self.objects -= found
        return len(found)

    def eraser(self, destination: str):
        world = self

        class Eraser:
            def erase(self, call: DestinationCall) -> bool:
                world._check(destination)
                members = world.members.setdefault(destination, set())
                present = call.member_ref in members
                members.discard(call.member_ref)
                return present

        return Eraser()

    def ports(self) -> ErasurePorts:
        erasers = {"mailchimp": self.eraser("mailchimp"), "hubspot": self.eraser("hubspot")}
        return ErasurePorts(tombstones=self, items=self, files=self, objects=self, destinations=erasers)


def world() -> FakeWorld:
    return FakeWorld(
        items={("CUST#C1", "PROFILE"), ("CUST#C1", "SCORES"), ("CUST#C1", "CONSENT#email"),
               ("CUST#C1", "LEDGER#2026#abc"), ("CUST#C1", "SYNC#mailchimp"), ("CUST#C2", "PROFILE"),
               (identity_key("email", EMAIL)["pk"], "IDENT"), (identity_key("id", "C1")["pk"], "IDENT")},
        files={"clean/orders/d1.parquet": [{"customer_id": "C1"}] * 3 + [{"customer_id": "C2"}],
               "clean/customers/d1.parquet": [{"customer_id": "C1", "email": EMAIL}, {"customer_id": "C2"}],
               "quarantine/customers/d2.jsonl": [{"email": "ann.work@example.com"}]},
        objects={"ledger/consent/C1/2026.jsonl", "ledger/consent/C2/2026.jsonl"},
        members={"mailchimp": {subscriber_hash(EMAIL)}, "hubspot": {"901"}},
    )


def test_run_erasure_removes_everything_and_reports_counts_without_the_email():
    fake = world()
    plan = plan_erasure(ErasureRequest(email=EMAIL), inventory(), salt=SALT, now=NOW)
    report = run_erasure(plan, fake.ports(), now=NOW)
    assert report.complete and report.failures == {}
    assert report.removed == {
        "tombstones": 4, "mailchimp": 1, "hubspot": 1, "clean_files": 2, "clean_rows": 4,
        "quarantine_files": 1, "quarantine_rows": 1, "ledger_objects": 1, "identity_items": 2,
        "profile_items": 5, "pending_files": 0, "pending_rows": 0, "report_files": 0, "report_rows": 0,
        "ledger_files": 0, "ledger_rows": 0, "raw_objects": 0,
    }
    assert fake.items == {("CUST#C2", "PROFILE")}
    assert fake.files["clean/orders/d1.parquet"] == [{"customer_id": "C2"}]
    assert fake.objects == {"ledger/consent/C2/2026.jsonl"}
    assert fake.members == {"mailchimp": set(), "hubspot": set()}
    assert fake.calls[0] == "tombstones" and fake.calls[-1] == "items"
    dumped = report.model_dump_json()
    assert "@" not in dumped and "ann" not in dumped.lower()
    assert run_erasure(plan, fake.ports(), now=NOW).complete  # a rerun is harmless


def test_without_tombstones_nothing_is_deleted():
    fake = world()
    fake.failing = {"tombstones"}
    plan = plan_erasure(ErasureRequest(email=EMAIL), inventory(), salt=SALT, now=NOW)
    report = run_erasure(plan, fake.ports(), now=NOW)
    assert not report.complete and report.failures == {"tombstones": "ConnectionError"}
    assert fake.calls == ["tombstones"] and len(fake.items) == 8


def test_a_failing_destination_keeps_the_profile_for_the_retry_but_does_the_rest():
    fake = world()
    fake.failing = {"mailchimp"}
    plan = plan_erasure(ErasureRequest(email=EMAIL), inventory(), salt=SALT, now=NOW)
    report = run_erasure(plan, fake.ports(), now=NOW)
    assert not report.complete and report.failures == {"mailchimp": "ConnectionError"}
    assert report.removed["hubspot"] == 1 and report.removed["clean_rows"] == 4
    assert ("CUST#C1", "PROFILE") in fake.items and "items" not in fake.calls
    fake.failing = set()
    retry = run_erasure(plan, fake.ports(), now=NOW)
    assert retry.complete and retry.removed["mailchimp"] == 1 and retry.removed["profile_items"] == 5
    assert json.loads(retry.model_dump_json())["subject_hash"] == tombstone(EMAIL, SALT)
