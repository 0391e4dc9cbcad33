"""Membership changes for one contact, with frequency caps and hysteresis; guardrails over the population.

`diff` turns the segments a profile matches now into entries and exits:
- trigger segments (config.is_trigger) are frequency-capped: a contact enters at most
  `frequency_cap.max_entries` of them per rolling `window_days` (default 2 per 7 days); when more want in at
  once, lower `priority` numbers go first; a capped segment is retried at the next evaluation. Trigger
  segments are left as soon as their condition is false (a purchase ends "cart abandoned" at once);
- other segments have exit hysteresis: a member leaves only after its condition was false in
  `hysteresis.exit_after_evaluations` consecutive evaluations (default 2, i.e. two nightly runs), so a
  customer sitting on a score boundary does not flap. A true evaluation resets the count. (Tiers get their
  own margin-based hysteresis in the scoring step.) Segments no longer in the file are left at once.
  While a member of an exclusive group is held, the group's other segments are not entered (they are
  entered at the evaluation that lets the held one go), so a contact is never in two segments of a group.
- evaluating the same inputs again yields no entries or exits.

The per-contact state is a JSON-friendly dict: {"entries": [[segment, iso], ...], "misses": {segment: n}}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segflow.segments.config import SegmentConfig
from segflow.segments.timeutil import US_PER_DAY, iso_from_us, to_us


@dataclass(frozen=True)
class Change:
    entered: list[str]  # sorted
    exited: list[str]  # sorted
    memberships: dict[str, str]  # segment -> since (ISO)
    caps_state: dict[str, Any]
    capped: list[str] = field(default_factory=list)  # trigger segments held back by the frequency cap
    held: list[str] = field(default_factory=list)  # kept by hysteresis although their condition is false

    @property
    def changed(self) -> bool:
        return bool(self.entered or self.exited)


@dataclass(frozen=True)
class Violation:
    kind: str  # too_many_segments | too_small
    segment: str | None
    message: str
    value: int
    limit: int


def diff(
    previous: Mapping[str, str] | None,
    current: set[str] | frozenset[str],
    now: Any,
    caps_state: Mapping[str, Any] | None,
    config: SegmentConfig,
) -> Change:
    now_us = to_us(now)
    if now_us is None:
        raise ValueError("now must be a datetime or an ISO timestamp")
    now_iso = iso_from_us(now_us)
    previous = dict(previous or {})
    state = caps_state or {}
    window = config.frequency_cap.window_days * US_PER_DAY
    entries = [
        [name, at]
        for name, at in state.get("entries", [])
        if (ts := to_us(at)) is not None and now_us - window < ts <= now_us
    ]
    misses = {k: int(v) for k, v in (state.get("misses") or {}).items() if k in previous}
    segments = config.by_name

    memberships: dict[str, str] = {}
    exited, held = [], []
    for name, since in previous.items():
        segment = segments.get(name)
        if segment is not None and name in current:
            memberships[name] = since
            misses.pop(name, None)
        elif segment is None or config.is_trigger(segment):
            exited.append(name)
            misses.pop(name, None)
        elif misses.get(name, 0) + 1 >= config.hysteresis.exit_after_evaluations:
            exited.append(name)
            misses.pop(name, None)
        else:
            misses[name] = misses.get(name, 0) + 1
            memberships[name] = since
            held.append(name)

    entered, capped = [], []
    # An exclusive group keeps its held member until it leaves: a contact is never in two of its segments.
    held_groups = {segments[n].group for n in held} - {None}
    candidates = sorted(
        (
            segments[n]
            for n in current
            if n not in previous and n in segments and segments[n].group not in held_groups
        ),
        key=lambda s: (s.priority, s.name),
    )
    for segment in candidates:
        if config.is_trigger(segment):
            if len(entries) >= config.frequency_cap.max_entries:
                capped.append(segment.name)
                continue
            entries.append([segment.name, now_iso])
        memberships[segment.name] = now_iso
        entered.append(segment.name)

    new_state: dict[str, Any] = {"entries": entries, "misses": dict(sorted(misses.items()))}
    return Change(
        entered=sorted(entered),
        exited=sorted(exited),
        memberships=dict(sorted(memberships.items())),
        caps_state=new_state,
        capped=sorted(capped),
        held=sorted(held),
    )


def check_guardrails(sizes: Mapping[str, int], config: SegmentConfig) -> list[Violation]:
    """Report (never fix) too many active segments and non-trigger segments below the minimum size."""
    guardrails = config.guardrails
    segments = config.by_name
    active = sorted(name for name, size in sizes.items() if size > 0 and name in segments)
    violations = []
    if len(active) > guardrails.max_active_segments:
        violations.append(
            Violation(
                "too_many_segments",
                None,
                f"{len(active)} active segments, more than the {guardrails.max_active_segments} allowed",
                len(active),
                guardrails.max_active_segments,
            )
        )
    for name in active:
        size = sizes[name]
        # Trigger audiences are small and short-lived by nature; the floor is for static micro-segments.
        if size < guardrails.min_segment_size and not config.is_trigger(segments[name]):
            violations.append(
                Violation(
                    "too_small",
                    name,
                    f"segment '{name}' has {size} members, below the minimum {guardrails.min_segment_size}",
                    size,
                    guardrails.min_segment_size,
                )
            )
    return violations
