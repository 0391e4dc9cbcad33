"""Customer behaviour for the sample data generator: who buys, how often, how much, and when.

The model gives RFM, CLV, churn and clustering something real to find:
- purchase rate per customer ~ Gamma (heterogeneous frequency, as in BG/NBD and Pareto/NBD);
- a lifetime from signup ~ Exponential, short for a "churn-prone" share of customers, so some
  customers stop buying early and their recency grows;
- spend per order ~ LogNormal around a per-customer mean (independent of frequency, as in
  Gamma-Gamma), with a few big spenders;
- given a customer's order count, order times are uniform over the active window (a Poisson process
  conditioned on its count), so exactly the requested number of orders is produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .generate_catalogue import catalogue, pick_products
from .generate_people import COUNTRY_CODES, COUNTRY_P

DAY = 86_400
ORDER_WINDOW_DAYS = 730  # orders fall in the 2 years before as_of
SIGNUP_WINDOW_DAYS = 1_460  # signups over ~4 years
EVENT_WINDOW_DAYS = 60
STATUSES = np.array(["completed", "refunded", "cancelled"])
_STATUS_P = [0.92, 0.05, 0.03]
_ITEMS_P = [0.55, 0.30, 0.15]  # 1, 2 or 3 products per order
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")


@dataclass
class CustomerPlan:
    """Per-customer behaviour parameters for the whole dataset (numbers only: small per customer).
    Times are seconds relative to as_of midnight UTC (negative = before)."""

    country: np.ndarray
    signup: np.ndarray
    birth_days: np.ndarray  # age in days at as_of
    active_start: np.ndarray
    active_end: np.ndarray
    spend_mu: np.ndarray  # log of the customer's typical order value (currency units)
    favourite_category: np.ndarray
    order_count: np.ndarray
    session_count: np.ndarray
    loyalty_tier: np.ndarray  # index into LOYALTY_TIERS, -1 = not set

    @property
    def size(self) -> int:
        return len(self.country)


def plan_customers(
    rng: np.random.Generator,
    customers: int,
    orders: int,
    *,
    events_target: int,
    mean_session_events: float,
    purchase_session_events: int,
) -> CustomerPlan:
    """Draw every customer's parameters and split exactly `orders` orders among them.

    Purchases in the event window come from the orders themselves; the other sessions are sized so
    that all events together come to about `events_target`."""
    n = customers
    country = rng.choice(len(COUNTRY_CODES), size=n, p=COUNTRY_P).astype(np.int16)
    # More recent signups than old ones (a growing shop): days ago = window * (1 - sqrt(u)).
    signup_days = SIGNUP_WINDOW_DAYS * (1.0 - np.sqrt(rng.random(n)))
    signup = -(signup_days * DAY).astype(np.int64) - 1
    birth_days = rng.integers(18 * 365, 80 * 365, size=n)
    churn_prone = rng.random(n) < 0.4
    lifetime = rng.exponential(np.where(churn_prone, 150.0, 2_000.0)) * DAY
    active_start = np.maximum(signup, -ORDER_WINDOW_DAYS * DAY).astype(np.float64)
    active_end = np.minimum(signup + lifetime, 0.0)
    window = np.maximum(active_end - active_start, 0.0)
    rate = rng.gamma(shape=0.7, scale=1.0, size=n)
    weights = rate * window
    if weights.sum() <= 0:  # e.g. a handful of customers who all churned before the window
        active_end = np.zeros(n)
        weights = np.maximum(active_end - active_start, 1.0)
    order_count = rng.multinomial(orders, weights / weights.sum()) if n else np.zeros(0, np.int64)

    big_spender = rng.random(n) < 0.03
    spend_mu = np.log(38.0) + 0.45 * rng.standard_normal(n) + np.where(big_spender, 1.3, 0.0)
    favourite_category = rng.choice(len(catalogue().category_names), size=n, p=catalogue().category_p)

    # Web/email sessions in the last 60 days: engaged customers, and alive ones far more than churned.
    alive = active_end >= -7 * DAY
    engagement = rng.gamma(shape=1.0, size=n) * np.where(alive, 1.0, 0.15)
    recent_share = np.clip(
        (active_end - active_start.clip(-EVENT_WINDOW_DAYS * DAY)) / np.maximum(window, 1.0), 0, 1
    )
    purchase_events = purchase_session_events * (1 - _STATUS_P[2]) * float(order_count @ recent_share)
    sessions = max(int(round((events_target - purchase_events) / mean_session_events)), 0)
    session_count = (
        rng.multinomial(sessions, engagement / engagement.sum())
        if n and engagement.sum() > 0
        else np.zeros(n, np.int64)
    )

    # Loyalty tier from expected yearly spend (an attribute a shop would export), 10 % not set.
    value = rate * np.exp(spend_mu)
    cut = np.quantile(value, [0.5, 0.8, 0.95]) if n else np.zeros(3)
    tier = np.searchsorted(cut, value).astype(np.int8)
    tier[rng.random(n) < 0.1] = -1
    return CustomerPlan(
        country,
        signup,
        birth_days,
        active_start,
        active_end,
        spend_mu,
        favourite_category,
        order_count,
        session_count,
        tier,
    )


def chunk_bounds(
    plan: CustomerPlan, max_customers: int = 50_000, max_work: int = 250_000
) -> list[tuple[int, int]]:
    """Customer ranges to process together, bounded in customers and in orders + sessions."""
    work = np.cumsum(plan.order_count + plan.session_count * 2 + 1)
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < plan.size:
        done = work[start - 1] if start else 0
        by_work = int(np.searchsorted(work, done + max_work, side="right"))
        end = max(start + 1, min(start + max_customers, by_work, plan.size))
        bounds.append((start, end))
        start = end
    return bounds


@dataclass
class OrderChunk:
    customer: np.ndarray  # global customer index per order
    time: np.ndarray  # int64 seconds relative to as_of
    status: np.ndarray  # index into STATUSES
    total_cents: np.ndarray  # signed: refunds negative
    item_order: np.ndarray  # per item: order row in this chunk
    item_product: np.ndarray  # per item: catalogue index
    item_quantity: np.ndarray
    item_price_cents: np.ndarray


def make_orders(rng: np.random.Generator, plan: CustomerPlan, lo: int, hi: int) -> OrderChunk:
    """Orders and their items for customers [lo, hi), sorted by time."""
    customer = np.repeat(np.arange(lo, hi), plan.order_count[lo:hi])
    start, end = plan.active_start[customer], plan.active_end[customer]
    time = (start + rng.random(len(customer)) * (end - start)).astype(np.int64)
    order = np.argsort(time, kind="stable")
    customer, time = customer[order], time[order]
    m = len(customer)
    status = rng.choice(len(STATUSES), size=m, p=_STATUS_P)
    n_items = rng.choice(np.array([1, 2, 3]), size=m, p=_ITEMS_P)
    target = np.exp(plan.spend_mu[customer] + 0.3 * rng.standard_normal(m)) * 100.0

    item_order = np.repeat(np.arange(m), n_items)
    first_item = np.concatenate([[0], np.cumsum(n_items)[:-1]]) if m else np.zeros(0, np.int64)
    share = rng.gamma(2.0, size=len(item_order))
    share /= np.bincount(item_order, weights=share, minlength=m)[item_order]
    value = target[item_order] * share
    category = _basket_categories(rng, plan.favourite_category[customer], item_order, first_item)
    product = pick_products(rng, category, value)
    price = catalogue().price_cents[product]
    quantity = np.clip(np.rint(value / price), 1, 6).astype(np.int64)

    # The same product twice in one basket becomes one line with the summed quantity.
    key = item_order.astype(np.int64) * catalogue().size + product
    unique_key, inverse = np.unique(key, return_inverse=True)
    quantity = np.bincount(inverse, weights=quantity).astype(np.int64)
    item_order, product = unique_key // catalogue().size, unique_key % catalogue().size
    price = catalogue().price_cents[product]
    total = np.bincount(item_order, weights=quantity * price, minlength=m).astype(np.int64)
    total = np.where(status == 1, -total, total)
    return OrderChunk(customer, time, status, total, item_order, product, quantity, price)


def _basket_categories(
    rng: np.random.Generator, favourite: np.ndarray, item_order: np.ndarray, first_item: np.ndarray
) -> np.ndarray:
    """First item: the customer's favourite category (60 %) or a popular one; later items mostly
    stay in the first item's category (co-purchase structure)."""
    cat = catalogue()
    m = len(favourite)
    popular = rng.choice(len(cat.category_names), size=m, p=cat.category_p)
    first_category = np.where(rng.random(m) < 0.6, favourite, popular)
    is_first = np.arange(len(item_order)) == first_item[item_order]
    other = rng.choice(len(cat.category_names), size=len(item_order), p=cat.category_p)
    same = is_first | (rng.random(len(item_order)) < 0.65)
    return np.where(same, first_category[item_order], other)
