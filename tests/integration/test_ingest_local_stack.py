"""Ingest end to end through the template's own wiring: S3 -> notification -> SQS -> handler."""
from __future__ import annotations

import gzip
from pathlib import Path

import boto3

CUSTOMERS = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date,tier\n"
    "C1, Ann@Example.com ,Ann,Lee,(415) 555-0132,US,San Francisco,94103,1990-02-03,2024-01-05,gold\n"
    "C2,bob@example.com,Bob,Stone,+44 20 7946 0958,United Kingdom,London,SW1A 1AA,,2024-03-01,\n"
    "C3,ann@example.com,Annie,Lee,,US,San Francisco,94103,,2023-06-01,\n"
    "C4,not-an-email,Zoë,Müller,,DE,Berlin,10115,,2024-04-01,\n"
)
ORDERS = (
    "order_id,customer_id,email,order_date,total,currency,status\n"
    "O1,C1,,2026-10-01,120.50,USD,completed\n"
    "O2,C2,,2026-09-15,80.00,GBP,completed\n"
    "O3,,bob@example.com,2026-08-01,15.00,GBP,completed\n"
    "O4,C9,,2026-10-20,42.00,USD,completed\n"
    "O1,C1,,2026-10-01,120.50,USD,completed\n"
    "O5,C1,,not-a-date,10.00,USD,completed\n"
)
LATE_CUSTOMER = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date\n"
    "C9,nine@example.com,Nina,Ng,,US,Austin,73301,,2025-01-01,\n"
)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def accounting_by_dataset(runtime) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for drop in runtime.accounting()["drops"]:
        by.setdefault(drop["dataset"], []).append(drop)
    return by


def test_drop_is_cleaned_unified_and_fully_accounted_for(runtime, capture, tmp_path):
    drop = tmp_path / "drop1"
    write(drop, "customers.csv", CUSTOMERS)
    write(drop, "orders.csv", ORDERS)
    runtime.upload_folder(drop)
    runtime.settle()

    acc = accounting_by_dataset(runtime)
    customers, orders = acc["customers"][0], acc["orders"][0]
    for a in (customers, orders):
        assert a["rows_in"] == a["clean"] + a["merged"] + a["quarantined"] + a["pending"]
    assert customers["rows_in"] == 4 and customers["merged"] == 1 and customers["quarantined"] == 1
    assert orders["rows_in"] == 6
    assert orders["quarantined"] == 1  # O5: unparseable date
    assert orders["merged"] == 1  # O1 repeated
    # O4 names an unknown customer -> pending unless customers were ingested first (files race).
    assert orders["pending"] + orders["clean"] == 4

    profiles = {p["customer_id"]: p for p in runtime.profiles()}
    assert set(profiles) == {"C2", "C3"}  # C1 and C3 share an email: C3 signed up first
    ann = profiles["C3"]
    assert ann["email"] == "ann@example.com" and ann["alias_ids"] == ["C1"]
    assert profiles["C2"]["country"] == "GB" and profiles["C2"]["phone"] == "+442079460958"

    quarantine = runtime.quarantine()
    bad_email = quarantine["customers"][0]
    assert bad_email["row"] == 4 and bad_email["file"].endswith("customers.csv")
    assert any(r["field"] == "email" for r in bad_email["reasons"])

    events = [e for e in capture.drain() if e["detail-type"] == "DataIngested"]
    assert sorted(e["detail"]["dataset"] for e in events) == ["customers", "orders"]
    assert all(not inv.error for inv in runtime.router.invocations if inv.function == "IngestFunction")


def test_orders_for_unknown_customers_wait_and_attach_when_the_customer_arrives(runtime, tmp_path):
    write(tmp_path / "d1", "orders.csv", ORDERS)
    runtime.upload_folder(tmp_path / "d1")
    runtime.settle()
    first = accounting_by_dataset(runtime)["orders"][0]
    assert first["pending"] == 4  # no customer known yet: nothing lost, nothing guessed

    write(tmp_path / "d2", "customers.csv", CUSTOMERS + LATE_CUSTOMER.split("\n", 1)[1])
    runtime.upload_folder(tmp_path / "d2")
    runtime.settle()
    customers = accounting_by_dataset(runtime)["customers"][0]
    assert customers["attached"] == {"orders": 4}
    s3 = boto3.client("s3")
    pending = s3.list_objects_v2(Bucket=runtime.bucket, Prefix="pending/").get("KeyCount", 0)
    assert pending == 0


def test_same_object_delivered_twice_changes_nothing(runtime, tmp_path):
    write(tmp_path / "d1", "customers.csv", CUSTOMERS)
    runtime.upload_folder(tmp_path / "d1")
    runtime.settle()
    before_items = snapshot_table(runtime)
    before_objects = snapshot_bucket(runtime)

    # Replay the exact notification AWS would send again (at-least-once delivery).
    delivered = [e for f, e in runtime.router.delivered if f == "IngestFunction"]
    original = next(r["body"] for e in delivered for r in e["Records"] if "ObjectCreated" in r["body"])
    source = runtime.deployment.queue_sources[0]
    boto3.client("sqs").send_message(QueueUrl=source.queue_url, MessageBody=original)
    runtime.settle()
    assert len([f for f, _ in runtime.router.delivered if f == "IngestFunction"]) == len(delivered) + 1

    assert snapshot_table(runtime) == before_items
    assert snapshot_bucket(runtime) == before_objects


def test_unchanged_redrop_under_a_new_name_writes_no_profile(runtime, tmp_path):
    write(tmp_path / "d1", "customers.csv", CUSTOMERS)
    runtime.upload_folder(tmp_path / "d1")
    runtime.settle()
    write(tmp_path / "d2", "customers-again.csv", CUSTOMERS)
    runtime.upload_folder(tmp_path / "d2")
    runtime.settle()
    second = [d for d in runtime.accounting()["drops"] if "customers-again" in d["source_key"]][0]
    assert second["profiles_written"] == 0
    assert second["profiles_unchanged"] == 2


def test_an_unreadable_file_is_quarantined_whole_and_the_run_goes_on(runtime, tmp_path):
    drop = tmp_path / "d1"
    drop.mkdir()
    (drop / "orders.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-gzip" * 10)
    write(drop, "customers.csv", CUSTOMERS)
    runtime.upload_folder(drop)
    runtime.settle()
    drops = runtime.accounting()["drops"]
    broken = next(d for d in drops if d["dataset"] == "orders")
    assert broken["file_quarantined"] and broken["file_reason"]
    assert next(d for d in drops if d["dataset"] == "customers")["clean"] == 2
    reasons = runtime.quarantine()["orders"][0]["reasons"]
    assert reasons[0]["rule"].startswith("unreadable_file")


def test_url_encoded_keys_and_gzip_are_handled(runtime, tmp_path):
    drop = tmp_path / "d1"
    drop.mkdir()
    (drop / "customers export é 2026.csv.gz").write_bytes(gzip.compress(CUSTOMERS.encode("utf-8")))
    runtime.upload_folder(drop)
    runtime.settle()
    (customers,) = runtime.accounting()["drops"]
    assert customers["source_key"].endswith("customers export é 2026.csv.gz")
    assert customers["clean"] == 2


def snapshot_table(runtime) -> list[dict]:
    table = boto3.resource("dynamodb").Table(runtime.table_name)
    return sorted(table.scan()["Items"], key=lambda i: (i["pk"], i["sk"]))


def snapshot_bucket(runtime) -> dict[str, str]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=runtime.bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listing}


def test_run_exports_a_spreadsheet_safe_quarantine_and_a_report(tmp_path):
    import csv

    from segflow_local.cli import run_pipeline

    drop = tmp_path / "d1"
    write(drop, "customers.csv", CUSTOMERS + "C5,=HYPERLINK(\"http://x\"),Eve,Doe,,US,,,,2024-01-01,\n")
    out = tmp_path / "out"
    summary = run_pipeline([drop], out, None)
    assert summary["failed_invocations"] == 0
    with (out / "quarantine" / "customers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    formula = next(r for r in rows if "HYPERLINK" in (r.get("email") or ""))
    assert not formula["email"].startswith("=")
    assert (out / "report.html").read_text().count("<svg") > 0
    assert {"profiles.jsonl", "accounting.json", "report.html"} <= {p.name for p in out.iterdir()}
