"""Batch operations in the fake Mailchimp: the same member rules as direct calls, validated operation shapes,
one request against the connection limit, count-based progress, results archive on a credential-free host."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from segflow_local.fakes import FakeMailchimp
from segflow_local.fakes.mailchimp import BATCH_OPERATION_HEADER, is_batch_operation

PUT_MEMBER = "PUT /3.0/lists/{list_id}/members/{subscriber_hash}"


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's subscriber hash


class Client:
    def __init__(self, fake: FakeMailchimp) -> None:
        self.fake = fake
        self.session = requests.Session()
        self.session.auth = ("segflow", fake.api_key)

    def put_op(self, email: str, op_id: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"email_address": email, "status_if_new": "subscribed", **fields}
        return {
            "method": "PUT",
            "path": f"/lists/{self.fake.default_list_id}/members/{md5(email)}",
            "operation_id": op_id or md5(email),
            "body": json.dumps(body),
        }

    def submit(self, operations: list[dict[str, Any]]) -> requests.Response:
        return self.session.post(f"{self.fake.base_url}/batches", json={"operations": operations})

    def status(self, batch_id: str) -> requests.Response:
        return self.session.get(f"{self.fake.base_url}/batches/{batch_id}")

    def finish(self, batch_id: str) -> dict[str, Any]:
        for _ in range(self.fake.batch_polls_to_finish):
            batch = self.status(batch_id).json()
        return batch

    def results(self, operations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Submit, read the status until finished, download (no credentials) and read the archive."""
        batch = self.finish(self.submit(operations).json()["id"])
        download = requests.get(batch["response_body_url"], timeout=10)
        assert download.status_code == 200
        found = {}
        with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as archive:
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    for entry in json.load(handle):
                        assert isinstance(entry["response"], str)  # the body as a JSON string, like Mailchimp
                        found[entry["operation_id"]] = {
                            "status_code": entry["status_code"],
                            "response": json.loads(entry["response"]) if entry["response"] else None,
                        }
        return found


@pytest.fixture
def fake() -> Iterator[FakeMailchimp]:
    with FakeMailchimp(batch_results_per_file=2) as started:
        yield started


@pytest.fixture
def client(fake: FakeMailchimp) -> Iterator[Client]:
    wrapper = Client(fake)
    yield wrapper
    wrapper.session.close()


# ---- progress and results --------------------------------------------------------------------------------


def test_status_moves_pending_started_finished_over_status_reads(fake: FakeMailchimp, client: Client) -> None:
    submitted = client.submit([client.put_op(f"u{i}@example.com") for i in range(4)]).json()
    assert (submitted["status"], submitted["finished_operations"], submitted["response_body_url"]) == (
        "pending",
        0,
        "",
    )
    listed = client.session.get(f"{fake.base_url}/batches").json()
    assert [b["status"] for b in listed["batches"]] == ["pending"]  # listing does not move a batch on
    first = client.status(submitted["id"]).json()
    assert first["status"] == "started" and first["response_body_url"] == ""
    second = client.status(submitted["id"]).json()
    assert second["status"] == "finished" and second["finished_operations"] == second["total_operations"] == 4
    assert second["response_body_url"].startswith(fake.archives.origin) and "completed_at" in second
    assert client.status(submitted["id"]).json()["status"] == "finished"


def test_progress_needs_the_configured_number_of_status_reads(fake: FakeMailchimp, client: Client) -> None:
    fake.batch_polls_to_finish = 4
    batch_id = client.submit([client.put_op("a@example.com")]).json()["id"]
    assert [client.status(batch_id).json()["status"] for _ in range(4)] == ["started"] * 3 + ["finished"]
    with pytest.raises(ValueError):
        fake.batch_polls_to_finish = 0


def test_operations_follow_the_member_rules_of_direct_calls(fake: FakeMailchimp, client: Client) -> None:
    fake.add_member("gone@example.com", "unsubscribed")
    fake.add_member("bounced@example.com", "cleaned")
    fake.add_member("erased@example.com")
    fake.forget_member("erased@example.com")
    operations = [
        client.put_op("new@example.com", merge_fields={"FNAME": "New"}),
        client.put_op("gone@example.com", merge_fields={"FNAME": "Kept"}),  # no status: fields only
        client.put_op("bounced@example.com", "resubscribe", status="subscribed"),
        client.put_op("erased@example.com"),
        {
            **client.put_op("other@example.com"),
            "path": f"/lists/{fake.default_list_id}/members/{md5('x@y.z')}",
        },
        client.put_op("badfield@example.com", merge_fields={"NOPE": "1"}),
    ]
    found = client.results(operations)

    assert found[md5("new@example.com")]["status_code"] == 200
    assert fake.member("new@example.com")["status"] == "subscribed"
    assert found[md5("gone@example.com")]["response"]["status"] == "unsubscribed"
    assert fake.member("gone@example.com")["merge_fields"]["FNAME"] == "Kept"
    assert fake.member("gone@example.com")["status"] == "unsubscribed"  # a PUT without status keeps it
    refused = found["resubscribe"]
    assert refused["status_code"] == 400 and refused["response"]["title"] == "Member In Compliance State"
    assert fake.member("bounced@example.com")["status"] == "cleaned"
    assert found[md5("erased@example.com")]["response"]["title"] == "Forgotten Email Not Subscribed"
    assert fake.member("erased@example.com") is None
    assert found[md5("other@example.com")]["status_code"] == 400  # hash and email disagree
    assert found[md5("badfield@example.com")]["response"]["errors"][0]["field"] == "NOPE"


def test_operation_level_errors_come_back_in_the_results(fake: FakeMailchimp, client: Client) -> None:
    operations = [
        {**client.put_op("a@example.com", "bad-json"), "body": "{not json"},
        {"method": "GET", "path": "/no/such/route", "operation_id": "unknown"},
        {"method": "DELETE", "path": "/ping", "operation_id": "method"},
        {
            "method": "POST",
            "path": "/batches",
            "operation_id": "nested",
            "body": json.dumps({"operations": []}),
        },
        {
            **client.put_op("b@example.com", "missing-field"),
            "body": json.dumps({"email_address": "b@example.com"}),
        },
        {
            "method": "GET",
            "path": f"/lists/{fake.default_list_id}/members",
            "params": {"count": 1},
            "operation_id": "read",
        },
    ]
    found = client.results(operations)
    assert {k: v["status_code"] for k, v in found.items()} == {
        "bad-json": 400,
        "unknown": 404,
        "method": 405,
        "nested": 400,
        "missing-field": 400,
        "read": 200,
    }
    assert found["bad-json"]["response"]["title"] == "JSON Parse Exception"
    assert found["missing-field"]["response"]["errors"][0]["field"] == "status_if_new"
    assert found["read"]["response"]["total_items"] == 0
    batch = client.session.get(f"{fake.base_url}/batches").json()["batches"][0]
    assert batch["errored_operations"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"operations": []}, "operations"),
        ({"operations": [{"method": "PUT"}]}, "operations.0.path"),
        ({"operations": [{"method": "FETCH", "path": "/ping"}]}, "operations.0.method"),
        (
            {"operations": [{"method": "GET", "path": "https://us6.api.mailchimp.com/3.0/ping"}]},
            "operations.0.path",
        ),
        ({"operations": [{"method": "GET", "path": "//evil.example/ping"}]}, "operations.0.path"),
        ({"operations": [{"method": "PUT", "path": "/ping", "body": {"a": 1}}]}, "operations.0.body"),
        ({"operations": [{"method": "GET", "path": "/ping", "tags": ["x"]}]}, "operations.0.tags"),
        ({"operations": [{"method": "GET", "path": "/ping"}], "webhook": "x"}, "webhook"),
    ],
)
def test_malformed_operations_refuse_the_whole_batch(
    fake: FakeMailchimp, client: Client, body: dict[str, Any], field: str
) -> None:
    reply = client.session.post(f"{fake.base_url}/batches", json=body)
    assert reply.status_code == 400 and reply.headers["Content-Type"].startswith("application/problem+json")
    assert field in [e["field"] for e in reply.json()["errors"]]
    assert fake.batches.batches == {} and fake.stats()["batch_operations"] == {}


# ---- limits ------------------------------------------------------------------------------------------------


def test_a_batch_is_one_request_against_the_connection_limit(fake: FakeMailchimp, client: Client) -> None:
    auth = ("segflow", fake.api_key)
    statuses: list[int] = []
    operations = [client.put_op(f"u{i}@example.com") for i in range(50)]

    def ping() -> None:
        statuses.append(requests.get(f"{fake.base_url}/ping", auth=auth, timeout=10).status_code)

    def batch() -> None:
        statuses.append(
            requests.post(
                f"{fake.base_url}/batches", json={"operations": operations}, auth=auth, timeout=10
            ).status_code
        )

    with fake.holding_requests():
        workers = [threading.Thread(target=ping) for _ in range(9)] + [threading.Thread(target=batch)]
        for worker in workers:
            worker.start()
        assert fake.wait_for_held(10), "nine pings and one batch should be in flight"
        eleventh = requests.get(f"{fake.base_url}/ping", auth=auth, timeout=10)
    for worker in workers:
        worker.join(timeout=10)
    assert eleventh.status_code == 429
    assert sorted(statuses) == [200] * 10
    stats = fake.stats()
    assert stats["requests"]["POST /3.0/batches"] == 1 and stats["batch_operations"] == {PUT_MEMBER: 50}
    assert len(fake.state()["lists"][fake.default_list_id]["members"]) == 50


def test_at_most_the_configured_number_of_batches_may_be_pending() -> None:
    with FakeMailchimp(max_pending_batches=2) as fake:
        client = Client(fake)
        first = client.submit([client.put_op("a@example.com")]).json()["id"]
        assert client.submit([client.put_op("b@example.com")]).status_code == 200
        refused = client.submit([client.put_op("c@example.com")])
        assert refused.status_code == 429 and "pending" in refused.json()["detail"]
        assert fake.member("c@example.com") is None  # nothing of a refused batch runs
        client.finish(first)
        assert client.submit([client.put_op("c@example.com")]).status_code == 200


# ---- results archive ------------------------------------------------------------------------------------------


def test_the_archive_is_served_only_without_credentials_and_with_its_signature(
    fake: FakeMailchimp, client: Client
) -> None:
    batch = client.finish(client.submit([client.put_op(f"u{i}@example.com") for i in range(5)]).json()["id"])
    url = batch["response_body_url"]
    assert (
        requests.get(url, auth=("segflow", fake.api_key), timeout=10).status_code == 400
    )  # two auth mechanisms
    assert requests.get(url.replace("Signature=", "Signature=0"), timeout=10).status_code == 403
    download = requests.get(url, timeout=10)
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as archive:
        files = [m.name for m in archive if m.isfile()]
    assert len(files) == 3  # five results, at most two per file
    assert [(d.status, d.sent_authorization) for d in fake.archives.downloads()] == [
        (400, True),
        (403, False),
        (200, False),
    ]
    assert fake.stats()["archive_downloads"] == 3


def test_a_deleted_batch_and_its_results_are_gone(fake: FakeMailchimp, client: Client) -> None:
    batch = client.finish(client.submit([client.put_op("a@example.com")]).json()["id"])
    assert client.session.delete(f"{fake.base_url}/batches/{batch['id']}").status_code == 204
    assert client.status(batch["id"]).status_code == 404
    assert requests.get(batch["response_body_url"], timeout=10).status_code == 404
    assert client.session.delete(f"{fake.base_url}/batches/{batch['id']}").status_code == 404


# ---- observation ---------------------------------------------------------------------------------------------


def test_operations_are_recorded_as_marked_exchanges_and_counted_apart(
    fake: FakeMailchimp, client: Client
) -> None:
    client.submit([client.put_op("a@example.com"), client.put_op("b@example.com")])
    inner = [e for e in fake.exchanges if is_batch_operation(e)]
    outer = [e for e in fake.exchanges if not is_batch_operation(e)]
    assert [(e.method, e.status) for e in outer] == [("POST", 200)]
    assert [(e.method, e.body["email_address"], e.status) for e in inner] == [
        ("PUT", "a@example.com", 200),
        ("PUT", "b@example.com", 200),
    ]
    assert all(e.headers["Authorization"] == "Basic <redacted>" for e in inner)
    assert all(fake.api_key not in json.dumps(e.headers) for e in fake.exchanges)
    assert inner[0].headers[BATCH_OPERATION_HEADER].endswith("/0")
    stats = fake.stats()
    assert stats["total_requests"] == 1 and stats["batch_operations"] == {PUT_MEMBER: 2}
    fake.reset_observations()
    assert fake.exchanges == [] and fake.stats()["batch_operations"] == {}
