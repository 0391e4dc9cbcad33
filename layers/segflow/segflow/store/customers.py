"""Per-concern customer items in the profile table, and the merged "profile view" domain code reads.

Each function owns one item kind in a customer's partition (pk=CUST#<id>): ingest PROFILE, score SCORES,
consent CONSENT#email, segment SEGMENTS, sync SYNC#<destination>. Owners write only their own item, so
concurrent functions never overwrite each other's fields. Writes that could arrive out of order carry an
ordering field (for example scored_at) and are conditional on being newer than what is stored.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Protocol, Sequence

from boto3.dynamodb.conditions import Attr

from segflow.store.profiles import BATCH_GET, WriteStats, from_dynamo, to_dynamo

PROFILE = "PROFILE"
SCORES = "SCORES"
CONSENT = "CONSENT#email"
SEGMENTS = "SEGMENTS"
VIEW_KINDS = (PROFILE, SCORES, CONSENT, SEGMENTS, "SYNC#mailchimp", "SYNC#hubspot")


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def merge_view(items: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One dict per customer: PROFILE fields, then SCORES, CONSENT and SEGMENTS; sync state under `sync`."""
    view: dict[str, Any] = {}
    for kind in (PROFILE, SCORES, CONSENT, SEGMENTS):
        view.update({k: v for k, v in items.get(kind, {}).items() if k not in ("pk", "sk")})
    view["sync"] = {
        kind.split("#", 1)[1]: {k: v for k, v in item.items() if k not in ("pk", "sk")}
        for kind, item in items.items()
        if kind.startswith("SYNC#")
    }
    return view


class CustomerItemStore(Protocol):
    stats: WriteStats

    def get(self, customer_ids: Iterable[str], kinds: Sequence[str] = VIEW_KINDS) -> dict[str, dict[str, dict[str, Any]]]: ...
    def put_if_newer(self, kind: str, items: Mapping[str, dict[str, Any]], order_field: str) -> list[str]: ...
    def customer_ids(self) -> list[str]: ...
    def partition(self, customer_id: str) -> list[dict[str, Any]]: ...
    def delete(self, keys: Iterable[tuple[str, str]]) -> int: ...


class DynamoCustomerItems:
    def __init__(self, table: Any, concurrency: int = 8) -> None:
        self._table = table
        self._client = table.meta.client
        self._concurrency = concurrency
        self.stats = WriteStats()

    def get(self, customer_ids: Iterable[str], kinds: Sequence[str] = VIEW_KINDS) -> dict[str, dict[str, dict[str, Any]]]:
        keys = [{"pk": customer_pk(c), "sk": k} for c in dict.fromkeys(customer_ids) for k in kinds]
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for start in range(0, len(keys), BATCH_GET):
            request = {self._table.name: {"Keys": keys[start : start + BATCH_GET]}}
            while request:
                self.stats.reads += 1
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table.name, []):
                    customer = item["pk"].split("#", 1)[1]
                    found.setdefault(customer, {})[item["sk"]] = from_dynamo(item)
                request = response.get("UnprocessedKeys") or {}
        return found

    def put_if_newer(self, kind: str, items: Mapping[str, dict[str, Any]], order_field: str) -> list[str]:
        """Puts each item unless the stored one is at least as new; returns the ids that were stale."""
        from botocore.exceptions import ClientError

        def put(entry: tuple[str, dict[str, Any]]) -> str | None:
            customer_id, fields = entry
            item = {"pk": customer_pk(customer_id), "sk": kind, **to_dynamo(fields)}
            try:
                self._table.put_item(
                    Item=item,
                    ConditionExpression=Attr("pk").not_exists() | Attr(order_field).lt(item[order_field]),
                )
            except ClientError as err:
                if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return customer_id
                raise
            return None

        if not items:
            return []
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            stale = [c for c in pool.map(put, items.items()) if c]
        self.stats.profile_puts += len(items) - len(stale)
        self.stats.conflicts += len(stale)
        return stale

    def customer_ids(self) -> list[str]:
        """Every unified customer (merged-away profiles excluded)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("sk").eq(PROFILE) & Attr("merged_into").not_exists(),
            "ProjectionExpression": "customer_id",
        }
        while True:
            page = self._table.scan(**kwargs)
            ids.extend(i["customer_id"] for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def partition(self, customer_id: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        items, kwargs = [], {"KeyConditionExpression": Key("pk").eq(customer_pk(customer_id))}
        while True:
            page = self._table.query(**kwargs)
            items.extend(from_dynamo(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, keys: Iterable[tuple[str, str]]) -> int:
        count = 0
        with self._table.batch_writer() as writer:
            for pk, sk in keys:
                writer.delete_item(Key={"pk": pk, "sk": sk})
                count += 1
        return count


class InMemoryCustomerItems:
    """Same contract, for unit tests."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.stats = WriteStats()

    def get(self, customer_ids: Iterable[str], kinds: Sequence[str] = VIEW_KINDS) -> dict[str, dict[str, dict[str, Any]]]:
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for c in customer_ids:
            for k in kinds:
                if (customer_pk(c), k) in self.items:
                    found.setdefault(c, {})[k] = dict(self.items[(customer_pk(c), k)])
        return found

    def put_if_newer(self, kind: str, items: Mapping[str, dict[str, Any]], order_field: str) -> list[str]:
        stale = []
        for customer_id, fields in items.items():
            current = self.items.get((customer_pk(customer_id), kind))
            if current is not None and not current.get(order_field, "") < fields[order_field]:
                stale.append(customer_id)
                continue
            self.items[(customer_pk(customer_id), kind)] = {"pk": customer_pk(customer_id), "sk": kind, **fields}
            self.stats.profile_puts += 1
        return stale

    def customer_ids(self) -> list[str]:
        return sorted(
            item["customer_id"] for (pk, sk), item in self.items.items() if sk == PROFILE and "merged_into" not in item
        )

    def partition(self, customer_id: str) -> list[dict[str, Any]]:
        return [dict(v) for (pk, _), v in self.items.items() if pk == customer_pk(customer_id)]

    def delete(self, keys: Iterable[tuple[str, str]]) -> int:
        return sum(self.items.pop(key, None) is not None for key in keys)
