"""Rows of the five sample files for one chunk of customers, with counted data problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import generate_dirty as dirt
from .generate_behaviour import DAY, LOYALTY_TIERS, STATUSES, CustomerPlan, OrderChunk, make_orders
from .generate_catalogue import catalogue
from .generate_events import EVENT_TYPES, ConsentChunk, EventChunk, campaign_ids, make_consent, make_events
from .generate_format import Columns, dates, ids, money, timestamps
from .generate_people import COUNTRY_CODES, COUNTRY_NAMES, make_people, messy_phone

CURRENCY = "EUR"  # one shop, one price list: totals stay comparable across customers

# Rates of each injected problem (a row gets at most one), then the duplicated-row rates.
CUSTOMER_DIRT = {
    "email_case_space": 0.02,
    "invalid_email": 0.01,
    "unparseable_date": 0.01,
    "future_date": 0.01,
    "country_name": 0.02,
    "messy_phone": 0.02,
    "empty_customer_id": 0.005,
    "formula_name": 0.005,
}
ORDER_DIRT = {
    "negative_total_completed": 0.01,
    "non_numeric_total": 0.01,
    "unknown_currency": 0.01,
    "unknown_status": 0.01,
    "unparseable_date": 0.01,
    "future_date": 0.01,
    "empty_required": 0.01,
    "unknown_customer_id": 0.005,
    "email_case_space": 0.01,
}
EVENT_DIRT = {
    "unparseable_timestamp": 0.005,
    "future_timestamp": 0.005,
    "unknown_event_type": 0.005,
    "email_case_space": 0.005,
}
CONSENT_DIRT = {"email_case_space": 0.02, "unparseable_timestamp": 0.005}
DUPLICATE_CUSTOMER_ROW, DUPLICATE_PERSON, DUPLICATE_ORDER_ROW, DUPLICATE_EVENT_ROW = 0.01, 0.01, 0.01, 0.005
_UNSUBSCRIBE = int(np.flatnonzero(EVENT_TYPES == "unsubscribe")[0])

Edit = Callable[[np.random.Generator, np.ndarray], None]
Rows = dict[str, tuple[Columns, dict[str, int]]]  # dataset -> (columns, injected problem counts)


def _setter(cols: Columns, column: str, make: Callable[[np.random.Generator, np.ndarray], object]) -> Edit:
    def edit(rng: np.random.Generator, rows: np.ndarray) -> None:
        cols[column][rows] = make(rng, rows)

    return edit


def _spaced_emails(cols: Columns) -> Edit:
    return _setter(
        cols, "email", lambda rng, rows: [dirt.mixed_case_spaced(rng, e) for e in cols["email"][rows]]
    )


def _future(as_of: np.datetime64, fmt: Callable[[np.datetime64, np.ndarray], np.ndarray]):
    return lambda rng, rows: fmt(as_of, rng.integers(30 * DAY, 900 * DAY, size=len(rows)))


@dataclass
class _Customers:
    """What the other datasets need to know about the chunk's customers."""

    lo: int
    ids: np.ndarray  # "C00000001" per customer of the chunk
    emails: np.ndarray  # clean addresses
    second_account: np.ndarray  # chunk offsets of people who signed up twice
    second_id: np.ndarray
    second_since: np.ndarray  # when the second account was opened (seconds relative to as_of)


class RowBuilder:
    """Turns the customer plan into rows, one chunk of customers at a time. Chunks must be built in
    order: running numbers (order ids, event ids, extra customer ids) continue across chunks."""

    def __init__(self, plan: CustomerPlan, as_of: np.datetime64, dirty: bool) -> None:
        self.plan = plan
        self.as_of = as_of
        self.dirty = dirty
        self.order_seq = 0
        self.event_seq = 0
        self.next_extra_id = plan.size + 1  # ids for people's second accounts, after the real ones

    def chunk(self, rng: np.random.Generator, noise: np.random.Generator, lo: int, hi: int) -> Rows:
        """Rows for customers [lo, hi). `rng` draws the data, `noise` only the injected problems, so a
        clean run and a dirty run with the same seed share the same underlying data."""
        customers, counts, who = self._customers(rng, noise, lo, hi)
        order_chunk = make_orders(rng, self.plan, lo, hi)
        event_chunk = make_events(rng, self.plan, lo, hi, order_chunk)
        unsubscribed = event_chunk.event_type == _UNSUBSCRIBE
        consent_chunk = make_consent(
            rng, self.plan, lo, hi, (event_chunk.customer[unsubscribed], event_chunk.time[unsubscribed])
        )
        orders, items, order_counts = self._orders(rng, noise, order_chunk, who)
        return {
            "customers": (customers, counts),
            "orders": (orders, order_counts),
            "order_items": (items, {}),
            "events": self._events(noise, event_chunk, who),
            "consent": self._consent(noise, consent_chunk, who),
        }

    # customers -------------------------------------------------------------------------------------
    def _customers(
        self, rng: np.random.Generator, noise: np.random.Generator, lo: int, hi: int
    ) -> tuple[Columns, dict[str, int], _Customers]:
        plan, n = self.plan, hi - lo
        people = make_people(rng, plan.country[lo:hi], np.arange(lo, hi))
        customer_ids = ids("C", np.arange(lo + 1, hi + 1), 8)
        cols: Columns = {
            "customer_id": customer_ids.copy(),
            "email": people.email.copy(),
            "first_name": people.first_name,
            "last_name": people.last_name,
            "phone": people.phone,
            "country": np.array(COUNTRY_CODES, dtype=object)[plan.country[lo:hi]],
            "city": people.city,
            "postal_code": people.postal_code,
            "birth_date": dates(self.as_of, -plan.birth_days[lo:hi].astype(np.int64) * DAY),
            "signup_date": dates(self.as_of, plan.signup[lo:hi]),
            "loyalty_tier": np.array(("",) + LOYALTY_TIERS, dtype=object)[plan.loyalty_tier[lo:hi] + 1],
        }
        category = dirt.assign(noise, n, CUSTOMER_DIRT) if self.dirty else np.full(n, dirt.CLEAN)
        # Only customers without orders lose their id, so every order still points at a written row
        # (or at an injected unknown id) and the order accounting stays exact.
        no_id = list(CUSTOMER_DIRT).index("empty_customer_id")
        category[(category == no_id) & (plan.order_count[lo:hi] > 0)] = dirt.CLEAN
        # Optional fields people leave empty (not problems, not counted).
        clean = category == dirt.CLEAN
        for name, share in (("phone", 0.10), ("postal_code", 0.03), ("birth_date", 0.08)):
            cols[name][clean & (rng.random(n) < share)] = ""
        if not self.dirty:
            return cols, {}, _Customers(lo, customer_ids, people.email, *_no_second_accounts())

        counts = dirt.apply(noise, category, CUSTOMER_DIRT, self._customer_edits(cols, people.phone_country))
        copies = dirt.duplicate_rows(noise, category, DUPLICATE_CUSTOMER_ROW)
        # The same person signing up again under a new id with the same email address.
        persons = np.setdiff1d(dirt.duplicate_rows(noise, category, DUPLICATE_PERSON), copies)
        second_id = ids("C", self.next_extra_id + np.arange(len(persons)), 8)
        self.next_extra_id += len(persons)
        first_signup = plan.signup[lo + persons]
        second_since = first_signup + (noise.random(len(persons)) * -first_signup).astype(np.int64)
        second = {name: values[persons] for name, values in cols.items()}
        second["customer_id"] = second_id
        second["signup_date"] = dates(self.as_of, second_since)
        second["loyalty_tier"][:] = ""
        second["phone"][noise.random(len(persons)) < 0.5] = ""
        out = dirt.with_copies(cols, copies)
        out = {name: np.concatenate([out[name], second[name]]) for name in cols}
        counts |= {"exact_duplicate_row": len(copies), "duplicate_person": len(persons)}
        return out, counts, _Customers(lo, customer_ids, people.email, persons, second_id, second_since)

    def _customer_edits(self, cols: Columns, phone_country: np.ndarray) -> dict[str, Edit]:
        def bad_date(rng: np.random.Generator, rows: np.ndarray) -> None:
            column = np.where(rng.random(len(rows)) < 0.6, "signup_date", "birth_date")
            for name in ("signup_date", "birth_date"):
                hit = rows[column == name]
                cols[name][hit] = dirt.pick(rng, dirt.UNPARSEABLE_DATES, len(hit))

        def country_name(rng: np.random.Generator, rows: np.ndarray) -> list[str]:
            names = [COUNTRY_NAMES[c] for c in cols["country"][rows]]
            return [options[int(rng.integers(0, len(options)))] for options in names]

        return {
            "email_case_space": _spaced_emails(cols),
            "invalid_email": _setter(
                cols, "email", lambda rng, rows: [dirt.invalid_email(rng, e) for e in cols["email"][rows]]
            ),
            "unparseable_date": bad_date,
            "future_date": _setter(cols, "signup_date", _future(self.as_of, dates)),
            "country_name": _setter(cols, "country", country_name),
            "messy_phone": _setter(
                cols,
                "phone",
                lambda rng, rows: [
                    messy_phone(rng, p, c)
                    for p, c in zip(cols["phone"][rows], phone_country[rows], strict=False)
                ],
            ),
            "empty_customer_id": _setter(cols, "customer_id", lambda rng, rows: ""),
            "formula_name": _setter(cols, "first_name", lambda rng, rows: dirt.FORMULA_NAME),
        }

    # orders and items ------------------------------------------------------------------------------
    def _orders(self, rng: np.random.Generator, noise: np.random.Generator, oc: OrderChunk, who: _Customers):
        m = len(oc.customer)
        order_numbers = self.order_seq + np.arange(1, m + 1)
        self.order_seq += m
        order_id = ids("O", order_numbers, 9)
        offset = oc.customer - who.lo
        customer_id = who.ids[offset]
        if len(who.second_account):  # people with a second account place some later orders with it
            slot = np.full(len(who.ids), -1)
            slot[who.second_account] = np.arange(len(who.second_account))
            mine = slot[offset]
            moved = (mine >= 0) & (oc.time >= who.second_since[np.maximum(mine, 0)]) & (noise.random(m) < 0.5)
            customer_id[moved] = who.second_id[mine[moved]]
        email = who.emails[offset]
        # Most orders carry the customer id, many also the email, ~5 % only the email.
        mode = rng.choice(3, size=m, p=[0.55, 0.40, 0.05])
        customer_id[mode == 2] = ""
        email[mode == 0] = ""
        cols: Columns = {
            "order_id": order_id,
            "customer_id": customer_id,
            "email": email,
            "order_date": timestamps(self.as_of, oc.time),
            "total": money(oc.total_cents),
            "currency": np.full(m, CURRENCY, dtype=object),
            "status": STATUSES.astype(object)[oc.status],
        }
        cat = catalogue()
        items: Columns = {
            "order_id": order_id[oc.item_order],
            "product_id": cat.product_id.astype(object)[oc.item_product],
            "product_name": cat.name.astype(object)[oc.item_product],
            "category": np.array(cat.category_names, dtype=object)[cat.category[oc.item_product]],
            "quantity": oc.item_quantity.astype(str).astype(object),
            "unit_price": money(oc.item_price_cents),
        }
        if not self.dirty:
            return cols, items, {}
        category = dirt.assign(noise, m, ORDER_DIRT)
        names = list(ORDER_DIRT)
        category[(category == names.index("negative_total_completed")) & (oc.status != 0)] = dirt.CLEAN
        category[(category == names.index("email_case_space")) & (email == "")] = dirt.CLEAN
        counts = dirt.apply(noise, category, ORDER_DIRT, self._order_edits(cols, oc))
        copies = dirt.duplicate_rows(noise, category, DUPLICATE_ORDER_ROW)
        counts["duplicate_order_row"] = len(copies)
        return dirt.with_copies(cols, copies), items, counts

    def _order_edits(self, cols: Columns, oc: OrderChunk) -> dict[str, Edit]:
        def empty_required(rng: np.random.Generator, rows: np.ndarray) -> None:
            no_date = rng.random(len(rows)) < 0.5
            cols["order_date"][rows[no_date]] = ""
            cols["customer_id"][rows[~no_date]] = ""
            cols["email"][rows[~no_date]] = ""

        def unknown_customer(rng: np.random.Generator, rows: np.ndarray) -> None:
            # Ids in the usual format but beyond every written one (second accounts included).
            first = 2 * self.plan.size + 1_000
            cols["customer_id"][rows] = ids(
                "C", first + rng.integers(0, max(self.plan.size, 1_000), len(rows)), 8
            )
            cols["email"][rows] = ""

        def pick(options: tuple[str, ...]):
            return lambda rng, rows: dirt.pick(rng, options, len(rows))

        return {
            "negative_total_completed": _setter(
                cols, "total", lambda rng, rows: money(-np.abs(oc.total_cents[rows]))
            ),
            "non_numeric_total": _setter(
                cols, "total", lambda rng, rows: dirt.non_numeric_total(oc.total_cents[rows])
            ),
            "unknown_currency": _setter(cols, "currency", pick(dirt.UNKNOWN_CURRENCIES)),
            "unknown_status": _setter(cols, "status", pick(dirt.UNKNOWN_STATUSES)),
            "unparseable_date": _setter(cols, "order_date", pick(dirt.UNPARSEABLE_DATES)),
            "future_date": _setter(cols, "order_date", _future(self.as_of, timestamps)),
            "empty_required": empty_required,
            "unknown_customer_id": unknown_customer,
            "email_case_space": _spaced_emails(cols),
        }

    # events ----------------------------------------------------------------------------------------
    def _events(
        self, noise: np.random.Generator, ev: EventChunk, who: _Customers
    ) -> tuple[Columns, dict[str, int]]:
        n = len(ev.customer)
        offset = ev.customer - who.lo
        product_ids = np.append(catalogue().product_id.astype(object), None)  # index -1 -> None
        campaigns, campaign_index = np.unique(ev.campaign, return_inverse=True)
        campaign_names = np.where(campaigns >= 0, campaign_ids(np.maximum(campaigns, 0), self.as_of), None)
        cols: Columns = {
            "event_id": self.event_seq + np.arange(1, n + 1),  # formatted "E{:010d}" when written
            "customer_id": np.where(ev.with_customer_id, who.ids[offset], None),
            "email": np.where(ev.with_email, who.emails[offset], None),
            "event_type": EVENT_TYPES.astype(object)[ev.event_type],
            "timestamp": timestamps(self.as_of, ev.time),
            "product_id": product_ids[ev.product],
            "campaign_id": campaign_names.astype(object)[campaign_index],
        }
        self.event_seq += n
        if not self.dirty:
            return cols, {}
        category = dirt.assign(noise, n, EVENT_DIRT)
        category[(category == list(EVENT_DIRT).index("email_case_space")) & ~ev.with_email] = dirt.CLEAN
        counts = dirt.apply(
            noise,
            category,
            EVENT_DIRT,
            {
                "unparseable_timestamp": _setter(
                    cols, "timestamp", lambda r, rows: dirt.pick(r, dirt.UNPARSEABLE_DATES, len(rows))
                ),
                "future_timestamp": _setter(cols, "timestamp", _future(self.as_of, timestamps)),
                "unknown_event_type": _setter(
                    cols, "event_type", lambda r, rows: dirt.pick(r, dirt.UNKNOWN_EVENT_TYPES, len(rows))
                ),
                "email_case_space": _spaced_emails(cols),
            },
        )
        # The same event delivered twice, as at-least-once tracking pipelines do.
        copies = dirt.duplicate_rows(noise, category, DUPLICATE_EVENT_ROW)
        counts["duplicate_event_row"] = len(copies)
        return dirt.with_copies(cols, copies), counts

    # consent ---------------------------------------------------------------------------------------
    def _consent(
        self, noise: np.random.Generator, cc: ConsentChunk, who: _Customers
    ) -> tuple[Columns, dict[str, int]]:
        n = len(cc.customer)
        offset = cc.customer - who.lo
        cols: Columns = {
            "email": np.where(cc.with_email, who.emails[offset], ""),
            "customer_id": np.where(cc.with_customer_id, who.ids[offset], ""),
            "channel": np.full(n, "email", dtype=object),
            "status": np.where(cc.opted_in, "opted_in", "opted_out").astype(object),
            "timestamp": timestamps(self.as_of, cc.time),
            "source": cc.source,
            "lawful_basis": cc.lawful_basis,
            "double_opt_in_confirmed": np.where(cc.double_opt_in, "true", "false").astype(object),
        }
        if not self.dirty:
            return cols, {}
        category = dirt.assign(noise, n, CONSENT_DIRT)
        category[(category == list(CONSENT_DIRT).index("email_case_space")) & ~cc.with_email] = dirt.CLEAN
        return cols, dirt.apply(
            noise,
            category,
            CONSENT_DIRT,
            {
                "email_case_space": _spaced_emails(cols),
                "unparseable_timestamp": _setter(
                    cols, "timestamp", lambda r, rows: dirt.pick(r, dirt.UNPARSEABLE_DATES, len(rows))
                ),
            },
        )


def _no_second_accounts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, dtype=object), np.zeros(0, np.int64)
