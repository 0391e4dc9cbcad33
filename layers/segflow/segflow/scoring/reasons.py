"""Plain-word reasons behind each customer's churn risk and value tier (numpy only).

Each model input's contribution is measured against the average training customer (standardised
input 0): for churn, coefficient x input on the logit; for CLV, the change in log expected spend when
that input is set to average -- in both parts of the blend: the rate-dropout regression's standardised
input, and the matching quantity of the BG/NBD x Gamma-Gamma summary: repeat days, age and days since the
last order set to the value whose engineered input is the training average, the repeat order value to the
typical customer's average order (a customer given repeat days it did not have gets the Gamma-Gamma
population mean as its repeat order value, as Gamma-Gamma itself does for customers without repeats).
Contributions are pooled into concepts (recency, frequency, ...). A
customer in the high tier is explained by what pushes its score up, one in the low tier by what pushes
it down (medium, or no tier given: the direction of the total). The strongest concepts are phrased
with the customer's actual numbers, e.g. "no order in 214 days, 3.1x longer than usual for them".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from segflow.scoring import bgnbd
from segflow.scoring.artifact import require_kind
from segflow.scoring.value_inference import (
    VALUE_KIND,
    btyd_summary_of,
    expected_spend,
    spend_components,
    standardized,
)

CONCEPTS: dict[str, tuple[str, ...]] = {
    "recency": ("log_days_since_order", "dormancy"),
    "frequency": ("log_repeat_days", "has_repeat"),
    "tenure": ("log_age_days",),
    "order_value": ("log_avg_order_value", "log_repeat_order_value"),
    "email": ("log_email_opens", "log_email_clicks", "unsubscribed"),
    "browsing": ("log_page_views", "log_cart_adds"),
}
MIN_CONTRIBUTION = 0.05  # on the logit / log-spend scale: smaller pushes are not worth a sentence
TYPICAL_BAND = (0.8, 1.25)  # an average order within this ratio of the typical one is "typical"


def explain(
    artifact: Mapping[str, Any], features: pd.DataFrame, tiers: pd.DataFrame | None = None, top_n: int = 3
) -> pd.DataFrame:
    """churn_reasons and clv_reasons (lists of sentences, strongest first) per customer.

    ``tiers`` (optional, indexed like features) holds churn_risk and clv_tier to explain towards.
    """
    require_kind(artifact, VALUE_KIND)
    churn_model, clv_model = artifact["churn"], artifact["clv"]
    churn_z = standardized(churn_model, features)
    churn_parts = churn_z * np.asarray(churn_model["coef"], dtype=np.float64)
    clv_parts = _clv_contributions(
        clv_model, standardized(clv_model, features), btyd_summary_of(features), artifact.get("reference", {})
    )
    sentences = _Sentences(features, artifact.get("reference", {}), artifact.get("recent_days", 90))
    return pd.DataFrame(
        {
            "churn_reasons": _reasons(
                _pool(churn_parts, churn_model["inputs"], sentences),
                sentences,
                top_n,
                _tier_direction(tiers, "churn_risk", features),
            ),
            "clv_reasons": _reasons(
                _pool(clv_parts, clv_model["inputs"], sentences),
                sentences,
                top_n,
                _tier_direction(tiers, "clv_tier", features),
            ),
        },
        index=features.index,
    )


def _clv_contributions(
    model: Mapping[str, Any], z: np.ndarray, summary: np.ndarray, reference: Mapping[str, float]
) -> np.ndarray:
    horizon, btyd = model["horizon_days"], model.get("btyd")
    weight = float(btyd["weight"]) if btyd is not None else 0.0

    def log_spend(zz: np.ndarray, btyd_spend: np.ndarray | float) -> np.ndarray:
        rate_dropout = expected_spend(*spend_components(model, zz), horizon)
        return np.log(np.maximum((1.0 - weight) * rate_dropout + weight * btyd_spend, 1e-300))

    def btyd_spend(ss: np.ndarray) -> np.ndarray | float:
        return bgnbd.expected_spend(btyd, *ss.T, horizon) if btyd is not None else 0.0

    full_btyd = btyd_spend(summary)  # the BTYD part only changes for inputs that map onto its summary
    full = log_spend(z, full_btyd)
    averages = _summary_averages(model, reference) if btyd is not None else {}
    parts = np.empty_like(z)
    for j, name in enumerate(model["inputs"]):
        averaged = z.copy()
        averaged[:, j] = 0.0
        changed = full_btyd
        if name in averages:
            population_value = _population_order_value(btyd)  # type: ignore[arg-type]
            changed = btyd_spend(_summary_with_average(summary, name, averages[name], population_value))
        parts[:, j] = full - log_spend(averaged, changed)
    return parts


# Inputs that are log1p of a BTYD summary quantity (x, t_x, T, m; days since the last order = T - t_x).
_SUMMARY_INPUTS = ("log_repeat_days", "log_age_days", "log_days_since_order")


def _summary_averages(model: Mapping[str, Any], reference: Mapping[str, float]) -> dict[str, float]:
    """Per input, the summary quantity that stands for the average customer: the one whose log1p is the
    training mean of the input; for the repeat order value, the typical customer's average order."""
    means = dict(zip(model["inputs"], model["scaler"]["mean"], strict=True))
    averages = {name: float(np.expm1(means[name])) for name in _SUMMARY_INPUTS if name in means}
    if "log_repeat_order_value" in means and reference.get("avg_order_value"):
        averages["log_repeat_order_value"] = float(reference["avg_order_value"])
    return averages


def _population_order_value(btyd: Mapping[str, Any]) -> float:
    """Gamma-Gamma's value per purchase for a customer without repeat purchases: the population mean."""
    return float(bgnbd.expected_order_value(btyd["gamma_gamma"], np.zeros(1), np.zeros(1))[0])


def _summary_with_average(
    summary: np.ndarray, name: str, average: float, population_order_value: float
) -> np.ndarray:
    """The BTYD summary with one quantity set to its average, the others kept (t_x stays within 0..T)."""
    x, t_x, T, m = (column.copy() for column in summary.T)
    since = T - t_x
    if name == "log_repeat_days":
        m = np.where(x > 0, m, population_order_value)
        x[:] = average
    elif name == "log_age_days":
        T[:] = average
        t_x = np.clip(average - since, 0.0, average)
    elif name == "log_days_since_order":
        t_x = np.clip(T - average, 0.0, T)
    elif name == "log_repeat_order_value":
        m[:] = average
    return np.column_stack([x, t_x, T, m])


def _pool(parts: np.ndarray, inputs: list[str], sentences: _Sentences) -> dict[str, np.ndarray]:
    """Contributions summed per concept; concepts with nothing worth saying for a customer get 0."""
    position = {name: j for j, name in enumerate(inputs)}
    pooled = {}
    for concept, names in CONCEPTS.items():
        columns = [position[n] for n in names if n in position]
        if columns:
            pooled[concept] = parts[:, columns].sum(axis=1)
    if "log_repeat_order_value" in position and {"frequency", "order_value"} <= set(pooled):
        # Without a repeat purchase that input is 0 because nothing was repeated: a frequency matter.
        moved = np.where(sentences.single_purchase_day(), parts[:, position["log_repeat_order_value"]], 0.0)
        pooled["order_value"] = pooled["order_value"] - moved
        pooled["frequency"] = pooled["frequency"] + moved
    if "order_value" in pooled:
        pooled["order_value"] = np.where(sentences.order_value_stands_out(), pooled["order_value"], 0.0)
    return pooled


def _tier_direction(tiers: pd.DataFrame | None, column: str, features: pd.DataFrame) -> np.ndarray:
    """+1 for high, -1 for low, 0 (= follow the total) for medium or unknown."""
    if tiers is None or column not in tiers:
        return np.zeros(len(features))
    mapped = tiers[column].reindex(features.index).map({"high": 1.0, "low": -1.0})
    return mapped.to_numpy(dtype=np.float64, na_value=0.0)


def _reasons(
    pooled: dict[str, np.ndarray], sentences: _Sentences, top_n: int, tier_direction: np.ndarray
) -> list[list[str]]:
    """Per customer: concepts pushing the chosen way, strongest first, as sentences."""
    concepts = list(pooled)
    n = len(tier_direction)
    matrix = np.column_stack([pooled[c] for c in concepts]) if concepts else np.empty((n, 0))
    direction = np.where(tier_direction != 0, tier_direction, np.sign(matrix.sum(axis=1)))[:, None]
    aligned = np.where(matrix * direction > MIN_CONTRIBUTION, np.abs(matrix), 0.0)
    order = np.argsort(-aligned, axis=1, kind="stable")[:, :top_n]
    texts = np.empty((n, len(concepts)), dtype=object)
    for j, concept in enumerate(concepts):
        texts[:, j] = sentences.of(concept)
    picked = np.take_along_axis(texts, order, axis=1)
    picked[np.take_along_axis(aligned, order, axis=1) <= 0] = None
    return [[text for text in row if text is not None] for row in picked.tolist()]


class _Sentences:
    """One sentence per customer and concept, built on first use from the customers' actual numbers.

    Built with list comprehensions over plain Python numbers: per-customer numpy indexing would cost
    seconds per hundred thousand customers.
    """

    def __init__(self, features: pd.DataFrame, reference: Mapping[str, float], recent_days: int) -> None:
        self.features = features
        self.recent_days = recent_days
        self.typical_order = reference.get("avg_order_value") or 0.0
        self._cache: dict[str, list[str]] = {}
        self._build: dict[str, Callable[[], list[str]]] = {
            "recency": self._recency,
            "frequency": self._frequency,
            "tenure": lambda: [f"a customer for {d} days" for d in self._ints("tenure_days")],
            "order_value": self._order_value,
            "email": self._email,
            "browsing": self._browsing,
        }

    def single_purchase_day(self) -> np.ndarray:
        return np.nan_to_num(self.features["btyd_frequency"].to_numpy(dtype=np.float64)) == 0

    def order_value_stands_out(self) -> np.ndarray:
        """Only an average order well away from the typical one is worth a sentence."""
        if self.typical_order <= 0:
            return np.ones(len(self.features), dtype=bool)
        ratio = self.features["avg_order_value"].to_numpy(dtype=np.float64) / self.typical_order
        return (ratio < TYPICAL_BAND[0]) | (ratio > TYPICAL_BAND[1])

    def of(self, concept: str) -> list[str]:
        if concept not in self._cache:
            self._cache[concept] = self._build[concept]()
        return self._cache[concept]

    def _floats(self, column: str) -> list[float]:
        if column not in self.features:
            return [0.0] * len(self.features)
        return self.features[column].to_numpy(dtype=np.float64).tolist()

    def _ints(self, column: str) -> list[int]:
        values = (
            np.nan_to_num(self.features[column].to_numpy(dtype=np.float64))
            if column in self.features
            else None
        )
        return [0] * len(self.features) if values is None else values.astype(np.int64).tolist()

    def _recency(self) -> list[str]:
        return [
            _recency_sentence(days, gap)
            for days, gap in zip(self._ints("recency_days"), self._floats("mean_gap_days"), strict=True)
        ]

    def _frequency(self) -> list[str]:
        return [
            "a single order so far"
            if orders <= 1
            else f"{orders} orders, all on the same day"
            if repeat_days == 0
            else f"{orders} orders on {repeat_days + 1} different days"
            for orders, repeat_days in zip(self._ints("frequency"), self._ints("btyd_frequency"), strict=True)
        ]

    def _order_value(self) -> list[str]:
        typical = self.typical_order
        return [
            f"average order {value:,.2f}" + _compared_with_typical(value, typical)
            for value in self._floats("avg_order_value")
        ]

    def _email(self) -> list[str]:
        window = f"in the last {self.recent_days} days"
        return [
            "unsubscribed from emails"
            if unsubscribed > 0
            else f"no email opens or clicks {window}"
            if opens == 0 and clicks == 0
            else f"{opens} email opens and {clicks} clicks {window}"
            for opens, clicks, unsubscribed in zip(
                self._ints("email_opens"), self._ints("email_clicks"), self._ints("unsubscribes"), strict=True
            )
        ]

    def _browsing(self) -> list[str]:
        window = f"in the last {self.recent_days} days"
        return [
            f"no site visits {window}"
            if views == 0 and carts == 0
            else f"{views} page views and {carts} cart adds {window}"
            for views, carts in zip(self._ints("page_views"), self._ints("cart_adds"), strict=True)
        ]


def _recency_sentence(days: int, gap: float) -> str:
    if days <= 0:
        return "ordered today"
    if gap != gap or gap <= 0:  # NaN: a single purchase day, no rhythm of their own yet
        return f"no order in {days} days"
    ratio = days / gap
    if ratio >= 1.2:
        times = f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
        return f"no order in {days} days, {times} longer than usual for them"
    return f"last order {days} days ago, within their usual {gap:.0f}-day rhythm"


def _compared_with_typical(value: float, typical: float) -> str:
    if typical <= 0:
        return ""
    ratio = value / typical
    return (
        ", about the typical customer's" if 0.8 <= ratio <= 1.25 else f", {ratio:.1f}x the typical customer's"
    )
