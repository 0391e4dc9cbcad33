"""The ingest use case: one delivered object in, clean data + quarantine + profiles + one event out.

Ports are injected (object store, profile store, event publisher), so the same code runs in Lambda,
against moto, and against in-memory fakes in unit tests. Re-delivering an object is safe: outputs are
deterministic, profiles and identity keys are written only when they change, and the accounting file is
written last, as the commit marker that turns a later delivery of the same object into a replay.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from segflow.config import Settings
from segflow.events.bus import EventPublisher
from segflow.events.schemas import MAX_INLINE_IDS, DataIngested, DatasetCounts
from segflow.ingest import keys
from segflow.ingest.accounting import DropAccounting
from segflow.ingest.cleaning import clean_chunk
from segflow.ingest.datasets import dataset_for_key
from segflow.ingest.drop import DropRef
from segflow.ingest.identity import known_keys, resolve_customers, resolve_references
from segflow.ingest.reader import UnreadableFile, read_table
from segflow.observability import logger
from segflow.store.objects import ObjectStore
from segflow.store.parquet import read_parquet_bytes, to_parquet_bytes
from segflow.store.profiles import ProfileStore

# Column that identifies a record across drops, per dataset (None: no cross-drop identity).
RECORD_ID = {"orders": "order_id", "events": "event_id", "order_items": None, "consent": None, "erasure": None}
# Datasets whose rows must name a known customer; unknown ones are kept aside in pending/.
NEEDS_CUSTOMER = {"orders", "events"}
# Small datasets read by light functions (no pandas): also written as JSON Lines.
JSONL_COPY = {"consent", "erasure"}
MAX_CONFLICT_RETRIES = 3


@dataclass
class IngestOutcome:
    status: str  # "ingested" | "replayed" | "skipped"
    drop_id: str | None
    dataset: str | None
    accounting: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    customers_touched: list[str] = field(default_factory=list)


class IngestService:
    def __init__(
        self,
        objects: ObjectStore,
        profiles: ProfileStore,
        publisher: EventPublisher,
        settings: Settings,
        workdir: Path | None = None,
        erased: Callable[[Iterable[str]], set[str]] | None = None,
    ) -> None:
        self.objects = objects
        self.profiles = profiles
        self.publisher = publisher
        self.settings = settings
        self.workdir = workdir
        # Which of these emails / customer ids belong to people erased (and not opted in again) since.
        self.erased = erased

    # ---- entry point -------------------------------------------------------------------------
    def ingest(self, ref: DropRef) -> IngestOutcome:
        dataset = dataset_for_key(ref.key)
        if dataset is None:
            logger.warning("object is not under a known dataset prefix; skipped", extra={"key": ref.key})
            return IngestOutcome("skipped", None, None, reason="unknown_dataset")
        drop_id = keys.drop_id_for(dataset, ref.key, ref.version)
        accounting_key = keys.accounting_key(dataset, drop_id)
        if self.objects.exists(accounting_key):
            logger.info("drop already ingested; replay changes nothing", extra={"drop_id": drop_id})
            stored = json.loads(self.objects.get_bytes(accounting_key))
            return IngestOutcome("replayed", drop_id, dataset, accounting=stored)

        acc = DropAccounting(drop_id=drop_id, dataset=dataset, source_key=ref.key)
        now = self.settings.now()
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            path = Path(tmp) / "drop"
            self.objects.download(ref.key, path)
            frame, quarantined, warnings = self._read_and_clean(path, ref.key, dataset, now, acc)

        touched: list[str] = []
        clean = pd.DataFrame()
        if not acc.file_quarantined and dataset not in ("consent", "erasure"):
            frame, quarantined, gone = self._drop_erased(frame, quarantined, acc)
            warnings = [w for w in warnings if w["row"] not in gone]
        if acc.file_quarantined:
            self._write_jsonl(keys.quarantine_key(dataset, drop_id), quarantined)
        else:
            if dataset == "customers":
                clean, touched, no_id = self._ingest_customers(frame, acc, now)
                quarantined.extend(_without_id_record(ref.key, drop_id, row) for row in no_id)
                touched += self._attach_pending(acc)
            else:
                clean, touched = self._ingest_records(frame, dataset, acc, now)
            for q in quarantined:
                acc.quarantine_rules.update(r["rule"] for r in q["reasons"])
            acc.quarantined = len(quarantined)
            acc.warning_rules.update(w["rule"] for w in warnings)
            acc.check()
            if len(clean):
                self.objects.put_bytes(keys.clean_key(dataset, drop_id), to_parquet_bytes(clean))
                if dataset in JSONL_COPY:
                    rows = json.loads(clean.to_json(orient="records", date_format="iso", date_unit="us"))
                    self._write_jsonl(keys.clean_jsonl_key(dataset, drop_id), rows)
            if quarantined:
                self._write_jsonl(keys.quarantine_key(dataset, drop_id), quarantined)
            if warnings:
                self._write_jsonl(keys.warnings_key(dataset, drop_id), warnings)

        event = self._event(ref, dataset, drop_id, acc, len(clean) > 0, bool(quarantined), touched, now)
        self.publisher.publish([event])
        self.objects.put_bytes(accounting_key, json.dumps(acc.to_dict(), indent=2).encode(), "application/json")
        logger.info("drop ingested", extra={"drop_id": drop_id, **acc.counts()})
        return IngestOutcome("ingested", drop_id, dataset, accounting=acc.to_dict(), customers_touched=touched)

    # ---- reading ----------------------------------------------------------------------------
    def _read_and_clean(
        self, path: Path, key: str, dataset: str, now: datetime, acc: DropAccounting
    ) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
        frames: list[pd.DataFrame] = []
        quarantined: list[dict[str, Any]] = []
        warnings: list[dict[str, Any]] = []
        try:
            for chunk in read_table(
                path, key, dataset, chunk_rows=self.settings.chunk_rows, aliases=self.settings.column_aliases
            ):
                acc.rows_in += len(chunk.rows)
                result = clean_chunk(
                    chunk,
                    dataset,
                    now=now,
                    source_name=key,
                    default_timezone=self.settings.default_timezone,
                    default_currency=self.settings.default_currency,
                    future_tolerance=timedelta(hours=self.settings.future_tolerance_hours),
                )
                frames.append(result.clean)
                quarantined.extend(_quarantine_record(key, dataset, acc.drop_id, q) for q in result.quarantined)
                warnings.extend(
                    {"file": key, "row": row, **asdict(reason)} for row, reason in result.warnings
                )
        except UnreadableFile as err:
            # The whole file is quarantined with its reason; rows read before the failure are discarded
            # so that the drop stays all-or-nothing and can be re-dropped once fixed.
            acc.rows_in, acc.file_quarantined, acc.file_reason = 0, True, err.reason
            record = {"file": key, "dataset": dataset, "drop_id": acc.drop_id, "row": None,
                      "reasons": [{"field": None, "rule": f"unreadable_file:{err.reason}",
                                   "value": None, "message": str(err)}], "record": None}
            return pd.DataFrame(), [record], []
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return frame, quarantined, warnings

    def _drop_erased(
        self, frame: pd.DataFrame, quarantined: list[dict[str, Any]], acc: DropAccounting
    ) -> tuple[pd.DataFrame, list[dict[str, Any]], set[int]]:
        """Rows naming an erased person never come back (consent rows are the consent function's call).

        Returns the frame and quarantine without them, and their row numbers."""
        if self.erased is None:
            return frame, quarantined, set()
        values: set[str] = set()
        for column in ("customer_id", "email"):
            if column in frame:
                values |= {str(v) for v in frame[column].dropna().unique()}
        for q in quarantined:
            values |= {str(q["record"].get(c)).strip().lower() if c == "email" else str(q["record"].get(c)).strip()
                       for c in ("customer_id", "email") if (q.get("record") or {}).get(c)}
        erased = self.erased(values) if values else set()
        if not erased:
            return frame, quarantined, set()
        hit = pd.Series(False, index=frame.index)
        for column in ("customer_id", "email"):
            if column in frame:
                hit |= frame[column].isin(erased)
        kept_quarantine = [
            q for q in quarantined
            if not {str((q.get("record") or {}).get("customer_id") or "").strip(),
                    str((q.get("record") or {}).get("email") or "").strip().lower()} & erased
        ]
        acc.erased = int(hit.sum()) + len(quarantined) - len(kept_quarantine)
        logger.info("rows of erased people dropped", extra={"drop_id": acc.drop_id, "rows": acc.erased})
        gone = {int(r) for r in frame.loc[hit, "_row"]} | {int(q["row"]) for q in quarantined if q not in kept_quarantine}
        return frame[~hit], kept_quarantine, gone

    # ---- customers --------------------------------------------------------------------------
    def _ingest_customers(
        self, frame: pd.DataFrame, acc: DropAccounting, now: datetime
    ) -> tuple[pd.DataFrame, list[str], list[dict[str, Any]]]:
        """Returns the clean rows, the customers written and the rows that have no id to live under."""
        if frame.empty:
            return frame, [], []
        pending_rows = frame
        written: list[str] = []
        outcomes: dict[int, tuple[str, str]] = {}
        without_id: list[dict[str, Any]] = []
        for attempt in range(MAX_CONFLICT_RETRIES + 1):
            values = known_keys(pending_rows)
            known = {kind: self.profiles.resolve(kind, vals) for kind, vals in values.items()}
            existing = self.profiles.get_profiles({c for m in known.values() for c in m.values()})
            resolution = resolve_customers(
                pending_rows,
                existing=existing,
                known=known,
                drop_id=acc.drop_id,
                ingested_at=now,
                fuzzy_threshold=self.settings.fuzzy_name_threshold,
            )
            changed = []
            for profile in resolution.profiles:
                before = existing.get(profile["customer_id"])
                if before and before.get("profile_hash") == profile["profile_hash"]:
                    acc.profiles_unchanged += 1
                    continue
                expected = before.get("version") if before else None
                changed.append(({**profile, "version": (expected or 0) + 1}, expected))
            for old_id, into in resolution.absorbed.items():
                old = existing[old_id]
                tombstone = {"customer_id": old_id, "merged_into": into, "version": old.get("version", 0) + 1}
                changed.append((tombstone, old.get("version")))
            lost = set(self.profiles.put_profiles(changed))
            new_keys = [(k, v, c) for k, v, c in resolution.identities if known.get(k, {}).get(v) != c]
            self.profiles.put_identities(new_keys)
            for row, outcome in resolution.row_outcomes.items():
                if outcome[1] not in lost:
                    outcomes[row] = outcome
            without_id += frame[frame["_row"].isin(resolution.without_id)].to_dict("records")
            written += [p["customer_id"] for p, _ in changed if p["customer_id"] not in lost]
            if not lost:
                break
            # Someone else changed these customers meanwhile: resolve their rows again on fresh reads.
            retry_rows = [r for r, (_, c) in resolution.row_outcomes.items() if c in lost]
            pending_rows = frame[frame["_row"].isin(retry_rows)]
            logger.warning("profile write conflicts; retrying", extra={"count": len(lost), "attempt": attempt})
        else:
            raise RuntimeError(f"profiles still conflicting after {MAX_CONFLICT_RETRIES} retries")

        acc.profiles_written = len(written)
        frame = frame[frame["_row"].isin(outcomes)].copy()
        frame["source_customer_id"] = frame["customer_id"]
        frame["customer_id"] = frame["_row"].map(lambda r: outcomes[r][1])
        is_clean = frame["_row"].map(lambda r: outcomes[r][0] == "clean")
        acc.clean, acc.merged = int(is_clean.sum()), int((~is_clean).sum())
        merges = [{"row": int(r), "merged_into": outcomes[r][1]} for r in frame.loc[~is_clean, "_row"]]
        if merges:
            self._write_jsonl(f"reports/merges/customers/{acc.drop_id}.jsonl", merges)
        return _serialisable(frame[is_clean]), sorted(set(written)), without_id

    # ---- orders, events, items, consent, erasure --------------------------------------------
    def _ingest_records(
        self, frame: pd.DataFrame, dataset: str, acc: DropAccounting, now: datetime
    ) -> tuple[pd.DataFrame, list[str]]:
        if frame.empty:
            return frame, []
        if not frame["_row"].is_monotonic_increasing:
            frame = frame.sort_values("_row", kind="stable")
        record_id = RECORD_ID.get(dataset)
        content = [c for c in frame.columns if not c.startswith("_") and not c.endswith("_original")]
        frame = frame.assign(_hash=content_hash(frame, content))
        dup_key = [record_id] if record_id else content
        # One filter for both kinds of merge: every take copies the whole frame (millions of rows at 1M orders).
        drop = frame.duplicated(dup_key, keep="last")
        acc.merged += int(drop.sum())
        if record_id:
            prior = self._prior_hashes(dataset, record_id, exclude=acc.drop_id)
            # nullable UInt64: a plain map would turn the 64-bit hashes into floats and lose their low bits
            known = frame[record_id].map(pd.Series(prior, dtype="UInt64"))
            same = ~drop & known.eq(frame["_hash"]).fillna(False).astype(bool)
            acc.merged += int(same.sum())
            drop |= same
        if drop.any():
            frame = frame[~drop]
        else:
            frame = frame.copy(deep=False)  # the caller's frame stays as it was

        # When the row arrived: a later drop's version of the same order (say, now refunded) wins.
        frame["_ingested_at"] = pd.Timestamp(now)
        if "customer_id" in frame or "email" in frame:
            ids = frame["customer_id"].dropna().unique().tolist() if "customer_id" in frame else []
            emails = frame["email"].dropna().unique().tolist() if "email" in frame else []
            resolved = resolve_references(
                frame, self.profiles.resolve("id", ids), self.profiles.resolve("email", emails)
            )
            frame["source_customer_id"] = frame["customer_id"] if "customer_id" in frame else None
            frame["customer_id"] = resolved
        if dataset in NEEDS_CUSTOMER:
            unknown = frame["customer_id"].isna()
            acc.pending = int(unknown.sum())
            if acc.pending:
                self.objects.put_bytes(
                    keys.pending_key(dataset, acc.drop_id), to_parquet_bytes(_serialisable(frame[unknown]))
                )
            frame = frame[~unknown]
        acc.clean = len(frame)
        touched = sorted(frame["customer_id"].dropna().unique().tolist()) if "customer_id" in frame else []
        return _serialisable(frame), touched

    def _prior_hashes(self, dataset: str, record_id: str, exclude: str) -> dict[str, int]:
        """record id -> content hash over earlier drops (clean and pending), newest drop last."""
        prior: dict[str, int] = {}
        for prefix in (f"clean/{dataset}/", f"pending/{dataset}/"):
            for info in self.objects.list(prefix):
                if not info.key.endswith(".parquet") or exclude in info.key:
                    continue
                part = read_parquet_bytes(self.objects.get_bytes(info.key), [record_id, "_hash"])
                if "_hash" in part:
                    prior.update(zip(part[record_id], part["_hash"].astype("uint64")))
        return prior

    def _attach_pending(self, acc: DropAccounting) -> list[str]:
        """Rows kept aside because their customer was unknown: attach those this drop made known."""
        touched: list[str] = []
        for dataset in sorted(NEEDS_CUSTOMER):
            for info in list(self.objects.list(f"pending/{dataset}/")):
                waiting = read_parquet_bytes(self.objects.get_bytes(info.key))
                ids = waiting["source_customer_id"].dropna().unique().tolist()
                emails = waiting["email"].dropna().unique().tolist() if "email" in waiting else []
                resolved = resolve_references(
                    waiting.assign(customer_id=waiting["source_customer_id"]),
                    self.profiles.resolve("id", ids),
                    self.profiles.resolve("email", emails),
                )
                found = resolved.notna()
                if not found.any():
                    continue
                pending_drop = info.key.rsplit("/", 1)[1].removesuffix(".parquet")
                attached = waiting[found].assign(customer_id=resolved[found])
                self.objects.put_bytes(
                    keys.attached_key(dataset, pending_drop, acc.drop_id), to_parquet_bytes(attached)
                )
                if found.all():
                    self.objects.delete(info.key)
                else:
                    self.objects.put_bytes(info.key, to_parquet_bytes(waiting[~found]))
                acc.attached[dataset] = acc.attached.get(dataset, 0) + int(found.sum())
                touched += attached["customer_id"].unique().tolist()
        return touched

    # ---- outputs ----------------------------------------------------------------------------
    def _write_jsonl(self, key: str, records: Iterable[dict[str, Any]]) -> None:
        body = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records)
        self.objects.put_bytes(key, body.encode("utf-8"), "application/x-ndjson")

    def _event(
        self,
        ref: DropRef,
        dataset: str,
        drop_id: str,
        acc: DropAccounting,
        has_clean: bool,
        has_quarantine: bool,
        touched: list[str],
        now: datetime,
    ) -> DataIngested:
        touched = sorted(set(touched))
        ids_key = None
        if len(touched) > MAX_INLINE_IDS:
            ids_key = keys.manifest_key(drop_id)
            self.objects.put_bytes(ids_key, json.dumps(touched).encode(), "application/json")
        return DataIngested(
            drop_id=drop_id,
            dataset=dataset,  # type: ignore[arg-type]
            bucket=ref.bucket,
            source_key=ref.key,
            clean_key=keys.clean_key(dataset, drop_id) if has_clean else None,
            quarantine_key=keys.quarantine_key(dataset, drop_id) if has_quarantine or acc.file_quarantined else None,
            accounting_key=keys.accounting_key(dataset, drop_id),
            counts=DatasetCounts(**acc.counts()),
            attached=acc.attached,
            customers_touched=len(touched),
            customer_ids=touched if ids_key is None else [],
            customer_ids_key=ids_key,
            ingested_at=now,
        )


def _quarantine_record(key: str, dataset: str, drop_id: str, q: Any) -> dict[str, Any]:
    return {
        "file": key,
        "dataset": dataset,
        "drop_id": drop_id,
        "row": int(q.row),
        "reasons": [asdict(r) for r in q.reasons],
        "record": q.record,
    }


def _without_id_record(key: str, drop_id: str, row: dict[str, Any]) -> dict[str, Any]:
    reason = {
        "field": "customer_id",
        "rule": "required",
        "value": None,
        "message": "no customer_id, and no known customer shares this email or phone: segflow never invents an id",
    }
    record = {k: (None if pd.isna(v) else str(v)) for k, v in row.items()
              if not k.startswith("_") and not isinstance(v, (dict, list))}
    return {"file": key, "dataset": "customers", "drop_id": drop_id, "row": int(row["_row"]),
            "reasons": [reason], "record": record}


def _serialisable(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns Parquet can hold as-is: dicts become JSON text (the frame is copied only then)."""
    if "attributes" not in frame:
        return frame
    return frame.assign(
        attributes=frame["attributes"].map(
            lambda a: json.dumps(a, sort_keys=True, ensure_ascii=False) if isinstance(a, dict) else a
        )
    )


def content_hash(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """A 64-bit hash of each row's content, as text, one column at a time (a text copy of the whole frame
    would cost as much memory as the frame itself). Stable across processes and runs."""
    combined = np.full(len(frame), 0x345678, dtype=np.uint64)
    for column in columns:
        values = pd.util.hash_pandas_object(frame[column].astype(str), index=False).to_numpy()
        combined = (combined ^ values) * np.uint64(1000003)
    return pd.Series(combined, index=frame.index, dtype="uint64")
