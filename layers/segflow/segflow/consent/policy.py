"""The consent policy: which region a contact is in and whether its consent allows marketing email there.

The table is data (`default_policy.yaml`, documented there); `decide` applies one region's rule to a
contact's `ConsentState`. An unknown region gets the strictest treatment by default: allowed only when
every configured rule allows it.
"""
from __future__ import annotations

import calendar
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from segflow.consent.models import ConsentState, Decision, as_utc

UNKNOWN_REGION = "UNKNOWN"
# Bases that allowed a decision, strongest first.
BASES = ("explicit_opt_in", "opt_in", "implied_purchase", "opt_out_model")


class RegionRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    requires_explicit_opt_in: bool = True
    requires_double_opt_in: bool = False
    opt_out_model: bool = False
    allows_implied_from_purchase_months: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _coherent(self) -> "RegionRule":
        if self.opt_out_model and self.requires_explicit_opt_in:
            raise ValueError("a region cannot both follow the opt-out model and require an explicit opt-in")
        return self


class ConsentPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    regions: dict[str, RegionRule] = Field(min_length=1)
    countries: dict[str, list[str]] = Field(default_factory=dict)
    region_aliases: dict[str, str] = Field(default_factory=dict)
    unknown_region: Literal["strictest"] | str = "strictest"
    default_region: str | None = "OTHER"

    @model_validator(mode="after")
    def _known_names(self) -> "ConsentPolicy":
        named = [*self.countries, *self.region_aliases.values()]
        named += [n for n in (self.default_region,) if n]
        named += [self.unknown_region] if self.unknown_region != "strictest" else []
        unknown = sorted({n for n in named if n not in self.regions})
        if unknown:
            raise ValueError(f"policy names regions without a rule: {unknown}")
        return self

    def country_region(self, country: str | None) -> str | None:
        code = (country or "").strip().upper()
        if len(code) != 2 or not code.isalpha():
            return None
        for region, codes in self.countries.items():
            if code in codes:
                return region
        return self.default_region

    def rule(self, region: str) -> RegionRule | None:
        return self.regions.get(region)


def load_policy(source: str | Path | dict[str, Any] | None = None) -> ConsentPolicy:
    """A policy from a YAML file path, YAML text, a dict, or (None) the shipped default."""
    if source is None:
        return default_policy()
    if isinstance(source, dict):
        return ConsentPolicy.model_validate(source)
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    return ConsentPolicy.model_validate(yaml.safe_load(text))


@lru_cache(maxsize=1)
def default_policy() -> ConsentPolicy:
    text = resources.files("segflow.consent").joinpath("default_policy.yaml").read_text(encoding="utf-8")
    return ConsentPolicy.model_validate(yaml.safe_load(text))


def resolve_region(explicit: str | None, country: str | None, policy: ConsentPolicy | None = None) -> str:
    """Explicit region (a region name, an alias or a country code) > profile country > UNKNOWN_REGION."""
    policy = policy or default_policy()
    name = (explicit or "").strip().upper()
    if name:
        if name in policy.regions:
            return name
        if name in policy.region_aliases:
            return policy.region_aliases[name]
        from_code = policy.country_region(name)
        if from_code:
            return from_code
    return policy.country_region(country) or UNKNOWN_REGION


def _effective_rule(region: str, policy: ConsentPolicy) -> RegionRule | None:
    """The rule for a region; None means the strictest treatment (every rule must agree)."""
    rule = policy.rule(region)
    if rule is None and policy.unknown_region != "strictest":
        rule = policy.regions[policy.unknown_region]
    return rule


def requires_double_opt_in(region: str, policy: ConsentPolicy | None = None) -> bool:
    """Whether an opt-in counts in this region only when double-opt-in confirmed (also what lifting a
    destination opt-out takes there); under the strictest treatment, when any rule requires it."""
    policy = policy or default_policy()
    rule = _effective_rule(region, policy)
    if rule is not None:
        return rule.requires_double_opt_in
    return any(r.requires_double_opt_in for r in policy.regions.values())


def months_before(moment: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the day clamped to the month's length)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _decide_rule(state: ConsentState, rule: RegionRule, last_purchase_at: datetime | None,
                 now: datetime) -> Decision:
    if state.destination_opt_out:
        return Decision(allowed=False, reasons=["destination_opt_out"])
    if state.status == "opted_out":
        return Decision(allowed=False, reasons=["opted_out"])
    if state.status == "opted_in" and state.explicit_opt_in:
        if state.double_opt_in_confirmed or not rule.requires_double_opt_in:
            return Decision(allowed=True, basis="explicit_opt_in")
    if state.status == "opted_in" and not rule.requires_explicit_opt_in:
        return Decision(allowed=True, basis="opt_in")
    if rule.opt_out_model:
        return Decision(allowed=True, basis="opt_out_model")
    months = rule.allows_implied_from_purchase_months
    if months and last_purchase_at is not None and months_before(now, months) <= last_purchase_at <= now:
        return Decision(allowed=True, basis="implied_purchase")

    if state.explicit_opt_in:
        reasons = ["double_opt_in_required"]
    elif state.status == "unknown":
        reasons = ["no_consent"]
    else:
        reasons = ["explicit_opt_in_required"]
    if months:
        reasons.append("no_recent_purchase")
    return Decision(allowed=False, reasons=reasons)


def decide(
    state: ConsentState,
    region: str,
    last_purchase_at: Any,
    now: datetime,
    policy: ConsentPolicy | None = None,
) -> Decision:
    """May this contact receive marketing email in `region` now? (basis when allowed, reasons when not)"""
    policy = policy or default_policy()
    purchase = as_utc(last_purchase_at)
    now = as_utc(now)  # type: ignore[assignment]
    rule = _effective_rule(region, policy)
    if rule is not None:
        return _decide_rule(state, rule, purchase, now)
    # Strictest: every rule must allow it; the reasons are those of the rules that refuse.
    decisions = [_decide_rule(state, r, purchase, now) for r in policy.regions.values()]
    refusals = [d for d in decisions if not d.allowed]
    if refusals:
        reasons = ["unknown_region", *dict.fromkeys(r for d in refusals for r in d.reasons)]
        return Decision(allowed=False, reasons=reasons)
    basis = min((d.basis for d in decisions if d.basis), key=BASES.index)
    return Decision(allowed=True, basis=basis)
