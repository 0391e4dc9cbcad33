"""The field catalogue: every name a segment rule or merge field may use, with its CEL type.

Rules are checked against this catalogue when the segments file is loaded (unknown names, type mismatches),
and values are coerced to the declared type before evaluation, so a number that DynamoDB hands back as
``1000`` (int) still compares like the double it is. CEL keeps int and double apart: write ``orders_30d >= 2``
and ``spend_30d > 1000.0`` (cel-python also accepts ``spend_30d > 1000``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["string", "int", "double", "bool", "list", "map"]
Source = Literal["profile", "consent", "scores", "activity", "recommend", "trigger", "derived"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    source: Source
    description: str


def _fields(source: Source, kind: Kind, names: dict[str, str]) -> list[Field]:
    return [Field(name, kind, source, description) for name, description in names.items()]


TRIGGER_FIELDS = {
    "cart_abandoned": "a cart_add or checkout not followed by a purchase, wait_hours to max_days ago",
    "browse_abandoned": "min_views or more views of one product within window_days without buying it",
    "inactive_30d": "previously active, no order or activity for more than `days` (default 30)",
    "open_no_click": "min_opens or more email opens and no click within window_days",
    "signup_anniversary_soon": "the signup anniversary falls within the next within_days days",
    "clv_tier_up": "the CLV tier moved up within the last active_days days",
}

_CATALOGUE: list[Field] = [
    *_fields(
        "profile",
        "string",
        {
            "customer_id": "canonical customer id",
            "email": "normalised lowercase email",
            "first_name": "first name",
            "last_name": "last name",
            "phone": "E.164 phone number",
            "country": "ISO 3166 alpha-2 country code",
            "city": "city",
            "postal_code": "postal code",
            "birth_date": "ISO date of birth",
            "signup_date": "ISO datetime (UTC) of signup",
        },
    ),
    Field("attributes", "map", "profile", "free-form attributes from the customers file"),
    *_fields(
        "consent",
        "string",
        {"consent_status": "opted_in / opted_out", "preference_level": "full / basic / none"},
    ),
    Field("suppressed", "bool", "consent", "suppressed for email"),
    *_fields(
        "scores",
        "int",
        {
            "recency_days": "whole days since the last completed order (nightly)",
            "frequency": "distinct completed orders",
            "r_score": "RFM recency score 1..5",
            "f_score": "RFM frequency score 1..5",
            "m_score": "RFM monetary score 1..5",
            "cluster_id": "K-Means cluster number",
        },
    ),
    *_fields(
        "scores",
        "double",
        {
            "monetary": "completed order totals minus refunds",
            "clv_predicted": "predicted spend over the CLV horizon",
            "churn_probability": "probability of no order within the churn horizon",
        },
    ),
    *_fields(
        "scores",
        "string",
        {
            "rfm_segment": "named RFM segment, e.g. Champions, At Risk",
            "cluster_label": "human label of the cluster",
            "clv_tier": "high / medium / low",
            "churn_risk": "high / medium / low",
            "model_version": "version of the scoring models",
        },
    ),
    *_fields(
        "activity",
        "int",
        {
            "days_since_last_order": "whole days since the last completed order",
            "orders_30d": "completed orders in the last 30 days",
            "orders_90d": "completed orders in the last 90 days",
            "days_since_last_activity": "whole days since the last event or order",
            "opens_14d": "email opens in the last 14 days",
            "clicks_14d": "email clicks in the last 14 days",
            "views_7d": "product views in the last 7 days",
            "cart_adds_7d": "cart adds and checkouts in the last 7 days",
            "max_product_views_7d": "views of the most viewed product in the last 7 days",
        },
    ),
    *_fields(
        "activity",
        "double",
        {
            "spend_30d": "completed totals minus refunds, last 30 days",
            "spend_90d": "completed totals minus refunds, last 90 days",
            "spend_365d": "completed totals minus refunds, last 365 days",
        },
    ),
    *_fields(
        "activity",
        "string",
        {
            "last_order_at": "ISO datetime of the last completed order",
            "last_activity_at": "ISO datetime of the last event or order",
            "last_cart_at": "ISO datetime of the last cart_add or checkout",
            "last_purchase_at": "ISO datetime of the last purchase event or completed order",
            "top_viewed_product_7d": "product id viewed most in the last 7 days",
        },
    ),
    Field("cart_open", "bool", "activity", "the last cart event has not been followed by a purchase"),
    *_fields(
        "recommend",
        "string",
        {
            "last_product_id": "product id of the last purchase",
            "last_product_name": "product name of the last purchase",
            "last_product_category": "category of the last purchase",
            "favourite_category": "category bought most",
        },
    ),
    *_fields(
        "recommend",
        "list",
        {
            "recommended_products": "top product ids not bought yet",
            "recommended_product_names": "names of recommended_products",
        },
    ),
    *_fields("trigger", "bool", TRIGGER_FIELDS),
    *_fields(
        "derived",
        "int",
        {
            "days_since_signup": "whole days since signup",
            "days_to_signup_anniversary": "days until the next signup anniversary (0 = today)",
        },
    ),
]

CATALOGUE: dict[str, Field] = {f.name: f for f in _CATALOGUE}

# Built-in families: `<family>:<value>` segments that need no rule.
BUILTIN_FIELDS = {"rfm": "rfm_segment", "cluster": "cluster_label", "clv": "clv_tier", "churn": "churn_risk"}
RFM_SEGMENTS = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
)
TIERS = ("low", "medium", "high")
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "rfm_segment": RFM_SEGMENTS,
    "clv_tier": TIERS,
    "churn_risk": TIERS,
}
