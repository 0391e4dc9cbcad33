"""Country names and codes to ISO 3166-1 alpha-2.

Lookup order for one value: the informal-name table below, then pycountry (alpha-2, alpha-3, numeric code,
official, common and short names, any case), then pycountry again on the accent-free form. No fuzzy
matching: a misspelt country is reported, not guessed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pandas as pd
import pycountry

from segflow.ingest.normalise import Parsed, ParseResult, parse_unique

# Informal, historical and native names that pycountry does not know. Keys are in `_key` form
# (accent-free, lower case, dots dropped). Constituent countries of the UK map to GB.
INFORMAL_NAMES: dict[str, str] = {
    "usa": "US",
    "us of a": "US",
    "united states": "US",
    "america": "US",
    "u s": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom": "GB",
    "holland": "NL",
    "the netherlands": "NL",
    "nederland": "NL",
    "deutschland": "DE",
    "allemagne": "DE",
    "espana": "ES",
    "espagne": "ES",
    "italia": "IT",
    "italie": "IT",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "belgie": "BE",
    "belgique": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "cesko": "CZ",
    "czech republic": "CZ",
    "eire": "IE",
    "republic of ireland": "IE",
    "brasil": "BR",
    "mexico": "MX",
    "russia": "RU",
    "turkey": "TR",
    "turkiye": "TR",
    "south korea": "KR",
    "korea south": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "vietnam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "moldova": "MD",
    "tanzania": "TZ",
    "bolivia": "BO",
    "venezuela": "VE",
    "macedonia": "MK",
    "north macedonia": "MK",
    "ivory coast": "CI",
    "cote divoire": "CI",
    "uae": "AE",
    "emirates": "AE",
    "hong kong": "HK",
    "taiwan": "TW",
    "macau": "MO",
    "palestine": "PS",
    "vatican": "VA",
    "burma": "MM",
    "swaziland": "SZ",
    "cape verde": "CV",
    "east timor": "TL",
    "el": "GR",  # EU code for Greece
    "kosovo": "XK",
    "xk": "XK",  # user-assigned code used by the EU and libphonenumber
}

_DROP = re.compile(r"[.'`’]")


def _key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_DROP.sub("", plain).replace("&", " and ").replace("-", " ").casefold().split())


@lru_cache(maxsize=8192)
def country_code(text: str) -> str | None:
    """ISO 3166-1 alpha-2 for a country name or code, or None when unknown."""
    cleaned = " ".join(text.split())
    if not cleaned:
        return None
    key = _key(cleaned)
    if key in INFORMAL_NAMES:
        return INFORMAL_NAMES[key]
    for candidate in (cleaned, key):
        try:
            return str(pycountry.countries.lookup(candidate).alpha_2)
        except LookupError:
            continue
    return None


def parse_countries(raw: pd.Series) -> Parsed:
    def parse(text: str) -> ParseResult:
        if not text.strip():
            return None, None, False
        code = country_code(text)
        if code is None:
            return None, f"unknown country {text.strip()[:40]!r}", False
        return code, None, code != text

    return parse_unique(raw, parse)
