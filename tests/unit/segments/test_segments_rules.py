"""Evaluating segments: the issue's example rules, built-ins, parents, exclusive groups, missing values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from segflow.segments.config import parse_segments
from segflow.segments.rules import compile_rules, evaluate

NOW = "2026-05-01T12:00:00Z"
EXAMPLES = {
    "Recent US": 'country == "US" && days_since_last_order <= 30',
    "Big 30d": "spend_30d > 1000",
    "Valuable at risk": 'rfm_segment in ["At Risk", "Can\'t Lose Them"] && clv_tier == "high"',
}


def rules_for(*segments: dict, **extra):
    return compile_rules(parse_segments({"segments": list(segments), **extra}))


@pytest.fixture(scope="module")
def examples():
    return rules_for(*({"name": name, "rule": rule} for name, rule in EXAMPLES.items()))


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ({"country": "US", "days_since_last_order": 30}, {"Recent US"}),
        ({"country": "US", "days_since_last_order": 31}, set()),
        ({"country": "CA", "days_since_last_order": 2}, set()),
        ({"spend_30d": 1000.01}, {"Big 30d"}),
        ({"spend_30d": 1000.0}, set()),
        ({"rfm_segment": "Can't Lose Them", "clv_tier": "high"}, {"Valuable at risk"}),
        ({"rfm_segment": "At Risk", "clv_tier": "medium"}, set()),
        ({"rfm_segment": "Champions", "clv_tier": "high"}, set()),
    ],
)
def test_issue_examples(examples, view, expected):
    assert evaluate(examples, view, now=NOW) == expected


def test_values_are_coerced_to_catalogue_types(examples):
    # DynamoDB hands back Decimals, and whole doubles as ints: both still compare as declared.
    view = {"spend_30d": Decimal("1500"), "country": "US", "days_since_last_order": Decimal("3")}
    assert evaluate(examples, view, now=NOW) == {"Big 30d", "Recent US"}
    assert evaluate(examples, {"spend_30d": 2000}, now=NOW) == {"Big 30d"}


def test_missing_values_do_not_match_and_do_not_raise(examples):
    # A customer without orders has no days_since_last_order: `<=` on null is an error, i.e. no match.
    assert evaluate(examples, {"country": "US"}, now=NOW) == set()
    assert (
        evaluate(examples, {"country": "US", "days_since_last_order": None, "spend_30d": "n/a"}, now=NOW)
        == set()
    )


def test_negation_of_a_missing_value_does_not_match():
    rules = rules_for({"name": "Not recent", "rule": "!(days_since_last_order <= 30)"})
    assert evaluate(rules, {}, now=NOW) == set()
    assert evaluate(rules, {"days_since_last_order": 45}, now=NOW) == {"Not recent"}


@pytest.mark.parametrize(
    ("builtin", "view", "member"),
    [
        ("rfm:Champions", {"rfm_segment": "Champions"}, True),
        ("rfm:At Risk", {"rfm_segment": "at  risk"}, True),
        ("rfm:Champions", {"rfm_segment": "Loyal Customers"}, False),
        ("cluster:Lapsed Big Spenders", {"cluster_label": "Lapsed Big Spenders"}, True),
        ("clv:high", {"clv_tier": "high"}, True),
        ("clv:high", {"clv_tier": "low"}, False),
        ("churn:medium", {"churn_risk": "medium"}, True),
        ("churn:medium", {}, False),
        ("trigger:cart_abandoned", {"cart_abandoned": True}, True),
        ("trigger:cart_abandoned", {"cart_abandoned": False}, False),
    ],
)
def test_builtins(builtin, view, member):
    rules = rules_for({"name": "B", "builtin": builtin})
    assert evaluate(rules, view, now=NOW) == ({"B"} if member else set())


def test_builtin_and_rule_must_both_hold():
    rules = rules_for({"name": "Rich champions", "builtin": "rfm:Champions", "rule": "spend_90d > 500.0"})
    assert evaluate(rules, {"rfm_segment": "Champions", "spend_90d": 600.0}, now=NOW) == {"Rich champions"}
    assert evaluate(rules, {"rfm_segment": "Champions", "spend_90d": 100.0}, now=NOW) == set()
    assert evaluate(rules, {"rfm_segment": "Hibernating", "spend_90d": 600.0}, now=NOW) == set()


def test_child_requires_parent_whatever_the_file_order():
    rules = rules_for(
        {"name": "US big", "rule": "spend_30d > 100.0", "parent": "US"},
        {"name": "US", "rule": 'country == "US"'},
    )
    assert evaluate(rules, {"country": "US", "spend_30d": 500.0}, now=NOW) == {"US", "US big"}
    assert evaluate(rules, {"country": "FR", "spend_30d": 500.0}, now=NOW) == set()


def test_exclusive_group_keeps_the_lowest_priority_number():
    rules = rules_for(
        {"name": "Gold", "rule": "spend_365d > 1000.0", "group": "tier", "priority": 1},
        {"name": "Silver", "rule": "spend_365d > 100.0", "group": "tier", "priority": 2},
        {"name": "Buyer", "rule": "spend_365d > 0.0"},
    )
    assert evaluate(rules, {"spend_365d": 5000.0}, now=NOW) == {"Gold", "Buyer"}
    assert evaluate(rules, {"spend_365d": 500.0}, now=NOW) == {"Silver", "Buyer"}


def test_disabled_segments_are_skipped():
    rules = rules_for({"name": "Off", "rule": "orders_30d >= 0", "enabled": False})
    assert evaluate(rules, {"orders_30d": 3}, now=NOW) == set()


def test_time_derived_fields_use_now():
    rules = rules_for(
        {"name": "Anniversary", "builtin": "trigger:signup_anniversary_soon"},
        {"name": "Veteran", "rule": "days_since_signup >= 365"},
    )
    view = {"signup_date": "2024-05-05T09:00:00Z"}
    assert evaluate(rules, view, now="2026-05-01T00:00:00Z") == {"Anniversary", "Veteran"}
    assert evaluate(rules, view, now="2026-04-20T00:00:00Z") == {"Veteran"}
    assert evaluate(rules, view, now="2024-06-01T00:00:00Z") == set()


def test_list_and_map_fields():
    rules = rules_for(
        {"name": "Wants tent", "rule": '"tent" in recommended_products'},
        {"name": "VIP attr", "rule": "has(attributes.vip) && attributes.vip == true"},
    )
    view = {"recommended_products": ["stove", "tent"], "attributes": {"vip": True, "tags": ["a"]}}
    assert evaluate(rules, view, now=NOW) == {"Wants tent", "VIP attr"}
    assert evaluate(rules, {"recommended_products": [], "attributes": {}}, now=NOW) == set()


def test_memoised_results_follow_the_values(examples):
    # The same value tuples evaluated many times, interleaved, must keep giving the right answer.
    views = [{"spend_30d": float(s)} for s in (999, 1001, 999, 1001)] * 50
    results = [evaluate(examples, v, now=NOW) for v in views]
    assert results == [set() if v["spend_30d"] < 1000 else {"Big 30d"} for v in views]


def test_default_file_segments(default_rules):
    view = {
        "rfm_segment": "At Risk",
        "clv_tier": "high",
        "churn_risk": "high",
        "country": "US",
        "days_since_last_order": 40,
        "cart_abandoned": True,
        "inactive_30d": False,
    }
    got = evaluate(default_rules, view, now=NOW)
    # "High CLV" shares the lifecycle group with "High value at risk", which has the higher priority.
    assert got == {"High value at risk", "Likely to churn", "Abandoned cart"}
