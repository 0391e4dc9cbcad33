"""Consent, eligibility and erasure: the pure domain (plain Python and pydantic; no pandas, numpy, boto3).

- models:      ConsentRecord (record_id = hash of its content), ConsentState, Decision, Eligibility
- ledger:      apply / current_state: the append-only ledger and the state it resolves to
- policy:      region resolution and the configurable policy table (default_policy.yaml) -> decide
- eligibility: consent + valid email + suppression + activity + required data -> evaluate, profile_fields
- guard:       may_push / may_subscribe_new, the last check before any destination write
- erasure:     tombstones, erasure planning, running a plan through ports, the erasure report
"""
from segflow.consent.eligibility import EligibilityConfig, consent_state, evaluate, profile_fields
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.consent.ledger import apply, current_state
from segflow.consent.models import ConsentRecord, ConsentState, Decision, Eligibility
from segflow.consent.policy import ConsentPolicy, decide, default_policy, load_policy, resolve_region

__all__ = [
    "ConsentPolicy", "ConsentRecord", "ConsentState", "Decision", "Eligibility", "EligibilityConfig", "apply",
    "consent_state", "current_state", "decide", "default_policy", "evaluate", "load_policy", "may_push",
    "may_subscribe_new", "profile_fields", "resolve_region",
]
