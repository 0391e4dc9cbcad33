"""Property-based proof of the consent rules (hypothesis).

Random populations (regions including unknown ones, consent histories with out-of-order and duplicated
records, destination unsubscribes, erasures) go through the pipeline the functions will run: ledger apply
in random batches -> state -> eligibility -> profile fields -> `may_push` / `may_subscribe_new`. An oracle
written independently from the brief's rules (declarative, no fold) checks every contact.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segflow.consent.eligibility import EligibilityConfig, consent_state, evaluate, profile_fields
from segflow.consent.erasure import Tombstone, admissible, tombstone
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.consent.ledger import apply, current_state, from_destination_status
from segflow.consent.models import ConsentRecord
from segflow.consent.policy import decide, default_policy, load_policy

from ._support import NOW

SALT = "property-salt-0123456789"
PROFILE_COUNTRIES = {"DE": "EU", "FR": "EU", "NO": "EU", "GB": "UK", "US": "US", "CA": "CA", "JP": "OTHER",
                     "BR": "OTHER", None: None, "": None, "Narnia": None}
STATED_REGIONS = {None: None, "EU": "EU", "US": "US", "CA": "CA", "UK": "UK", "Atlantis": None, "FR": "EU"}
SOURCES = ["signup_form", "checkout", "preference_center", "import", "event:unsubscribe"]
DESTINATION_STATUSES = [None, "subscribed", "unsubscribed", "cleaned", "forgotten", "pending", "archived",
                        "transactional"]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Coarse times (45-day steps over about 3 years) so that timestamp ties are frequent.
moments = st.integers(min_value=0, max_value=24).map(lambda steps: NOW - timedelta(days=45 * steps))
# Purchases: often recent, often right at the 12- and 24-month boundaries, sometimes anywhere or never.
purchases = st.none() | st.sampled_from([0, 30, 364, 366, 729, 730, 731, 760]).map(
    lambda d: NOW - timedelta(days=d)) | st.integers(-5, 1100).map(lambda d: NOW - timedelta(days=d))


@st.composite
def records(draw, email: str) -> ConsentRecord:
    from_destination = draw(st.integers(0, 5)) == 0
    if from_destination:
        source = draw(st.sampled_from(["destination:mailchimp", "destination:hubspot"]))
        return ConsentRecord(email=email, status="opted_out", timestamp=draw(moments), source=source,
                             reason=draw(st.sampled_from(["unsubscribed", "cleaned", "compliance_state"])))
    return ConsentRecord(
        email=email,
        status=draw(st.sampled_from(["opted_in", "opted_out"])),
        timestamp=draw(moments),
        source=draw(st.sampled_from(SOURCES)),
        lawful_basis=draw(st.sampled_from(["consent", "consent", "legitimate_interest", "contract", None])),
        double_opt_in_confirmed=draw(st.booleans()),
        region=draw(st.sampled_from(list(STATED_REGIONS))),
    )


@dataclass
class Contact:
    email: str
    country: str | None
    history: list[ConsentRecord]
    last_order_at: datetime | None
    destination_status: str | None
    seen_at: datetime  # when the sync observed the destination status
    erased_at: datetime | None


@st.composite
def contacts(draw, index: int) -> Contact:
    email = f"person{index}@example.com"
    return Contact(
        email=email,
        country=draw(st.sampled_from(list(PROFILE_COUNTRIES))),
        history=draw(st.lists(records(email), max_size=10)),
        last_order_at=draw(purchases),
        destination_status=draw(st.sampled_from(DESTINATION_STATUSES)),
        seen_at=draw(moments),
        erased_at=draw(st.none() | st.none() | moments),
    )


populations = st.integers(1, 6).flatmap(lambda n: st.tuples(*(contacts(i) for i in range(n))))


def arrive_shuffled(rnd: random.Random, items: list[ConsentRecord]) -> list[list[ConsentRecord]]:
    """The records as drops would deliver them: duplicated, out of order, in random batches."""
    stream = items + rnd.choices(items, k=len(items) // 2) if items else []
    rnd.shuffle(stream)
    cuts = sorted(rnd.sample(range(len(stream) + 1), k=min(3, len(stream) + 1)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]


def build_ledger(rnd: random.Random, items: list[ConsentRecord]) -> tuple[ConsentRecord, ...]:
    ledger: tuple[ConsentRecord, ...] = ()
    for batch in arrive_shuffled(rnd, items):
        ledger, _ = apply(ledger, batch)
    return ledger


# ---- the oracle: the brief's rules stated declaratively ------------------------------------------------

def oracle_region(contact: Contact, effective: list[ConsentRecord]) -> str | None:
    stated = [r for r in effective if r.region]
    if stated:
        latest = max(stated, key=lambda r: (r.timestamp, r.status == "opted_out", r.from_destination,
                                             r.record_id))
        region = STATED_REGIONS.get(latest.region)
        if region:
            return region
    return PROFILE_COUNTRIES[contact.country]


def oracle_allows(effective: list[ConsentRecord], region: str | None, last_order: datetime | None,
                  eu_double_opt_in: bool) -> bool:
    def explicit(r: ConsentRecord, doi: bool) -> bool:
        consented = r.status == "opted_in" and r.lawful_basis == "consent"
        return consented and (r.double_opt_in_confirmed or not doi)

    lift_doi = eu_double_opt_in and region in ("EU", None)
    dest = [r for r in effective if r.from_destination]
    ins = [r for r in effective if r.status == "opted_in"]

    def suppressed(opt: ConsentRecord) -> bool:
        earlier = [d.timestamp for d in dest if d.timestamp < opt.timestamp]
        if not earlier:
            return False
        last = max(earlier)
        return not any(explicit(e, lift_doi) and last < e.timestamp <= opt.timestamp for e in ins)

    live_ins = [r for r in ins if not suppressed(r)]
    last_out = max((r.timestamp for r in effective if r.status == "opted_out"), default=None)
    if any(not any(explicit(e, lift_doi) and e.timestamp > d.timestamp for e in ins) for d in dest):
        return False  # a destination opt-out is in force
    opted_in = any(last_out is None or r.timestamp > last_out for r in live_ins)
    opted_out = last_out is not None and not opted_in

    def standing(doi: bool) -> bool:
        return any(explicit(r, doi) and (last_out is None or r.timestamp > last_out) for r in live_ins)

    recent = last_order is not None and NOW - relativedelta(months=24) <= last_order <= NOW
    rules = {
        "EU": lambda: opted_in and standing(eu_double_opt_in),
        "UK": lambda: opted_in and standing(False),
        "OTHER": lambda: opted_in and standing(False),
        "US": lambda: not opted_out,
        "CA": lambda: (opted_in and standing(False)) or (not opted_out and recent),
    }
    if region is None:
        return all(rule() for rule in rules.values())
    return rules[region]()


def active(state_at: datetime | None, status: str, last_order: datetime | None) -> bool:
    moments_seen = [m for m in (last_order, state_at if status == "opted_in" else None) if m]
    return any(m >= NOW - timedelta(days=365) for m in moments_seen)


# ---- the properties ------------------------------------------------------------------------------------

@SETTINGS
@given(population=populations, seed=st.integers(0, 2**32 - 1), eu_double_opt_in=st.booleans())
def test_no_pushed_contact_violates_the_policy_and_no_one_is_resubscribed(population, seed, eu_double_opt_in):
    rnd = random.Random(seed)
    data = default_policy().model_dump()
    data["regions"]["EU_EEA"]["requires_double_opt_in"] = eu_double_opt_in
    policy = load_policy(data)
    config = EligibilityConfig(policy=policy)

    for contact in population:
        history = list(contact.history)
        learned = from_destination_status("mailchimp", contact.destination_status, at=contact.seen_at,
                                          email=contact.email)
        if learned is not None:  # the sync recorded what the destination told it
            history.append(learned)
        if contact.erased_at is not None:
            stone = Tombstone(digest=tombstone(contact.email, SALT), kind="email",
                              requested_at=contact.erased_at, request_id="r")
            history = admissible(stone, history)  # a later drop replays everything; the tombstone filters
            assert all(r.timestamp > contact.erased_at for r in history)
            if not history:
                continue  # still erased: no profile, nothing to push

        ledger = build_ledger(rnd, history)
        state, region = consent_state(ledger, contact.country, policy)
        profile = {"customer_id": contact.email, "email": contact.email, "country": contact.country,
                   "last_order_at": contact.last_order_at.isoformat() if contact.last_order_at else None}
        eligibility = evaluate(profile, state, None, NOW, config)
        view = {**profile, **profile_fields(state, eligibility),
                "destination_status": contact.destination_status}
        pushed = may_push(view, now=NOW, policy=policy)
        subscribed = may_subscribe_new(view, contact.destination_status, now=NOW, policy=policy)

        effective = list(ledger)
        allowed = oracle_allows(effective, oracle_region(contact, effective), contact.last_order_at,
                                eu_double_opt_in)
        pushable = (None, "subscribed", "pending", "transactional", "archived")
        pushable_status = contact.destination_status in pushable
        expected = allowed and pushable_status and active(state.at, state.status, contact.last_order_at)
        assert pushed == expected, (region, state, eligibility.reasons)
        if subscribed:
            assert pushed and state.status == "opted_in"
        if contact.destination_status in ("unsubscribed", "cleaned", "forgotten"):
            assert not subscribed  # never re-subscribed
            if pushed:  # only a strictly newer explicit opt-in can have undone the destination opt-out
                assert any(r.is_explicit_opt_in() and r.timestamp > contact.seen_at for r in effective)


@SETTINGS
@given(history=st.lists(records("ann@example.com"), max_size=10),
       country=st.sampled_from(list(PROFILE_COUNTRIES)), last_order=purchases, eu_double_opt_in=st.booleans())
def test_every_decision_matches_the_oracle(history, country, last_order, eu_double_opt_in):
    data = default_policy().model_dump()
    data["regions"]["EU_EEA"]["requires_double_opt_in"] = eu_double_opt_in
    policy = load_policy(data)
    state, region = consent_state(history, country, policy)
    contact = Contact("ann@example.com", country, history, last_order, None, NOW, None)
    expected = oracle_allows(history, oracle_region(contact, history), last_order, eu_double_opt_in)
    assert decide(state, region, last_order, NOW, policy).allowed == expected, (region, state)


@SETTINGS
@given(history=st.lists(records("ann@example.com"), max_size=12), seed=st.integers(0, 2**32 - 1),
       subset=st.lists(st.booleans(), min_size=12, max_size=12))
def test_replaying_any_subset_in_any_order_gives_the_same_state(history, seed, subset):
    rnd = random.Random(seed)
    chosen = [r for r, keep in zip(history, subset) if keep]
    for lift_doi in (False, True):
        by_id = sorted(chosen, key=lambda r: r.record_id)
        reference = current_state(by_id, lift_requires_double_opt_in=lift_doi)
        ledger = build_ledger(rnd, chosen)
        assert current_state(ledger, lift_requires_double_opt_in=lift_doi) == reference
        assert current_state(list(reversed(ledger)), lift_requires_double_opt_in=lift_doi) == reference
    ledger = build_ledger(rnd, chosen)
    replayed, changed = apply(ledger, rnd.sample(chosen, k=len(chosen)))
    assert not changed and replayed == ledger
    assert len(ledger) == len({r.record_id for r in chosen})


@SETTINGS
@given(history=st.lists(records("ann@example.com"), max_size=12), lift_doi=st.booleans(),
       later=st.lists(st.tuples(moments, st.sampled_from(["legitimate_interest", "contract", None]),
                                st.booleans()), max_size=5))
def test_a_destination_opt_out_is_undone_only_by_a_newer_explicit_opt_in(history, lift_doi, later):
    # Any number of non-explicit opt-ins, at any time, added to any history.
    soft = [ConsentRecord(email="ann@example.com", status="opted_in", timestamp=t, source="import",
                          lawful_basis=basis, double_opt_in_confirmed=doi) for t, basis, doi in later]
    ledger = [*history, *soft]
    state = current_state(ledger, lift_requires_double_opt_in=lift_doi)
    for opt_out in (r for r in ledger if r.from_destination):
        if state.status == "opted_in":
            assert any(r.is_explicit_opt_in(lift_doi) and r.timestamp > opt_out.timestamp for r in ledger)
    if state.destination_opt_out:
        assert state.status == "opted_out"
        without_explicit = [r for r in ledger if not r.is_explicit_opt_in()]
        assert current_state(without_explicit, lift_requires_double_opt_in=lift_doi).destination_opt_out
