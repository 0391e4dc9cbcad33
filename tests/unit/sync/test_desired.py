"""Desired destination state from a profile view: eligibility, preference levels, segment routes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from segflow.sync.desired import SyncConfig, build_desired, format_value

from tests.unit.sync.builders import CONFIG, opted_out, view


def test_eligible_contact_gets_its_segments_tags_and_full_fields_in_mailchimp() -> None:
    desired = build_desired(view(1, "At risk", "Champions"), "mailchimp", CONFIG)
    assert desired.email == "user1@example.com" and desired.eligible and desired.subscribe_if_new
    assert desired.tags == {"segflow: At risk", "segflow: Champions"}
    assert desired.segments == {"segflow - At risk"} and desired.lists == frozenset()
    assert desired.fields == {"FNAME": "Name1", "CITY": "Lyon", "CLVTIER": "high", "ORDERS": 1}
    assert not desired.unsubscribe


def test_hubspot_gets_lists_properties_and_the_segment_property_of_the_highest_priority_segment() -> None:
    desired = build_desired(view(2, "At risk", "High CLV", "Champions"), "hubspot", CONFIG)
    assert desired.lists == {"segflow - At risk", "segflow - Champions"} and desired.tags == frozenset()
    assert desired.fields["segflow_lifecycle"] == "at_risk"  # priority 10 beats High CLV's 40
    assert desired.fields["segflow_first_name"] == "Name2" and desired.fields["segflow_orders"] == 2
    alone = build_desired(view(3, "High CLV"), "hubspot", CONFIG)
    assert alone.fields["segflow_lifecycle"] == "high_value"
    nowhere = build_desired(view(4), "hubspot", CONFIG)
    assert nowhere.fields["segflow_lifecycle"] == ""  # clears a value left by a segment the contact left


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("full", {"FNAME", "CITY", "CLVTIER", "ORDERS"}),
        ("basic", {"FNAME", "CITY"}),
        ("none", set()),
        ("surprise", {"FNAME", "CITY"}),  # unknown levels are treated as basic
        (None, {"FNAME", "CITY"}),
    ],
)
def test_fields_honour_the_preference_level(level: str | None, expected: set[str]) -> None:
    desired = build_desired(view(5, "Champions", preference_level=level), "mailchimp", CONFIG)
    assert set(desired.fields) == expected
    assert desired.tags == {"segflow: Champions"}  # memberships do not depend on the preference level


def test_ineligible_contact_has_no_memberships_no_fields_and_is_not_unsubscribed() -> None:
    inactive = view(6, "Champions", eligible=False, ineligible_reasons=["inactive"])
    for destination in ("mailchimp", "hubspot"):
        desired = build_desired(inactive, destination, CONFIG)
        assert not desired.eligible and not desired.subscribe_if_new and not desired.unsubscribe
        assert desired.memberships() == frozenset() and desired.fields == {}


def test_only_a_withdrawn_consent_unsubscribes() -> None:
    desired = build_desired(opted_out(7, "Champions"), "mailchimp", CONFIG)
    assert desired.unsubscribe and not desired.eligible and desired.memberships() == frozenset()
    suppressed = build_desired(view(8, "Champions", suppressed=True), "mailchimp", CONFIG)
    assert not suppressed.eligible and not suppressed.unsubscribe
    # a view claiming eligibility while opted out is not believed
    contradictory = build_desired(view(9, "Champions", consent_status="opted_out"), "mailchimp", CONFIG)
    assert not contradictory.eligible and contradictory.unsubscribe


def test_not_opted_in_contact_is_eligible_but_not_subscribable_as_new() -> None:
    desired = build_desired(view(10, "Champions", consent_status="unknown"), "mailchimp", CONFIG)
    assert desired.eligible and not desired.subscribe_if_new


def test_injected_checks_and_field_values_are_used() -> None:
    values = {"FNAME": "From personalise", "CLVTIER": "gold", "ORDERS": 3, "CITY": ""}
    desired = build_desired(
        view(11, "Champions"),
        "mailchimp",
        CONFIG,
        field_values=lambda v: values,
        eligible=lambda v: True,
        subscribable=lambda v: False,
    )
    assert desired.fields == values and desired.eligible and not desired.subscribe_if_new
    refused = build_desired(view(12, "Champions"), "mailchimp", CONFIG, eligible=lambda v: False)
    assert not refused.eligible and refused.tags == frozenset()


def test_email_is_normalised_and_unknown_segments_are_ignored() -> None:
    desired = build_desired(
        view(13, "Champions", "Not in config", email=" User13@Example.COM "), "mailchimp", CONFIG
    )
    assert desired.email == "user13@example.com" and desired.tags == {"segflow: Champions"}
    as_list = build_desired(view(14, memberships=["Champions"]), "mailchimp", CONFIG)
    assert as_list.tags == {"segflow: Champions"}


def test_config_from_the_shipped_segments_file_and_from_plain_dicts_agree() -> None:
    from segflow.segments.config import load_segments

    loaded = load_segments()
    from_model = SyncConfig.from_segments(loaded)
    from_dict = SyncConfig.from_segments(loaded.model_dump())
    assert from_model == from_dict
    enabled = [s.name for s in loaded.segments if s.enabled]
    assert [r.segment for r in from_model.segments] == enabled
    assert from_model.segment_properties() == {"segflow_lifecycle": ["at_risk_high_value", "high_value"]}
    assert ("list", "segflow - Champions") in from_model.managed("hubspot")
    assert ("tag", "segflow: Champions") in from_model.managed("mailchimp")


def test_unknown_destination_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown destination"):
        build_desired(view(15), "salesforce", CONFIG)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (None, "text", ""),
        (float("nan"), "number", ""),
        (3.0, "number", 3),
        (2.345, "number", 2.35),
        (True, "number", 1),
        ("12", "number", ""),
        (datetime(2026, 3, 4, 10, tzinfo=timezone.utc), "date", "2026-03-04"),
        ("2026-03-04T10:00:00+00:00", "birthday", "03/04"),
        ("not a date", "date", ""),
        (["a", None, "b"], "text", "a, b"),
        (False, "text", "no"),
        ("  two   words ", "text", "two words"),
        ("x" * 300, "text", "x" * 255),
    ],
)
def test_format_value(raw: object, kind: str, expected: object) -> None:
    assert format_value(raw, kind) == expected
