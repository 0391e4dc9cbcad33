"""Run history: one JSON line per run and destination (sync-log.jsonl and S3), from the items' reports.

A line carries counts and ids only: contacts pushed, API calls, retries, throttled answers, errors,
duration, outcomes, and the contacts left for later. Each contact's own last result lives in its SyncState.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plan side imports this module: keep the applier (and the API clients) out of it
    from segflow.sync.applier import ApplyReport


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    destination: str
    started_at: str
    finished_at: str
    work_items: int
    contacts: int
    contacts_pushed: int  # contacts the destination confirmed a change for
    api_calls: int  # HTTP attempts, retries included
    retries: int
    throttled: int
    errors: int  # failed attempts (connection errors, 5xx, unexpected 4xx)
    duration_s: float  # time spent applying items, summed
    outcomes: dict[str, int] = field(default_factory=dict)
    failed_contacts: int = 0
    retryable_contacts: int = 0
    stop_run: bool = False
    state_conflicts: int = 0
    item_errors: list[str] = field(default_factory=list)  # item-ending failures (route + status, no PII)

    def to_json_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def summarise(
    run_id: str, destination: str, reports: Sequence[ApplyReport], started_at: datetime, finished_at: datetime
) -> RunSummary:
    """The summary of a run, from the last report of each item (an item applied twice counts once, with
    the calls of both attempts)."""
    latest: dict[str, ApplyReport] = {}
    calls = Counter[str]()
    duration = 0.0
    for report in reports:
        if report.run_id != run_id or report.destination != destination:
            raise ValueError("reports of another run or destination")
        latest[report.work_item_id] = report
        calls.update(
            api_calls=report.stats.calls,
            retries=report.stats.retries,
            throttled=report.stats.throttled,
            errors=report.stats.errors,
        )
        duration += report.duration_s
    outcomes: Counter[str] = Counter()
    pushed: set[str] = set()
    for (
        report
    ) in reports:  # a contact pushed by a first attempt stays pushed when the retry finds nothing left
        pushed.update(c.customer_id for c in report.contacts.values() if c.outcome == "pushed")
    for report in latest.values():
        outcomes.update(report.counts())
    return RunSummary(
        run_id=run_id,
        destination=destination,
        started_at=started_at.isoformat(),
        finished_at=finished_at.isoformat(),
        work_items=len(latest),
        contacts=sum(len(r.contacts) for r in latest.values()),
        contacts_pushed=len(pushed),
        api_calls=calls["api_calls"],
        retries=calls["retries"],
        throttled=calls["throttled"],
        errors=calls["errors"],
        duration_s=round(duration, 3),
        outcomes=dict(outcomes),
        failed_contacts=outcomes.get("failed", 0),
        retryable_contacts=sum(len(r.retryable) for r in latest.values()),
        stop_run=any(r.stop_run for r in latest.values()),
        state_conflicts=sum(len(r.state_conflicts) for r in latest.values()),
        item_errors=sorted({r.error for r in latest.values() if r.error}),
    )


def to_jsonl(summaries: Iterable[RunSummary]) -> str:
    return "".join(s.to_json_line() + "\n" for s in summaries)


def read_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
