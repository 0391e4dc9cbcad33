"""Identity resolution and survivorship: who is the same customer, and which values survive."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from segflow.ingest.identity import profile_hash, resolve_customers, resolve_references

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def rows(*records: dict) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    frame["_row"] = range(1, len(frame) + 1)
    for column in ("signup_date", "updated_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def resolve(frame: pd.DataFrame, existing=None, known=None, threshold=90.0):
    return resolve_customers(
        frame, existing=existing or {}, known=known or {}, drop_id="d1", ingested_at=NOW,
        fuzzy_threshold=threshold,
    )


def test_same_email_under_two_ids_is_one_customer_with_the_earliest_signup_id():
    result = resolve(rows(
        {"customer_id": "B", "email": "ann@example.com", "first_name": "Ann", "signup_date": "2024-05-01"},
        {"customer_id": "A", "email": "ann@example.com", "first_name": "Anne", "signup_date": "2023-01-01"},
    ))
    assert len(result.profiles) == 1
    profile = result.profiles[0]
    assert profile["customer_id"] == "A"
    assert profile["alias_ids"] == ["B"]
    assert profile["first_name"] == "Anne"  # the newest row (file order) wins
    assert profile["signup_date"].startswith("2023-01-01")  # the earliest signup stays
    assert sorted(o[0] for o in result.row_outcomes.values()) == ["clean", "merged"]


def test_transitive_links_through_phone_and_id():
    result = resolve(rows(
        {"customer_id": "1", "email": "a@example.com", "phone": "+14155550100"},
        {"customer_id": "2", "email": "b@example.com", "phone": "+14155550100"},
        {"customer_id": "2", "email": "c@example.com", "phone": None},
        {"customer_id": "3", "email": "d@example.com", "phone": "+14155550199"},
    ))
    sizes = sorted(len(p["alias_ids"]) + 1 for p in result.profiles)
    assert sizes == [1, 2]
    merged = next(p for p in result.profiles if p["alias_ids"])
    assert set(merged["alternate_emails"]) | {merged["email"]} == {"a@example.com", "b@example.com", "c@example.com"}


def test_newest_non_empty_value_wins_and_empty_never_overwrites():
    result = resolve(rows(
        {"customer_id": "1", "email": "x@example.com", "city": "Berlin", "updated_at": "2025-01-01"},
        {"customer_id": "1", "email": "x@example.com", "city": None, "updated_at": "2026-01-01"},
        {"customer_id": "1", "email": "x@example.com", "city": "Munich", "updated_at": "2024-01-01"},
    ))
    assert result.profiles[0]["city"] == "Berlin"  # Munich is older; the newest row has no city


def test_stored_profile_keeps_its_id_and_is_updated():
    existing = {"S1": {"customer_id": "S1", "email": "old@example.com", "city": "Paris",
                       "signup_date": "2020-01-01T00:00:00+00:00", "alias_ids": [], "version": 3}}
    known = {"email": {"old@example.com": "S1"}}
    result = resolve(rows({"customer_id": "NEW", "email": "old@example.com", "city": "Lyon"}), existing, known)
    profile = result.profiles[0]
    assert profile["customer_id"] == "S1" and profile["alias_ids"] == ["NEW"]
    assert profile["city"] == "Lyon"
    assert ("id", "NEW", "S1") in result.identities


def test_a_row_linking_two_stored_profiles_merges_them_and_records_the_absorbed_one():
    existing = {
        "S1": {"customer_id": "S1", "email": "a@example.com", "signup_date": "2021-01-01T00:00:00+00:00"},
        "S2": {"customer_id": "S2", "email": "b@example.com", "signup_date": "2020-01-01T00:00:00+00:00"},
    }
    known = {"id": {"S1": "S1"}, "email": {"b@example.com": "S2"}}
    result = resolve(rows({"customer_id": "S1", "email": "b@example.com"}), existing, known)
    assert [p["customer_id"] for p in result.profiles] == ["S2"]
    assert result.absorbed == {"S1": "S2"}
    assert "a@example.com" in result.profiles[0]["alternate_emails"]


def test_similar_names_in_the_same_postcode_are_flagged_not_merged():
    result = resolve(rows(
        {"customer_id": "1", "email": "jose1@example.com", "first_name": "José", "last_name": "García",
         "postal_code": "28001", "country": "ES"},
        {"customer_id": "2", "email": "jose2@example.com", "first_name": "Jose", "last_name": "Garcia",
         "postal_code": "28001", "country": "ES"},
        {"customer_id": "3", "email": "other@example.com", "first_name": "Jose", "last_name": "Garcia",
         "postal_code": "99999", "country": "ES"},
    ))
    by_id = {p["customer_id"]: p for p in result.profiles}
    assert len(by_id) == 3
    assert by_id["1"]["possible_duplicates"] == ["2"]
    assert by_id["2"]["possible_duplicates"] == ["1"]
    assert by_id["3"]["possible_duplicates"] == []


def test_every_row_has_exactly_one_outcome():
    frame = rows(*[{"customer_id": str(i % 7), "email": f"u{i % 5}@example.com"} for i in range(40)])
    result = resolve(frame)
    assert set(result.row_outcomes) == set(frame["_row"])
    clean = [r for r, (kind, _) in result.row_outcomes.items() if kind == "clean"]
    assert len(clean) == len(result.profiles)


def test_resolution_does_not_depend_on_unrelated_row_order():
    records = [{"customer_id": str(i), "email": f"u{i % 4}@example.com", "signup_date": f"202{i % 5}-01-01"}
               for i in range(12)]
    forward = resolve(rows(*records))
    backward = resolve(rows(*reversed(records)))
    assert sorted(p["customer_id"] for p in forward.profiles) == sorted(p["customer_id"] for p in backward.profiles)


def test_profile_hash_ignores_bookkeeping_fields():
    base = {"customer_id": "1", "email": "a@example.com", "alias_ids": []}
    assert profile_hash({**base, "version": 1, "last_drop": "x"}) == profile_hash({**base, "version": 9})
    assert profile_hash(base) != profile_hash({**base, "email": "b@example.com"})


@pytest.mark.parametrize("with_email", [True, False])
def test_references_resolve_by_id_then_email(with_email):
    frame = pd.DataFrame({"customer_id": ["A", None, "ZZ"], "email": ["x@example.com", "b@example.com", None]})
    if not with_email:
        frame = frame.drop(columns="email")
    resolved = resolve_references(frame, {"A": "A1"}, {"b@example.com": "B1"})
    assert resolved.tolist() == (["A1", "B1", None] if with_email else ["A1", None, None])


def test_rows_without_any_id_are_reported_not_given_an_invented_one():
    result = resolve(rows(
        {"customer_id": None, "email": "ghost@example.com"},
        {"customer_id": None, "email": "known@example.com"},
    ), existing={"K": {"customer_id": "K", "email": "known@example.com"}},
        known={"email": {"known@example.com": "K"}})
    assert result.without_id == [1]
    assert [p["customer_id"] for p in result.profiles] == ["K"]
    assert result.row_outcomes == {2: ("clean", "K")}
