"""Behavioural triggers: pure functions of one customer's activity and the configured windows.

Windows are half-open and end at `now`: "within N days" means ts in (now - N days, now]. Boundaries:
- cart_abandoned: the latest cart_add/checkout is at least `wait_hours` old and at most `max_days` old, and
  no purchase (purchase event or completed order) happened at or after it. A later purchase clears it.
- browse_abandoned: some product has `min_views` or more product_views within `window_days` and no purchase
  event for that product within the same window.
- inactive_30d: there was activity once, and none (any event except unsubscribe, or a completed order) for
  more than `days` days.
- open_no_click: `min_opens` or more email_opens and no email_click within `window_days`.
- signup_anniversary_soon: the next anniversary (1st, 2nd, ...) of the signup date is 0..within_days days
  away (29 February is celebrated on 28 February in other years).
- clv_tier_up: the CLV tier moved to a higher tier within the last `active_days` days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from segflow.segments.fields import TIERS
from segflow.segments.timeutil import US_PER_DAY, US_PER_HOUR, iso_from_us, to_datetime, to_us


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CartAbandonedSettings(_Strict):
    wait_hours: PositiveInt = 24
    max_days: PositiveInt = 7

    @model_validator(mode="after")
    def _ordered(self) -> CartAbandonedSettings:
        if self.wait_hours > self.max_days * 24:
            raise ValueError("wait_hours must not exceed max_days")
        return self


class BrowseAbandonedSettings(_Strict):
    min_views: PositiveInt = 3
    window_days: PositiveInt = 7


class InactiveSettings(_Strict):
    days: PositiveInt = 30


class OpenNoClickSettings(_Strict):
    min_opens: PositiveInt = 2
    window_days: PositiveInt = 14


class AnniversarySettings(_Strict):
    within_days: int = Field(7, ge=0, le=366)


class ClvTierUpSettings(_Strict):
    active_days: PositiveInt = 7
    tiers: tuple[str, ...] = Field(TIERS, min_length=2)  # lowest first


class TriggerSettings(_Strict):
    cart_abandoned: CartAbandonedSettings = CartAbandonedSettings()
    browse_abandoned: BrowseAbandonedSettings = BrowseAbandonedSettings()
    inactive_30d: InactiveSettings = InactiveSettings()
    open_no_click: OpenNoClickSettings = OpenNoClickSettings()
    signup_anniversary_soon: AnniversarySettings = AnniversarySettings()
    clv_tier_up: ClvTierUpSettings = ClvTierUpSettings()

    @property
    def event_retention_days(self) -> int:
        """How long an activity state must keep individual events to answer every windowed question."""
        return max(14, 7, self.browse_abandoned.window_days, self.open_no_click.window_days)


DEFAULT_TRIGGERS = TriggerSettings()


def within(ts: int, now_us: int, days: int) -> bool:
    return now_us - days * US_PER_DAY < ts <= now_us


def cart_abandoned(
    last_cart_us: int | None, last_purchase_us: int | None, now_us: int, settings: CartAbandonedSettings
) -> bool:
    if last_cart_us is None or (last_purchase_us is not None and last_purchase_us >= last_cart_us):
        return False
    age = now_us - last_cart_us
    return settings.wait_hours * US_PER_HOUR <= age <= settings.max_days * US_PER_DAY


def browse_abandoned(
    views: Iterable[tuple[int, str | None]],
    purchases: Iterable[tuple[int, str | None]],
    now_us: int,
    settings: BrowseAbandonedSettings,
) -> bool:
    """views / purchases: (timestamp_us, product_id) of product_view / purchase events."""
    days = settings.window_days
    counts = Counter(p for ts, p in views if p is not None and within(ts, now_us, days))
    keen = {p for p, n in counts.items() if n >= settings.min_views}
    if not keen:
        return False
    bought = {p for ts, p in purchases if p is not None and within(ts, now_us, days)}
    return bool(keen - bought)


def inactive(last_activity_us: int | None, now_us: int, settings: InactiveSettings) -> bool:
    return last_activity_us is not None and now_us - last_activity_us > settings.days * US_PER_DAY


def open_no_click(
    opens: Iterable[int], clicks: Iterable[int], now_us: int, settings: OpenNoClickSettings
) -> bool:
    days = settings.window_days
    if any(within(ts, now_us, days) for ts in clicks):
        return False
    return sum(1 for ts in opens if within(ts, now_us, days)) >= settings.min_opens


def days_to_anniversary(signup: Any, now: Any) -> int | None:
    """Days from now's UTC date to the next signup anniversary (0 = today); None before the first one."""
    signed_up, today = _date(signup), _date(now)
    if signed_up is None or today is None:
        return None
    for year in (today.year, today.year + 1):
        if year <= signed_up.year:
            continue
        anniversary = _same_day_in(signed_up, year)
        if anniversary >= today:
            return (anniversary - today).days
    return None


def signup_anniversary_soon(signup: Any, now: Any, settings: AnniversarySettings) -> bool:
    days = days_to_anniversary(signup, now)
    return days is not None and days <= settings.within_days


def note_clv_tier(
    state: Mapping[str, Any] | None, tier: str | None, now: Any, tiers: tuple[str, ...] = TIERS
) -> dict:
    """Remember the last seen CLV tier and when it last moved up: {"clv_tier", "clv_tier_up_at"}."""
    state = dict(state or {})
    previous = state.get("clv_tier")
    if tier is None:
        return state
    if previous in tiers and tier in tiers and tiers.index(tier) > tiers.index(previous):
        state["clv_tier_up_at"] = iso_from_us(to_us(now))
    state["clv_tier"] = tier
    return state


def clv_tier_up(state: Mapping[str, Any] | None, now: Any, settings: ClvTierUpSettings) -> bool:
    moved_at, now_us = to_us((state or {}).get("clv_tier_up_at")), to_us(now)
    return (
        moved_at is not None
        and now_us is not None
        and 0 <= now_us - moved_at <= settings.active_days * US_PER_DAY
    )


def _date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    moment = to_datetime(value)
    return moment.date() if moment else None


def _same_day_in(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)
