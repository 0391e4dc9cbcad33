"""Right to erasure through the template's wiring: after the run, no store holds the person any more.

Every DynamoDB item, every version of every S3 object (Parquet and gzip decoded), both fake destinations'
state and everything the functions logged are searched for the person's email (as given, lower-cased and as
the unsalted SHA-256 the identity keys use), phone and customer id.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from segflow.store.parquet import read_parquet_bytes

EMAIL = "Erase.Me@Example.org"
PHONE_E164 = "+447700900123"
CUSTOMER_ID = "C7001"
CUSTOMERS = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date\n"
    f"{CUSTOMER_ID},{EMAIL},Erin,Mayfield,+44 7700 900123,GB,London,SW1A 1AA,1985-04-02,2026-02-01\n"
    "C7002,keep.me@example.org,Kim,Keeper,,GB,Leeds,LS1 1AA,,2026-03-01\n"
    "C7003,,Nomail,Person,,GB,York,YO1 7HH,,not-a-date\n"
)
ORDERS = (
    "order_id,customer_id,email,order_date,total,currency,status\n"
    f"O1,{CUSTOMER_ID},,2026-09-01,50.00,GBP,completed\n"
    "O2,C7002,,2026-09-02,20.00,GBP,completed\n"
    f"O3,,{EMAIL.lower()},not-a-date,10.00,GBP,completed\n"
)
CONSENT = (
    "email,customer_id,channel,status,timestamp,source,lawful_basis,double_opt_in_confirmed,region\n"
    f"{EMAIL},,email,opted_in,2026-02-01T10:00:00Z,signup_form,consent,true,UK\n"
    "keep.me@example.org,,email,opted_in,2026-03-01T10:00:00Z,signup_form,consent,true,UK\n"
)


def write_drop(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def needles(ours: bool = True) -> list[str]:
    """The person's values; in our own stores also the unsalted SHA-256 of the email (identity keys use it,
    and it is reversible by guessing). Destinations keep such a hash on purpose, to refuse a re-import."""
    normalised = EMAIL.lower()
    values = [EMAIL, normalised, PHONE_E164, "7700 900123", CUSTOMER_ID]
    return values + [hashlib.sha256(normalised.encode()).hexdigest()] if ours else values


def object_texts(runtime: Any) -> dict[str, str]:
    """Every version of every object in the data bucket, decoded to text."""
    s3 = runtime.s3()
    texts = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=runtime.bucket):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=runtime.bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            if body[:4] == b"PAR1":
                text = read_parquet_bytes(body).to_csv(index=False)
            else:
                text = body.decode("utf-8", errors="replace")
            texts[f"{version['Key']}@{version['VersionId']}"] = text
    return texts


def table_texts(table_name: str) -> list[str]:
    table = boto3.resource("dynamodb").Table(table_name)
    found, kwargs = [], {}
    while True:
        page = table.scan(**kwargs)
        found += [json.dumps(item, default=str) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def search(haystacks: dict[str, str]) -> list[tuple[str, str]]:
    return [(where, needle) for where, text in haystacks.items()
            for needle in needles(ours=where not in ("mailchimp", "hubspot")) if needle.lower() in text.lower()]


def consent_failures(runtime: Any) -> list[str]:
    return [i.error for i in runtime.router.invocations
            if i.function in ("IngestFunction", "ConsentFunction", "ErasureFunction") and i.error]


def put_event(runtime: Any, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    events = boto3.client("events")
    answer = events.put_events(Entries=[{"EventBusName": runtime.deployment.physical["EventBus"], "Source": source,
                                         "DetailType": detail_type, "Detail": json.dumps(detail)}])
    assert not answer["FailedEntryCount"]


@pytest.mark.parametrize("how", ["event", "drop"])
def test_an_erased_person_is_nowhere_afterwards(runtime, capture, tmp_path, capfd, how):
    runtime.upload_folder(write_drop(tmp_path / "d1", {"customers.csv": CUSTOMERS, "orders.csv": ORDERS,
                                                       "consent.csv": CONSENT}))
    runtime.settle()
    assert not consent_failures(runtime)
    member_hash = runtime.mailchimp.add_member(EMAIL.lower(), "subscribed")
    runtime.hubspot.add_contact(EMAIL.lower(), {"firstname": "Erin"})
    runtime.mailchimp.add_member("keep.me@example.org", "subscribed")
    before = search(object_texts(runtime))
    assert any(key.startswith("clean/customers/") for key, _ in before)  # the search does find the person

    if how == "event":
        put_event(runtime, "segflow.support", "ErasureRequested",
                  {"email": EMAIL, "requested_at": "2026-10-30T12:00:00Z"})
    else:
        runtime.upload_folder(write_drop(tmp_path / "d2", {"erasure.csv": f"email,requested_at\n{EMAIL},2026-10-30T12:00:00Z\n"}))
    runtime.settle()
    assert not consent_failures(runtime)

    completed = [e for e in capture.drain() if e["detail-type"] == "ErasureCompleted"]
    assert len(completed) == 1
    counts = completed[0]["detail"]["counts"]
    assert counts["tombstones"] >= 2 and counts["mailchimp"] == 1 and counts["hubspot"] == 1
    assert counts["clean_rows"] >= 3 and counts["profile_items"] >= 3 and counts["identity_items"] >= 2
    assert counts["raw_objects"] >= 3
    report = json.loads(runtime.s3().get_object(Bucket=runtime.bucket, Key=completed[0]["detail"]["report_key"])["Body"].read())
    assert report["complete"] and report["skipped_destinations"] == []

    haystacks = {**object_texts(runtime), **{f"dynamodb:{i}": t for i, t in enumerate(table_texts(runtime.table_name))}}
    idempotency = runtime.deployment.physical["IdempotencyTable"]
    haystacks.update({f"idempotency:{i}": t for i, t in enumerate(table_texts(idempotency))})
    haystacks["mailchimp"] = json.dumps(runtime.mailchimp.state(), default=str)
    haystacks["hubspot"] = json.dumps(runtime.hubspot.state(), default=str)
    logs = capfd.readouterr()
    haystacks["logs"] = logs.out + logs.err
    found = search(haystacks)
    assert found == [], "\n".join(f"{where}: {needle}" for where, needle in found)

    # What may remain: hashes that block a return, and everyone else.
    assert runtime.mailchimp.is_forgotten(EMAIL.lower()) and runtime.hubspot.is_blocklisted(EMAIL.lower())
    assert runtime.mailchimp.member("keep.me@example.org") is not None
    assert "CUST#C7002" in " ".join(haystacks.values())
    assert member_hash not in haystacks["mailchimp"] or runtime.mailchimp.is_forgotten(EMAIL.lower())

    # A redelivered request finds nothing left and announces nothing new.
    put_event(runtime, "segflow.support", "ErasureRequested", {"email": EMAIL, "requested_at": "2026-10-30T12:00:00Z"})
    runtime.settle()
    assert not consent_failures(runtime)
    again = [e["id"] for e in capture.drain() if e["detail-type"] == "ErasureCompleted"]
    assert again == [completed[0]["id"]]  # drain() returns everything captured so far
