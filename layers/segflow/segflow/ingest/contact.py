"""Email addresses and phone numbers.

Email: trimmed and lower-cased (the whole address: mailbox providers treat the local part case-insensitively
in practice, and a single folded form is what identity resolution and the destinations key on), then
validated by email-validator with check_deliverability=False (syntax only, no DNS). A strict, common
ASCII shape (FAST_EMAIL) is accepted without calling the library: it is a subset of what email-validator
accepts, which a property test checks, and it makes a million unique addresses affordable. Everything
else — Unicode, quoted parts, special-use domains such as .test or .invalid — goes through the library.

Phone: parsed by phonenumbers with the row's (already normalised) country as the region, kept when
phonenumbers says the number is valid, written as E.164. A number written with an international prefix
("+44…", "0044…") needs no country; its region is reported so that an empty country can be imputed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from segflow.ingest.normalise import Parsed, ParseResult, parse_unique

# Dot-atom local part from a safe character subset; domain labels of letters, digits and inner hyphens;
# an alphabetic TLD. Lengths are checked in _fast_ok (cheaper than lookaheads).
FAST_EMAIL = re.compile(
    r"(?P<local>[a-z0-9_+][a-z0-9_+'-]*(?:\.[a-z0-9_+'-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24})"
)
_SPECIAL_DOMAINS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_SUFFIXES = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)


def email_key(text: str) -> str:
    return text.strip().lower()


def _fast_ok(address: str) -> bool:
    """True when `address` is certainly valid as written (a strict subset of email-validator's syntax)."""
    if len(address) > 254:
        return False
    match = FAST_EMAIL.fullmatch(address)
    if match is None:
        return False
    domain = match.group("domain")
    return (
        len(match.group("local")) <= 64
        and len(domain) <= 63  # then no label can exceed 63 either
        and "--" not in domain  # email-validator restricts "xx--" labels (punycode)
        and domain not in _SPECIAL_DOMAINS
        and not domain.endswith(_SPECIAL_SUFFIXES)
    )


def normalise_email(text: str) -> str:
    """The canonical form of one address; raises ValueError with the validator's message."""
    address = email_key(text)
    if _fast_ok(address):
        return address
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as err:
        raise ValueError(str(err)) from None


def parse_emails(raw: pd.Series) -> Parsed:
    def parse(text: str) -> ParseResult:
        if not text.strip():
            return None, None, False
        try:
            address = normalise_email(text)
        except ValueError as err:
            return None, f"invalid email: {err}", False
        return address, None, address != text

    return parse_unique(raw, parse)


def _parse_phone(text: str, region: str | None) -> tuple[str | None, str | None, str | None]:
    """(E.164, error, region of an internationally written number)."""
    number_text = text.strip()
    international = number_text.startswith(("+", "00"))
    if region is None and number_text.startswith("00"):
        number_text = "+" + number_text[2:]
    try:
        number = phonenumbers.parse(number_text, region)
    except phonenumbers.NumberParseException as err:
        hint = "" if region or international else " (no country to read it in)"
        return None, f"unparseable phone{hint}: {err}", None
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number{' for ' + region if region else ''}", None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    found = phonenumbers.region_code_for_number(number) if international else None
    return e164, None, found if found and found not in ("001", "ZZ") else None


def parse_phones(raw: pd.Series, regions: np.ndarray) -> tuple[Parsed, np.ndarray]:
    """(Parsed E.164 phones, region of each internationally written number or None)."""
    text = raw.to_numpy(dtype=object)
    keys = pd.Series(
        [None if t is None or not str(t).strip() else f"{r or ''}\x00{t}" for t, r in zip(text, regions)],
        dtype=object,
    )
    found_regions: dict[str, str | None] = {}

    def parse(key: str) -> ParseResult:
        region, _, number_text = key.partition("\x00")
        e164, error, found = _parse_phone(number_text, region or None)
        found_regions[key] = found
        return e164, error, e164 is not None and e164 != number_text

    parsed = parse_unique(keys, parse)
    inferred = np.array([found_regions.get(k) if k is not None else None for k in keys], dtype=object)
    return parsed, inferred
