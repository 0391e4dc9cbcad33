"""UTC instants as integer epoch microseconds: exact, JSON/DynamoDB friendly and cheap to compare."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def is_missing(value: Any) -> bool:
    """None, "", NaN, NaT or pandas.NA (rows from a DataFrame carry the last three)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA refuses to be a bool
        return True


def to_datetime(value: Any) -> datetime | None:
    """datetime (naive = UTC), ISO string, date or epoch µs -> aware UTC datetime; None if unusable."""
    if is_missing(value):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, int) and not isinstance(value, bool):
        return from_us(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return to_datetime(parsed)
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp without importing pandas (ns are floored)
        return to_datetime(
            value.floor("us").to_pydatetime() if hasattr(value, "floor") else value.to_pydatetime()
        )
    return None


def to_us(value: Any) -> int | None:
    moment = to_datetime(value)
    if moment is None:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // US_PER_SECOND, tz=timezone.utc).replace(
        microsecond=us % US_PER_SECOND
    )


def iso_from_us(us: int | None) -> str | None:
    """'2026-05-01T10:00:00Z', with '.ffffff' only when there are microseconds (numpy formats the same)."""
    if us is None:
        return None
    moment = from_us(us)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"
