"""Number formatting and label hygiene for the report.

Labels that come from data (segment, cluster, tier and status names, rule codes) pass through
`safe_label`, which blanks anything shaped like an email address or a phone number: the report shows
counts and codes, never contact details, even when a label was set carelessly upstream.
"""

from __future__ import annotations

import re

EMAIL_LIKE = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+\.[^\s@<>\"']+")
# International (+44 20 7946 0958) or separated national (020-7946-0958, (415) 555-0100) numbers.
PHONE_LIKE = re.compile(r"\+\d[\d\s().-]{6,}\d|\(?\b\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}\b")
REDACTED = "[redacted]"


def safe_label(value: object) -> str:
    text = " ".join(str(value).split())
    return PHONE_LIKE.sub(REDACTED, EMAIL_LIKE.sub(REDACTED, text))


def humanize(code: str) -> str:
    """'valid_email' -> 'Valid email'; labels that already have capitals or spaces are kept."""
    if " " in code or code != code.lower():
        return code
    return code.replace("_", " ").capitalize()


def fmt_int(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def fmt_pct(part: float, whole: float, digits: int = 1) -> str:
    return f"{part / whole:.{digits}%}" if whole else "—"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
