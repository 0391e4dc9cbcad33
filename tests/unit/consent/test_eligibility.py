"""Eligibility: the policy decision plus email validity, suppression, activity and required data."""
from __future__ import annotations

import pytest

from segflow.consent.eligibility import (
    EligibilityConfig,
    allowed_merge_fields,
    consent_state,
    email_is_valid,
    evaluate,
    profile_fields,
)
from segflow.consent.ledger import current_state
from segflow.consent.policy import default_policy, load_policy

from ._support import EMAIL, NOW, at, dest_out, opt_in

EXPLICIT = current_state([opt_in(400)])  # opted in long ago: the opt-in itself is no longer recent activity


def profile(**fields):
    return {"customer_id": "C1", "email": EMAIL, "country": "DE", **fields}


def recent():
    return {"last_order_at": at(30).isoformat(), "last_activity_at": None}


def test_an_opted_in_active_contact_is_eligible():
    result = evaluate(profile(), EXPLICIT, recent(), NOW)
    assert result.eligible and result.reasons == [] and result.region == "EU_EEA"
    assert result.decision.basis == "explicit_opt_in" and result.preference_level == "full"


@pytest.mark.parametrize("email", [
    "not-an-email", "a@b", "ann@@example.com", "ann@localhost", "ü@example.de",
])
def test_invalid_emails_are_ineligible(email):
    result = evaluate(profile(email=email), EXPLICIT, recent(), NOW)
    assert not result.eligible and result.reasons == ["invalid_email"]


def test_missing_required_fields_are_named():
    config = EligibilityConfig(required_fields=("email", "first_name"))
    result = evaluate(profile(email="", first_name=None), EXPLICIT, recent(), NOW, config)
    assert result.reasons == ["missing:email", "missing:first_name"]


@pytest.mark.parametrize("reason", ["bounce", "complaint", None])
def test_suppressed_contacts_are_ineligible(reason):
    result = evaluate(profile(suppressed=True, suppression_reason=reason), EXPLICIT, recent(), NOW)
    assert result.reasons == [f"suppressed:{reason or 'unspecified'}"]


@pytest.mark.parametrize("destination_reason, suppression", [
    ("cleaned", "bounce"), ("abuse", "complaint"), ("unsubscribed", "destination_unsubscribe"),
])
def test_a_destination_opt_out_is_a_suppression(destination_reason, suppression):
    state = current_state([opt_in(400), dest_out(20, reason=destination_reason)])
    result = evaluate(profile(), state, recent(), NOW)
    assert f"suppressed:{suppression}" in result.reasons and "destination_opt_out" in result.reasons


def test_inactivity_window_counts_orders_activity_signup_and_opt_in():
    stale = {"last_order_at": at(400), "last_activity_at": at(366)}
    assert evaluate(profile(), EXPLICIT, stale, NOW).reasons == ["inactive"]
    assert evaluate(profile(), EXPLICIT, {"last_activity_at": at(364)}, NOW).eligible
    assert evaluate(profile(signup_date=at(10).isoformat()), EXPLICIT, stale, NOW).eligible
    assert evaluate(profile(), current_state([opt_in(3)]), {}, NOW).eligible  # a new subscriber is reachable
    assert evaluate(profile(), EXPLICIT, None, NOW).reasons == ["inactive"]  # nothing known at all
    assert evaluate(profile(last_order_at=at(2)), EXPLICIT, None, NOW).eligible  # read from the view
    strict = EligibilityConfig(signup_and_opt_in_count_as_activity=False)
    assert evaluate(profile(), current_state([opt_in(3)]), {}, NOW, strict).reasons == ["inactive"]
    assert evaluate(profile(), EXPLICIT, stale, NOW, EligibilityConfig(activity_window_days=None)).eligible
    assert evaluate(profile(), EXPLICIT, stale, NOW, EligibilityConfig(activity_window_days=500)).eligible


def test_policy_reasons_are_reported_and_region_comes_from_records_first():
    soft = current_state([opt_in(30, basis="legitimate_interest", source="checkout")])
    assert evaluate(profile(), soft, recent(), NOW).reasons == ["explicit_opt_in_required"]
    assert evaluate(profile(country="US"), soft, recent(), NOW).eligible
    stated_eu = current_state([opt_in(30, basis="legitimate_interest", region="EU")])
    assert evaluate(profile(country="US"), stated_eu, recent(), NOW).region == "EU_EEA"
    assert evaluate(profile(country=None), soft, recent(), NOW).reasons[0] == "unknown_region"


def test_preference_level_from_records_then_profile_then_default():
    basic = current_state([opt_in(30, preference_level="basic")])
    assert evaluate(profile(preference_level="none"), basic, recent(), NOW).preference_level == "basic"
    assert evaluate(profile(preference_level="none"), EXPLICIT, recent(), NOW).preference_level == "none"
    assert evaluate(profile(preference_level="bogus"), EXPLICIT, recent(), NOW).preference_level == "full"
    config = EligibilityConfig(default_preference_level="basic")
    assert evaluate(profile(), EXPLICIT, recent(), NOW, config).preference_level == "basic"


def test_profile_fields_carry_status_basis_time_source_and_eligibility():
    state = current_state([opt_in(30, source="preference_center", double_opt_in_confirmed=True)])
    result = evaluate(profile(), state, recent(), NOW)
    fields = profile_fields(state, result)
    assert fields == {
        "consent_status": "opted_in", "consent_basis": "consent", "consent_at": at(30).isoformat(),
        "consent_source": "preference_center", "consent_explicit": True, "consent_double_opt_in": True,
        "consent_region": "EU_EEA", "destination_opt_out": False, "preference_level": "full",
        "eligible": True, "eligibility_basis": "explicit_opt_in", "ineligible_reasons": [],
    }
    nothing = current_state([])
    empty = profile_fields(nothing, evaluate(profile(), nothing, recent(), NOW))
    assert empty["consent_status"] == "unknown" and empty["eligible"] is False
    assert empty["ineligible_reasons"] == ["no_consent"]


def test_consent_state_applies_the_regions_double_opt_in_demand():
    data = default_policy().model_dump()
    data["regions"]["EU_EEA"]["requires_double_opt_in"] = True
    policy = load_policy(data)
    ledger = [dest_out(20), opt_in(10)]
    assert consent_state(ledger, "DE", policy)[0].status == "opted_out"
    state, region = consent_state(ledger, "US", policy)
    assert region == "US" and state.status == "opted_in"
    assert consent_state(ledger, "DE")[0].status == "opted_in"  # the default policy does not demand it


def test_merge_fields_follow_the_preference_level():
    fields = {"FNAME": "Ann", "LASTPROD": "Boots", "CHURN": "high"}
    behavioural = {"LASTPROD", "CHURN"}
    assert allowed_merge_fields("full", fields, behavioural) == fields
    assert allowed_merge_fields("basic", fields, behavioural) == {"FNAME": "Ann"}
    assert allowed_merge_fields("none", fields, behavioural) == {}
    assert allowed_merge_fields(None, fields, behavioural) == {}


def test_email_syntax_check_needs_no_network():
    assert email_is_valid("ann.lee+news@mail.example.co.uk")
    assert not email_is_valid(None) and not email_is_valid("")
    assert email_is_valid("ü@example.de", allow_smtputf8=True)
