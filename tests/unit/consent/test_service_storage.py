"""The consent and erasure storage pieces: Parquet row removal (fastparquet), JSON pruning, the person matcher, and the
DynamoDB / S3 adapters (against moto in-process)."""
from __future__ import annotations

from datetime import datetime, timezone

import boto3
import fastparquet
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from segflow.consent.erasure import ItemKey, RowMatch, Tombstone, tombstone
from segflow.consent.erasure_adapters import (
    DestinationErasers,
    FileEraser,
    ObjectEraser,
    PersonMatcher,
    S3VersionPurger,
    TableItemDeleter,
    prune_json,
    remove_mentions,
)
from segflow.consent.models import ConsentRecord
from segflow.consent.store import DynamoLedger, DynamoTombstones, ErasureGate, ledger_pk_for_email
from segflow.store.objects import S3ObjectStore
from segflow.store.parquet import read_parquet_bytes, to_parquet_bytes
from segflow.store.parquet_rows import read_rows, remove_rows

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
SALT = "a-test-salt-of-sufficient-length"


def frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "customer_id": [f"C{i}" if i % 7 else None for i in range(rows)],
        "email": [f"p{i}@example.com" for i in range(rows)],
        "total": rng.normal(50, 10, rows).round(2),
        "quantity": rng.integers(1, 5, rows),
        "flag": [bool(i % 2) for i in range(rows)],
        "maybe": [float(i) if i % 3 else np.nan for i in range(rows)],
        "at": pd.to_datetime("2026-01-01T00:00:00Z") + pd.to_timedelta(np.arange(rows), unit="h"),
        "text": ["é ünïcode " * (i % 4) for i in range(rows)],
    })


def test_rows_read_back_as_plain_python_values():
    data = to_parquet_bytes(frame())
    rows = read_rows(data)
    expected = read_parquet_bytes(data)
    assert len(rows) == len(expected)
    assert rows[1]["at"] == datetime(2026, 1, 1, 1, tzinfo=timezone.utc)
    assert rows[0]["customer_id"] is None and rows[0]["maybe"] is None  # missing values are None
    assert rows[1]["quantity"] == expected["quantity"][1] and isinstance(rows[1]["quantity"], int)


def test_removing_rows_keeps_every_other_row_and_dtype():
    original = frame()
    data = to_parquet_bytes(original)
    drop = {"C3", "C10", "C299"}
    body, removed = remove_rows(data, lambda r: r["customer_id"] in drop, ["customer_id"])
    assert removed == 3
    expected = original[~original["customer_id"].isin(drop)].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_parquet_bytes(body), read_parquet_bytes(to_parquet_bytes(expected)))
    assert remove_rows(data, lambda r: False) == (data, 0)
    assert remove_rows(data, lambda r: True) == (None, len(original))


def test_statistics_that_could_name_a_removed_value_are_dropped(tmp_path):
    path = tmp_path / "stats.parquet"
    fastparquet.write(str(path), pd.DataFrame({"email": ["a@x.org", "z@x.org"]}), stats=True)
    body, _ = remove_rows(path.read_bytes(), lambda r: r["email"] == "z@x.org")
    assert b"z@x.org" not in body and read_parquet_bytes(body)["email"].tolist() == ["a@x.org"]


def test_the_default_match_sees_every_text_column():
    data = to_parquet_bytes(frame(20))
    body, removed = remove_rows(data, lambda r: r.get("email") == "p5@example.com")
    assert removed == 1 and "p5@example.com" not in read_parquet_bytes(body)["email"].tolist()


def test_the_matcher_finds_ids_emails_and_phones_in_any_shape():
    matcher = PersonMatcher(RowMatch(customer_ids=("C1",), emails=("ann@example.com",), phones=("+4915112345678",)))
    assert matcher.mentions({"record": {"email": " ANN@example.com "}})
    assert matcher.mentions({"field": "phone", "value": "01511 2345678"})  # the national form
    assert matcher.mentions(["x", {"merged_into": "C1"}])
    assert not matcher.mentions({"customer_id": "C10", "email": "bob@example.com", "postal_code": "10115"})
    assert not matcher.mentions({"value": "2026-02-30"})
    doc = {"version": 1, "segments": [{"name": "vip", "members": ["C1", "C2"]}, {"name": "x", "members": []}],
           "C1": {"size": 3}}
    pruned, removed = prune_json(doc, matcher)
    assert pruned == {"version": 1, "segments": [{"name": "vip", "members": ["C2"]}, {"name": "x", "members": []}]}
    assert removed == 2
    lines = b'{"email": "ann@example.com"}\n{"email": "bob@example.com"}\nnot json ann@example.com\n'
    body, removed, _ = remove_mentions("q.jsonl", lines, matcher)
    assert removed == 2 and body == b'{"email": "bob@example.com"}\n'


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        table = dynamodb.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="consent-test")
        s3.put_bucket_versioning(Bucket="consent-test", VersioningConfiguration={"Status": "Enabled"})
        yield table, s3


def test_dynamo_ledger_tombstones_and_item_deletes(aws):
    table, _ = aws
    ledger, stones = DynamoLedger(table), DynamoTombstones(table)
    record = ConsentRecord(email="ann@example.com", status="opted_in", timestamp=NOW, source="signup_form")
    pk = ledger_pk_for_email("ann@example.com")
    assert ledger.append([(pk, record), (pk, record)], NOW) == 2
    assert ledger.records([pk]) == {pk: [record]} and len(ledger.keys([pk])) == 2  # the record and the digest

    digest = tombstone("ann@example.com", SALT)
    stones.put_tombstones([Tombstone(digest=digest, kind="email", requested_at=NOW, request_id="r1")])
    gate = ErasureGate(stones, SALT)
    assert gate.erased(["Ann@Example.com", "bob@example.com"]) == {"Ann@Example.com"}
    assert stones.lift([digest], NOW) == 1 and not gate.is_erased("ann@example.com")
    assert stones.lift([digest], NOW) == 0

    deleter = TableItemDeleter(table)
    keys = [ItemKey(pk=pk, sk=k[1]) for k in ledger.keys([pk])] + [ItemKey(pk="CUST#none", sk="PROFILE")]
    assert deleter.delete_items(keys) == 2 and ledger.records([pk]) == {pk: []}  # record and digest


def test_rewrites_and_deletes_leave_no_earlier_version(aws):
    _, s3 = aws
    objects = S3ObjectStore(s3, "consent-test")
    versions = S3VersionPurger(s3, "consent-test")
    objects.put_bytes("quarantine/x.jsonl", b'{"email": "old@example.com"}\n')
    objects.put_bytes("quarantine/x.jsonl", b'{"email": "ann@example.com"}\n{"email": "bob@example.com"}\n')
    objects.put_bytes("raw/d1.csv", b"email\nann@example.com\n")
    match = RowMatch(emails=("ann@example.com",))
    assert FileEraser(objects, versions).rewrite_without("quarantine/x.jsonl", match) == 1
    assert ObjectEraser(versions).delete_objects(["raw/d1.csv", "raw/missing.csv"]) == 1
    listing = s3.list_object_versions(Bucket="consent-test")
    assert [v["Key"] for v in listing.get("Versions", [])] == ["quarantine/x.jsonl"]
    assert listing.get("DeleteMarkers", []) == []
    assert objects.get_bytes("quarantine/x.jsonl") == b'{"email": "bob@example.com"}\n'


def test_destinations_without_configuration_are_skipped_and_named():
    def missing(name):
        raise RuntimeError("An error occurred (ResourceNotFoundException) when calling GetSecretValue")

    erasers = DestinationErasers(read_secret=missing, mailchimp_secret="mc", hubspot_secret="", mailchimp_list_id=None)
    assert erasers() == {} and erasers.skipped == ["mailchimp: no audience configured", "hubspot: no secret configured"]
    erasers = DestinationErasers(read_secret=missing, mailchimp_secret="mc", hubspot_secret="hs", mailchimp_list_id="a")
    assert erasers() == {} and erasers.skipped == ["mailchimp: secret unset or empty", "hubspot: secret unset or empty"]
    built = DestinationErasers(read_secret=lambda n: {"mc": '{"api_key": "k-us6"}', "hs": '{"token": "pat"}'}[n],
                               mailchimp_secret="mc", hubspot_secret="hs", mailchimp_list_id="a")()
    assert set(built) == {"mailchimp", "hubspot"}

    def denied(name):
        raise RuntimeError("AccessDeniedException")

    with pytest.raises(RuntimeError, match="AccessDenied"):
        DestinationErasers(read_secret=denied, mailchimp_secret="mc", hubspot_secret=None, mailchimp_list_id="a")()


def test_the_digest_matches_the_append_only_trail_and_is_erased_with_it(aws):
    from segflow.consent.store import DIGEST_SK, DynamoLedger

    table, _ = aws
    ledger = DynamoLedger(table)
    pk = ledger_pk_for_email("a@example.com")
    first = ConsentRecord(email="a@example.com", status="opted_in", timestamp=NOW, source="signup form",
                          lawful_basis="consent")
    later = ConsentRecord(email="a@example.com", status="opted_out", timestamp=NOW.replace(day=2), source="import")
    ledger.append([(pk, later)], NOW)
    ledger.append([(pk, first), (pk, later)], NOW)  # a replay adds nothing
    assert [r.record_id for r in ledger.records([pk])[pk]] == [first.record_id, later.record_id]
    assert sorted(r.record_id for r in ledger.audit_trail(pk)) == sorted([first.record_id, later.record_id])
    assert (pk, DIGEST_SK) in ledger.keys([pk]) and len(ledger.keys([pk])) == 3
    assert ledger.records([ledger_pk_for_email("nobody@example.com")]) == {ledger_pk_for_email("nobody@example.com"): []}
