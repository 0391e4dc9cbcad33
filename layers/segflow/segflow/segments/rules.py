"""Compile a validated segments file once, then evaluate a profile view into its memberships.

A segment matches when its builtin (if any) and its CEL rule (if any) both hold, its parent matched, and
no segment of higher priority (lower number) in the same exclusive group matched. Values are coerced to
the catalogue types first; a rule that cannot be evaluated for a profile (say `days_since_last_order <= 30`
for a customer without orders) does not match.

cel-python interprets a rule in about 0.3-1.5 ms, so each rule memoises its result per distinct tuple of
the values it reads: rules over categories (rfm_segment, country, tiers) then cost a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable

from celpy import celtypes

from segflow.segments import builtins, expressions, triggers
from segflow.segments.config import Segment, SegmentConfig
from segflow.segments.fields import CATALOGUE
from segflow.segments.timeutil import to_datetime

RULE_CACHE_SIZE = 4096
_DERIVED = ("days_since_signup", "days_to_signup_anniversary", "signup_anniversary_soon", "clv_tier_up")


@dataclass(frozen=True)
class CompiledSegment:
    segment: Segment
    builtin: builtins.Matcher | None
    rule: expressions.CheckedExpression | None
    matches_rule: Callable[[tuple[Any, ...]], bool] | None
    is_trigger: bool


@dataclass
class CompiledRules:
    config: SegmentConfig
    segments: list[CompiledSegment]  # parents before children
    merge_fields: dict[str, expressions.CheckedExpression]  # merge tag -> expression
    fields: frozenset[str]  # catalogue fields any rule or builtin reads

    @property
    def trigger_segments(self) -> frozenset[str]:
        return frozenset(c.segment.name for c in self.segments if c.is_trigger)


def compile_rules(config: SegmentConfig) -> CompiledRules:
    compiled = [_compile_segment(config, s) for s in _parents_first(config)]
    merge = {
        f.tag: expressions.check(f.expression, expect_bool=False) for f in config.merge_fields if f.expression
    }
    fields = set()
    for item in compiled:
        if item.rule:
            fields.update(item.rule.fields)
        if item.segment.builtin:
            fields.add(builtins.builtin_field(item.segment.builtin))
    return CompiledRules(config, compiled, merge, frozenset(fields))


def evaluate(compiled: CompiledRules, profile_view: Mapping[str, Any], now: Any = None) -> set[str]:
    """Names of the segments the profile belongs to now (before caps and hysteresis: see membership)."""
    view = with_derived(profile_view, compiled.config, now, compiled.fields)
    matched: set[str] = set()
    for item in compiled.segments:
        segment = item.segment
        if segment.parent is not None and segment.parent not in matched:
            continue
        if item.builtin is not None and not item.builtin(view):
            continue
        if item.matches_rule is not None:
            values = tuple(
                expressions.plain_value(view.get(name), CATALOGUE[name].kind) for name in item.rule.fields
            )
            try:
                hit = item.matches_rule(values)
            except TypeError:  # an unhashable value (a list of maps): evaluate without the memo
                hit = _is_true(expressions.run(item.rule, values))
            if not hit:
                continue
        matched.add(segment.name)
    return _exclusive(compiled, matched)


def with_derived(
    profile_view: Mapping[str, Any],
    config: SegmentConfig,
    now: Any = None,
    needed: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The view plus time-derived fields (signup anniversary, days since signup, clv_tier_up) at `now`."""
    view = dict(profile_view)
    if needed is not None and not needed.intersection(_DERIVED):
        return view
    moment = to_datetime(now) if now is not None else datetime.now(timezone.utc)
    signup = to_datetime(view.get("signup_date"))
    if signup is not None:
        view.setdefault("days_since_signup", (moment - signup).days)
        view.setdefault("days_to_signup_anniversary", triggers.days_to_anniversary(signup, moment))
        view.setdefault(
            "signup_anniversary_soon",
            triggers.signup_anniversary_soon(signup, moment, config.triggers.signup_anniversary_soon),
        )
    if "clv_tier_up_at" in view:
        view.setdefault("clv_tier_up", triggers.clv_tier_up(view, moment, config.triggers.clv_tier_up))
    return view


def _compile_segment(config: SegmentConfig, segment: Segment) -> CompiledSegment:
    rule = expressions.check(segment.rule) if segment.rule else None
    return CompiledSegment(
        segment=segment,
        builtin=builtins.matcher(segment.builtin) if segment.builtin else None,
        rule=rule,
        matches_rule=_memoised(rule) if rule else None,
        is_trigger=config.is_trigger(segment),
    )


def _memoised(rule: expressions.CheckedExpression) -> Callable[[tuple[Any, ...]], bool]:
    @lru_cache(maxsize=RULE_CACHE_SIZE)
    def matches(values: tuple[Any, ...]) -> bool:
        return _is_true(expressions.run(rule, values))

    return matches


def _is_true(result: Any) -> bool:
    return isinstance(result, celtypes.BoolType) and bool(result)


def _parents_first(config: SegmentConfig) -> list[Segment]:
    enabled = [s for s in config.segments if s.enabled]
    names = {s.name for s in enabled}
    ordered: list[Segment] = []
    placed: set[str] = set()
    pending = sorted(enabled, key=lambda s: (s.priority, s.name))
    while pending:
        ready = [s for s in pending if s.parent is None or s.parent in placed or s.parent not in names]
        if not ready:  # a cycle (rejected by the loader): keep going rather than loop forever
            ready = pending[:1]
        for segment in ready:
            ordered.append(segment)
            placed.add(segment.name)
        pending = [s for s in pending if s.name not in placed]
    return ordered


def _exclusive(compiled: CompiledRules, matched: set[str]) -> set[str]:
    winners: dict[str, Segment] = {}
    for item in compiled.segments:
        segment = item.segment
        if segment.group is None or segment.name not in matched:
            continue
        best = winners.get(segment.group)
        if best is None or (segment.priority, segment.name) < (best.priority, best.name):
            winners[segment.group] = segment
    losers = {
        item.segment.name
        for item in compiled.segments
        if item.segment.group is not None and winners.get(item.segment.group) is not item.segment
    }
    return matched - losers
