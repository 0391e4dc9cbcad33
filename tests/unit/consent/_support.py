"""Builders shared by the consent tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from segflow.consent.models import ConsentRecord

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
EMAIL = "ann@example.com"


def at(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def rec(status: str, days_ago: float, **fields: Any) -> ConsentRecord:
    """A consent record `days_ago` days before NOW (email ann@example.com unless given)."""
    fields.setdefault("email", EMAIL)
    return ConsentRecord(status=status, timestamp=at(days_ago), **fields)


def opt_in(days_ago: float, basis: str = "consent", **fields: Any) -> ConsentRecord:
    return rec("opted_in", days_ago, lawful_basis=basis, source=fields.pop("source", "signup_form"), **fields)


def opt_out(days_ago: float, **fields: Any) -> ConsentRecord:
    return rec("opted_out", days_ago, source=fields.pop("source", "preference_center"), **fields)


def dest_out(days_ago: float, destination: str = "mailchimp", reason: str = "unsubscribed") -> ConsentRecord:
    return rec("opted_out", days_ago, source=f"destination:{destination}", reason=reason)
