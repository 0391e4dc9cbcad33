"""Activity events and consent records for the sample data generator.

Events are sessions expanded from a few templates, so the patterns marketing cares about are present:
cart adds without a purchase (abandonment), the same product viewed again and again, email opens
without clicks, the odd unsubscribe. Purchase sessions are derived from the real orders of the last
60 days, so a purchase event always matches an order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .generate_behaviour import DAY, EVENT_WINDOW_DAYS, CustomerPlan, OrderChunk
from .generate_catalogue import catalogue, pick_products

EVENT_TYPES = np.array(
    [
        "page_view",
        "product_view",
        "cart_add",
        "checkout",
        "purchase",
        "email_open",
        "email_click",
        "unsubscribe",
    ]
)
_E = {name: i for i, name in enumerate(EVENT_TYPES)}
_EMAIL_EVENTS = np.array([_E["email_open"], _E["email_click"], _E["unsubscribe"]])
_PRODUCT_EVENTS = np.array([_E["product_view"], _E["cart_add"], _E["checkout"], _E["purchase"]])

# (name, share of non-purchase sessions, event types, starts from an email campaign)
_TEMPLATES: tuple[tuple[str, float, tuple[str, ...], bool], ...] = (
    ("repeat_views", 0.18, ("page_view", "product_view", "product_view", "product_view"), False),
    ("browse", 0.21, ("page_view", "product_view"), False),
    ("bounce", 0.10, ("page_view",), False),
    ("cart_abandon", 0.12, ("page_view", "product_view", "cart_add"), False),
    ("checkout_abandon", 0.05, ("product_view", "cart_add", "checkout"), False),
    ("email_open", 0.19, ("email_open",), True),
    ("email_click", 0.146, ("email_open", "email_click", "page_view", "product_view"), True),
    ("email_unsubscribe", 0.004, ("email_open", "unsubscribe"), True),
)
_TEMPLATE_P = np.array([t[1] for t in _TEMPLATES]) / sum(t[1] for t in _TEMPLATES)
_TEMPLATE_LEN = np.array([len(t[2]) for t in _TEMPLATES])
_TEMPLATE_TYPES = np.concatenate([[_E[e] for e in t[2]] for t in _TEMPLATES])
_TEMPLATE_START = np.concatenate([[0], np.cumsum(_TEMPLATE_LEN)[:-1]])
_TEMPLATE_EMAIL = np.array([t[3] for t in _TEMPLATES])
_PURCHASE_TYPES = np.array([_E["product_view"], _E["cart_add"], _E["checkout"], _E["purchase"]])
MEAN_SESSION_EVENTS = float(_TEMPLATE_P @ _TEMPLATE_LEN)
PURCHASE_SESSION_EVENTS = len(_PURCHASE_TYPES)
CAMPAIGN_EVERY_DAYS = 4


@dataclass
class EventChunk:
    customer: np.ndarray  # global customer index
    event_type: np.ndarray  # index into EVENT_TYPES
    time: np.ndarray  # int64 seconds relative to as_of
    product: np.ndarray  # catalogue index, -1 = none
    campaign: np.ndarray  # campaign number (days before as_of it was sent), -1 = none
    with_customer_id: np.ndarray  # bool
    with_email: np.ndarray  # bool


def campaign_ids(campaign_days: np.ndarray, as_of_day: np.datetime64) -> np.ndarray:
    """Campaign id strings such as "CMP-20261015" from the days-before-as_of they were sent."""
    sent = (as_of_day - campaign_days.astype("timedelta64[D]")).astype("datetime64[D]")
    return np.array(
        ["CMP-" + day.replace("-", "") for day in np.datetime_as_string(sent).tolist()], dtype=object
    )


def make_events(
    rng: np.random.Generator, plan: CustomerPlan, lo: int, hi: int, orders: OrderChunk
) -> EventChunk:
    """Events for customers [lo, hi) in the last 60 days before as_of, sorted by time."""
    customer = np.repeat(np.arange(lo, hi), plan.session_count[lo:hi])
    s = len(customer)
    template = rng.choice(len(_TEMPLATES), size=s, p=_TEMPLATE_P)
    is_email = _TEMPLATE_EMAIL[template]
    # Campaigns go out every few days; opens follow a send within hours. Web sessions are uniform.
    campaigns = np.arange(CAMPAIGN_EVERY_DAYS, EVENT_WINDOW_DAYS, CAMPAIGN_EVERY_DAYS)
    campaign = np.where(is_email, rng.choice(campaigns, size=s), -1)
    web_start = -rng.random(s) * EVENT_WINDOW_DAYS * DAY
    email_start = -campaign * DAY + 9 * 3600 + rng.exponential(6 * 3600, size=s)
    start = np.where(is_email, email_start, web_start)
    start = np.minimum(start, -3600.0)  # sessions end before as_of
    # One product per session (viewed repeatedly, added to the cart...), in the customer's taste.
    fav = plan.favourite_category[customer]
    category = np.where(
        rng.random(s) < 0.5,
        fav,
        rng.choice(len(catalogue().category_names), size=s, p=catalogue().category_p),
    )
    product = pick_products(rng, category, np.exp(plan.spend_mu[customer]) * 100.0)

    length = _TEMPLATE_LEN[template]
    ev_session = np.repeat(np.arange(s), length)
    pos = np.arange(len(ev_session)) - np.repeat(np.cumsum(length) - length, length)
    ev_type = _TEMPLATE_TYPES[_TEMPLATE_START[template][ev_session] + pos]
    gap = np.where(pos == 0, 0.0, rng.exponential(75.0, size=len(ev_session)))
    ev_time = start[ev_session] + _cumsum_within(gap, length)

    # Purchases: the last 60 days' orders that were not cancelled, with their path to checkout.
    recent = np.flatnonzero((orders.time >= -EVENT_WINDOW_DAYS * DAY) & (orders.status != 2))
    first_item = np.searchsorted(orders.item_order, recent)
    p_len = PURCHASE_SESSION_EVENTS
    p_order = np.repeat(recent, p_len)
    p_back = np.tile(np.arange(p_len - 1, -1, -1), len(recent))  # steps before the purchase
    p_gap = np.where(p_back == 0, 0.0, rng.exponential(90.0, size=len(p_order)))
    p_time = orders.time[p_order] - _cumsum_within(p_gap[::-1], np.full(len(recent), p_len))[::-1]

    customer_all = np.concatenate([customer[ev_session], orders.customer[p_order]])
    types = np.concatenate([ev_type, np.tile(_PURCHASE_TYPES, len(recent))])
    times = np.concatenate([ev_time, p_time]).astype(np.int64)
    products = np.concatenate([product[ev_session], np.repeat(orders.item_product[first_item], p_len)])
    # Every event of a campaign session keeps the campaign (web events after a click carry its utm).
    campaign_all = np.concatenate([campaign[ev_session], np.full(len(p_order), -1)])
    products = np.where(np.isin(types, _PRODUCT_EVENTS), products, -1)

    # ESP events carry the email (the id only half the time); web events carry the id.
    email_event = np.isin(types, _EMAIL_EVENTS)
    u = rng.random(len(types))
    with_id = np.where(email_event, u < 0.5, True)
    with_email = np.where(email_event, True, u < 0.1)
    order = np.argsort(times, kind="stable")
    return EventChunk(
        customer_all[order],
        types[order],
        times[order],
        products[order],
        campaign_all[order],
        with_id[order],
        with_email[order],
    )


def _cumsum_within(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at every group (groups are consecutive runs of `lengths`)."""
    total = np.cumsum(values)
    group_start = np.cumsum(lengths) - lengths
    before = np.where(group_start > 0, total[np.maximum(group_start - 1, 0)], 0.0)
    return total - np.repeat(before, lengths)


@dataclass
class ConsentChunk:
    customer: np.ndarray
    opted_in: np.ndarray  # bool
    time: np.ndarray  # int64 seconds relative to as_of
    source: np.ndarray  # str
    lawful_basis: np.ndarray  # str
    double_opt_in: np.ndarray  # bool
    with_customer_id: np.ndarray  # bool
    with_email: np.ndarray  # bool


def make_consent(
    rng: np.random.Generator,
    plan: CustomerPlan,
    lo: int,
    hi: int,
    unsubscribes: tuple[np.ndarray, np.ndarray],
) -> ConsentChunk:
    """Consent history: a record at signup for most customers, later changes for some, an opt-out
    for every unsubscribe event; rows shuffled so histories arrive out of order."""
    ids = np.arange(lo, hi)
    has_consent = rng.random(len(ids)) >= 0.12
    ids = ids[has_consent]
    n = len(ids)
    first_in = rng.random(n) < 0.8
    first_time = plan.signup[ids] + rng.integers(5, 900, size=n)
    first_source = rng.choice(
        np.array(["signup_form", "checkout", "newsletter_popup"]), size=n, p=[0.5, 0.3, 0.2]
    )
    first_basis = np.where(
        (first_source == "checkout") & (rng.random(n) < 0.5), "legitimate_interest", "consent"
    )

    extra = rng.choice(np.array([0, 1, 2]), size=n, p=[0.75, 0.18, 0.07])
    x_customer = np.repeat(ids, extra)
    step = np.arange(len(x_customer)) - np.repeat(np.cumsum(extra) - extra, extra)
    x_in = np.repeat(first_in, extra) ^ (step % 2 == 0)  # each change flips the previous status
    # Changes happen between signup and as_of, in step order for each customer.
    u = rng.random(len(x_customer))
    u = u[np.lexsort((u, x_customer))]
    x_time = plan.signup[x_customer] + (u * -plan.signup[x_customer]).astype(np.int64)
    x_source = np.where(rng.random(len(x_customer)) < 0.7, "preference_center", "import")

    u_customer, u_time = unsubscribes
    customer = np.concatenate([ids, x_customer, u_customer])
    opted_in = np.concatenate([first_in, x_in, np.zeros(len(u_customer), bool)])
    time = np.concatenate([first_time, x_time, u_time]).astype(np.int64)
    source = np.concatenate([first_source, x_source, np.full(len(u_customer), "email_unsubscribe")])
    basis = np.concatenate([first_basis, np.full(len(x_customer) + len(u_customer), "consent")])
    total = len(customer)
    double_opt_in = opted_in & (basis == "consent") & (rng.random(total) < 0.85)
    u = rng.random(total)
    with_id = u < 0.75
    with_email = u >= 0.05  # 5 % identified by customer id only
    shuffle = rng.permutation(total)
    return ConsentChunk(
        customer[shuffle],
        opted_in[shuffle],
        time[shuffle],
        source[shuffle].astype(object),
        basis[shuffle].astype(object),
        double_opt_in[shuffle],
        with_id[shuffle],
        with_email[shuffle],
    )
