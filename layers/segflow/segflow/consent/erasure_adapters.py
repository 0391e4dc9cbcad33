"""The erasure ports over S3, DynamoDB and the destinations, and the inventory that finds a person in them.

- `PersonMatcher`: does a row / JSON value mention the person? (an id equal to one of theirs, a string
  containing one of their emails, a phone field whose digits are theirs)
- `ObjectScanner` walks the data prefixes and lists the files holding the person's rows; `find_inventory`
  adds the DynamoDB items, the raw drops those files came from and the destinations to erase from.
- `FileEraser` rewrites Parquet (fastparquet, loaded only in the erasure function), JSON Lines and JSON manifests without the
  person; `ObjectEraser` deletes whole objects. In a versioned bucket both also remove the earlier versions
  (the `VersionPurger`), or the "erased" data would live on as noncurrent versions.
- `MailchimpEraser` / `HubSpotEraser` permanently delete a member / GDPR-delete a contact.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from segflow.consent.erasure import (
    ErasurePorts,
    DestinationCall,
    DestinationTarget,
    ErasureInventory,
    ErasureRequest,
    FileHit,
    ItemKey,
    RowMatch,
)
from segflow.consent.store import LedgerStore, ledger_pk_for_email, ledger_pk_for_id
from segflow.store.customers import PROFILE, CustomerItemStore
from segflow.store.objects import ObjectStore

# prefix -> inventory category; raw/ is handled through the drops the hits came from.
SCANNED_PREFIXES = {
    "clean/": "clean", "scores/": "clean", "pending/": "pending", "quarantine/": "quarantine",
    "reports/": "report", "manifests/": "report", "segments/": "report", "ledger/": "ledger",
    "sync/": "report",  # sync work items, plans and their history name the contacts they pushed
}
SKIPPED_PREFIXES = ("reports/erasure/",)  # the erasure reports themselves hold no personal data
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")
_DROP_KEY = re.compile(r"^(clean|pending|quarantine)/([^/]+)/([^/]+?)(?:--attached-by--[^/]+)?\.(parquet|jsonl)$")


_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


class PersonMatcher:
    def __init__(self, match: RowMatch) -> None:
        self.ids = {i.strip() for i in match.customer_ids if i.strip()}
        self.emails = [e.strip().lower() for e in match.emails if e.strip()]
        self.phones = [d for d in (_digits(p) for p in match.phones) if len(d) >= 7]

    def _phone(self, text: str) -> bool:
        local = _digits(text).lstrip("0")  # a national form drops the country code, may add a trunk 0
        return len(local) >= 7 and any(p.endswith(local) for p in self.phones)

    def _looks_like_phone(self, text: str) -> bool:
        return bool(_PHONE_LIKE.match(text)) and len(_digits(text)) >= 8

    def mentions(self, value: Any, key: str | None = None) -> bool:
        if isinstance(value, str):
            text = value.strip()
            if text in self.ids:
                return True
            lowered = text.lower()
            if any(email in lowered for email in self.emails):
                return True
            phone_field = bool(key and "phone" in key.lower()) or self._looks_like_phone(text)
            return bool(self.phones and phone_field and self._phone(text))
        if isinstance(value, Mapping):
            return any(self.mentions(v, str(k)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(self.mentions(v, key) for v in value)
        return False


# ---- S3 versions -----------------------------------------------------------------------------------------

class VersionPurger(Protocol):
    def purge_noncurrent(self, key: str) -> int: ...
    def delete_all(self, key: str) -> bool: ...


class S3VersionPurger:
    """Deletes earlier versions and delete markers of a key in a versioned bucket (an unversioned bucket
    has a single "null" version, so the same calls work there)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def _versions(self, key: str) -> list[dict[str, Any]]:
        found = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if entry["Key"] == key:
                    found.append(entry)
        return found

    def _delete(self, key: str, versions: list[dict[str, Any]]) -> None:
        for start in range(0, len(versions), 1000):
            chunk = [{"Key": key, "VersionId": v["VersionId"]} for v in versions[start : start + 1000]]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})

    def purge_noncurrent(self, key: str) -> int:
        old = [v for v in self._versions(key) if not v.get("IsLatest")]
        self._delete(key, old)
        return len(old)

    def delete_all(self, key: str) -> bool:
        versions = self._versions(key)
        self._delete(key, versions)
        return any("Size" in v for v in versions)  # delete markers have no size: only real versions count


class NoVersions:
    """For stores without versions (a local folder): deleting the object is all there is."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def purge_noncurrent(self, key: str) -> int:
        return 0

    def delete_all(self, key: str) -> bool:
        existed = self.objects.exists(key)
        self.objects.delete(key)
        return existed


# ---- reading and rewriting files -------------------------------------------------------------------------

def _parquet() -> Any:
    """Parquet rows through fastparquet: only the erasure function (data layer) ever calls this."""
    from segflow.store import parquet_rows

    return parquet_rows


def _jsonl_lines(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines()


def _line_mentions(matcher: PersonMatcher, line: str) -> bool:
    try:
        return matcher.mentions(json.loads(line))
    except ValueError:  # not JSON: fall back to the text itself
        return matcher.mentions(line)


_GONE = object()


def prune_json(value: Any, matcher: PersonMatcher) -> tuple[Any, int]:
    """A JSON document without the person: a record (a dict with a scalar naming them) or a scalar naming
    them is removed whole (returned as `_GONE`); containers keep everything else. Returns (value, removed)."""
    if isinstance(value, str):
        return (_GONE, 1) if matcher.mentions(value) else (value, 0)
    if isinstance(value, dict):
        if any(not isinstance(v, (dict, list)) and matcher.mentions(v, str(k)) for k, v in value.items()):
            return _GONE, 1
        out, removed = {}, 0
        for k, v in value.items():
            if matcher.mentions(str(k)):
                removed += 1
                continue
            kept, n = prune_json(v, matcher)
            removed += n
            if kept is not _GONE:
                out[k] = kept
        return out, removed
    if isinstance(value, list):
        items, removed = [], 0
        for v in value:
            kept, n = prune_json(v, matcher)
            removed += n
            if kept is not _GONE:
                items.append(kept)
        return items, removed
    return value, 0


def count_mentions(key: str, data: bytes, matcher: PersonMatcher,
                   seen: Callable[[Mapping[str, Any]], None] | None = None) -> int:
    """Rows (Parquet rows, JSONL lines, JSON entries) of the object that mention the person; `seen` is
    given each matching Parquet row."""
    if key.endswith(".parquet"):
        count = 0
        for row in _parquet().iter_text_rows(data):
            if matcher.mentions(row):
                count += 1
                if seen is not None:
                    seen(row)
        return count
    if key.endswith(".jsonl"):
        return sum(_line_mentions(matcher, line) for line in _jsonl_lines(data) if line.strip())
    if key.endswith(".json"):
        try:
            return prune_json(json.loads(data), matcher)[1]
        except ValueError:
            return int(matcher.mentions(data.decode("utf-8", errors="replace")))
    return 0


def remove_mentions(key: str, data: bytes, matcher: PersonMatcher) -> tuple[bytes | None, int, str]:
    """(new body or None when nothing is left, rows removed, content type)."""
    if key.endswith(".parquet"):
        body, removed = _parquet().remove_rows(data, matcher.mentions)
        return body, removed, "application/octet-stream"
    if key.endswith(".jsonl"):
        lines = [line for line in _jsonl_lines(data) if line.strip()]
        kept = [line for line in lines if not _line_mentions(matcher, line)]
        body = ("\n".join(kept) + "\n").encode("utf-8") if kept else None
        return body, len(lines) - len(kept), "application/x-ndjson"
    if key.endswith(".json"):
        try:
            kept, removed = prune_json(json.loads(data), matcher)
        except ValueError:  # not JSON: the whole object goes if it names the person
            named = matcher.mentions(data.decode("utf-8", errors="replace"))
            return (None, 1, "application/json") if named else (data, 0, "application/json")
        if not removed:
            return data, 0, "application/json"
        body = None if kept is _GONE or kept == [] else json.dumps(kept, indent=2).encode("utf-8")
        return body, removed, "application/json"
    return data, 0, "application/octet-stream"


class FileEraser:
    """The `FileRewriter` port: the object without the person's rows (deleted when none is left)."""

    def __init__(self, objects: ObjectStore, versions: VersionPurger) -> None:
        self.objects = objects
        self.versions = versions

    def rewrite_without(self, key: str, match: RowMatch) -> int:
        if not self.objects.exists(key):
            return 0
        body, removed, content_type = remove_mentions(key, self.objects.get_bytes(key), PersonMatcher(match))
        if not removed:
            self.versions.purge_noncurrent(key)  # an earlier, interrupted rewrite may have left a version
            return 0
        if body is None:
            self.versions.delete_all(key)
        else:
            self.objects.put_bytes(key, body, content_type)
            self.versions.purge_noncurrent(key)
        return removed


class ObjectEraser:
    """The `ObjectDeleter` port: whole objects, every version."""

    def __init__(self, versions: VersionPurger) -> None:
        self.versions = versions

    def delete_objects(self, keys: Sequence[str]) -> int:
        return sum(self.versions.delete_all(key) for key in dict.fromkeys(keys))


# ---- DynamoDB ------------------------------------------------------------------------------------------

class TableItemDeleter:
    """The `ItemDeleter` port on the DynamoDB table; counts the items that existed."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def delete_items(self, keys: Sequence[ItemKey]) -> int:
        removed = 0
        for key in dict.fromkeys(keys):
            answer = self._table.delete_item(Key={"pk": key.pk, "sk": key.sk}, ReturnValues="ALL_OLD")
            removed += bool(answer.get("Attributes"))
        return removed


class StoreItemDeleter:
    """The `ItemDeleter` port over a `CustomerItemStore` (whose delete counts what existed, in memory)."""

    def __init__(self, items: CustomerItemStore) -> None:
        self.items = items

    def delete_items(self, keys: Sequence[ItemKey]) -> int:
        return self.items.delete((k.pk, k.sk) for k in dict.fromkeys(keys))


# ---- destinations ----------------------------------------------------------------------------------------

class ErasureRefused(RuntimeError):
    """A destination did not confirm the delete (the run stays incomplete and is retried)."""


class MailchimpEraser:
    def __init__(self, client: Any) -> None:
        self.client = client

    def erase(self, call: DestinationCall) -> bool:
        from segflow.destinations.mailchimp import DELETE_PERMANENT

        response = self.client.http.request(
            "POST", DELETE_PERMANENT, path_params={"list_id": call.audience_id, "subscriber_hash": call.member_ref},
            accept=(404,),
        )
        return response.status_code != 404


class HubSpotEraser:
    def __init__(self, client: Any) -> None:
        self.client = client

    def erase(self, call: DestinationCall) -> bool:
        body: dict[str, str] = {"objectId": call.member_ref}
        if call.id_property == "email":
            body["idProperty"] = "email"
        response = self.client.http.request("POST", f"{self.client.paths.contacts}/gdpr-delete", json=body,
                                            accept=(404,))
        return response.status_code != 404


# ---- the inventory ---------------------------------------------------------------------------------------

@dataclass
class Identity:
    customer_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)


def person_identity(request: ErasureRequest, items: CustomerItemStore,
                    resolve: Callable[[str, list[str]], dict[str, str]]) -> Identity:
    """Every id, email and phone of the person, from the request, the identity keys and the profiles."""
    ids = [request.customer_id] if request.customer_id else []
    emails = [request.email] if request.email else []
    if request.email:
        ids += list(resolve("email", [request.email]).values())
    if request.customer_id:
        ids += list(resolve("id", [request.customer_id]).values())  # an alias resolves to its canonical id
    ids = list(dict.fromkeys(ids))
    phones: list[str] = []
    profiles = items.get(ids, kinds=(PROFILE,))
    for customer_id in list(ids):
        profile = profiles.get(customer_id, {}).get(PROFILE, {})
        ids += [a for a in profile.get("alias_ids") or [] if a not in ids]
        emails += [e for e in [profile.get("email"), *(profile.get("alternate_emails") or [])] if e]
        phones += [p for p in [profile.get("phone"), *(profile.get("alternate_phones") or [])] if p]
    return Identity(list(dict.fromkeys(ids)), list(dict.fromkeys(e.strip().lower() for e in emails)),
                    list(dict.fromkeys(phones)))


class ObjectScanner:
    def __init__(self, objects: ObjectStore, prefixes: Mapping[str, str] = SCANNED_PREFIXES) -> None:
        self.objects = objects
        self.prefixes = prefixes

    def scan(self, match: RowMatch) -> tuple[dict[str, list[FileHit]], list[str]]:
        """(category -> files mentioning the person with how many rows each, phones found on their rows).

        Phones the person's clean rows carry (an unparseable number kept as `phone_original`, say) join the
        match for the prefixes scanned after them (clean/ is scanned first), so warnings and quarantine
        lines quoting that number go too."""
        phones = list(match.phones)

        def collect(row: Mapping[str, Any]) -> None:
            phones.extend(v for k, v in row.items() if "phone" in k.lower() and isinstance(v, str) and v.strip())

        hits: dict[str, list[FileHit]] = {}
        for prefix, category in self.prefixes.items():
            matcher = PersonMatcher(match.model_copy(update={"phones": tuple(dict.fromkeys(phones))}))
            for info in self.objects.list(prefix):
                key = info.key
                if key.startswith(SKIPPED_PREFIXES) or not key.endswith(DATA_SUFFIXES):
                    continue
                if key.endswith(".accounting.json"):
                    continue  # counts only
                rows = count_mentions(key, self.objects.get_bytes(key), matcher, collect)
                if rows:
                    hits.setdefault(category, []).append(FileHit(key=key, rows=rows))
        return hits, list(dict.fromkeys(phones))

    def raw_sources(self, keys: Iterable[str]) -> list[str]:
        """The raw drops that produced these clean/pending/quarantine files (from each drop's accounting)."""
        sources = []
        for key in keys:
            found = _DROP_KEY.match(key)
            if not found:
                continue
            _, dataset, drop_id, _ = found.groups()
            accounting = f"clean/{dataset}/{drop_id}.accounting.json"
            if self.objects.exists(accounting):
                source = json.loads(self.objects.get_bytes(accounting)).get("source_key")
                if source and source.startswith("raw/"):
                    sources.append(source)
        return list(dict.fromkeys(sources))


def find_inventory(
    request: ErasureRequest,
    *,
    items: CustomerItemStore,
    resolve: Callable[[str, list[str]], dict[str, str]],
    ledger: LedgerStore,
    scanner: ObjectScanner,
    destinations: Sequence[str],
    mailchimp_list_id: str | None,
    delete_raw: bool = True,
) -> ErasureInventory:
    person = person_identity(request, items, resolve)
    keys = [ItemKey(pk=i["pk"], sk=i["sk"]) for c in person.customer_ids for i in items.partition(c)]
    ledger_pks = [ledger_pk_for_email(e) for e in person.emails] + [ledger_pk_for_id(c) for c in person.customer_ids]
    keys += [ItemKey(pk=pk, sk=sk) for pk, sk in ledger.keys(ledger_pks)]

    sync = items.get(person.customer_ids, kinds=("SYNC#mailchimp", "SYNC#hubspot"))
    targets = []
    for destination in destinations:
        if destination == "mailchimp" and mailchimp_list_id:
            # The plan tries the subscriber hash of every email the person had.
            targets.append(DestinationTarget(destination="mailchimp", audience_id=mailchimp_list_id))
        elif destination == "hubspot" and person.emails:
            # By email: HubSpot then also blocklists the address, even when the contact is already gone.
            targets.append(DestinationTarget(destination="hubspot"))
        elif destination == "hubspot":
            ids = {s.get("SYNC#hubspot", {}).get("destination_id") for s in sync.values()}
            targets += [DestinationTarget(destination="hubspot", member_id=i) for i in sorted(i for i in ids if i)]

    match = RowMatch(customer_ids=tuple(person.customer_ids), emails=tuple(person.emails), phones=tuple(person.phones))
    hits, phones = scanner.scan(match)
    data_keys = [h.key for category in ("clean", "pending", "quarantine") for h in hits.get(category, [])]
    return ErasureInventory(
        customer_ids=person.customer_ids,
        emails=person.emails,
        phones=phones,
        items=list(dict.fromkeys(keys)),
        clean_files=hits.get("clean", []),
        quarantine_files=hits.get("quarantine", []),
        pending_files=hits.get("pending", []),
        report_files=hits.get("report", []),
        ledger_files=hits.get("ledger", []),
        raw_objects=scanner.raw_sources(data_keys) if delete_raw else [],
        destinations=targets,
    )



# ---- the backend the consent service uses --------------------------------------------------------------

@dataclass
class StoreErasureBackend:
    """Finds a person and builds the erasure ports over the given stores (DynamoDB/S3 or their in-memory twins)."""

    items: CustomerItemStore
    resolve: Callable[[str, list[str]], dict[str, str]]
    ledger: LedgerStore
    objects: ObjectStore
    versions: VersionPurger
    tombstones: Any  # TombstoneWriter
    item_deleter: Any  # ItemDeleter
    destinations: Callable[[], Mapping[str, Any]]  # name -> DestinationEraser, built on first use
    skipped_destinations: list[str] = field(default_factory=list)  # "<name>: <why>", for the report
    mailchimp_list_id: str | None = None
    delete_raw: bool = True

    def inventory(self, request: ErasureRequest) -> ErasureInventory:
        return find_inventory(
            request, items=self.items, resolve=self.resolve, ledger=self.ledger, scanner=ObjectScanner(self.objects),
            destinations=list(self.destinations()), mailchimp_list_id=self.mailchimp_list_id,
            delete_raw=self.delete_raw,
        )

    def ports(self) -> ErasurePorts:
        return ErasurePorts(
            tombstones=self.tombstones, items=self.item_deleter, files=FileEraser(self.objects, self.versions),
            objects=ObjectEraser(self.versions), destinations=dict(self.destinations()),
        )


# ---- destination erasers from configuration --------------------------------------------------------------

def _secret_missing(error: BaseException) -> bool:
    """A secret that does not exist or has no value yet (AWS: ResourceNotFoundException)."""
    from segflow.destinations.credentials import CredentialsError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, CredentialsError) or "ResourceNotFoundException" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class DestinationErasers:
    """Builds the Mailchimp / HubSpot erasers from secrets on each use (Powertools caches the secret).

    A destination without configuration (no audience, no secret name, a secret that is unset or empty) is
    skipped and named in `skipped` for the erasure report; any other failure to read a secret raises, so
    the erasure is retried instead of completing without the destination."""

    read_secret: Callable[[str], Any]  # secret name -> value (e.g. a Powertools SecretsProvider's get)
    mailchimp_secret: str | None
    hubspot_secret: str | None
    mailchimp_list_id: str | None
    mailchimp_base_url: str | None = None
    hubspot_base_url: str | None = None
    hubspot_tier: str = "starter"
    skipped: list[str] = field(default_factory=list)

    def _credentials(self, name: str, secret: str | None) -> Any:
        from segflow.destinations.credentials import load_credentials

        if not secret:
            self.skipped.append(f"{name}: no secret configured")
            return None
        try:
            value = self.read_secret(secret)
            if value is None:
                raise LookupError("ResourceNotFoundException: the secret has no value")
            return load_credentials(value=value)
        except Exception as error:
            if _secret_missing(error):
                self.skipped.append(f"{name}: secret unset or empty")
                return None
            raise

    def __call__(self) -> dict[str, Any]:
        self.skipped.clear()
        erasers: dict[str, Any] = {}
        if not self.mailchimp_list_id:
            self.skipped.append("mailchimp: no audience configured")
        elif (credentials := self._credentials("mailchimp", self.mailchimp_secret)) is not None:
            from segflow.destinations.mailchimp import MailchimpClient

            erasers["mailchimp"] = MailchimpEraser(
                MailchimpClient(credentials.api_key or credentials.secret, base_url=self.mailchimp_base_url))
        if (credentials := self._credentials("hubspot", self.hubspot_secret)) is not None:
            from segflow.destinations.hubspot import HUBSPOT_URL, HubSpotClient

            erasers["hubspot"] = HubSpotEraser(HubSpotClient(
                credentials.token or credentials.secret, base_url=self.hubspot_base_url or HUBSPOT_URL,
                tier=self.hubspot_tier))  # type: ignore[arg-type]
        self.skipped[:] = list(dict.fromkeys(self.skipped))
        return erasers
