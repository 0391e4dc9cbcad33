"""ConsentRecord: normalisation, content-hash ids (replays are the same record), validation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from segflow.consent.models import ConsentRecord, as_utc

from ._support import NOW, rec


def test_same_content_same_id_whatever_the_spelling_and_timezone():
    a = ConsentRecord(email=" Ann@Example.COM ", status="opted_in", timestamp="2026-03-01T12:00:00+02:00",
                      source="Signup_Form", lawful_basis="consent")
    b = ConsentRecord(email="ann@example.com", status="opted_in",
                      timestamp=datetime(2026, 3, 1, 10, tzinfo=timezone.utc), source="signup_form",
                      lawful_basis="consent", origin="raw/consent/other-file.csv")
    assert a.record_id == b.record_id
    assert a.timestamp == b.timestamp and a.timestamp.tzinfo == timezone.utc


@pytest.mark.parametrize("change", [
    {"status": "opted_out"},
    {"timestamp": NOW + timedelta(microseconds=1)},
    {"lawful_basis": "legitimate_interest"},
    {"double_opt_in_confirmed": True},
    {"source": "import"},
    {"region": "US"},
    {"customer_id": "C1"},
    {"preference_level": "basic"},
])
def test_any_content_change_gives_another_id(change):
    base = dict(email="ann@example.com", status="opted_in", timestamp=NOW, source="signup_form",
                lawful_basis="consent")
    assert ConsentRecord(**base).record_id != ConsentRecord(**{**base, **change}).record_id


def test_stored_form_round_trips_and_a_tampered_one_is_refused():
    record = rec("opted_in", 3, lawful_basis="consent", region="de")
    stored = record.model_dump(mode="json")
    assert stored["record_id"] == record.record_id and stored["region"] == "DE"
    assert ConsentRecord.model_validate(stored) == record
    with pytest.raises(ValidationError, match="record_id"):
        ConsentRecord.model_validate({**stored, "status": "opted_out"})


def test_needs_an_identity_and_known_vocabulary():
    with pytest.raises(ValidationError, match="email or a customer_id"):
        ConsentRecord(email="  ", status="opted_in", timestamp=NOW)
    with pytest.raises(ValidationError):
        ConsentRecord(email="a@b.co", status="subscribed", timestamp=NOW)
    with pytest.raises(ValidationError):
        ConsentRecord(email="a@b.co", status="opted_in", timestamp=NOW, lawful_basis="vital_interest")


def test_naive_timestamps_are_utc_and_missing_double_opt_in_is_false():
    record = ConsentRecord(customer_id="C1", status="opted_in", timestamp="2026-01-02T03:04:05",
                           double_opt_in_confirmed=None)
    assert record.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert record.double_opt_in_confirmed is False
    assert as_utc("") is None and as_utc(None) is None


def test_explicit_opt_in_needs_consent_basis_and_double_opt_in_only_when_asked():
    assert rec("opted_in", 1, lawful_basis="consent").is_explicit_opt_in()
    assert not rec("opted_in", 1, lawful_basis="consent").is_explicit_opt_in(require_double_opt_in=True)
    assert rec("opted_in", 1, lawful_basis="consent", double_opt_in_confirmed=True).is_explicit_opt_in(True)
    assert not rec("opted_in", 1, lawful_basis="legitimate_interest").is_explicit_opt_in()
    assert not rec("opted_out", 1, lawful_basis="consent").is_explicit_opt_in()
    assert rec("opted_out", 1, source="Destination:Mailchimp").from_destination


def test_record_id_format_is_pinned_because_stored_ledgers_depend_on_it():
    import hashlib
    import json

    record = ConsentRecord(email="ann@example.com", customer_id="C1", status="opted_out", timestamp=NOW,
                           source="destination:mailchimp", reason="cleaned", origin="ignored")
    content = {
        "channel": "email", "customer_id": "C1", "double_opt_in_confirmed": False, "email": "ann@example.com",
        "lawful_basis": None, "preference_level": None, "reason": "cleaned", "region": None,
        "source": "destination:mailchimp", "status": "opted_out", "timestamp": "2026-11-01T00:00:00+00:00",
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    assert record.record_id == hashlib.sha256(encoded).hexdigest()[:32]


def test_datetime_subclasses_are_stored_as_plain_datetimes_with_the_same_id():
    class Stamp(datetime):  # stands in for a dataframe timestamp, which serialises its own way
        def isoformat(self, *args, **kwargs):
            return "not the standard form"

    odd = ConsentRecord(email="a@b.co", status="opted_in",
                        timestamp=Stamp(2026, 1, 1, 10, tzinfo=timezone.utc))
    plain = ConsentRecord(email="a@b.co", status="opted_in",
                          timestamp=datetime(2026, 1, 1, 10, tzinfo=timezone.utc))
    assert type(odd.timestamp) is datetime and odd.record_id == plain.record_id
