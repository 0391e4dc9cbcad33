"""Merge-field / property values honour the contact's preference level."""

from __future__ import annotations

import pytest

from segflow.segments.config import parse_segments
from segflow.segments.personalisation import format_value, personalise
from segflow.segments.rules import compile_rules

VIEW = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "city": "London",
    "rfm_segment": "Champions",
    "cluster_label": "Frequent High Spenders",
    "clv_tier": "high",
    "last_product_name": "Tent",
    "last_product_category": "camping",
    "recommended_product_names": ["Stove", "Lamp", "Mat"],
}


def test_full_preference_gets_every_default_field(default_rules):
    got = personalise(default_rules, VIEW, "full")
    assert got.mailchimp == {
        "FNAME": "Ada",
        "LNAME": "Lovelace",
        "CITY": "London",
        "RFM": "Champions",
        "CLUSTER": "Frequent High Spenders",
        "CLVTIER": "high",
        "LASTPROD": "Tent",
        "LASTCAT": "camping",
        "RECOMMEND": "Stove, Lamp, Mat",
    }
    assert got.hubspot["segflow_first_name"] == "Ada"
    assert got.hubspot["segflow_recommended"] == "Stove, Lamp, Mat"
    assert len(got.hubspot) == len(got.mailchimp)


def test_basic_preference_skips_behavioural_fields(default_rules):
    got = personalise(default_rules, VIEW, "basic")
    assert got.mailchimp == {"FNAME": "Ada", "LNAME": "Lovelace", "CITY": "London"}
    assert set(got.hubspot) == {"segflow_first_name", "segflow_last_name", "segflow_city"}


def test_none_preference_gets_nothing(default_rules):
    got = personalise(default_rules, VIEW, "none")
    assert got.mailchimp == {} and got.hubspot == {}


def test_preference_from_the_view_and_unknown_means_basic(default_rules):
    assert "RFM" in personalise(default_rules, {**VIEW, "preference_level": "full"}).mailchimp
    assert "RFM" not in personalise(default_rules, VIEW).mailchimp
    assert "RFM" not in personalise(default_rules, {**VIEW, "preference_level": "everything"}).mailchimp


def test_missing_values_clear_the_field(default_rules):
    got = personalise(default_rules, {"first_name": "Ada"}, "full")
    assert (
        got.mailchimp["FNAME"] == "Ada" and got.mailchimp["CITY"] == "" and got.mailchimp["RECOMMEND"] == ""
    )


def test_expression_fields_and_types():
    config = parse_segments(
        {
            "merge_fields": [
                {"tag": "GREETING", "name": "Greeting", "expression": 'first_name + " from " + city'},
                {
                    "tag": "SPEND30",
                    "name": "Spend 30d",
                    "type": "number",
                    "source": "spend_30d",
                    "behavioural": True,
                },
                {"tag": "SIGNUP", "name": "Signup", "type": "date", "source": "signup_date"},
                {"tag": "BDAY", "name": "Birthday", "type": "birthday", "source": "birth_date"},
            ]
        }
    )
    rules = compile_rules(config)
    view = {
        "first_name": "Ada",
        "city": "London",
        "spend_30d": 1234.5678,
        "signup_date": "2024-03-05T10:00:00Z",
        "birth_date": "1990-12-10",
    }
    got = personalise(rules, view, "full").mailchimp
    assert got == {"GREETING": "Ada from London", "SPEND30": 1234.57, "SIGNUP": "2024-03-05", "BDAY": "12/10"}
    # An expression over a missing value cannot be evaluated: the field is cleared, nothing raises.
    assert personalise(rules, {"first_name": "Ada"}, "full").mailchimp["GREETING"] == ""


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("x" * 300, "text", "x" * 255),
        ("  two   words ", "text", "two words"),
        (3.0, "number", 3),
        ("12", "number", ""),
        ("not a date", "date", ""),
        (None, "text", ""),
    ],
)
def test_format_value(raw, kind, expected):
    assert format_value(raw, kind) == expected
