"""Where a sync run keeps its files in S3, how runs are named and ordered, and its sync-log line.

S3 layout (everything under sync/, the prefix both sync IAM policies grant):
  sync/<run_id>/sync-config.json                       the routes and fields the run was planned with
  sync/<run_id>/<destination>/<work_item_id>.json      work items (the SQS messages point to them)
  sync/<run_id>/<destination>/reconcile-<id>.json      read-back items of a nightly run
  sync/<run_id>/plan.json                              dry run: the exact plan and its call estimate
  sync/<run_id>/history/<destination>/<item id>.json   per item: the last attempt's report, attempts summed
  sync/log/<run_id>/<destination>.json                 one sync-log line per run and destination

Run ids start with the UTC time the run was planned (microseconds), so they sort in planning order: a worker
can tell that a contact was already synced by a newer plan than the item in its hands.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from segflow.sync.desired import FieldRoute, SegmentRoute, SyncConfig
from segflow.sync.history import RunSummary
from segflow.sync.runs import RunTotals

PREFIX = "sync"
LOG_PREFIX = f"{PREFIX}/log/"
_STAMP = re.compile(r"^(\d{8}T\d{12}Z)-")
OUTCOME_PREFIX = "outcome_"


def new_run_id(moment: datetime, seed: str) -> str:
    stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


def run_stamp(run_id: str | None) -> str | None:
    found = _STAMP.match(run_id or "")
    return found.group(1) if found else None


def planned_after(run_id: str | None, other: str) -> bool:
    """True when `run_id` was planned strictly after `other` (unknown formats never are)."""
    mine, theirs = run_stamp(run_id), run_stamp(other)
    return mine is not None and theirs is not None and mine > theirs


def config_key(run_id: str) -> str:
    return f"{PREFIX}/{run_id}/sync-config.json"


def plan_key(run_id: str) -> str:
    return f"{PREFIX}/{run_id}/plan.json"


def reconcile_key(run_id: str, destination: str, item_id: str) -> str:
    return f"{PREFIX}/{run_id}/{destination}/reconcile-{item_id}.json"


def history_key(run_id: str, destination: str, item_id: str) -> str:
    return f"{PREFIX}/{run_id}/history/{destination}/{item_id}.json"


def log_key(run_id: str, destination: str) -> str:
    return f"{LOG_PREFIX}{run_id}/{destination}.json"


# ---- the segments file's routes, carried to the workers (they may not read config/) -------------------


def config_to_json(config: SyncConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True, separators=(",", ":"))


def config_from_json(text: str | bytes) -> SyncConfig:
    data = json.loads(text)
    return SyncConfig(
        segments=tuple(SegmentRoute(**route) for route in data.get("segments") or ()),
        fields=tuple(FieldRoute(**route) for route in data.get("fields") or ()),
    )


def config_hash(config: SyncConfig) -> str:
    return hashlib.sha256(config_to_json(config).encode()).hexdigest()[:16]


# ---- the sync-log line ---------------------------------------------------------------------------------


def run_status(totals: RunTotals, dry_run: bool = False) -> str:
    counters = totals.counters
    if dry_run:
        return "dry_run"
    if counters.get("stopped_items"):
        return "stopped_daily_limit"
    trouble = ("failed_contacts", "retryable_contacts", "unsent_items", "failed_items")
    if totals.item_errors or any(counters.get(name) for name in trouble):
        return "partial"
    return "completed"


def log_line(totals: RunTotals, finished_at: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """One JSON object per run and destination: RunSummary's fields plus status, trigger and the plan."""
    counters = totals.counters
    outcomes = {
        name[len(OUTCOME_PREFIX) :]: value
        for name, value in sorted(counters.items())
        if name.startswith(OUTCOME_PREFIX) and value
    }
    summary = RunSummary(
        run_id=totals.run_id,
        destination=totals.destination,
        started_at=totals.started_at,
        finished_at=finished_at.isoformat(),
        work_items=counters.get("work_items", 0),
        contacts=counters.get("contacts", 0),
        contacts_pushed=counters.get("contacts_pushed", 0),
        api_calls=counters.get("api_calls", 0),
        retries=counters.get("retries", 0),
        throttled=counters.get("throttled", 0),
        errors=counters.get("errors", 0),
        duration_s=round(counters.get("duration_ms", 0) / 1000.0, 3),
        outcomes=outcomes,
        failed_contacts=counters.get("failed_contacts", 0),
        retryable_contacts=counters.get("retryable_contacts", 0),
        stop_run=bool(counters.get("stopped_items")),
        state_conflicts=counters.get("state_conflicts", 0),
        item_errors=list(totals.item_errors),
    )
    return {
        **asdict(summary),
        "status": run_status(totals, dry_run),
        "dry_run": dry_run,
        "trigger": totals.trigger,
        "superseded_contacts": counters.get("superseded", 0),
        "suppressions": counters.get("suppressions", 0),
        "reconcile": {
            "items": counters.get("reconcile_items", 0),
            "read": counters.get("reconcile_read", 0),
            "corrections": counters.get("reconcile_corrections", 0),
            "opt_outs": counters.get("reconcile_opt_outs", 0),
        },
        "planned": totals.planned,
    }
