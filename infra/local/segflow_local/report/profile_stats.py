"""One streaming pass over profiles.jsonl, keeping only counts and sums (never an email or a name).

Every field is optional and may be malformed: a value that does not fit is ignored, and `seen` records
which fields carried a usable value at least once so a section can say "not available yet".
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A light syntax check: ingest already validated and normalised emails; this only rules out blanks and junk.
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Ineligibility reasons that mean the address itself is unusable, so the contact drops at the email stage.
EMAIL_REASONS = frozenset({"invalid_email", "missing_email", "no_email", "email_invalid", "email_missing"})
CONSENTED = frozenset({"opted_in", "subscribed", "granted", "consented"})
# Per-destination statuses meaning "the destination holds the current state of this contact".
SYNCED = frozenset(
    {"synced", "ok", "success", "succeeded", "pushed", "created", "updated", "unchanged", "in_sync"}
)
# Consent funnel stages after "all contacts", in order, with the profile field each one needs.
FUNNEL_STAGES = ("valid_email", "eligible", "consented", "synced")
FUNNEL_FIELDS = ("email", "eligible", "consent_status", "sync")
CHURN_BINS = 10
CLUSTER_METRICS = ("recency_days", "frequency", "monetary", "clv_predicted", "churn_probability")


@dataclass
class Mean:
    total: float = 0.0
    count: int = 0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.total += value
            self.count += 1

    @property
    def value(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class Group:
    """Customers sharing one label, with running means of some metrics."""

    size: int = 0
    means: dict[str, Mean] = field(default_factory=lambda: defaultdict(Mean))


@dataclass
class ProfileStats:
    total: int = 0
    seen: set[str] = field(default_factory=set)
    rfm_cells: Counter[tuple[int, int]] = field(default_factory=Counter)
    rfm_cell_names: dict[tuple[int, int], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rfm_segments: Counter[str] = field(default_factory=Counter)
    clusters: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    clv_tiers: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    churn_risk: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    churn_histogram: list[int] = field(default_factory=lambda: [0] * CHURN_BINS)
    clv: Mean = field(default_factory=Mean)
    funnel_flags: Counter[tuple[bool, ...]] = field(default_factory=Counter)
    consent_statuses: Counter[str] = field(default_factory=Counter)
    ineligible_reasons: Counter[str] = field(default_factory=Counter)
    segment_members: Counter[str] = field(default_factory=Counter)
    sync_statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, profile: Mapping[str, Any]) -> None:
        self.total += 1
        self._add_rfm(profile)
        self._add_predictions(profile)
        self._add_segments(profile.get("segments"))
        self._add_funnel(profile)

    def _add_rfm(self, profile: Mapping[str, Any]) -> None:
        r, f = _score(profile.get("r_score")), _score(profile.get("f_score"))
        name = _text(profile.get("rfm_segment"))
        if name:
            self.seen.add("rfm_segment")
            self.rfm_segments[name] += 1
        if r and f:
            self.seen.add("rfm_scores")
            self.rfm_cells[(r, f)] += 1
            if name:
                self.rfm_cell_names[(r, f)][name] += 1

    def _add_predictions(self, profile: Mapping[str, Any]) -> None:
        metrics = {name: _number(profile.get(name)) for name in CLUSTER_METRICS}
        label = _text(profile.get("cluster_label"))
        cluster_id = profile.get("cluster_id")
        if (
            not label
            and isinstance(cluster_id, (int, str))
            and not isinstance(cluster_id, bool)
            and str(cluster_id)
        ):
            label = f"Cluster {cluster_id}"
        if label:
            self.seen.add("cluster")
            _add_to(self.clusters[label], metrics)
        clv, churn = metrics["clv_predicted"], metrics["churn_probability"]
        self.clv.add(clv)
        tier = _text(profile.get("clv_tier"))
        if tier:
            self.seen.add("clv_tier")
            _add_to(self.clv_tiers[tier], {"clv_predicted": clv})
        risk = _text(profile.get("churn_risk"))
        if risk:
            self.seen.add("churn_risk")
            _add_to(self.churn_risk[risk], {"churn_probability": churn})
        if churn is not None and 0 <= churn <= 1:
            self.seen.add("churn_probability")
            self.churn_histogram[min(int(churn * CHURN_BINS), CHURN_BINS - 1)] += 1

    def _add_segments(self, segments: Any) -> None:
        names: Iterable[Any]
        if isinstance(segments, Mapping):
            names = segments.keys()
        elif isinstance(segments, list):
            names = (s.get("name") if isinstance(s, Mapping) else s for s in segments)
        else:
            return
        self.seen.add("segments")
        for name in {n for n in map(_text, names) if n}:
            self.segment_members[name] += 1

    def _add_funnel(self, profile: Mapping[str, Any]) -> None:
        reasons = profile.get("ineligible_reasons")
        reasons = [r for r in map(_text, reasons) if r] if isinstance(reasons, list) else []
        self.ineligible_reasons.update(reasons)
        email = profile.get("email")
        if isinstance(email, str):
            self.seen.add("email")
        valid_email = isinstance(email, str) and bool(EMAIL_SHAPE.match(email.strip()))
        valid_email = valid_email and not EMAIL_REASONS.intersection(reasons)
        eligible = profile.get("eligible")
        if isinstance(eligible, bool):
            self.seen.add("eligible")
        consent = _text(profile.get("consent_status"))
        if consent:
            self.seen.add("consent_status")
            self.consent_statuses[consent] += 1
        synced = False
        sync = profile.get("sync")
        if isinstance(sync, Mapping):
            self.seen.add("sync")
            for destination, state in sync.items():
                status = _text(state.get("status") if isinstance(state, Mapping) else state) or "unknown"
                self.sync_statuses[str(destination)][status] += 1
                synced = synced or status.lower() in SYNCED
        consented = consent is not None and consent.lower() in CONSENTED
        self.funnel_flags[(valid_email, eligible is True, consented, synced)] += 1

    def funnel(self) -> list[tuple[str, int]]:
        """(stage, contacts) for the stages whose input exists, each stage keeping only the contacts that
        passed every earlier one, so the funnel narrows. The first stage is every contact."""
        stages = [("all", self.total)]
        kept = [i for i, name in enumerate(FUNNEL_FIELDS) if name in self.seen]
        for depth, index in enumerate(kept):
            passed = sum(
                n for flags, n in self.funnel_flags.items() if all(flags[k] for k in kept[: depth + 1])
            )
            stages.append((FUNNEL_STAGES[index], passed))
        return stages


def _add_to(group: Group, metrics: Mapping[str, float | None]) -> None:
    group.size += 1
    for name, value in metrics.items():
        group.means[name].add(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _score(value: Any) -> int | None:
    number = _number(value)
    if number is None or number != int(number) or not 1 <= number <= 5:
        return None
    return int(number)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None


def profile_stats(profiles: Iterable[Mapping[str, Any]]) -> ProfileStats:
    stats = ProfileStats()
    for profile in profiles:
        stats.add(profile)
    return stats
