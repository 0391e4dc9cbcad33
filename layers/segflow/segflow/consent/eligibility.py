"""Who may receive marketing email: the consent policy plus email validity, suppression, recent activity
and required data; and how much personalisation the contact accepts.

Ineligibility reasons (machine codes, several may apply):
  missing:<field>            a required profile field is empty
  invalid_email              the address fails the syntax check (no DNS lookups)
  suppressed:<reason>        the consent item is suppressed (bounce, complaint, ...) or a destination
                             opt-out is in force (bounce for a cleaned member, complaint for an abuse
                             report, destination_unsubscribe otherwise)
  inactive                   no order or activity within the window (default 365 days); a signup or an
                             opt-in inside the window counts as activity, so new subscribers are reachable
  <policy reasons>           from `policy.decide`: opted_out, destination_opt_out, no_consent,
                             explicit_opt_in_required, double_opt_in_required, no_recent_purchase,
                             unknown_region
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Collection, Iterable, Mapping

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field

from segflow.consent.ledger import RecordLike, current_state
from segflow.consent.models import ConsentState, Eligibility, PreferenceLevel, as_utc
from segflow.consent.policy import (
    ConsentPolicy,
    decide,
    default_policy,
    requires_double_opt_in,
    resolve_region,
)

PREFERENCE_LEVELS: tuple[PreferenceLevel, ...] = ("full", "basic", "none")
_DESTINATION_SUPPRESSION = {
    "cleaned": "bounce", "bounce": "bounce", "abuse": "complaint", "complaint": "complaint",
}


class EligibilityConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: ConsentPolicy = Field(default_factory=default_policy)
    activity_window_days: int | None = Field(default=365, gt=0)  # None: no activity requirement
    signup_and_opt_in_count_as_activity: bool = True
    required_fields: tuple[str, ...] = ("email",)
    default_preference_level: PreferenceLevel = "full"
    # Non-ASCII local parts need SMTPUTF8, which no destination is assumed to support: invalid unless allowed.
    allow_smtputf8: bool = False


def email_is_valid(email: str | None, allow_smtputf8: bool = False) -> bool:
    """Syntax check by email-validator, without DNS lookups."""
    return isinstance(email, str) and bool(email) and _email_ok(email, bool(allow_smtputf8))


@lru_cache(maxsize=65536)
def _email_ok(email: str, allow_smtputf8: bool) -> bool:
    try:
        validate_email(email, check_deliverability=False, allow_smtputf8=allow_smtputf8)
    except EmailNotValidError:
        return False
    return True


def consent_state(
    ledger: Iterable[RecordLike], country: str | None, policy: ConsentPolicy | None = None
) -> tuple[ConsentState, str]:
    """The contact's state with the policy's double-opt-in demand applied, and its region."""
    policy = policy or default_policy()
    records = list(ledger)
    state = current_state(records)
    region = resolve_region(state.region, country, policy)
    if requires_double_opt_in(region, policy):
        state = current_state(records, lift_requires_double_opt_in=True)
    return state, region


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict, tuple)) and not value)


def _suppression_reasons(profile_view: Mapping[str, Any], state: ConsentState) -> list[str]:
    reasons = []
    if profile_view.get("suppressed"):
        reasons.append(f"suppressed:{str(profile_view.get('suppression_reason') or 'unspecified').lower()}")
    if state.destination_opt_out:
        kind = _DESTINATION_SUPPRESSION.get(state.destination_opt_out_reason or "", "destination_unsubscribe")
        reasons.append(f"suppressed:{kind}")
    return list(dict.fromkeys(reasons))


def _last_active(activity: Mapping[str, Any], profile_view: Mapping[str, Any], state: ConsentState,
                 config: EligibilityConfig) -> datetime | None:
    moments = [as_utc(activity.get("last_order_at")), as_utc(activity.get("last_activity_at"))]
    if config.signup_and_opt_in_count_as_activity:
        moments.append(as_utc(profile_view.get("signup_date")))
        if state.status == "opted_in":
            moments.append(state.at)
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def evaluate(
    profile_view: Mapping[str, Any],
    consent_state: ConsentState,
    activity: Mapping[str, Any] | None,
    now: datetime,
    config: EligibilityConfig | None = None,
) -> Eligibility:
    """Eligibility of one contact. `activity` holds last_order_at / last_activity_at (datetimes or ISO
    strings); None reads them from the profile view (the SCORES fields)."""
    config = config or EligibilityConfig()
    now = as_utc(now)  # type: ignore[assignment]
    activity = profile_view if activity is None else activity
    reasons = [f"missing:{name}" for name in config.required_fields if _blank(profile_view.get(name))]
    email = profile_view.get("email")
    if not _blank(email) and not email_is_valid(email, config.allow_smtputf8):
        reasons.append("invalid_email")
    reasons += _suppression_reasons(profile_view, consent_state)

    region = resolve_region(consent_state.region, profile_view.get("country"), config.policy)
    decision = decide(consent_state, region, activity.get("last_order_at"), now, config.policy)
    reasons += decision.reasons

    if config.activity_window_days is not None:
        last = _last_active(activity, profile_view, consent_state, config)
        if last is None or last < now - timedelta(days=config.activity_window_days):
            reasons.append("inactive")

    stated = consent_state.preference_level or profile_view.get("preference_level")
    preference = stated if stated in PREFERENCE_LEVELS else config.default_preference_level
    reasons = list(dict.fromkeys(reasons))
    return Eligibility(eligible=not reasons, reasons=reasons, preference_level=preference, region=region,
                       decision=decision)


def profile_fields(consent_state: ConsentState, eligibility: Eligibility) -> dict[str, Any]:
    """The consent and eligibility fields stored for the profile (and read back by `guard.may_push`)."""
    return {
        "consent_status": consent_state.status,
        "consent_basis": consent_state.basis,
        "consent_at": consent_state.at.isoformat() if consent_state.at else None,
        "consent_source": consent_state.source,
        "consent_explicit": consent_state.explicit_opt_in,
        "consent_double_opt_in": consent_state.double_opt_in_confirmed,
        "consent_region": eligibility.region,
        "destination_opt_out": consent_state.destination_opt_out,
        "preference_level": eligibility.preference_level,
        "eligible": eligibility.eligible,
        "eligibility_basis": eligibility.decision.basis,
        "ineligible_reasons": list(eligibility.reasons),
    }


def allowed_merge_fields(
    preference_level: str | None, fields: Mapping[str, Any], behavioural: Collection[str]
) -> dict[str, Any]:
    """The personalisation fields a contact accepts: full -> all, basic -> none of the behavioural
    fields, none (or anything unrecognised) -> no personalisation fields at all."""
    if preference_level == "full":
        return dict(fields)
    if preference_level == "basic":
        return {name: value for name, value in fields.items() if name not in behavioural}
    return {}
