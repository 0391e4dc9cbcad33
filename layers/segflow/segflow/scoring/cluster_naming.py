"""Human labels and one-line descriptions for clusters, derived from centroids vs the population.

A centroid in robust-scaled space says, per feature, how many interquartile ranges it sits above or
below the population median; half an IQR either way reads as "high" / "low". Labels are built from
those levels and made unique within a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEVEL_THRESHOLD = 0.5  # IQRs from the population median
ONE_TIME_ORDERS = 1.5  # a centroid below this many orders is a one-time-buyer cluster whatever the population
ENGAGEMENT = ("email_opens", "email_clicks", "page_views")
# Qualifier dimensions in order of preference for telling two same-named clusters apart.
_QUALIFIERS = {
    "engagement": ("Unengaged", "Engaged"),
    "recency_days": ("Recent", "Dormant"),
    "avg_order_value": ("Budget", "Premium"),
    "tenure_days": ("Newer", "Long-time"),
    "frequency": ("One-off", "Repeat"),
}


def _level(z: float | None) -> str:
    if z is None:
        return "typical"
    return "high" if z >= LEVEL_THRESHOLD else "low" if z <= -LEVEL_THRESHOLD else "typical"


def feature_levels(
    names: Sequence[str], scaled_centroid: np.ndarray, centroid_units: np.ndarray
) -> dict[str, str]:
    """low / typical / high per labelled dimension (engagement pools opens, clicks and views)."""
    z = dict(zip(names, scaled_centroid, strict=True))
    levels = {name: _level(z.get(name)) for name in ("recency_days", "frequency", "monetary", "tenure_days")}
    # Where most customers bought once, the median is one order: "typical" would read as regular.
    if dict(zip(names, centroid_units, strict=True))["frequency"] < ONE_TIME_ORDERS:
        levels["frequency"] = "low"
    engagement = [z[n] for n in ENGAGEMENT if n in z]
    levels["engagement"] = _level(float(np.mean(engagement))) if engagement else "typical"
    levels["avg_order_value"] = _level(z.get("avg_order_value"))
    return levels


def base_label(levels: dict[str, str]) -> tuple[str, set[str]]:
    """Label from recency, frequency, spend and tenure levels, and the dimensions it already names."""
    spend = {"high": "Big Spenders", "low": "Low Spenders", "typical": "Buyers"}[levels["monetary"]]
    if levels["tenure_days"] == "low" and levels["recency_days"] != "high":
        label = "New Big Spenders" if levels["monetary"] == "high" else "New Customers"
        return label, {"tenure_days", "recency_days", "monetary"}
    if levels["recency_days"] == "high":
        return f"Lapsed {spend}", {"recency_days", "monetary"}
    if levels["frequency"] == "high":
        label = "Frequent High Spenders" if levels["monetary"] == "high" else f"Frequent {spend}"
        return label, {"frequency", "monetary"}
    prefix = "Occasional" if levels["frequency"] == "low" else "Regular"
    return f"{prefix} {spend}", {"frequency", "monetary"}


def unique_labels(levels_per_cluster: Sequence[dict[str, str]], taken: Sequence[str] = ()) -> list[str]:
    """Base labels; clusters sharing one get a qualifier from the first dimension on which they differ
    (a member at the typical level keeps the plain label), and a number as the last resort.

    ``taken`` holds labels already used in the model (inherited from a previous model).
    """
    bases = [base_label(levels) for levels in levels_per_cluster]
    labels = [label for label, _ in bases]
    named = [set(dims) for _, dims in bases]
    for _ in range(len(_QUALIFIERS)):
        groups = _clashing_groups(labels, taken)
        if not groups:
            break
        for members in groups:
            for dim, (low_word, high_word) in _QUALIFIERS.items():
                if any(dim in named[i] for i in members):
                    continue
                found = {levels_per_cluster[i][dim] for i in members} | (
                    {"typical"} if _taken_clash(members, labels, taken) else set()
                )
                if len(found) > 1:
                    for i in members:
                        level = levels_per_cluster[i][dim]
                        if level != "typical":
                            labels[i] = f"{low_word if level == 'low' else high_word} {labels[i]}"
                        named[i].add(dim)
                    break
    counts: dict[str, int] = {label: 1 for label in taken}
    for i, label in enumerate(labels):
        counts[label] = counts.get(label, 0) + 1
        if counts[label] > 1:
            labels[i] = f"{label} {counts[label]}"
    return labels


def _clashing_groups(labels: Sequence[str], taken: Sequence[str]) -> list[list[int]]:
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    return [members for label, members in by_label.items() if len(members) > 1 or label in taken]


def _taken_clash(members: Sequence[int], labels: Sequence[str], taken: Sequence[str]) -> bool:
    """An inherited cluster with the same label counts as a 'typical' member of the group."""
    return labels[members[0]] in taken


def describe(
    names: Sequence[str], scaled_centroid: np.ndarray, centroid_units: np.ndarray, share: float
) -> str:
    """One line: the typical member, then the (up to two) features that set the cluster apart most."""
    values = dict(zip(names, centroid_units, strict=True))
    summary = (
        f"{share:.0%} of customers; typically {values['frequency']:.1f} orders, "
        f"{values['monetary']:,.0f} spent, last order {values['recency_days']:.0f} days ago"
    )
    distinct = np.argsort(-np.abs(scaled_centroid), kind="stable")[:2]
    phrases = [
        _phrase(names[j], scaled_centroid[j]) for j in distinct if abs(scaled_centroid[j]) >= LEVEL_THRESHOLD
    ]
    return summary + (
        f"; stands out for {' and '.join(phrases)}" if phrases else "; close to the typical customer"
    )


_PHRASES = {
    "recency_days": ("very recent orders", "a long time since the last order"),
    "frequency": ("few orders", "many orders"),
    "monetary": ("low total spend", "high total spend"),
    "avg_order_value": ("small baskets", "large baskets"),
    "tenure_days": ("a short history with us", "a long history with us"),
    "email_opens": ("few email opens", "many email opens"),
    "email_clicks": ("few email clicks", "many email clicks"),
    "page_views": ("little browsing", "heavy browsing"),
}


def _phrase(name: str, z: float) -> str:
    low, high = _PHRASES.get(name, (f"low {name}", f"high {name}"))
    return high if z > 0 else low
