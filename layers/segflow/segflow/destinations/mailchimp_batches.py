"""Mailchimp batch operations (POST /batches): submit, poll with backoff, read the results archive.

A batch carries many calls in ONE request against Mailchimp's limits. It runs asynchronously (pending ->
started -> finished); its results are a gzipped tar of JSON files, each an array of `{status_code,
operation_id, response}` with `response` the operation's JSON body as a string. The archive sits at
`response_body_url`, a pre-signed S3 link on another host: it is fetched WITHOUT the API key (the key would
leak, and S3 refuses a second auth mechanism anyway) and never logged (the signature is a credential).

A batch that does not finish within the polling budget, or whose results cannot be read, raises
BatchNotCompleted (a RetriesExhausted): the work is retried as a whole on redelivery. Sleep and clock are
injected so tests never really wait.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from segflow.destinations.errors import DestinationError, RetriesExhausted
from segflow.chunking import chunks
from segflow.destinations.http import ApiSession, Timeouts
from segflow.destinations.ratelimit import Clock, Sleep
from segflow.observability import logger

BATCHES = "/batches"
BATCH = "/batches/{batch_id}"
# segflow's own cap per batch (Mailchimp documents none): one work item's contacts, small archives, short waits
MAX_OPERATIONS = 500
DOWNLOAD_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BatchOperation:
    """One call inside a batch. `path` is relative to /3.0 and already URL-quoted; `body` is sent as a JSON string."""

    method: str
    path: str
    operation_id: str
    body: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"method": self.method, "path": self.path, "operation_id": self.operation_id}
        if self.body is not None:
            item["body"] = json.dumps(self.body)
        if self.params:
            item["params"] = dict(self.params)
        return item


@dataclass(frozen=True)
class OperationResult:
    operation_id: str
    status_code: int | None  # None: the results archive did not report this operation
    response: Any = None  # the operation's parsed JSON body (None when empty)


@dataclass(frozen=True)
class BatchPolling:
    """Status reads after a submit: first after `first_delay_s`, then `factor` times longer each, capped."""

    first_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 15.0
    budget_s: float = 120.0  # from submit to finished; the sync Lambda has 300 s in all

    def delays(self) -> Iterator[float]:
        delay = self.first_delay_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_delay_s)


DEFAULT_POLLING = BatchPolling()


class BatchNotCompleted(RetriesExhausted):
    """The batch did not finish in time, or its results could not be read: retry the work later."""


def read_results_archive(payload: bytes) -> dict[str, OperationResult]:
    """{operation_id: result} from a results archive (every JSON file in it); ValueError when unreadable."""
    results: dict[str, OperationResult] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                handle = archive.extractfile(member)
                entries = json.load(handle) if handle is not None else []
                for entry in entries if isinstance(entries, list) else [entries]:
                    result = _result_of(entry)
                    results[result.operation_id] = result
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"unreadable batch results archive ({type(exc).__name__})") from exc
    return results


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An explicit "no auth": stops requests from taking credentials for the host from ~/.netrc."""
    return request


def _result_of(entry: Mapping[str, Any]) -> OperationResult:
    response = entry.get("response")
    if isinstance(response, str):  # Mailchimp sends the body as a JSON string
        try:
            response = json.loads(response) if response.strip() else None
        except ValueError:
            pass  # keep the raw text
    return OperationResult(str(entry["operation_id"]), int(entry["status_code"]), response)


class BatchRunner:
    """Runs operations as Mailchimp batches through an ApiSession (auth, retries, limits, statistics)."""

    def __init__(
        self,
        http: ApiSession,
        *,
        polling: BatchPolling = DEFAULT_POLLING,
        timeouts: Timeouts,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        downloads: requests.Session | None = None,
    ) -> None:
        self.http = http
        self.polling = polling
        self.timeouts = timeouts
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        # a session of its own: the API session would attach the API key to the S3 request
        self.downloads = downloads or requests.Session()

    def close(self) -> None:
        self.downloads.close()

    def run(self, operations: Sequence[BatchOperation]) -> list[OperationResult]:
        """Results in the order of `operations`; unreported operations get status_code None."""
        ids = [op.operation_id for op in operations]
        if len(set(ids)) != len(ids):
            raise ValueError("operation ids must be unique: results are matched by them")
        deadline = self._clock() + self.polling.budget_s
        batch_ids = [self.submit(chunk) for chunk in chunks(list(operations), MAX_OPERATIONS)]
        found: dict[str, OperationResult] = {}
        for index, batch_id in enumerate(batch_ids):
            try:
                finished = self.wait(batch_id, deadline)
            except BatchNotCompleted:
                for later in batch_ids[index + 1 :]:  # out of time for them too
                    self._abandon(later)
                raise
            found.update(self.results(finished))
        return [found.get(op_id) or OperationResult(op_id, None) for op_id in ids]

    def submit(self, operations: Sequence[BatchOperation]) -> str:
        answer = self.http.request(
            "POST", BATCHES, json={"operations": [op.as_json() for op in operations]}
        ).json()
        logger.info(
            "mailchimp batch submitted", extra={"batch_id": answer.get("id"), "operations": len(operations)}
        )
        return str(answer["id"])

    def wait(self, batch_id: str, deadline: float) -> dict[str, Any]:
        """Poll until finished; past the deadline the batch is deleted (best effort) and BatchNotCompleted raised."""
        for polls, delay in enumerate(self.polling.delays()):
            if self._clock() + delay > deadline:
                self._abandon(batch_id)
                raise BatchNotCompleted(
                    "mailchimp",
                    f"GET {BATCH}",
                    f"batch not finished within {self.polling.budget_s:g} s ({polls} status reads)",
                    attempts=polls,
                )
            self._sleep(delay)
            batch = self.http.request("GET", BATCH, path_params={"batch_id": batch_id}).json()
            if batch.get("status") == "finished":
                logger.info(
                    "mailchimp batch finished",
                    extra={
                        "batch_id": batch_id,
                        "status_reads": polls + 1,
                        "operations": batch.get("total_operations"),
                        "errored_operations": batch.get("errored_operations"),
                    },
                )
                return batch
        raise AssertionError("unreachable: delays() never ends")

    def _abandon(self, batch_id: str) -> None:
        """Stop a late batch so it cannot overwrite newer data after the retry; the retry redoes its work."""
        try:
            self.http.request("DELETE", BATCH, path_params={"batch_id": batch_id}, accept=(404,))
        except DestinationError as exc:
            logger.warning(
                "mailchimp batch could not be deleted", extra={"batch_id": batch_id, "status": exc.status}
            )

    def results(self, batch: Mapping[str, Any]) -> dict[str, OperationResult]:
        url = str(batch.get("response_body_url") or "")
        if not url:
            if not batch.get("total_operations"):
                return {}
            raise BatchNotCompleted("mailchimp", "GET results archive", "finished batch has no results URL")
        try:
            return read_results_archive(self._download(url))
        except ValueError as exc:
            raise BatchNotCompleted("mailchimp", "GET results archive", str(exc)) from exc

    def _download(self, url: str) -> bytes:
        """GET the archive without credentials, retrying throttling, 5xx and connection errors."""
        host = urlsplit(url).netloc  # logged instead of the URL: its query is a signature
        policy = self.http.policy
        for attempt in range(1, policy.max_attempts + 1):
            self.http.stats.add(calls=1)
            status: int | None = None
            try:
                response = self.downloads.get(url, timeout=self.timeouts.as_tuple(), auth=_no_credentials)
                status = response.status_code
                if status == 200:
                    return response.content
            except (requests.ConnectionError, requests.Timeout):
                pass
            self.http.stats.add(errors=1)
            if status is not None and status not in DOWNLOAD_RETRY_STATUSES:
                break
            if attempt < policy.max_attempts:
                self.http.stats.add(retries=1)
                self._sleep(policy.backoff(attempt, self._rng))
        logger.warning("mailchimp batch results not downloaded", extra={"host": host, "status": status})
        raise BatchNotCompleted(
            "mailchimp",
            "GET results archive",
            "results archive not downloaded",
            status=status,
            attempts=attempt,
        )
