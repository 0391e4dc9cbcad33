"""Batch operations (POST /batches) of the fake Mailchimp: bookkeeping, status progression, results archive.

The fake runs a batch's operations when the batch is submitted, through the same routes and rules as direct
calls, but reports progress like Mailchimp: `pending` when submitted, `started` on the first status read,
`finished` on read number `polls_to_finish` of GET /batches/{id}. The progression counts reads, so tests need
no sleeps. Results exist only once a batch is finished: a gzipped tar of JSON files, each an array of
`{status_code, operation_id, response}` where `response` is the operation's JSON body as a string.
Mailchimp accepts at most `max_pending` unfinished batches per account; the next one is answered 429.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segflow_local.fakes.common import utc_iso
from segflow_local.fakes.mailchimp_store import Problem

MAX_PENDING_BATCHES = 500
DEFAULT_POLLS_TO_FINISH = 2
RESULTS_PER_FILE = 100  # Mailchimp splits big results over several files; clients must read them all


@dataclass(frozen=True)
class OperationOutcome:
    operation_id: str | None
    status_code: int
    response: Any  # the operation's parsed JSON body; None when it had none

    def archive_entry(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "operation_id": self.operation_id,
            "response": "" if self.response is None else json.dumps(self.response),
        }


@dataclass
class Batch:
    id: str
    submitted_at: float
    outcomes: list[OperationOutcome]
    polls_to_finish: int
    polls: int = 0
    completed_at: float | None = None
    response_body_url: str = ""
    archive_name: str = field(default="", repr=False)

    @property
    def status(self) -> str:
        if self.polls == 0:
            return "pending"
        return "finished" if self.polls >= self.polls_to_finish else "started"

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def as_json(self) -> dict[str, Any]:
        total = len(self.outcomes)
        if self.finished:
            done = total
        elif self.status == "started":
            done = total // 2
        else:
            done = 0
        errored = sum(o.status_code >= 400 for o in self.outcomes[:done])
        found: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "total_operations": total,
            "finished_operations": done,
            "errored_operations": errored,
            "submitted_at": utc_iso(self.submitted_at),
            "response_body_url": self.response_body_url,  # "" until finished
            "_links": [],
        }
        if self.completed_at is not None:
            found["completed_at"] = utc_iso(self.completed_at)
        return found


def results_archive(
    batch_id: str, outcomes: list[OperationOutcome], per_file: int = RESULTS_PER_FILE
) -> bytes:
    """The gzipped tar Mailchimp publishes: a folder entry and JSON files of at most `per_file` results."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        folder = tarfile.TarInfo(batch_id)
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for number, start in enumerate(range(0, len(outcomes), per_file)):
            payload = json.dumps([o.archive_entry() for o in outcomes[start : start + per_file]]).encode()
            info = tarfile.TarInfo(f"{batch_id}/{number}.json")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class BatchBook:
    """Every batch of one fake account. Not thread-safe by itself: the server holds its lock."""

    def __init__(
        self,
        *,
        max_pending: int = MAX_PENDING_BATCHES,
        polls_to_finish: int = DEFAULT_POLLS_TO_FINISH,
        results_per_file: int = RESULTS_PER_FILE,
    ) -> None:
        if polls_to_finish < 1:
            raise ValueError("a batch needs at least one status read to finish")
        self.max_pending = max_pending
        self.polls_to_finish = polls_to_finish  # for batches submitted from now on
        self.results_per_file = results_per_file
        self.batches: dict[str, Batch] = {}

    def pending(self) -> int:
        return sum(not b.finished for b in self.batches.values())

    def check_capacity(self) -> None:
        if self.pending() >= self.max_pending:
            raise Problem(
                429,
                "Too Many Requests",
                f"You have reached the maximum of {self.max_pending} pending batch requests.",
            )

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:10]

    def add(self, batch_id: str, outcomes: list[OperationOutcome], now: float) -> Batch:
        batch = Batch(batch_id, now, outcomes, self.polls_to_finish)
        self.batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return batch

    def poll(self, batch_id: str, now: float, publish: Callable[[str, bytes], str]) -> Batch:
        """A status read: moves the batch one step on; the step to `finished` publishes the results."""
        batch = self.get(batch_id)
        if batch.finished:
            return batch
        batch.polls += 1
        if batch.finished:
            batch.completed_at = now
            batch.archive_name = f"{batch.id}.tar.gz"
            payload = results_archive(batch.id, batch.outcomes, self.results_per_file)
            batch.response_body_url = publish(batch.archive_name, payload)
        return batch

    def delete(self, batch_id: str) -> Batch:
        return self.batches.pop(self.get(batch_id).id)
