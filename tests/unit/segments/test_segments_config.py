"""Loading and validating the segments file: every kind of problem is reported with the segment's name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segflow.segments.config import MAX_MERGE_FIELDS, SegmentConfigError, load_segments, parse_segments
from segflow.segments.fields import RFM_SEGMENTS


def config_with(*segments: dict, merge_fields: list[dict] | None = None, **extra) -> dict:
    return {"segments": list(segments), "merge_fields": merge_fields or [], **extra}


def problems_of(raw: dict) -> list:
    with pytest.raises(SegmentConfigError) as caught:
        parse_segments(raw)
    return caught.value.problems


def only_problem(raw: dict):
    problems = problems_of(raw)
    assert len(problems) == 1, problems
    return problems[0]


def test_default_file_loads_with_the_expected_shape(default_config):
    names = [s.name for s in default_config.segments]
    assert len(names) >= 10 and len(set(names)) == len(names)
    families = {s.builtin.split(":")[0] for s in default_config.segments if s.builtin}
    assert {"rfm", "clv", "churn", "trigger"} <= families
    assert any(s.rule for s in default_config.segments)
    tags = [f.tag for f in default_config.merge_fields]
    assert tags == ["FNAME", "LNAME", "CITY", "RFM", "CLUSTER", "CLVTIER", "LASTPROD", "LASTCAT", "RECOMMEND"]
    assert all(f.hubspot_property.startswith("segflow_") for f in default_config.merge_fields)
    assert {f.tag for f in default_config.merge_fields if not f.behavioural} == {"FNAME", "LNAME", "CITY"}


def test_loads_from_a_path_and_from_text(tmp_path: Path):
    raw = config_with({"name": "Big", "rule": "spend_30d > 1000"})
    text = yaml.safe_dump(raw)
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    assert load_segments(path).segments[0].name == "Big"
    assert load_segments(str(path)).segments[0].name == "Big"
    assert load_segments(text).segments[0].rule == "spend_30d > 1000"


def test_rfm_names_match_the_scoring_table():
    from segflow.scoring.rfm_segments import DEFAULT_SEGMENTS

    assert set(RFM_SEGMENTS) == set(DEFAULT_SEGMENTS)


def test_unknown_field_names_segment_and_suggests():
    problem = only_problem(config_with({"name": "US", "rule": 'contry == "US"'}))
    assert problem.segment == "US" and problem.kind == "unknown_field"
    assert "'contry'" in problem.message and "country" in problem.message
    assert "segment 'US'" in str(problem)


def test_unknown_function():
    problem = only_problem(config_with({"name": "F", "rule": "shout(country)"}))
    assert (problem.segment, problem.kind) == ("F", "unknown_function")


@pytest.mark.parametrize(
    "rule",
    [
        "country == 5",
        "orders_30d > 2.5",  # int field vs double literal
        "false && country > 3",  # hidden behind a short-circuit
        "spend_30d > 10.0 && country",  # && over a string
        "days_since_last_order <= 30 ? true : 3",  # branches of different types
        "recommended_products.exists(p, p > 3)",  # inside a macro
    ],
)
def test_type_mismatch(rule):
    problem = only_problem(config_with({"name": "T", "rule": rule}))
    assert (problem.segment, problem.kind) == ("T", "type"), problem
    assert "type mismatch" in problem.message


def test_rule_must_be_boolean():
    problem = only_problem(config_with({"name": "N", "rule": "spend_30d * 2.0"}))
    assert problem.kind == "type" and "true or false" in problem.message


def test_syntax_error_has_position():
    problem = only_problem(config_with({"name": "S", "rule": 'country == "US" &&'}))
    assert (problem.segment, problem.kind) == ("S", "syntax")
    assert "column" in problem.message


def test_merge_tag_too_long_or_lowercase():
    fields = [
        {"tag": "LASTPRODUCT", "name": "Last product", "source": "last_product_name"},
        {"tag": "fname", "name": "First", "source": "first_name"},
    ]
    problems = problems_of(config_with(merge_fields=fields))
    assert [p.kind for p in problems] == ["merge_tag", "merge_tag"]
    assert "LASTPRODUCT" in problems[0].message and "10 characters" in problems[0].message


def test_too_many_merge_fields():
    fields = [{"tag": f"F{i}", "name": f"Field {i}", "source": "city"} for i in range(MAX_MERGE_FIELDS + 1)]
    problem = only_problem(config_with(merge_fields=fields))
    assert problem.kind == "merge_fields" and str(MAX_MERGE_FIELDS + 1) in problem.message


def test_thirty_merge_fields_are_fine():
    fields = [{"tag": f"F{i}", "name": f"Field {i}", "source": "city"} for i in range(MAX_MERGE_FIELDS)]
    assert len(parse_segments(config_with(merge_fields=fields)).merge_fields) == MAX_MERGE_FIELDS


def test_merge_field_unknown_source_and_bad_expression():
    fields = [
        {"tag": "A", "name": "A", "source": "favourite_colour"},
        {"tag": "B", "name": "B", "expression": "city + 1"},
    ]
    kinds = sorted(p.kind for p in problems_of(config_with(merge_fields=fields)))
    assert kinds == ["type", "unknown_field"]


def test_duplicated_names_tags_and_lists():
    a = {
        "name": "A",
        "rule": "orders_30d > 1",
        "destinations": {"mailchimp": {"tag": "t"}, "hubspot": {"list": "L"}},
    }
    b = {"name": "A", "rule": "orders_30d > 2", "destinations": {"mailchimp": {"tag": "t"}}}
    c = {"name": "C", "rule": "orders_30d > 3", "destinations": {"hubspot": {"list": "L"}}}
    problems = problems_of(config_with(a, b, c))
    messages = " | ".join(p.message for p in problems)
    assert all(p.kind == "duplicate" for p in problems)
    assert (
        "segment name 'A'" in messages and "Mailchimp tag 't'" in messages and "HubSpot list 'L'" in messages
    )


def test_duplicated_merge_tags():
    fields = [
        {"tag": "CITY", "name": "City", "source": "city"},
        {"tag": "CITY", "name": "Town", "source": "city"},
    ]
    problem = only_problem(config_with(merge_fields=fields))
    assert problem.kind == "duplicate" and "merge tag 'CITY'" in problem.message


def test_parent_must_exist_and_not_cycle():
    missing = only_problem(config_with({"name": "Child", "rule": "orders_30d > 1", "parent": "Ghost"}))
    assert (missing.segment, missing.kind) == ("Child", "parent") and "'Ghost'" in missing.message
    cycle = problems_of(
        config_with(
            {"name": "A", "rule": "orders_30d > 1", "parent": "B"},
            {"name": "B", "rule": "orders_30d > 1", "parent": "A"},
            {"name": "C", "rule": "orders_30d > 1", "parent": "A"},
        )
    )
    assert len(cycle) == 1 and cycle[0].kind == "parent" and "cycle" in cycle[0].message


def test_builtin_family_and_value_are_checked():
    problems = problems_of(
        config_with(
            {"name": "X", "builtin": "rfm:Champion"},
            {"name": "Y", "builtin": "colour:red"},
            {"name": "Z", "builtin": "trigger:cart_left"},
        )
    )
    assert [(p.segment, p.kind) for p in problems] == [("X", "builtin"), ("Y", "builtin"), ("Z", "builtin")]
    assert "Champions" in problems[0].message


def test_vocabulary_extends_builtin_values():
    raw = config_with({"name": "X", "builtin": "rfm:Superfans"}, vocabulary={"rfm_segment": ["Superfans"]})
    assert parse_segments(raw).segments[0].builtin == "rfm:Superfans"


def test_structure_errors_name_the_segment():
    problems = problems_of(
        config_with(
            {"name": "NoCondition"},
            {"name": "Typo", "rule": "orders_30d > 1", "destinations": {"mailchimp": {"tags": "x"}}},
        )
    )
    assert {p.segment for p in problems} == {"NoCondition", "Typo"}


def test_shared_hubspot_property_needs_an_exclusive_group():
    def seg(name, value, group=None):
        hubspot = {"property": {"name": "segflow_stage", "value": value}}
        return {"name": name, "rule": "orders_30d > 1", "group": group, "destinations": {"hubspot": hubspot}}

    problem = only_problem(config_with(seg("A", "a"), seg("B", "b")))
    assert (problem.segment, problem.kind) == ("B", "hubspot_property")
    assert parse_segments(config_with(seg("A", "a", "stage"), seg("B", "b", "stage")))


def test_all_problems_are_reported_together():
    raw = config_with(
        {"name": "One", "rule": "contry == 1"},
        {"name": "Two", "rule": "spend_30d >"},
        merge_fields=[{"tag": "WAYTOOLONGTAG", "name": "x", "source": "city"}],
    )
    error_text = str(pytest.raises(SegmentConfigError, parse_segments, raw).value)
    assert "segment 'One'" in error_text and "segment 'Two'" in error_text and "WAYTOOLONGTAG" in error_text


def test_invalid_yaml_is_a_config_error():
    with pytest.raises(SegmentConfigError, match="YAML"):
        load_segments("segments: [\n  - {name: a")


def test_describe_lists_definitions(default_config):
    described = {d["name"]: d for d in default_config.describe()}
    assert set(described) == {s.name for s in default_config.segments}
    assert described["Abandoned cart"]["trigger"] is True and described["Champions"]["trigger"] is False
    assert described["Recent US buyers"]["rule"] == 'country == "US" && days_since_last_order <= 30'
    assert described["Champions"]["destinations"]["mailchimp"] == {"tag": "segflow: Champions"}
