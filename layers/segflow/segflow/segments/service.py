"""The segment function: evaluate segments for scored or active customers and record membership changes.

- ProfilesScored: the changed customers (everyone for a full run) are read in chunks (PROFILE, SCORES,
  CONSENT#email, SEGMENTS and ACTIVITY items), evaluated (rules, built-ins, triggers), diffed against their
  stored memberships with frequency caps and hysteresis, and the SEGMENTS items that changed are written.
  segments/latest.json gets each segment's definition and members (rebuilt by a full run, updated for the
  evaluated customers by a partial one) and the guardrail violations. A partial run that finds no current
  latest.json (none yet, or one made with another segments file) evaluates everyone instead.
- CustomerActivity: the customer is resolved (customer_id, else email), the event is added to their
  ACTIVITY item (keyed by event id, so a replay leaves it as it was), aggregates and RFM values are
  refreshed with the last nightly thresholds and their segments re-evaluated.
Either way SegmentsChanged is published only when some membership changed, listing entries and exits per
segment (inline when small, else under segments/changes/).

Hysteresis counts full scoring runs (the nightly one, a new model): each run is remembered per customer so a
redelivered ProfilesScored is not a second "false" evaluation. Partial runs (after a drop) and real-time
evaluations never advance the count, so a burst of drops cannot count as several nights: they may enter any
segment and leave trigger segments, while other segments are left by the full runs.

Delivery is at least once: SEGMENTS items are written before the event is published, and each item keeps
the last change with the key of the evaluation that made it, so a retried invocation (say the publish
failed) announces the same change again under the same run_id instead of losing it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from segflow.events.bus import EventPublisher
from segflow.events.schemas import (
    MAX_INLINE_IDS,
    CustomerActivity,
    CustomerSelection,
    ProfilesScored,
    SegmentChange,
    SegmentsChanged,
)
from segflow.events.selection import resolve, select
from segflow.segments import activity, membership, triggers
from segflow.segments.config import SegmentConfig, load_segments
from segflow.segments.overlay import Nightly, activity_view
from segflow.segments.personalisation import Personalisation, personalise
from segflow.segments.rules import CompiledRules, compile_rules, evaluate
from segflow.segments.store import (
    ActivityItem,
    CustomerRecord,
    SegmentItems,
    SegmentsItem,
    SnapshotStore,
    read_optional,
)
from segflow.segments.timeutil import iso_from_us, to_us
from segflow.store.objects import ObjectStore

LATEST_KEY = "segments/latest.json"
THRESHOLDS_KEY = "scores/thresholds/latest.json"
CHANGES_PREFIX = "segments/changes/"
MANIFEST_PREFIX = "manifests/segments/"
CHUNK_CUSTOMERS = 200  # customers read, evaluated and written together (5 items each: 1,000 keys)
MAX_ATTEMPTS = 5  # rounds of re-reading customers whose item changed under us
THRESHOLDS_TTL_SECONDS = 300.0  # the thresholds change once a night


class IdentityResolver(Protocol):
    def resolve(self, kind: str, values: Iterable[str]) -> dict[str, str]: ...


class ConcurrentUpdateError(RuntimeError):
    """Items kept changing under this evaluation; the invocation fails and is retried."""


@dataclass
class Outcome:
    run_id: str
    trigger: str
    status: str = "evaluated"  # evaluated | unknown_customer | no_customers
    evaluated: int = 0
    skipped: int = 0  # already handled under this key, or no live profile
    written: int = 0
    entries: int = 0
    exits: int = 0
    changed_customers: int = 0
    published: bool = False
    changes_key: str | None = None
    violations: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    customer_id: str
    item: SegmentsItem  # what the SEGMENTS item should hold (revision already incremented when written)
    write: bool
    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()
    replayed: bool = False  # this evaluation key was handled before: `entered` / `exited` repeat its change


@dataclass
class _Changes:
    by_segment: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: {"entered": [], "exited": []})
    )
    customers: set[str] = field(default_factory=set)

    def add(self, decision: Decision) -> None:
        for name in decision.entered:
            self.by_segment[name]["entered"].append(decision.customer_id)
        for name in decision.exited:
            self.by_segment[name]["exited"].append(decision.customer_id)
        if decision.entered or decision.exited:
            self.customers.add(decision.customer_id)

    def as_list(self) -> list[SegmentChange]:
        return [
            SegmentChange(segment=name, entered=sorted(lists["entered"]), exited=sorted(lists["exited"]))
            for name, lists in sorted(self.by_segment.items())
        ]

    @property
    def size(self) -> int:
        return sum(len(v["entered"]) + len(v["exited"]) for v in self.by_segment.values())


def load_config(objects: ObjectStore, key: str) -> SegmentConfig:
    """The segments file at `key` when it exists, else the shipped default; invalid files raise
    SegmentConfigError naming each segment and problem."""
    raw = read_optional(objects, key)
    if raw is None:
        return load_segments(None)
    text = raw.decode("utf-8")
    return load_segments(text if "\n" in text else text + "\n")  # one-line text is never taken for a path


def personalisation_for(view: Mapping[str, Any], compiled: CompiledRules | SegmentConfig) -> Personalisation:
    """Mailchimp merge fields and HubSpot properties for one contact's profile view, honouring its
    preference_level (for sync-plan)."""
    rules = compiled if isinstance(compiled, CompiledRules) else compile_rules(compiled)
    return personalise(rules, view)


def decide(
    record: CustomerRecord,
    compiled: CompiledRules,
    now: datetime,
    key: str,
    nightly: Nightly = Nightly(),
    counts_misses: bool = True,
) -> Decision:
    """One customer's evaluation. `key` names it (a scoring run or an activity event); `counts_misses`
    is true for scoring runs, which advance hysteresis and are counted once per customer."""
    config = compiled.config
    stored = record.segments
    if counts_misses and key in stored.runs:
        return _unchanged(record.customer_id, stored, key, seen=True)
    if not record.has_profile:
        if not stored.memberships:
            return Decision(record.customer_id, stored, False)
        caps = {"entries": stored.caps.get("entries", []), "misses": {}}
        change = membership.Change([], sorted(stored.memberships), {}, caps)
        clv = stored.clv
    else:
        tiers = config.triggers.clv_tier_up.tiers
        clv = triggers.note_clv_tier(stored.clv, record.view.get("clv_tier"), now, tiers)
        state = record.activity.state if record.activity.exists else None
        view = activity_view(record.view, state, now, nightly, config.triggers)
        view.pop("clv_tier_up_at", None)
        if clv.get("clv_tier_up_at"):
            view["clv_tier_up_at"] = clv["clv_tier_up_at"]
        current = evaluate(compiled, view, now)
        change = _diff(stored, current, now, compiled, counts_misses)
    new = replace(stored, memberships=change.memberships, caps=change.caps_state, clv=dict(clv))
    if new.state() == stored.state():
        return _unchanged(record.customer_id, stored, key)
    last_change = stored.last_change
    if change.changed:
        now_iso = iso_from_us(to_us(now))
        last_change = {"key": key, "entered": change.entered, "exited": change.exited, "at": now_iso}
    return Decision(
        record.customer_id,
        replace(
            new,
            runs=(*stored.runs, key) if counts_misses else stored.runs,
            revision=stored.revision + 1,
            last_change=last_change,
        ),
        True,
        tuple(change.entered),
        tuple(change.exited),
    )


def _unchanged(customer_id: str, stored: SegmentsItem, key: str, seen: bool = False) -> Decision:
    """Nothing to write; when this same evaluation made the stored change, repeat it (at-least-once)."""
    last = stored.last_change
    if last.get("key") != key:
        return Decision(customer_id, stored, False, replayed=seen)
    entered, exited = tuple(last.get("entered", ())), tuple(last.get("exited", ()))
    return Decision(customer_id, stored, False, entered, exited, replayed=True)


def _diff(
    stored: SegmentsItem, current: set[str], now: datetime, compiled: CompiledRules, counts_misses: bool
) -> membership.Change:
    config = compiled.config
    caps = stored.caps
    if counts_misses:
        return membership.diff(stored.memberships, current, now, caps, config)
    # Real time: keep non-trigger memberships whose condition is false, without counting a miss.
    keep = {
        name
        for name in stored.memberships
        if name not in current and name in config.by_name and not config.is_trigger(config.by_name[name])
    }
    if keep:
        # Kept members win their exclusive group until a nightly run lets them go.
        taken = {config.by_name[n].group for n in keep} - {None}
        current = {n for n in current if config.by_name[n].group not in taken}
    change = membership.diff(stored.memberships, set(current) | keep, now, caps, config)
    previous_misses = caps.get("misses") or {}
    misses = {**change.caps_state["misses"], **{n: previous_misses[n] for n in keep if n in previous_misses}}
    return replace(
        change,
        caps_state={**change.caps_state, "misses": dict(sorted(misses.items()))},
        held=sorted(set(change.held) | keep),
    )


def build_snapshot(
    previous: Mapping[str, Any] | None,
    evaluated: Mapping[str, Iterable[str]],
    full: bool,
    config: SegmentConfig,
    run_id: str,
    trigger: str,
    now_iso: str,
) -> dict[str, Any]:
    """segments/latest.json: definitions, members and guardrail violations.

    A full run's members are exactly `evaluated` ({customer: current segments}); a partial run starts from
    the previous document and replaces the evaluated customers' memberships. `complete` stays true only
    while every run since the last full one used the same segments file.
    """
    definitions = config.describe()
    names = [d["name"] for d in definitions]
    fingerprint = config_fingerprint(config)
    members: dict[str, set[str]] = {name: set() for name in names}
    if not full and previous:
        for entry in previous.get("segments", []):
            if entry.get("name") in members:
                members[entry["name"]] = set(entry.get("members", [])) - set(evaluated)
    for customer_id, segments in evaluated.items():
        for name in segments:
            if name in members:
                members[name].add(customer_id)
    complete = full or bool(
        previous and previous.get("complete") and previous.get("config_fingerprint") == fingerprint
    )
    sizes = {name: len(ids) for name, ids in members.items()}
    violations = membership.check_guardrails(sizes, config)
    return {
        "version": 1,
        "updated_at": now_iso,
        "run_id": run_id,
        "trigger": trigger,
        "complete": complete,
        "config_fingerprint": fingerprint,
        "segments": [
            {**definition, "size": sizes[definition["name"]], "members": sorted(members[definition["name"]])}
            for definition in definitions
        ],
        "guardrails": {
            "max_active_segments": config.guardrails.max_active_segments,
            "min_segment_size": config.guardrails.min_segment_size,
            "violations": [asdict(v) for v in violations],
        },
    }


def config_fingerprint(config: SegmentConfig) -> str:
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class SegmentService:
    def __init__(
        self,
        items: SegmentItems,
        objects: ObjectStore,
        identities: IdentityResolver,
        publisher: EventPublisher,
        snapshots: SnapshotStore,
        compiled: CompiledRules,
        clock: Callable[[], datetime],
        thresholds_ttl: float = THRESHOLDS_TTL_SECONDS,
    ) -> None:
        self.items = items
        self.objects = objects
        self.identities = identities
        self.publisher = publisher
        self.snapshots = snapshots
        self.compiled = compiled
        self.clock = clock
        self._thresholds_ttl = thresholds_ttl
        self._nightly: tuple[float, Nightly] | None = None

    @property
    def config(self) -> SegmentConfig:
        return self.compiled.config

    # ---- ProfilesScored --------------------------------------------------------------------------
    def on_scored(self, detail: ProfilesScored, delivery_id: str | None = None) -> Outcome:
        """`delivery_id` is the EventBridge event id: the same for every redelivery of one publication,
        so it tells a retried run (counted once) from a new run that happens to reuse a run_id."""
        full = detail.mode == "all" or detail.changed.everyone
        # A partial run that cannot update a complete latest.json (none yet, or another segments file)
        # evaluates everyone once, without counting it as a night.
        rebuild = full or not self._snapshot_is_current()
        ids = self.items.items.customer_ids() if rebuild else resolve(self.objects, detail.changed)
        suffix = f"{detail.run_id}-{delivery_id[:8]}" if delivery_id else detail.run_id
        return self.evaluate_batch(
            ids, counts_misses=full, rebuild=rebuild, key=f"scored:{suffix}", run_id=f"segments-{suffix}",
            trigger="ProfilesScored",
        )

    def evaluate_batch(
        self, customer_ids: Iterable[str], *, counts_misses: bool, rebuild: bool, key: str, run_id: str, trigger: str
    ) -> Outcome:
        """Evaluate `customer_ids` under `key`; `rebuild` means they are every customer (latest.json is
        rebuilt rather than updated); `counts_misses` makes the run a hysteresis evaluation."""
        now = self.clock()
        now_iso = iso_from_us(to_us(now)) or ""
        ids = list(dict.fromkeys(customer_ids))
        outcome = Outcome(run_id, trigger)
        if not ids and not rebuild:
            outcome.status = "no_customers"
            return outcome
        nightly = self.nightly()
        changes = _Changes()
        current: dict[str, list[str]] = {}
        for start in range(0, len(ids), CHUNK_CUSTOMERS):
            chunk = ids[start : start + CHUNK_CUSTOMERS]
            decisions = self._decide_and_write(chunk, now, now_iso, key, nightly, counts_misses, outcome)
            for decision in decisions:
                changes.add(decision)
                current[decision.customer_id] = sorted(decision.item.memberships)
        self._announce(changes, run_id, trigger, outcome)
        snapshot = self._update_snapshot(current, rebuild, run_id, trigger, now_iso)
        outcome.violations = len(snapshot["guardrails"]["violations"])
        return outcome

    def _snapshot_is_current(self) -> bool:
        previous, _ = self.snapshots.read(LATEST_KEY)
        return bool(
            previous
            and previous.get("complete")
            and previous.get("config_fingerprint") == config_fingerprint(self.config)
        )

    # ---- CustomerActivity ------------------------------------------------------------------------
    def on_activity(self, detail: CustomerActivity) -> Outcome:
        now = self.clock()
        now_iso = iso_from_us(to_us(now)) or ""
        outcome = Outcome(f"segments-activity-{detail.event_id}", "CustomerActivity")
        customer_id = self.resolve_customer(detail)
        if customer_id is None:
            outcome.status = "unknown_customer"
            return outcome
        event = detail.model_dump(exclude_none=True)
        settings = self.config.triggers
        key = f"activity:{detail.event_id}"
        for _ in range(MAX_ATTEMPTS):
            record = self.items.records([customer_id])[customer_id]
            if not record.has_profile:
                outcome.status = "unknown_customer"
                return outcome
            state = activity.apply_event(record.activity.state, event, now, settings)
            if not record.activity.exists or state != record.activity.state:
                updated = ActivityItem(state, record.activity.revision + 1, True)
                if not self.items.put_activity(customer_id, updated, now):
                    outcome.retries += 1
                    continue
                record = replace(record, activity=updated)
            decisions = self._decide_and_write(
                [customer_id], now, now_iso, key, self.nightly(), False, outcome, first=record
            )
            changes = _Changes()
            for decision in decisions:
                changes.add(decision)
            self._announce(changes, outcome.run_id, outcome.trigger, outcome)
            return outcome
        raise ConcurrentUpdateError(f"activity item of a customer kept changing ({outcome.run_id})")

    def resolve_customer(self, detail: CustomerActivity) -> str | None:
        """The canonical customer: an alias id maps to its survivor; an email is looked up by its key."""
        if detail.customer_id:
            found = self.identities.resolve("id", [detail.customer_id])
            return found.get(detail.customer_id, detail.customer_id)
        if detail.email:
            email = detail.email.strip().lower()
            return self.identities.resolve("email", [email]).get(email)
        return None

    # ---- shared ----------------------------------------------------------------------------------
    def nightly(self) -> Nightly:
        """The last nightly thresholds (cached a few minutes); empty when the score step wrote none."""
        cached = self._nightly
        if cached is not None and time.monotonic() - cached[0] < self._thresholds_ttl:
            return cached[1]
        raw = read_optional(self.objects, THRESHOLDS_KEY)
        nightly = Nightly.from_document(json.loads(raw) if raw else None)
        self._nightly = (time.monotonic(), nightly)
        return nightly

    def _decide_and_write(
        self,
        customer_ids: list[str],
        now: datetime,
        now_iso: str,
        key: str,
        nightly: Nightly,
        counts_misses: bool,
        outcome: Outcome,
        first: CustomerRecord | None = None,
    ) -> list[Decision]:
        done: list[Decision] = []
        pending = customer_ids
        for attempt in range(MAX_ATTEMPTS):
            fresh = first is not None and attempt == 0
            records = {first.customer_id: first} if fresh else self.items.records(pending)
            decisions = [decide(records[c], self.compiled, now, key, nightly, counts_misses) for c in pending]
            writes = {d.customer_id: d.item for d in decisions if d.write}
            stale = set(self.items.put_segments(writes, now_iso))
            for decision in decisions:
                if decision.customer_id in stale:
                    continue
                done.append(decision)
                outcome.written += decision.write
                outcome.skipped += decision.replayed or not records[decision.customer_id].has_profile
                outcome.evaluated += 1
            pending = sorted(stale)
            if not pending:
                return done
            outcome.retries += len(pending)
        raise ConcurrentUpdateError(f"{len(pending)} SEGMENTS item(s) kept changing during {outcome.run_id}")

    def _announce(self, changes: _Changes, run_id: str, trigger: str, outcome: Outcome) -> None:
        if not changes.customers:
            return
        listed = changes.as_list()
        outcome.entries = sum(len(c.entered) for c in listed)
        outcome.exits = sum(len(c.exited) for c in listed)
        outcome.changed_customers = len(changes.customers)
        selection: CustomerSelection = select(
            self.objects, sorted(changes.customers), f"{MANIFEST_PREFIX}{run_id}.json"
        )
        inline = changes.size <= MAX_INLINE_IDS
        if not inline:
            outcome.changes_key = f"{CHANGES_PREFIX}{run_id}.json"
            body = {"run_id": run_id, "trigger": trigger, "changes": [c.model_dump() for c in listed]}
            self.objects.put_bytes(outcome.changes_key, json.dumps(body).encode("utf-8"), "application/json")
        self.publisher.publish(
            [
                SegmentsChanged(
                    run_id=run_id,
                    trigger=trigger,
                    changed=selection,
                    changes=listed if inline else [],
                    changes_key=outcome.changes_key,
                )
            ]
        )
        outcome.published = True

    def _update_snapshot(
        self, current: Mapping[str, list[str]], full: bool, run_id: str, trigger: str, now_iso: str
    ) -> dict[str, Any]:
        for _ in range(MAX_ATTEMPTS):
            previous, etag = self.snapshots.read(LATEST_KEY)
            document = build_snapshot(previous, current, full, self.config, run_id, trigger, now_iso)
            if self.snapshots.write(LATEST_KEY, document, etag):
                return document
        raise ConcurrentUpdateError(f"{LATEST_KEY} kept changing during {run_id}")
