"""Membership diffs: entries/exits, frequency caps on trigger segments, exit hysteresis, guardrails."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from segflow.segments.config import parse_segments
from segflow.segments.membership import check_guardrails, diff

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def config():
    return parse_segments(
        {
            "frequency_cap": {"max_entries": 2, "window_days": 7},
            "hysteresis": {"exit_after_evaluations": 2},
            "guardrails": {"max_active_segments": 3, "min_segment_size": 10},
            "segments": [
                {"name": "Cart", "builtin": "trigger:cart_abandoned", "priority": 1},
                {"name": "Browse", "builtin": "trigger:browse_abandoned", "priority": 2},
                {
                    "name": "Quiet",
                    "rule": "inactive_30d && orders_90d == 0",
                    "priority": 3,
                },  # trigger by its rule
                {"name": "Champions", "builtin": "rfm:Champions"},
                {"name": "Big", "rule": "spend_30d > 1000.0"},
            ],
        }
    )


def test_trigger_segments_are_inferred(config):
    assert {s.name for s in config.segments if config.is_trigger(s)} == {"Cart", "Browse", "Quiet"}


def test_entries_and_exits(config):
    change = diff({}, {"Champions", "Big"}, T0, None, config)
    assert change.entered == ["Big", "Champions"] and change.exited == []
    assert change.memberships == {"Big": "2026-05-01T08:00:00Z", "Champions": "2026-05-01T08:00:00Z"}
    assert change.changed


def test_nothing_changes_when_nothing_changed(config):
    first = diff({}, {"Champions", "Cart"}, T0, None, config)
    again = diff(first.memberships, {"Champions", "Cart"}, T0 + timedelta(hours=1), first.caps_state, config)
    assert again.entered == [] and again.exited == [] and not again.changed
    assert again.memberships == first.memberships  # since-when is kept
    assert again.caps_state == first.caps_state  # staying in a trigger segment uses no extra cap


def test_frequency_cap_two_trigger_entries_per_rolling_week(config):
    change = diff({}, {"Cart", "Browse", "Quiet"}, T0, None, config)
    assert change.entered == ["Browse", "Cart"]  # lowest priority numbers first
    assert change.capped == ["Quiet"]
    # They leave both trigger segments; a new trigger within the week is still capped ...
    left = diff(change.memberships, set(), T0 + DAY, change.caps_state, config)
    assert left.exited == ["Browse", "Cart"]
    capped = diff(left.memberships, {"Quiet"}, T0 + 6 * DAY, left.caps_state, config)
    assert capped.entered == [] and capped.capped == ["Quiet"]
    # ... and allowed once the first entries are more than 7 days old.
    later = diff(
        capped.memberships, {"Quiet"}, T0 + 7 * DAY + timedelta(seconds=1), capped.caps_state, config
    )
    assert later.entered == ["Quiet"]


def test_cap_does_not_apply_to_score_segments(config):
    change = diff({}, {"Cart", "Browse", "Quiet", "Champions", "Big"}, T0, None, config)
    assert set(change.entered) == {"Cart", "Browse", "Champions", "Big"}


def test_re_entering_a_trigger_segment_counts_again(config):
    state = None
    memberships: dict = {}
    entered = []
    for hour, current in enumerate([{"Cart"}, set(), {"Cart"}, set(), {"Cart"}]):
        change = diff(memberships, current, T0 + timedelta(hours=hour), state, config)
        memberships, state = change.memberships, change.caps_state
        entered += change.entered
    assert entered == ["Cart", "Cart"]


def test_hysteresis_keeps_a_score_segment_for_one_false_evaluation(config):
    member = diff({}, {"Champions"}, T0, None, config)
    once = diff(member.memberships, set(), T0 + DAY, member.caps_state, config)
    assert once.exited == [] and once.held == ["Champions"] and "Champions" in once.memberships
    back = diff(once.memberships, {"Champions"}, T0 + 2 * DAY, once.caps_state, config)
    assert back.entered == [] and back.memberships["Champions"] == member.memberships["Champions"]
    # The count restarted: two false evaluations in a row are now needed again.
    first = diff(back.memberships, set(), T0 + 3 * DAY, back.caps_state, config)
    second = diff(first.memberships, set(), T0 + 4 * DAY, first.caps_state, config)
    assert first.exited == [] and second.exited == ["Champions"] and "Champions" not in second.memberships
    assert second.caps_state["misses"] == {}


def test_trigger_segments_exit_at_once(config):
    member = diff({}, {"Cart"}, T0, None, config)
    assert diff(member.memberships, set(), T0 + DAY, member.caps_state, config).exited == ["Cart"]


def test_removed_segments_exit_at_once(config):
    change = diff({"Retired": "2026-01-01T00:00:00Z"}, set(), T0, None, config)
    assert change.exited == ["Retired"] and change.memberships == {}


def test_guardrails_report_without_changing_anything(config):
    sizes = {"Cart": 3, "Browse": 50, "Quiet": 80, "Champions": 5, "Big": 400, "Unknown": 9}
    violations = check_guardrails(sizes, config)
    kinds = sorted((v.kind, v.segment) for v in violations)
    # 5 active configured segments > 3; Champions below 10; Cart is small but a trigger audience.
    assert kinds == [("too_many_segments", None), ("too_small", "Champions")]
    too_many = next(v for v in violations if v.kind == "too_many_segments")
    assert (too_many.value, too_many.limit) == (5, 3)
    assert sizes["Champions"] == 5  # the input is untouched


def test_guardrails_quiet_when_within_limits(config):
    assert check_guardrails({"Champions": 10, "Big": 0, "Cart": 1}, config) == []


def test_default_guardrails(default_config):
    sizes = {f"S{i}": 100 for i in range(25)}
    assert check_guardrails(sizes, default_config) == []  # unknown names are not counted
    assert default_config.guardrails.max_active_segments == 20


def test_a_held_member_of_an_exclusive_group_blocks_the_group_until_it_leaves():
    grouped = parse_segments(
        {
            "hysteresis": {"exit_after_evaluations": 2},
            "segments": [
                {"name": "At risk", "builtin": "rfm:At Risk", "group": "life", "priority": 1},
                {"name": "Valuable", "builtin": "clv:high", "group": "life", "priority": 2},
            ],
        }
    )
    held = diff({"At risk": "2026-04-01T00:00:00Z"}, {"Valuable"}, T0, None, grouped)
    assert held.memberships == {"At risk": "2026-04-01T00:00:00Z"} and held.held == ["At risk"]
    assert held.entered == [] and held.exited == []
    switched = diff(held.memberships, {"Valuable"}, T0 + DAY, held.caps_state, grouped)
    assert switched.exited == ["At risk"] and switched.entered == ["Valuable"]
