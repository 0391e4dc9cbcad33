"""Fake but realistic people for the sample data generator: names, addresses, phones, emails.

Everything here is fictional. Emails use reserved example domains only. Phones are built from
phonenumbers' own example numbers with randomised trailing digits, checked valid for the country.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import phonenumbers

# Names per locale, "|"-separated; "display=ascii" gives the spelling used in email addresses where
# plain transliteration would not do (Japanese, German umlauts).
_NAME_TABLE: dict[str, tuple[str, str]] = {
    "en": (
        "James|Olivia|Liam|Emma|Noah|Amelia|Oliver|Ava|Jack|Grace|Ethan|Chloe|Mia|Lucas|Harper|Zoë|Łukasz|"
        "Siobhán|Seán|Priya",
        "Smith|Johnson|Williams|Brown|Taylor|Wilson|Davies|Evans|Murphy|Walker|Thompson|Clarke|Patel|Nguyen|"
        "Kelly|O'Brien|Kowalczyk|Brontë",
    ),
    "de": (
        "Lukas|Anna|Leon|Sophie|Felix|Marie|Jonas|Lena|Paul|Laura|Emil|Jürgen=juergen|Zoë|Łukasz|Özlem=oezlem",
        "Müller=mueller|Schmidt|Schneider|Fischer|Weber|Wagner|Becker|Hoffmann|Koch|Schäfer=schaefer|"
        "Größer=groesser|Yılmaz",
    ),
    "fr": (
        "Louis|Camille|Hugo|Léa|Jules|Manon|Arthur|Chloé|Zoë|Élodie|François|Hélène|Gaëlle",
        "Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Moreau|Lefèvre|Girard|Béranger",
    ),
    "es": (
        "José|María|Lucía|Sofía|Martín|Iñaki|Pablo|Carmen|Alejandro|Elena|Javier|Paula",
        "García|Fernández|López|Martínez|Sánchez|Pérez|Muñoz|Gómez|Ruiz|Navarro|Torres",
    ),
    "it": (
        "Giulia|Francesco|Sofia|Alessandro|Aurora|Lorenzo|Giorgia|Matteo|Chiara|Leonardo|Niccolò|Zoë",
        "Rossi|Russo|Ferrari|Esposito|Bianchi|Romano|Colombo|Ricci|Marino|De Luca|D'Angelo",
    ),
    "nl": (
        "Daan|Emma|Sem|Julia|Lucas|Tess|Finn|Sanne|Bram|Fleur|Zoë|Joëlle",
        "de Jong|Jansen|de Vries|Bakker|Visser|Smit|Meijer|Mulder|van den Berg|van Dijk",
    ),
    "ja": (
        "太郎=taro|花子=hanako|翔太=shota|陽菜=hina|結衣=yui|大輝=daiki|美咲=misaki|蓮=ren|Haruto|Yuki",
        "山田=yamada|佐藤=sato|鈴木=suzuki|高橋=takahashi|田中=tanaka|伊藤=ito|渡辺=watanabe|Nakamura|Kobayashi",
    ),
    "pt": (
        "João|Conceição|Luíza|Antônio|Gabriel|Ana|Lucas|Beatriz|Rafael|Mariana|Pedro|Larissa",
        "Gonçalves|Araújo|Silva|Santos|Oliveira|Souza|Rodrigues|Ferreira|Almeida|Costa",
    ),
}

# code -> (weight, name locale, "city=postal code pattern|..." with '#' a digit, '@' a capital letter)
_COUNTRY_TABLE: dict[str, tuple[float, str, str]] = {
    "US": (
        0.25,
        "en",
        "New York=100##|San Francisco=941##|Chicago=606##|Austin=787##|Seattle=981##|Boston=021##",
    ),
    "GB": (0.14, "en", "London=SW1A #@@|Manchester=M# #@@|Bristol=BS# #@@|Edinburgh=EH# #@@|Leeds=LS# #@@"),
    "DE": (0.12, "de", "Berlin=10###|München=80###|Hamburg=20###|Köln=50###|Düsseldorf=40###"),
    "FR": (0.10, "fr", "Paris=750##|Lyon=6900#|Marseille=130##|Toulouse=310##|Nantes=440##"),
    "CA": (0.06, "en", "Toronto=M#@ #@#|Montréal=H#@ #@#|Vancouver=V#@ #@#|Ottawa=K#@ #@#"),
    "ES": (0.06, "es", "Madrid=280##|Barcelona=080##|Sevilla=410##|Málaga=290##"),
    "IT": (0.06, "it", "Roma=001##|Milano=201##|Napoli=801##|Torino=101##"),
    "NL": (0.05, "nl", "Amsterdam=10## @@|Rotterdam=30## @@|Utrecht=35## @@"),
    "IE": (0.03, "en", "Dublin=D0# @###|Cork=T12 @###|Galway=H91 @###"),
    "AU": (0.05, "en", "Sydney=20##|Melbourne=30##|Brisbane=40##|Perth=60##"),
    "JP": (0.05, "ja", "東京=1##-####|大阪=5##-####|Kyoto=60#-####"),
    "BR": (0.03, "pt", "São Paulo=0####-###|Rio de Janeiro=2####-###|Belo Horizonte=3####-###"),
}
_LETTERS_WITHOUT_DECOMPOSITION = str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "ı": "i", "ø": "o", "æ": "ae"})


def _email_ascii(name: str) -> str:
    """'Brontë' -> 'bronte', "O'Brien" -> 'obrien', 'van Dijk' -> 'vandijk'."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_LETTERS_WITHOUT_DECOMPOSITION))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


def _pairs(table: str) -> tuple[tuple[str, str], ...]:
    """'José|山田=yamada' -> (('José', 'jose'), ('山田', 'yamada'))"""
    entries = (entry.partition("=") for entry in table.split("|"))
    return tuple((shown, ascii_ or _email_ascii(shown)) for shown, _, ascii_ in entries)


_NAMES = {locale: (_pairs(first), _pairs(last)) for locale, (first, last) in _NAME_TABLE.items()}
_CITIES = {code: _pairs(cities) for code, (_, _, cities) in _COUNTRY_TABLE.items()}
COUNTRY_CODES: tuple[str, ...] = tuple(_COUNTRY_TABLE)
COUNTRY_P = np.array([v[0] for v in _COUNTRY_TABLE.values()]) / sum(v[0] for v in _COUNTRY_TABLE.values())
# Informal or full country names a human would type instead of the ISO code (dirty data).
COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "US": ("usa", "United States", "USA"),
    "GB": ("United Kingdom", "uk"),
    "DE": ("Germany",),
    "FR": ("France",),
    "CA": ("Canada",),
    "ES": ("Spain",),
    "IT": ("Italy",),
    "NL": ("Netherlands", "holland"),
    "IE": ("Ireland",),
    "AU": ("Australia",),
    "JP": ("Japan",),
    "BR": ("Brazil",),
}
_IDD_00 = frozenset({"GB", "DE", "FR", "ES", "IT", "NL", "IE"})
# Reserved example domains only. Not "mail.test": email-validator rejects special-use TLDs such as
# .test, so those customers would all be quarantined by ingest.
EMAIL_DOMAINS = np.array(["example.com", "example.org", "example.net"])
_EMAIL_DOMAIN_P = np.array([0.5, 0.3, 0.2])
_EMAIL_STYLES = ("{first}.{last}{n}", "{first}_{last}{n}", "{initial}{last}{n}", "{first}{n}.{last}")


@dataclass(frozen=True)
class PhoneTemplate:
    country: str
    formatted: str  # national format of a valid number
    slots: np.ndarray  # character positions of the digits that get randomised
    calling_code: int


@lru_cache(maxsize=1)
def phone_templates() -> dict[str, tuple[PhoneTemplate, ...]]:
    """Per country, national-format templates whose last digits can be randomised and stay valid."""
    check = np.random.default_rng(12345)
    out: dict[str, tuple[PhoneTemplate, ...]] = {}
    for region in COUNTRY_CODES:
        templates = []
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            formatted = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            digit_pos = [i for i, ch in enumerate(formatted) if ch.isdigit()]
            # Randomise as many trailing digits as the numbering plan allows (checked on samples).
            for k in (6, 5, 4, 3):
                slots = np.array(digit_pos[-k:])
                samples = _fill_digits(formatted, slots, check.integers(0, 10, size=(200, k)))
                if all(phonenumbers.is_valid_number(phonenumbers.parse(s, region)) for s in samples):
                    templates.append(PhoneTemplate(region, formatted, slots, example.country_code))
                    break
        out[region] = tuple(templates)
    return out


def _fill_digits(template: str, slots: np.ndarray, digits: np.ndarray) -> list[str]:
    """Copies of `template` with the characters at `slots` replaced by `digits` (one row per copy)."""
    return fill_pattern_codes(template, slots, digits + ord("0")).tolist()


def fill_pattern_codes(template: str, slots: np.ndarray, codepoints: np.ndarray) -> np.ndarray:
    """Vectorised: n copies of template with code points written into the slot positions."""
    n = codepoints.shape[0]
    width = len(template)
    grid = np.tile(np.array([ord(c) for c in template], dtype=np.uint32), (n, 1))
    grid[:, slots] = codepoints
    return np.ascontiguousarray(grid).view(f"<U{width}").reshape(n)


def fill_pattern(rng: np.random.Generator, pattern: str, n: int) -> np.ndarray:
    """n strings following a postal-code style pattern ('#' digit, '@' capital letter)."""
    digit_slots = np.array([i for i, c in enumerate(pattern) if c == "#"], dtype=np.int64)
    letter_slots = np.array([i for i, c in enumerate(pattern) if c == "@"], dtype=np.int64)
    slots = np.concatenate([digit_slots, letter_slots])
    codes = np.concatenate(
        [
            rng.integers(ord("0"), ord("9") + 1, size=(n, len(digit_slots))),
            rng.integers(ord("A"), ord("Z") + 1, size=(n, len(letter_slots))),
        ],
        axis=1,
    )
    return fill_pattern_codes(pattern, slots, codes.astype(np.uint32))


@dataclass
class People:
    first_name: np.ndarray
    last_name: np.ndarray
    email: np.ndarray
    phone: np.ndarray
    city: np.ndarray
    postal_code: np.ndarray
    phone_country: np.ndarray  # country code per row, for messy phone variants


def make_people(rng: np.random.Generator, country_idx: np.ndarray, customer_number: np.ndarray) -> People:
    """Names, emails, phones and addresses for customers of the given countries.

    `customer_number` (unique per customer) goes into the email through a bijection, so emails are
    unique without a global lookup and do not reveal the customer id.
    """
    n = len(country_idx)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    first_ascii = np.empty(n, dtype=object)
    last_ascii = np.empty(n, dtype=object)
    phone = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    postal = np.empty(n, dtype=object)
    templates = phone_templates()
    for c, code in enumerate(COUNTRY_CODES):
        rows = np.flatnonzero(country_idx == c)
        if rows.size == 0:
            continue
        locale, cities = _COUNTRY_TABLE[code][1], _CITIES[code]
        firsts, lasts = _NAMES[locale]
        fi = rng.integers(0, len(firsts), size=rows.size)
        li = rng.integers(0, len(lasts), size=rows.size)
        first[rows] = [firsts[i][0] for i in fi]
        first_ascii[rows] = [firsts[i][1] for i in fi]
        last[rows] = [lasts[i][0] for i in li]
        last_ascii[rows] = [lasts[i][1] for i in li]
        ci = rng.integers(0, len(cities), size=rows.size)
        for k, (city_name, pattern) in enumerate(cities):
            sub = rows[ci == k]
            city[sub] = city_name
            postal[sub] = fill_pattern(rng, pattern, sub.size)
        # Mostly mobile numbers (first template), some landlines.
        options = templates[code]
        ti = np.where(rng.random(rows.size) < 0.7, 0, len(options) - 1)
        for t, template in enumerate(options):
            sub = rows[ti == t]
            digits = rng.integers(0, 10, size=(sub.size, len(template.slots)))
            phone[sub] = fill_pattern_codes(template.formatted, template.slots, digits + ord("0"))
    return People(
        first,
        last,
        _emails(rng, first_ascii, last_ascii, customer_number),
        phone,
        city,
        postal,
        np.array(COUNTRY_CODES)[country_idx],
    )


def _emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, number: np.ndarray) -> np.ndarray:
    # (number * m + b) mod 10**k with m coprime to 10 is a bijection on [0, 10**k): unique suffixes
    # that do not reveal the customer's position.
    modulus = 10**7 if len(number) == 0 or int(number.max()) < 10**7 else 10**12
    suffix = (number.astype(np.int64) * 1_234_567 + 104_729) % modulus
    style = rng.integers(0, len(_EMAIL_STYLES), size=len(first))
    domain = rng.choice(EMAIL_DOMAINS, size=len(first), p=_EMAIL_DOMAIN_P)
    return np.array(
        [
            _EMAIL_STYLES[st].format(first=f, initial=f[:1], last=la, n=n) + "@" + d
            for f, la, n, st, d in zip(
                first, last, suffix.tolist(), style.tolist(), domain.tolist(), strict=True
            )
        ],
        dtype=object,
    )


def messy_phone(rng: np.random.Generator, national: str, country: str) -> str:
    """The same number written the way people type it: international prefixes, (0), dots, spaces."""
    number = phonenumbers.parse(national, country)
    cc = number.country_code
    nsn = phonenumbers.national_significant_number(number)
    style = int(rng.integers(0, 6))
    if style == 0:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style == 1:
        # "00" is the international call prefix only in Europe; elsewhere people write "+".
        prefix = "00" if country in _IDD_00 else "+"
        return f"{prefix}{cc} {nsn[:3]} {nsn[3:]}"
    if style == 2:
        trunk = "(0)" if cc not in (1, 39) else ""  # NANP and Italy have no trunk prefix to drop
        return f"+{cc} {trunk}{nsn[:2]}-{nsn[2:5]}-{nsn[5:]}"
    if style == 3:
        return f" {'.'.join([nsn[:3], nsn[3:6], nsn[6:]])} "
    if style == 4:
        return f"(+{cc}) {nsn}"
    return f"tel: {national.replace(' ', '/')}"
