"""Dates and timestamps to UTC.

Accepted forms (an optional time "HH:MM[:SS[.fraction]]" with optional AM/PM may follow any date, after
"T" or spaces; an optional zone "Z", "UTC", "GMT" or "+HH[:MM]"/"-HHMM" may follow the time):
- ISO-8601:      2026-03-01, 2026-03-01T14:05:09.123Z, 2026-03-01 14:05+02:00 (1-digit month/day tolerated)
- YYYY/MM/DD:    2026/03/01
- DD.MM.YYYY:    01.03.2026 (the dotted form is day-first everywhere it is used)
- slash dates:   DD/MM/YYYY or MM/DD/YYYY, decided per value: 31/01/2026 is day-first, 01/31/2026
                 month-first, 05/05/2026 either; 03/04/2026 is ambiguous and rejected unless a date order
                 is configured (slash_order="dmy" or "mdy").
- Unix epoch:    10 digits (seconds, optional fraction) or 13 digits (milliseconds), as JSON exports write.
Nothing else is guessed (no month names, no two-digit years).

Values without a zone are wall-clock time in `default_timezone`: a wall-clock time that a DST change skips
is moved forward, an ambiguous one (clocks going back) takes the first occurrence. Calendar dates
(`date_only=True`, birth_date) ignore time and zone: the date as written, at midnight UTC.
`changed` (keep the original for audit) is set when the value was not ISO-8601, or its instant moved
(non-zero offset, or a naive value read in a default zone other than UTC), or a calendar date had a time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from segflow.ingest.normalise import Parsed

SlashOrder = Literal["auto", "dmy", "mdy"]

_TIME = (
    r"(?:(?:[Tt]|\s+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
    r"(?:\s*(?P<ampm>[AaPp][Mm]))?)?"
)
_ZONE = r"(?:\s*(?P<tz>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?"
_FAMILIES = {
    "iso": r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})",
    "ymd": r"(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})",
    "dmy_dot": r"(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})",
    "slash": r"(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})",
}
_PATTERNS = [(name, re.compile(date + _TIME + _ZONE)) for name, date in _FAMILIES.items()]
_EPOCH = re.compile(r"(?P<s>\d{10})(?:\.(?P<f>\d{1,6}))?|(?P<ms>\d{13})")
_OFFSET = re.compile(r"(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)$")
# datetime64[ns] covers 1677-09-21 .. 2262-04-11; whole years inside it are accepted.
_MIN_YEAR, _MAX_YEAR = 1678, 2261
_MAX_OFFSET = 14 * 60  # minutes; real zones span -12:00 .. +14:00


class _Wall:
    """One parsed value: wall-clock fields plus the zone offset in minutes (None = naive)."""

    __slots__ = ("moment", "offset", "reformatted", "had_time")

    def __init__(self, moment: datetime, offset: int | None, reformatted: bool, had_time: bool) -> None:
        self.moment, self.offset, self.reformatted, self.had_time = moment, offset, reformatted, had_time


def parse_timestamps(
    raw: pd.Series,
    *,
    default_timezone: str = "UTC",
    slash_order: SlashOrder = "auto",
    date_only: bool = False,
) -> Parsed:
    """Parse a column to datetime64[ns, UTC] values (NaT where missing or invalid)."""
    codes, uniques = pd.factorize(raw.to_numpy(dtype=object), use_na_sentinel=True)
    texts = [str(u).strip() for u in uniques]
    n = len(texts)
    instants = np.full(n + 1, np.datetime64("NaT"), dtype="datetime64[ns]")
    errors = np.full(n + 1, None, dtype=object)
    changed = np.zeros(n + 1, dtype=bool)
    blank = np.array([not t for t in texts] + [True])
    todo = ~blank
    utc_default = default_timezone.upper() in ("UTC", "ETC/UTC", "Z", "GMT")
    if not date_only and todo.any():
        _fast_iso(texts, todo, instants, changed, default_timezone, utc_default)
    slow = np.flatnonzero(todo)
    walls: dict[int, _Wall | np.datetime64] = {}
    for i in slow:
        result = _parse_one(texts[i], slash_order)
        if isinstance(result, str):
            errors[i] = result
        else:
            walls[int(i)] = result
    _place(walls, instants, changed, default_timezone, utc_default, date_only)
    values = pd.Series(instants[codes]).dt.tz_localize("UTC")
    return Parsed(values.array, errors[codes], changed[codes])  # type: ignore[arg-type]


def _fast_iso(
    texts: list[str],
    todo: np.ndarray,
    instants: np.ndarray,
    changed: np.ndarray,
    zone: str,
    utc_default: bool,
) -> None:
    """Vectorised path for full ISO-8601 values (C parser); what it cannot parse goes to the slow path."""
    candidates = np.flatnonzero(
        todo[:-1] & np.array([len(t) >= 10 and t[4:5] == "-" for t in texts], dtype=bool)
    )
    if not len(candidates):
        return
    subset = [texts[i] for i in candidates]
    parsed = pd.to_datetime(pd.Series(subset, dtype=object), format="ISO8601", errors="coerce", utc=True)
    offsets = [_explicit_offset(t) for t in subset]
    years = parsed.dt.year.to_numpy(dtype=float, na_value=np.nan)
    ok = (
        parsed.notna().to_numpy()
        & (years >= _MIN_YEAR)
        & (years <= _MAX_YEAR)
        & np.array([o is None or abs(o) <= _MAX_OFFSET for o in offsets], dtype=bool)
    )
    if not ok.any():
        return
    naive = np.array([o is None for o in offsets], dtype=bool)[ok]
    moved = np.array([bool(o) for o in offsets], dtype=bool)[ok]
    result = (
        parsed[ok].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]").reset_index(drop=True)
    )
    if not utc_default and naive.any():
        # The C parser read naive values as UTC; re-read their wall clock in the default zone.
        local = result[naive].dt.tz_localize(
            zone, ambiguous=np.ones(int(naive.sum()), dtype=bool), nonexistent="shift_forward"
        )
        result[naive] = local.dt.tz_convert("UTC").dt.tz_localize(None)
        moved |= naive
    targets = candidates[ok]
    instants[targets] = result.to_numpy()
    changed[targets] = moved
    todo[targets] = False


def _explicit_offset(text: str) -> int | None:
    """Offset minutes written after an ISO time (0 for Z), None for a naive value."""
    if len(text) <= 10:
        return None
    last = text[-1]
    if last in "Zz":
        return 0
    if text[-6] in "+-" and text[-3] == ":" and text[-5:-3].isdigit() and text[-2:].isdigit():
        return (-1 if text[-6] == "-" else 1) * (int(text[-5:-3]) * 60 + int(text[-2:]))
    if last.isdigit() and ":" in text[-3:] and text[-6] not in "+-":
        return None  # ends like "...12:30" or "...12:30:05": no zone
    match = _OFFSET.search(text)
    if match is None:
        return None
    if match.group(1) is None:
        return 0
    sign = -1 if match.group(1) == "-" else 1
    return sign * (int(match.group(2)) * 60 + int(match.group(3) or 0))


def _parse_one(text: str, slash_order: SlashOrder) -> _Wall | np.datetime64 | str:
    epoch = _EPOCH.fullmatch(text)
    if epoch:
        if epoch.group("ms"):
            return np.datetime64(int(epoch.group("ms")), "ms").astype("datetime64[ns]")
        micros = int((epoch.group("f") or "0").ljust(6, "0"))
        return (np.datetime64(int(epoch.group("s")), "s") + np.timedelta64(micros, "us")).astype(
            "datetime64[ns]"
        )
    for family, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _from_match(family, match, slash_order)
    return f"unrecognised date {text[:40]!r}"


def _from_match(family: str, match: re.Match[str], slash_order: SlashOrder) -> _Wall | str:
    g = match.groupdict()
    year = int(g["y"])
    if family == "slash":
        first, second = int(g["a"]), int(g["b"])
        order = slash_order
        if order == "auto":
            if first == second or (first > 12 >= second):
                order = "dmy"
            elif second > 12 >= first:
                order = "mdy"
            else:
                return f"ambiguous day/month order in {match.string[:40]!r}; configure the date order"
        day, month = (first, second) if order == "dmy" else (second, first)
    else:
        day, month = int(g["d"]), int(g["m"])
    hour, minute, second_ = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
    if g["ampm"]:
        if not 1 <= hour <= 12:
            return f"hour {hour} with AM/PM in {match.string[:40]!r}"
        hour = hour % 12 + (12 if g["ampm"].lower() == "pm" else 0)
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return f"year {year} out of range"
    micro = int((g["F"] or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(year, month, day, hour, minute, second_, micro)
    except ValueError:
        return f"not a valid date/time {match.string[:40]!r}"
    offset = _zone_minutes(g["tz"])
    if offset is not None and abs(offset) > _MAX_OFFSET:
        return f"zone offset out of range in {match.string[:40]!r}"
    return _Wall(moment, offset, family != "iso", g["H"] is not None)


def _zone_minutes(zone: str | None) -> int | None:
    if zone is None:
        return None
    if zone.upper() in ("Z", "UTC", "GMT"):
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:4] or 0))


def _place(
    walls: dict[int, _Wall | np.datetime64],
    instants: np.ndarray,
    changed: np.ndarray,
    zone: str,
    utc_default: bool,
    date_only: bool,
) -> None:
    naive_idx, naive_moments = [], []
    for i, wall in walls.items():
        if isinstance(wall, np.datetime64):  # epoch: already an instant (its UTC date for calendar dates)
            instants[i] = wall.astype("datetime64[D]").astype("datetime64[ns]") if date_only else wall
            changed[i] = True
        elif date_only:
            instants[i] = np.datetime64(wall.moment.date(), "ns")
            changed[i] = wall.reformatted or wall.had_time
        elif wall.offset is not None:
            instants[i] = np.datetime64(wall.moment, "ns") - np.timedelta64(wall.offset, "m")
            changed[i] = wall.reformatted or wall.offset != 0
        else:
            naive_idx.append(i)
            naive_moments.append(wall.moment)
            changed[i] = wall.reformatted or not utc_default
    if naive_idx:
        local = pd.DatetimeIndex(naive_moments).as_unit("ns")
        if not utc_default:
            local = local.tz_localize(
                zone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
            )
            local = local.tz_convert("UTC").tz_localize(None)
        instants[np.asarray(naive_idx)] = local.to_numpy()
