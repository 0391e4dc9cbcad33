"""Money amounts, quantities and currency codes.

Amounts become an exact Decimal (kept as its normalised text, e.g. "1234.5") and a float64 for analytics.
Accepted: an optional sign ("-", "+", U+2212) or accounting parentheses "(12.50)"; currency symbols
(any Unicode currency sign, with up to 3 letters glued before it: "US$5", "R$5") and a leading or
trailing ISO 4217 code or "kr" ("EUR 12", "12,50 eur", "99 kr") are dropped: the row's currency column
decides the currency. Spaces, non-breaking spaces and apostrophes are thousands separators.
Decimal separator, per value:
- both "." and "," present: the last one is the decimal separator ("1,234.50", "1.234,50");
- only ",": the decimal separator ("12,5", "1234,567", "0,125"), thousands when repeated ("1,234,567"); a
  single "," after 1-3 digits (not "0") and before exactly three ("1,234") is ambiguous: rejected unless
  `decimal_separator` is configured;
- only ".": the decimal point (as JSON, Parquet and most exports write numbers) unless repeated
  ("1.234.567" are thousands) or `decimal_separator=","` is configured.
Thousands groups must have three digits. Exponents ("1.5e-05", as floats print) are accepted.
Amounts of 10**15 or more are rejected: floats stop being exact to the cent around there.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
import pycountry

from segflow.ingest.normalise import Parsed, ParseResult, parse_unique, parse_uniques

DecimalSeparator = Literal[".", ","]
MAX_AMOUNT = Decimal(10) ** 15

_AFFIX = re.compile(
    r"^(?P<lead>[A-Za-z]{2,3})\s*(?=[\d.,(+\-\u2212])|(?<=[\d.,)])\s*(?P<trail>[A-Za-z]{2,3})$"
)
_BODY = re.compile(r"(?P<mantissa>\d[\d.,]*|[.,]\d+)(?P<exponent>[eE][+-]?\d+)?")
_GROUPED = re.compile(r"\d{1,3}(?:X\d{3})+")  # X stands for the thousands separator
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# "1,234.56" and "1.234,56": grouped thousands with a decimal part are unambiguous (fast path).
_GROUPED_POINT = re.compile(r"-?\d{1,3}(?:,\d{3})+\.\d+")
_GROUPED_COMMA = re.compile(r"-?\d{1,3}(?:\.\d{3})+,\d+")
_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'\u2019")
_LOCAL_CURRENCY_WORDS = frozenset({"kr"})
_HAS_LETTER = re.compile(r"[A-Za-z]")  # written after amounts in SEK/NOK/DKK exports


def _drop_currency(body: str) -> str:
    """Remove currency symbols (with up to 3 letters glued before them: US$, R$) and an ISO code affix."""
    if body.isascii() and "$" not in body:  # "$" is the only ASCII currency sign
        return _AFFIX.sub(_checked_affix, body) if _HAS_LETTER.search(body) else body
    kept: list[str] = []
    for ch in body:
        if unicodedata.category(ch) == "Sc":
            for _ in range(3):
                if kept and kept[-1].isascii() and kept[-1].isalpha():
                    kept.pop()
            continue
        kept.append(ch)
    return _AFFIX.sub(_checked_affix, "".join(kept).strip())


def _checked_affix(match: re.Match[str]) -> str:
    word = match.group("lead") or match.group("trail")
    if currency_code(word) is None and word.lower() not in _LOCAL_CURRENCY_WORDS:
        raise ValueError(word)
    return ""


def parse_amount(text: str, decimal_separator: DecimalSeparator | None = None) -> Decimal:
    """One amount as a Decimal; raises ValueError with a readable reason."""
    shown = text.strip()[:40]
    body = text.strip()
    negative = False
    if body.startswith("(") and body.endswith(")"):
        negative, body = True, body[1:-1].strip()
    try:
        body = _drop_currency(body)
    except ValueError:
        raise ValueError(f"not an amount: {shown!r}") from None
    if body[:1] in ("-", "+", "\u2212"):
        negative, body = negative or body[0] != "+", body[1:].strip()
    body = body.translate(_SPACES)
    match = _BODY.fullmatch(body)
    if match is None or (match.group("exponent") and "," in body):
        raise ValueError(f"not an amount: {shown!r}")
    digits = _canonical_digits(match.group("mantissa"), decimal_separator, shown)
    try:
        value = Decimal(digits + (match.group("exponent") or ""))
    except InvalidOperation:
        raise ValueError(f"not an amount: {shown!r}") from None
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise ValueError(f"amount out of range: {shown!r}")
    return -value if negative else value


def _canonical_digits(body: str, configured: DecimalSeparator | None, text: str) -> str:
    has_dot, has_comma = "." in body, "," in body
    if has_dot and has_comma:
        decimal = "." if body.rfind(".") > body.rfind(",") else ","
    elif has_comma:
        integer, _, fraction = body.partition(",")
        if body.count(",") > 1:
            decimal = None
        elif configured is not None:
            decimal = "," if configured == "," else None
        elif len(fraction) == 3 and 1 <= len(integer) <= 3 and integer != "0":
            raise ValueError(f"ambiguous decimal separator in {text!r}; configure it")
        else:
            decimal = ","
    elif has_dot:
        decimal = None if body.count(".") > 1 or configured == "," else "."
    else:
        return body
    thousands = {".": ",", ",": ".", None: "," if has_comma else "."}[decimal]
    integer, _, fraction = body.rpartition(decimal) if decimal else (body, "", "")
    if decimal and (decimal in integer or thousands in fraction):
        raise ValueError(f"not an amount: {text!r}")
    if thousands in integer:
        if not _GROUPED.fullmatch(integer.replace(thousands, "X")):
            raise ValueError(f"misplaced thousands separator in {text!r}")
        integer = integer.replace(thousands, "")
    return f"{integer or '0'}.{fraction}" if fraction else (integer or "0")


def exact_text(value: Decimal) -> str:
    """Normalised decimal text without exponent: 12.50 -> "12.5", 1.2E+3 -> "1200", -0 -> "0"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _plain_exact_text(text: str) -> str | None:
    """exact_text for a plain "-?digits[.digits]" string without going through Decimal (None if too large)."""
    negative = text.startswith("-")
    integer, _, fraction = text.lstrip("-").partition(".")
    integer, fraction = integer.lstrip("0") or "0", fraction.rstrip("0")
    if len(integer) > 15:
        return None
    body = f"{integer}.{fraction}" if fraction else integer
    return "-" + body if negative and body != "0" else body


def parse_amounts(
    raw: pd.Series, decimal_separator: DecimalSeparator | None = None
) -> tuple[Parsed, np.ndarray]:
    """(Parsed with exact text values, float64 values); `changed` marks non-plain input like "1.234,50"."""

    def parse(text: str) -> ParseResult:
        stripped = text.strip()
        if not stripped:
            return None, None, False
        if _PLAIN_NUMBER.fullmatch(stripped) and (decimal_separator != "," or "." not in stripped):
            plain = _plain_exact_text(stripped)  # the common machine-written case: nothing to interpret
            if plain is not None:
                return plain, None, False
        if _GROUPED_POINT.fullmatch(stripped):
            plain = _plain_exact_text(stripped.replace(",", ""))
            if plain is not None:
                return plain, None, True
        if _GROUPED_COMMA.fullmatch(stripped):
            plain = _plain_exact_text(stripped.replace(".", "").replace(",", "."))
            if plain is not None:
                return plain, None, True
        try:
            value = parse_amount(text, decimal_separator)
        except ValueError as err:
            return None, str(err), False
        return exact_text(value), None, not _PLAIN_NUMBER.fullmatch(stripped)

    codes, per_unique = parse_uniques(raw, parse)
    floats = pd.to_numeric(pd.Series(per_unique.values, dtype=object), errors="coerce").to_numpy(
        dtype="float64"
    )
    parsed = Parsed(per_unique.values[codes], per_unique.errors[codes], per_unique.changed[codes])
    return parsed, floats[codes]


def parse_quantities(raw: pd.Series) -> Parsed:
    """Whole numbers ("2", "2.0", "1,000"); values are Python ints. Range rules belong to the caller."""

    def parse(text: str) -> ParseResult:
        if not text.strip():
            return None, None, False
        try:
            value = parse_amount(text, None)
        except ValueError as err:
            return None, str(err), False
        if value != value.to_integral_value():
            return None, f"not a whole number: {text.strip()[:40]!r}", False
        return int(value), None, False

    return parse_unique(raw, parse)


@lru_cache(maxsize=4096)
def currency_code(text: str) -> str | None:
    """ISO 4217 alphabetic code (any case, surrounding spaces) or None. XXX/XTS (no/test currency) refused."""
    code = text.strip().upper()
    if len(code) != 3 or code in ("XXX", "XTS"):
        return None
    return code if pycountry.currencies.get(alpha_3=code) is not None else None


def parse_currencies(raw: pd.Series) -> Parsed:
    def parse(text: str) -> ParseResult:
        if not text.strip():
            return None, None, False
        code = currency_code(text)
        if code is None:
            return None, f"not an ISO 4217 currency code: {text.strip()[:40]!r}", False
        return code, None, False

    return parse_unique(raw, parse)
