"""Identity resolution and survivorship for customer records (pure: plain data in, plain data out).

Rules (documented in README "Identity resolution"):
- Records sharing a customer_id, a normalised email or an E.164 phone are one customer, transitively,
  within the drop and with profiles already stored (the caller passes what the store resolved).
- The surviving customer_id is an existing profile's id when there is one (earliest signup, then the
  smallest id); otherwise the id of the drop row with the earliest signup (then first in file).
- Survivorship per field: the newest non-empty value wins (records ordered by updated_at when the drop
  has it, else by arrival: stored profile, then rows in file order); signup_date keeps the earliest;
  attributes merge key by key with the same rule; every other id, email and phone is kept as an alias.
- Within the drop, the newest row of each customer counts as `clean`, the others as `merged`.
- Likely duplicates that share no key (similar name and same postal code, or same city when there is no
  postal code) are flagged on both profiles (`possible_duplicates`), never merged.
"""
from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

import pandas as pd
from rapidfuzz import fuzz, process, utils

SURVIVOR_FIELDS = ("email", "first_name", "last_name", "phone", "country", "city", "postal_code", "birth_date")
# Fields hashed to decide whether a stored profile changed (bookkeeping fields excluded on purpose).
HASHED_FIELDS = SURVIVOR_FIELDS + (
    "signup_date",
    "attributes",
    "alias_ids",
    "alternate_emails",
    "alternate_phones",
    "possible_duplicates",
)
MAX_BLOCK = 5_000  # a postal-code block larger than this is not fuzzy-compared (it is not informative)


@dataclass
class Resolution:
    profiles: list[dict[str, Any]]  # merged profiles, one per canonical customer touched by the drop
    row_outcomes: dict[int, tuple[str, str]]  # file row -> ("clean" | "merged", canonical customer_id)
    identities: list[tuple[str, str, str]]  # (kind, value, canonical id) keys to store
    absorbed: dict[str, str] = field(default_factory=dict)  # stored profile id -> the profile it merged into
    # Rows of customers with no customer_id anywhere (no row and no stored profile has one): segflow
    # never invents an id, so the caller quarantines them.
    without_id: list[int] = field(default_factory=list)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == "" or value is pd.NaT


def _iso(value: Any) -> str | None:
    if _empty(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).tz_convert("UTC").isoformat() if pd.Timestamp(value).tzinfo else value.isoformat()
    return str(value)


def profile_hash(profile: Mapping[str, Any]) -> str:
    payload = {k: profile.get(k) for k in HASHED_FIELDS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def resolve_customers(
    rows: pd.DataFrame,
    *,
    existing: Mapping[str, Mapping[str, Any]],
    known: Mapping[str, Mapping[str, str]],
    drop_id: str,
    ingested_at: datetime,
    fuzzy_threshold: float = 90.0,
) -> Resolution:
    """Unify the clean customer rows of one drop with each other and with stored profiles.

    rows: clean customers (customer_id, email, phone, ..., `_row`; optional updated_at, attributes).
    existing: stored profiles by customer_id, for every id in `known`'s values.
    known: {"id": {source id: canonical}, "email": {...}, "phone": {...}} as resolved by the store.
    """
    uf = _UnionFind()
    records = rows.to_dict("records")
    for rec in records:
        row_token = f"row:{rec['_row']}"
        uf.find(row_token)
        for kind, column in (("id", "customer_id"), ("email", "email"), ("phone", "phone")):
            value = rec.get(column)
            if _empty(value):
                continue
            uf.union(row_token, f"{kind}:{value}")
            canonical = known.get(kind, {}).get(value)
            if canonical is not None:
                uf.union(row_token, f"cust:{canonical}")

    clusters: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        clusters.setdefault(uf.find(f"row:{rec['_row']}"), []).append(rec)
    stored_by_root: dict[str, list[str]] = {}
    for token in list(uf.parent):
        if token.startswith("cust:"):
            stored_by_root.setdefault(uf.find(token), []).append(token[5:])

    ingested_iso = ingested_at.isoformat()
    profiles: list[dict[str, Any]] = []
    outcomes: dict[int, tuple[str, str]] = {}
    identities: list[tuple[str, str, str]] = []
    absorbed: dict[str, str] = {}
    without_id: list[int] = []
    for root, members in clusters.items():
        stored = [dict(existing[c]) for c in sorted(set(stored_by_root.get(root, []))) if c in existing]
        members.sort(key=lambda r: (_iso(r.get("updated_at")) or ingested_iso, r["_row"]))
        if not stored and all(_empty(m.get("customer_id")) for m in members):
            without_id.extend(m["_row"] for m in members)
            continue
        canonical = _choose_canonical(stored, members)
        profile = _survive(canonical, stored, members, drop_id, ingested_iso)
        profiles.append(profile)
        for rec in members[:-1]:
            outcomes[rec["_row"]] = ("merged", canonical)
        outcomes[members[-1]["_row"]] = ("clean", canonical)
        for old in stored:
            if old["customer_id"] != canonical:
                absorbed[old["customer_id"]] = canonical
        identities.append(("id", canonical, canonical))
        identities.extend(("id", alias, canonical) for alias in profile["alias_ids"])
        for email in filter(None, [profile.get("email"), *profile["alternate_emails"]]):
            identities.append(("email", email, canonical))
        for phone in filter(None, [profile.get("phone"), *profile["alternate_phones"]]):
            identities.append(("phone", phone, canonical))

    flag_possible_duplicates(profiles, fuzzy_threshold)
    for profile in profiles:
        profile["profile_hash"] = profile_hash(profile)
    return Resolution(profiles, outcomes, identities, absorbed, without_id)


def _signup_key(value: Any) -> str:
    return _iso(value) or "9999"


def _choose_canonical(stored: list[dict[str, Any]], members: list[dict[str, Any]]) -> str:
    if stored:
        return min(stored, key=lambda p: (_signup_key(p.get("signup_date")), p["customer_id"]))["customer_id"]
    with_id = [m for m in members if not _empty(m.get("customer_id"))]
    first = min(with_id, key=lambda m: (_signup_key(m.get("signup_date")), m["_row"]))
    return str(first["customer_id"])


def _survive(
    canonical: str, stored: list[dict[str, Any]], members: list[dict[str, Any]], drop_id: str, ingested_iso: str
) -> dict[str, Any]:
    base = next((p for p in stored if p["customer_id"] == canonical), None)
    profile: dict[str, Any] = dict(base) if base else {"customer_id": canonical, "first_seen_drop": drop_id}
    ids, emails, phones, signups = set(), set(), set(), []
    attributes: dict[str, Any] = {}
    # Oldest first, so that each later non-empty value overwrites: stored profiles, then drop rows.
    for source in [*(p for p in stored if p is not base), *([base] if base else []), *members]:
        for name in SURVIVOR_FIELDS:
            value = source.get(name)
            if not _empty(value):
                profile[name] = _iso(value) if name == "birth_date" else value
        attributes.update({k: v for k, v in (source.get("attributes") or {}).items() if not _empty(v)})
        ids.update(filter(None, [source.get("customer_id"), *source.get("alias_ids", [])]))
        emails.update(filter(None, [source.get("email"), *source.get("alternate_emails", [])]))
        phones.update(filter(None, [source.get("phone"), *source.get("alternate_phones", [])]))
        if not _empty(source.get("signup_date")):
            signups.append(_iso(source["signup_date"]))
    ids = {str(i) for i in ids if not _empty(i)}
    profile["signup_date"] = min(signups) if signups else None
    profile["attributes"] = attributes
    profile["alias_ids"] = sorted(ids - {canonical})
    profile["alternate_emails"] = sorted(emails - {profile.get("email")})
    profile["alternate_phones"] = sorted(phones - {profile.get("phone")})
    profile["possible_duplicates"] = list(profile.get("possible_duplicates") or [])
    updated = [u for u in (_iso(m.get("updated_at")) for m in members) if u]
    profile["updated_at"] = max(updated) if updated else ingested_iso
    profile["last_drop"] = drop_id
    return profile


def flag_possible_duplicates(profiles: list[dict[str, Any]], threshold: float) -> None:
    """Mark pairs of distinct customers with similar names in the same postal code (or city)."""
    blocks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in profiles:
        name = " ".join(filter(None, [p.get("first_name"), p.get("last_name")])).strip()
        place = p.get("postal_code") or p.get("city")
        if name and place:
            key = (str(p.get("country") or ""), utils.default_process(str(place)))
            blocks.setdefault(key, []).append(p)
    for members in blocks.values():
        if len(members) < 2 or len(members) > MAX_BLOCK:
            continue
        names = [_name_key(m) for m in members]
        scores = process.cdist(names, names, scorer=fuzz.token_sort_ratio, processor=utils.default_process)
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                if scores[i][j] >= threshold:
                    _flag(members[i], members[j]["customer_id"])
                    _flag(members[j], members[i]["customer_id"])


def _name_key(profile: Mapping[str, Any]) -> str:
    """Full name with accents folded, so "José García" and "Jose Garcia" compare as equal."""
    name = " ".join(filter(None, [profile.get("first_name"), profile.get("last_name")]))
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _flag(profile: dict[str, Any], other: str) -> None:
    if other not in profile["possible_duplicates"]:
        profile["possible_duplicates"] = sorted([*profile["possible_duplicates"], other])


def known_keys(rows: pd.DataFrame) -> dict[str, list[str]]:
    """The identity values a drop mentions, to look up in the store before resolving."""

    def values(column: str) -> list[str]:
        if column not in rows:
            return []
        return [str(v) for v in rows[column].dropna().unique() if v != ""]

    return {"id": values("customer_id"), "email": values("email"), "phone": values("phone")}


def resolve_references(
    frame: pd.DataFrame, known_ids: Mapping[str, str], known_emails: Mapping[str, str]
) -> pd.Series:
    """Canonical customer_id for each order/event/consent row (None when unknown yet)."""
    by_id = frame["customer_id"].map(known_ids) if "customer_id" in frame else pd.Series(None, index=frame.index)
    if "email" in frame:
        by_id = by_id.where(by_id.notna(), frame["email"].map(known_emails))
    return by_id.astype(object).where(by_id.notna(), None)


def iter_chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
