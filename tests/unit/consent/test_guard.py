"""may_push / may_subscribe_new: the last line of defence fails closed."""
from __future__ import annotations

import pytest

from segflow.consent.eligibility import evaluate, profile_fields
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.consent.ledger import current_state

from ._support import EMAIL, NOW, at, dest_out, opt_in, opt_out


def view_for(records, country="DE", **extra):
    state = current_state(records)
    profile = {"customer_id": "C1", "email": EMAIL, "country": country, "last_order_at": at(30).isoformat(),
               **extra}
    return {**profile, **profile_fields(state, evaluate(profile, state, None, NOW))}


def test_an_eligible_contact_may_be_pushed_and_subscribed():
    view = view_for([opt_in(60)])
    assert may_push(view, now=NOW)
    assert may_subscribe_new(view, None, now=NOW)
    assert may_subscribe_new(view, "transactional", now=NOW)


@pytest.mark.parametrize("change", [
    {"eligible": False}, {"eligible": "true"}, {"eligible": None},
    {"ineligible_reasons": ["inactive"]},
    {"suppressed": True}, {"erased": True},
    {"email": "broken"}, {"email": None},
    {"consent_status": "opted_out"}, {"consent_status": "maybe"},
    {"consent_explicit": False}, {"consent_explicit": "yes"},
    {"destination_opt_out": True}, {"destination_opt_out": None},
    {"destination_status": "unsubscribed"}, {"destination_status": "cleaned"},
    {"destination_status": "forgotten"}, {"destination_status": "something new"},
    {"consent_region": "US", "consent_status": "opted_out"},
])
def test_anything_not_provably_allowed_is_refused(change):
    view = view_for([opt_in(60)])
    assert may_push(view, now=NOW)
    assert not may_push({**view, **change}, now=NOW)


@pytest.mark.parametrize("missing", [
    "consent_status", "destination_opt_out", "eligible", "consent_explicit", "email",
])
def test_a_view_without_its_consent_fields_is_refused(missing):
    view = view_for([opt_in(60)])
    del view[missing]
    assert not may_push(view, now=NOW)


@pytest.mark.parametrize("junk", [None, [], "contact", 42, {"consent_at": "not a date"}])
def test_malformed_views_never_raise(junk):
    assert may_push(junk) is False
    assert may_subscribe_new(junk) is False


def test_a_stale_eligible_flag_does_not_outlive_implied_consent():
    view = view_for([], country="CA", last_order_at=at(30).isoformat())
    assert view["eligible"] and view["eligibility_basis"] == "implied_purchase"
    assert may_push(view, now=NOW)
    assert not may_push(view, now=at(-800))  # two years on, the purchase no longer implies consent


def test_a_stale_flag_cannot_push_an_opted_out_contact():
    view = {**view_for([opt_in(60), opt_out(1)], country="US"), "eligible": True, "ineligible_reasons": []}
    assert not may_push(view, now=NOW)


def test_destination_states_block_subscription():
    view = view_for([opt_in(60)])
    for status in ("unsubscribed", "cleaned", "forgotten", "archived", "pending", "UNSUBSCRIBED", "weird"):
        assert not may_subscribe_new(view, status, now=NOW)
    assert not may_subscribe_new({**view, "destination_status": "cleaned"}, now=NOW)


def test_subscribing_needs_an_actual_opt_in_even_where_pushing_is_allowed():
    us_without_record = view_for([], country="US")
    assert may_push(us_without_record, now=NOW)
    assert not may_subscribe_new(us_without_record, None, now=NOW)


def test_a_lifted_destination_opt_out_may_be_pushed_again():
    assert not may_push(view_for([dest_out(20)]), now=NOW)
    assert may_push(view_for([dest_out(20), opt_in(10)]), now=NOW)
