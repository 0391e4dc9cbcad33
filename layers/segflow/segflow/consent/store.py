"""Where the consent function keeps its data: the ledger (DynamoDB + an S3 copy) and erasure tombstones.

DynamoDB layout (the single profile table):
- ledger:     pk=CONSENT#<sha256(normalised email)>  sk=LEDGER#<timestamp>#<record_id>  (the record's fields)
              a record with no email whose customer is unknown is kept under pk=CONSENT#ID#<customer_id>;
              consent may arrive before the customer exists, so the ledger is not in the CUST# partition.
- tombstone:  pk=TOMB#<HMAC(salt, kind:value)>        sk=TOMBSTONE  (kind, requested_at, request_id, lifted_at)
- the derived per-customer item pk=CUST#<id> sk=CONSENT#email is written through `store.customers`.
S3: every appended batch is also written to ledger/<yyyy>/<mm>/<dd>/<batch>.jsonl (who/what/when).

Each adapter has an in-memory twin over a dict keyed (pk, sk) (the dict `InMemoryCustomerItems.items` uses),
so unit tests see one table just as the functions do.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, MutableMapping, Protocol, Sequence

from segflow.consent.erasure import IdKind, Tombstone, tombstone, tombstone_key
from segflow.consent.ledger import as_record, ledger_sk
from segflow.consent.models import ConsentRecord, as_utc
from segflow.store.objects import ObjectStore
from segflow.store.profiles import BATCH_GET, from_dynamo, identity_key

LEDGER_PREFIX = "CONSENT#"
LEDGER_SK_PREFIX = "LEDGER#"
TOMBSTONE_SK = "TOMBSTONE"
ARCHIVE_PREFIX = "ledger/"


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def ledger_pk_for_email(email: str) -> str:
    return f"{LEDGER_PREFIX}{email_hash(email)}"


def ledger_pk_for_id(customer_id: str) -> str:
    return f"{LEDGER_PREFIX}ID#{customer_id.strip()}"


def ledger_item(pk: str, record: ConsentRecord, learned_at: datetime) -> dict[str, Any]:
    fields = {k: v for k, v in record.model_dump(mode="json").items() if v is not None}
    return {"pk": pk, "sk": ledger_sk(record), **fields, "learned_at": as_utc(learned_at).isoformat()}  # type: ignore[union-attr]


def record_from_item(item: Mapping[str, Any]) -> ConsentRecord:
    """A stored ledger item -> its record (the stored record_id is verified against the content)."""
    fields = {k: v for k, v in item.items() if k not in ("pk", "sk", "learned_at")}
    return as_record(fields)


# ---- the ledger ----------------------------------------------------------------------------------------

class LedgerStore(Protocol):
    def records(self, pks: Iterable[str]) -> dict[str, list[ConsentRecord]]: ...
    def keys(self, pks: Iterable[str]) -> list[tuple[str, str]]: ...
    def append(self, entries: Sequence[tuple[str, ConsentRecord]], learned_at: datetime) -> int: ...


DIGEST_SK = "DIGEST"  # one item per person holding every record, so ledgers are read in batches


class DynamoLedger:
    """Append-only record items (pk, LEDGER#<ts>#<record_id>) plus a digest item per person.

    The record items are the audit trail; the digest repeats the same records in one item so that
    evaluating thousands of customers costs one BatchGetItem per 100 people instead of a Query each.
    Appends run one at a time (the consent function's reserved concurrency is 1), so the digest's
    read-modify-write cannot interleave.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self._client = table.meta.client

    def _query(self, pk: str, **extra: Any) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").begins_with(LEDGER_SK_PREFIX),
            "ConsistentRead": True, **extra,
        }
        while True:
            page = self._table.query(**kwargs)
            items.extend(from_dynamo(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _digests(self, pks: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(pks), 100):
            request = {self._table.name: {"Keys": [{"pk": pk, "sk": DIGEST_SK} for pk in pks[start : start + 100]],
                                          "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table.name, []):
                    found[item["pk"]] = json.loads(item["records_json"])
                request = response.get("UnprocessedKeys") or {}
        return found

    def records(self, pks: Iterable[str]) -> dict[str, list[ConsentRecord]]:
        wanted = list(dict.fromkeys(pks))
        digests = self._digests(wanted)  # every append writes the digest: none means no records
        return {pk: [as_record(r) for r in digests.get(pk, [])] for pk in wanted}

    def audit_trail(self, pk: str) -> list[ConsentRecord]:
        """The record items themselves (the append-only trail the digest summarises)."""
        return [record_from_item(i) for i in self._query(pk)]

    def keys(self, pks: Iterable[str]) -> list[tuple[str, str]]:
        from boto3.dynamodb.conditions import Key

        keys = []
        for pk in dict.fromkeys(pks):  # every item of the person's ledger partition, digest included
            kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk), "ProjectionExpression": "pk, sk"}
            while True:
                page = self._table.query(**kwargs)
                keys += [(i["pk"], i["sk"]) for i in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return keys

    def append(self, entries: Sequence[tuple[str, ConsentRecord]], learned_at: datetime) -> int:
        # The sort key embeds the record_id, so a replayed record rewrites the same item with the same content.
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for pk, record in entries:
                writer.put_item(Item=ledger_item(pk, record, learned_at))
        by_pk: dict[str, dict[str, dict[str, Any]]] = {}
        current = self._digests(list(dict.fromkeys(pk for pk, _ in entries)))
        for pk, record in entries:
            merged = by_pk.setdefault(pk, {r["record_id"]: r for r in current.get(pk, [])})
            merged[record.record_id] = record.model_dump(mode="json")
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for pk, records in by_pk.items():
                ordered = sorted(records.values(), key=lambda r: (r["timestamp"], r["record_id"]))
                writer.put_item(Item={"pk": pk, "sk": DIGEST_SK, "records_json": json.dumps(ordered)})
        return len(entries)


class InMemoryLedger:
    def __init__(self, table: MutableMapping[tuple[str, str], dict[str, Any]]) -> None:
        self.table = table

    def records(self, pks: Iterable[str]) -> dict[str, list[ConsentRecord]]:
        found: dict[str, list[ConsentRecord]] = {pk: [] for pk in pks}
        for (pk, sk), item in sorted(self.table.items()):
            if pk in found and sk.startswith(LEDGER_SK_PREFIX):
                found[pk].append(record_from_item(item))
        return found

    def keys(self, pks: Iterable[str]) -> list[tuple[str, str]]:
        wanted = set(pks)
        return sorted(k for k in self.table if k[0] in wanted and k[1].startswith(LEDGER_SK_PREFIX))

    def append(self, entries: Sequence[tuple[str, ConsentRecord]], learned_at: datetime) -> int:
        for pk, record in entries:
            item = ledger_item(pk, record, learned_at)
            self.table[(pk, item["sk"])] = item
        return len(entries)


class LedgerArchive:
    """The S3 copy of the ledger: one JSON Lines object per appended batch, under the day it was learned."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @staticmethod
    def key_for(entries: Sequence[tuple[str, ConsentRecord]], learned_at: datetime) -> str:
        batch = hashlib.sha256("\n".join(sorted(r.record_id for _, r in entries)).encode()).hexdigest()[:24]
        return f"{ARCHIVE_PREFIX}{learned_at:%Y/%m/%d}/{batch}.jsonl"

    def append(self, entries: Sequence[tuple[str, ConsentRecord]], learned_at: datetime) -> str | None:
        if not entries:
            return None
        key = self.key_for(entries, learned_at)
        lines = []
        for pk, record in entries:
            item = ledger_item(pk, record, learned_at)
            lines.append(json.dumps({k: v for k, v in item.items() if k != "sk"}, sort_keys=True))
        self.objects.put_bytes(key, ("\n".join(lines) + "\n").encode("utf-8"), "application/x-ndjson")
        return key


# ---- tombstones ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TombstoneState:
    stone: Tombstone
    lifted_at: datetime | None = None

    @property
    def blocking(self) -> bool:
        return self.lifted_at is None


def _tombstone_item(stone: Tombstone) -> dict[str, Any]:
    return {**tombstone_key(stone.digest), "kind": stone.kind, "requested_at": stone.requested_at.isoformat(),
            "request_id": stone.request_id}


def _tombstone_state(item: Mapping[str, Any]) -> TombstoneState:
    stone = Tombstone(digest=item["pk"].split("#", 1)[1], kind=item["kind"], requested_at=item["requested_at"],
                      request_id=item["request_id"])
    return TombstoneState(stone, as_utc(item.get("lifted_at")))


class TombstoneStore(Protocol):
    def put_tombstones(self, tombstones: Sequence[Tombstone]) -> int: ...
    def get(self, digests: Iterable[str]) -> dict[str, TombstoneState]: ...
    def lift(self, digests: Iterable[str], at: datetime) -> int: ...


class DynamoTombstones:
    def __init__(self, table: Any) -> None:
        self._table = table
        self._client = table.meta.client

    def put_tombstones(self, tombstones: Sequence[Tombstone]) -> int:
        # A new erasure replaces an older (possibly lifted) tombstone of the same value.
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for stone in tombstones:
                writer.put_item(Item=_tombstone_item(stone))
        return len(tombstones)

    def get(self, digests: Iterable[str]) -> dict[str, TombstoneState]:
        keys = [tombstone_key(d) for d in dict.fromkeys(digests)]
        found: dict[str, TombstoneState] = {}
        for start in range(0, len(keys), BATCH_GET):
            request = {self._table.name: {"Keys": keys[start : start + BATCH_GET], "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table.name, []):
                    state = _tombstone_state(from_dynamo(item))
                    found[state.stone.digest] = state
                request = response.get("UnprocessedKeys") or {}
        return found

    def lift(self, digests: Iterable[str], at: datetime) -> int:
        lifted = 0
        for digest, state in self.get(digests).items():
            if state.blocking:
                self._table.put_item(Item={**_tombstone_item(state.stone), "lifted_at": as_utc(at).isoformat()})  # type: ignore[union-attr]
                lifted += 1
        return lifted


class InMemoryTombstones:
    def __init__(self, table: MutableMapping[tuple[str, str], dict[str, Any]]) -> None:
        self.table = table

    def put_tombstones(self, tombstones: Sequence[Tombstone]) -> int:
        for stone in tombstones:
            item = _tombstone_item(stone)
            self.table[(item["pk"], item["sk"])] = item
        return len(tombstones)

    def get(self, digests: Iterable[str]) -> dict[str, TombstoneState]:
        found = {}
        for digest in digests:
            item = self.table.get((f"TOMB#{digest}", TOMBSTONE_SK))
            if item is not None:
                found[digest] = _tombstone_state(item)
        return found

    def lift(self, digests: Iterable[str], at: datetime) -> int:
        lifted = 0
        for digest, state in self.get(digests).items():
            if state.blocking:
                self.table[(f"TOMB#{digest}", TOMBSTONE_SK)]["lifted_at"] = as_utc(at).isoformat()  # type: ignore[union-attr]
                lifted += 1
        return lifted


class ErasureGate:
    """What ingest asks before it writes a person back: `is_erased(email_or_id)`.

    True while a tombstone of that email (anything with "@") or customer id blocks: until a new explicit
    opt-in, dated after the erasure request, lifted it (the consent function lifts it when it admits one).
    """

    def __init__(self, tombstones: TombstoneStore, salt: str | bytes) -> None:
        self.tombstones = tombstones
        self.salt = salt

    def digest(self, value: str, kind: IdKind | None = None) -> str:
        return tombstone(value, self.salt, kind)

    def erased(self, values: Iterable[str], kind: IdKind | None = None) -> set[str]:
        """The subset of values (emails and/or customer ids) that are erased and still blocked."""
        by_digest = {self.digest(v, kind): v for v in values if v and str(v).strip()}
        states = self.tombstones.get(by_digest)
        return {by_digest[d] for d, state in states.items() if state.blocking}

    def is_erased(self, email_or_id: str, kind: IdKind | None = None) -> bool:
        return bool(self.erased([email_or_id], kind))


# ---- identities (in memory) -----------------------------------------------------------------------------

class InMemoryIdentities:
    """`ProfileStore.resolve` over IDENT items in a (pk, sk) dict, as DynamoProfileStore stores them."""

    def __init__(self, table: MutableMapping[tuple[str, str], dict[str, Any]]) -> None:
        self.table = table

    def add(self, kind: str, value: str, customer_id: str) -> None:
        key = identity_key(kind, value)
        self.table[(key["pk"], key["sk"])] = {**key, "kind": kind, "customer_id": customer_id}

    def resolve(self, kind: str, values: Iterable[str]) -> dict[str, str]:
        found = {}
        for value in values:
            key = identity_key(kind, value)
            item = self.table.get((key["pk"], key["sk"]))
            if item is not None:
                found[value] = item["customer_id"]
        return found
