"""Profiles and identity keys in the single DynamoDB table.

Item layout (a customer's items share the partition `CUST#<customer_id>`):
- profile:        pk=CUST#<id>                 sk=PROFILE   (fields + profile_hash + version)
- identity keys:  pk=IDENT#<kind>#<ref>        sk=IDENT     customer_id=<canonical id>
  kind is `id` (ref = the source id), `email` or `phone` (ref = SHA-256 of the normalised value, so
  keys never spell out personal data). Identity lookups are key reads, batched 100 at a time, which
  resolves a drop of 100,000 customers in about 1,000 calls instead of 100,000 index queries.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping, Protocol, Sequence

IdentityKind = str  # "id" | "email" | "phone"
BATCH_GET = 100
BATCH_WRITE = 25


class VersionConflict(Exception):
    """The profile changed since it was read; re-read and merge again."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"profile {customer_id} changed concurrently")
        self.customer_id = customer_id


def identity_ref(kind: IdentityKind, value: str) -> str:
    if kind == "id":
        return value
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def profile_key(customer_id: str) -> dict[str, str]:
    return {"pk": f"CUST#{customer_id}", "sk": "PROFILE"}


def identity_key(kind: IdentityKind, value: str) -> dict[str, str]:
    return {"pk": f"IDENT#{kind}#{identity_ref(kind, value)}", "sk": "IDENT"}


class ProfileStore(Protocol):
    def get_profiles(self, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def resolve(self, kind: IdentityKind, values: Iterable[str]) -> dict[str, str]: ...
    def put_identities(self, entries: Iterable[tuple[IdentityKind, str, str]]) -> int: ...
    def put_profiles(self, profiles: Sequence[tuple[dict[str, Any], int | None]]) -> list[str]: ...


def to_dynamo(value: Any) -> Any:
    """Python values -> DynamoDB-safe values (floats become exact Decimals, empty strings dropped)."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [from_dynamo(v) for v in value]
    return value


@dataclass
class WriteStats:
    """Counts write requests, so benchmarks and tests can assert 'unchanged re-drop = zero writes'."""

    profile_puts: int = 0
    identity_puts: int = 0
    conflicts: int = 0
    reads: int = 0

    @property
    def writes(self) -> int:
        return self.profile_puts + self.identity_puts


class DynamoProfileStore:
    def __init__(self, table: Any, concurrency: int = 8) -> None:
        self._table = table
        self._client = table.meta.client
        self._concurrency = concurrency
        self.stats = WriteStats()

    def _batch_get(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET):
            request = {self._table.name: {"Keys": keys[start : start + BATCH_GET], "ConsistentRead": True}}
            while request:
                self.stats.reads += 1
                response = self._client.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(self._table.name, []))
                request = response.get("UnprocessedKeys") or {}
        return items

    def get_profiles(self, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = [profile_key(c) for c in dict.fromkeys(customer_ids)]
        found = {}
        for item in self._batch_get(keys):
            profile = from_dynamo(item)
            found[profile["customer_id"]] = profile
        return found

    def resolve(self, kind: IdentityKind, values: Iterable[str]) -> dict[str, str]:
        by_pk = {identity_key(kind, v)["pk"]: v for v in dict.fromkeys(values)}
        keys = [{"pk": pk, "sk": "IDENT"} for pk in by_pk]
        return {by_pk[item["pk"]]: item["customer_id"] for item in self._batch_get(keys)}

    def put_identities(self, entries: Iterable[tuple[IdentityKind, str, str]]) -> int:
        items = {}
        for kind, value, customer_id in entries:
            key = identity_key(kind, value)
            items[key["pk"]] = {**key, "kind": kind, "customer_id": customer_id}
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for item in items.values():
                writer.put_item(Item=item)
        self.stats.identity_puts += len(items)
        return len(items)

    def put_profiles(self, profiles: Sequence[tuple[dict[str, Any], int | None]]) -> list[str]:
        """Conditional puts (optimistic locking on `version`); returns the ids that lost a race."""

        def put(entry: tuple[dict[str, Any], int | None]) -> str | None:
            from botocore.exceptions import ClientError

            profile, expected = entry
            item = {**profile_key(profile["customer_id"]), **to_dynamo(profile)}
            if expected is None:
                condition, values = "attribute_not_exists(pk)", {}
            else:
                condition, values = "version = :expected", {":expected": expected}
            kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
            if values:
                kwargs["ExpressionAttributeValues"] = values
            try:
                self._table.put_item(**kwargs)
            except ClientError as err:
                if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return profile["customer_id"]
                raise
            return None

        if not profiles:
            return []
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            lost = [c for c in pool.map(put, profiles) if c]
        self.stats.profile_puts += len(profiles) - len(lost)
        self.stats.conflicts += len(lost)
        return lost


@dataclass
class InMemoryProfileStore:
    """Same contract as DynamoProfileStore, for unit tests of the ingest service."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    stats: WriteStats = field(default_factory=WriteStats)

    def get_profiles(self, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {c: json.loads(json.dumps(self.profiles[c])) for c in customer_ids if c in self.profiles}

    def resolve(self, kind: IdentityKind, values: Iterable[str]) -> dict[str, str]:
        return {v: self.identities[(kind, v)] for v in values if (kind, v) in self.identities}

    def put_identities(self, entries: Iterable[tuple[IdentityKind, str, str]]) -> int:
        count = 0
        for kind, value, customer_id in entries:
            self.identities[(kind, value)] = customer_id
            count += 1
        self.stats.identity_puts += count
        return count

    def put_profiles(self, profiles: Sequence[tuple[dict[str, Any], int | None]]) -> list[str]:
        lost = []
        for profile, expected in profiles:
            current = self.profiles.get(profile["customer_id"])
            if (current is None) != (expected is None) or (current and current.get("version") != expected):
                lost.append(profile["customer_id"])
                continue
            self.profiles[profile["customer_id"]] = json.loads(json.dumps(profile, default=str))
            self.stats.profile_puts += 1
        self.stats.conflicts += len(lost)
        return lost
