"""The consent policy table: region resolution and decisions per region."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from segflow.consent.ledger import current_state
from segflow.consent.policy import (
    UNKNOWN_REGION,
    decide,
    default_policy,
    load_policy,
    months_before,
    requires_double_opt_in,
    resolve_region,
)

from ._support import NOW, at, dest_out, opt_in, opt_out

EXPLICIT = current_state([opt_in(10)])
SOFT = current_state([opt_in(10, basis="legitimate_interest", source="checkout")])
UNKNOWN = current_state([])
OPTED_OUT = current_state([opt_in(20), opt_out(10)])
DEST_OUT = current_state([dest_out(10)])


@pytest.mark.parametrize("explicit, country, expected", [
    (None, "DE", "EU_EEA"), (None, "no", "EU_EEA"), (None, "GB", "UK"), (None, "JE", "UK"),
    (None, "US", "US"), (None, "PR", "US"), (None, "CA", "CA"), (None, "JP", "OTHER"),
    ("EU", "US", "EU_EEA"), ("us", "DE", "US"), ("FR", "US", "EU_EEA"), ("GB", None, "UK"),
    ("somewhere", "CA", "CA"),  # an unusable explicit region falls back to the country
    (None, None, UNKNOWN_REGION), (None, "", UNKNOWN_REGION), (None, "Germany", UNKNOWN_REGION),
    ("??", "1X", UNKNOWN_REGION),
])
def test_region_resolution(explicit, country, expected):
    assert resolve_region(explicit, country) == expected


def test_norway_survives_yaml_booleans():
    assert "NO" in default_policy().countries["EU_EEA"]


@pytest.mark.parametrize("region", ["EU_EEA", "UK", "OTHER"])
def test_explicit_opt_in_regions(region):
    allowed = {"allowed": True, "basis": "explicit_opt_in", "reasons": []}
    assert decide(EXPLICIT, region, None, NOW).model_dump() == allowed
    assert decide(SOFT, region, at(5), NOW).reasons == ["explicit_opt_in_required"]
    assert decide(UNKNOWN, region, at(5), NOW).reasons == ["no_consent"]
    assert decide(OPTED_OUT, region, None, NOW).reasons == ["opted_out"]
    assert decide(DEST_OUT, region, None, NOW).reasons == ["destination_opt_out"]


def test_us_allows_unless_opted_out():
    for state, basis in [(EXPLICIT, "explicit_opt_in"), (SOFT, "opt_in"), (UNKNOWN, "opt_out_model")]:
        decision = decide(state, "US", None, NOW)
        assert decision.allowed and decision.basis == basis
    assert not decide(OPTED_OUT, "US", None, NOW).allowed
    assert not decide(DEST_OUT, "US", None, NOW).allowed


def test_canada_allows_implied_consent_from_a_purchase_within_24_months():
    assert decide(EXPLICIT, "CA", None, NOW).basis == "explicit_opt_in"
    inside = months_before(NOW, 24)
    for state in (SOFT, UNKNOWN):
        assert decide(state, "CA", inside, NOW).basis == "implied_purchase"
        late = decide(state, "CA", inside - timedelta(seconds=1), NOW)
        assert not late.allowed and "no_recent_purchase" in late.reasons
        assert not decide(state, "CA", None, NOW).allowed
    assert not decide(OPTED_OUT, "CA", at(1), NOW).allowed  # an opt-out beats implied consent
    assert not decide(SOFT, "CA", at(-2), NOW).allowed  # a purchase "in the future" proves nothing


def test_canada_boundary_is_exactly_24_calendar_months():
    now = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    assert decide(UNKNOWN, "CA", datetime(2024, 11, 1, 12, tzinfo=timezone.utc), now).allowed
    assert not decide(UNKNOWN, "CA", datetime(2024, 11, 1, 11, 59, tzinfo=timezone.utc), now).allowed
    assert not decide(UNKNOWN, "CA", datetime(2024, 10, 15, tzinfo=timezone.utc), now).allowed


def test_months_before_is_calendar_correct():
    def utc(*parts: int) -> datetime:
        return datetime(*parts, tzinfo=timezone.utc)

    assert months_before(utc(2026, 3, 31, 9), 1) == utc(2026, 2, 28, 9)
    assert months_before(utc(2024, 3, 31), 1) == utc(2024, 2, 29)
    assert months_before(utc(2026, 1, 15), 24) == utc(2024, 1, 15)
    assert months_before(utc(2026, 1, 15), 13) == utc(2024, 12, 15)


def test_unknown_region_gets_the_strictest_treatment():
    assert decide(EXPLICIT, UNKNOWN_REGION, None, NOW).basis == "explicit_opt_in"
    refused = decide(SOFT, UNKNOWN_REGION, at(5), NOW)  # US and CA would allow it, the EU would not
    assert not refused.allowed and refused.reasons[0] == "unknown_region"
    assert "explicit_opt_in_required" in refused.reasons
    assert not decide(UNKNOWN, "MARS", None, NOW).allowed  # a region without a rule is unknown too


def test_double_opt_in_demand_is_configurable_and_strictest_inherits_it():
    data = default_policy().model_dump()
    data["regions"]["EU_EEA"]["requires_double_opt_in"] = True
    policy = load_policy(data)
    assert requires_double_opt_in("EU_EEA", policy) and not requires_double_opt_in("US", policy)
    assert requires_double_opt_in(UNKNOWN_REGION, policy)
    refused = decide(EXPLICIT, "EU_EEA", None, NOW, policy)
    assert refused.reasons == ["double_opt_in_required"]
    confirmed = current_state([opt_in(10, double_opt_in_confirmed=True)])
    assert decide(confirmed, "EU_EEA", None, NOW, policy).allowed


def test_unknown_region_may_be_mapped_to_a_named_region():
    data = default_policy().model_dump() | {"unknown_region": "US"}
    assert decide(UNKNOWN, UNKNOWN_REGION, None, NOW, load_policy(data)).basis == "opt_out_model"


def test_policy_loads_from_yaml_text_and_file(tmp_path):
    text = "regions:\n  ANY:\n    requires_explicit_opt_in: false\ndefault_region: ANY\n"
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    for source in (text, path):
        policy = load_policy(source)
        assert resolve_region(None, "JP", policy) == "ANY"
        assert decide(SOFT, "ANY", None, NOW, policy).basis == "opt_in"
        assert not decide(UNKNOWN, "ANY", None, NOW, policy).allowed


@pytest.mark.parametrize("data, message", [
    ({"regions": {"X": {"requires_explicit_opt_in": True, "opt_out_model": True}}, "default_region": "X"},
     "opt-out model"),
    ({"regions": {"X": {}}, "countries": {"Y": ["FR"]}, "default_region": "X"}, "without a rule"),
    ({"regions": {"X": {}}, "default_region": "OTHER"}, "without a rule"),
    ({"regions": {}, "default_region": None}, "at least 1"),
    ({"regions": {"X": {"allows_implied_from_purchase_months": 0}}, "default_region": "X"}, "greater than 0"),
])
def test_incoherent_policies_are_refused(data, message):
    with pytest.raises(ValidationError, match=message):
        load_policy(data)
