"""The consent function through the template's wiring: ledger, evaluation, replays, unsubscribes, explain."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from segflow.store.profiles import from_dynamo
from segflow_local.explain import explain, render

CUSTOMERS = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date\n"
    "C1,ann@example.com,Ann,Lee,,DE,Berlin,10115,,2026-01-05\n"
    "C2,bob@example.com,Bob,Stone,,US,Austin,73301,,2026-05-01\n"
)
CONSENT = (
    "email,customer_id,channel,status,timestamp,source,lawful_basis,double_opt_in_confirmed,region\n"
    "ann@example.com,,email,opted_in,2026-01-10T09:00:00Z,signup_form,consent,true,\n"
    "late@example.com,,email,opted_in,2026-02-01T09:00:00Z,signup_form,consent,true,\n"
)
LATE_CUSTOMER = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date\n"
    "C3,late@example.com,Lia,Late,,GB,Leeds,LS1 1AA,,2026-06-01\n"
)


def drop(runtime: Any, folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    runtime.upload_folder(folder)
    runtime.settle()
    assert not [i.error for i in runtime.router.invocations
                if i.function in ("IngestFunction", "ConsentFunction") and i.error]


def items(runtime: Any, sk_prefix: str) -> dict[str, dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(runtime.table_name)
    found = [from_dynamo(i) for i in table.scan()["Items"] if i["sk"].startswith(sk_prefix)]
    return {f"{i['pk']}|{i['sk']}": i for i in found}


def consent_of(runtime: Any, customer_id: str) -> dict[str, Any]:
    return items(runtime, "CONSENT#email")[f"CUST#{customer_id}|CONSENT#email"]


def changed_batches(capture: Any) -> list[list[str]]:
    return [e["detail"]["changed"]["customer_ids"] for e in capture.drain()
            if e["detail-type"] == "ConsentChanged" and e["source"] == "segflow.consent"]


def put_event(runtime: Any, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    answer = boto3.client("events").put_events(Entries=[{
        "EventBusName": runtime.deployment.physical["EventBus"], "Source": source, "DetailType": detail_type,
        "Detail": json.dumps(detail)}])
    assert not answer["FailedEntryCount"]
    runtime.settle()
    assert not [i.error for i in runtime.router.invocations if i.function == "ConsentFunction" and i.error]


def test_consent_is_kept_evaluated_and_explained(runtime, capture, tmp_path):
    drop(runtime, tmp_path / "d1", {"customers.csv": CUSTOMERS, "consent.csv": CONSENT})
    ann, bob = consent_of(runtime, "C1"), consent_of(runtime, "C2")
    assert ann["eligible"] and ann["eligibility_basis"] == "explicit_opt_in" and ann["consent_region"] == "EU_EEA"
    assert bob["eligible"] and bob["eligibility_basis"] == "opt_out_model" and bob["consent_status"] == "unknown"
    assert {"C1", "C2"} <= {c for batch in changed_batches(capture) for c in batch}
    ledger = items(runtime, "LEDGER#")
    assert len(ledger) == 2 and all(k.startswith("CONSENT#") for k in ledger)  # keyed by the email's hash
    assert not any("@" in key for key in ledger)
    archived = [o["Key"] for o in runtime.s3().list_objects_v2(Bucket=runtime.bucket, Prefix="ledger/")["Contents"]]
    assert len(archived) == 1 and archived[0].startswith("ledger/2026/")

    # The same facts dropped again change nothing: no ledger entry, no item write, no announcement.
    before = {k: v["evaluated_at"] for k, v in items(runtime, "CONSENT#email").items()}
    announced = len(changed_batches(capture))
    drop(runtime, tmp_path / "d2", {"consent.csv": CONSENT})
    assert len(items(runtime, "LEDGER#")) == 2, json.dumps(list(items(runtime, "LEDGER#").values()), indent=1, default=str)
    assert {k: v["evaluated_at"] for k, v in items(runtime, "CONSENT#email").items()} == before
    assert len(changed_batches(capture)) == announced

    # Consent that arrived before its customer applies once the customer exists.
    drop(runtime, tmp_path / "d3", {"customers.csv": LATE_CUSTOMER})
    late = consent_of(runtime, "C3")
    assert late["eligible"] and late["consent_source"] == "signup_form" and late["consent_region"] == "UK"

    # An unsubscribe activity (customer id only) is an opt-out record from "activity:unsubscribe".
    put_event(runtime, "segflow.activity", "CustomerActivity", {
        "event_id": "ev-1", "customer_id": "C1", "event_type": "unsubscribe", "timestamp": "2026-10-20T08:00:00Z"})
    ann = consent_of(runtime, "C1")
    assert not ann["eligible"] and ann["ineligible_reasons"] == ["opted_out"]
    assert ann["consent_source"] == "activity:unsubscribe" and ann["consent_status"] == "opted_out"
    assert changed_batches(capture)[-1] == ["C1"]

    # An opt-out learned from a destination is sticky and suppresses; a later implied opt-in cannot undo it.
    put_event(runtime, "segflow.sync", "ConsentChanged", {"records": [
        {"email": "bob@example.com", "status": "opted_out", "timestamp": "2026-10-01T00:00:00Z",
         "source": "destination:mailchimp"},
        {"email": "bob@example.com", "status": "opted_in", "timestamp": "2026-10-05T00:00:00Z",
         "source": "checkout", "lawful_basis": "legitimate_interest"}]})
    bob = consent_of(runtime, "C2")
    assert bob["suppressed"] and bob["suppression_reason"] == "destination_unsubscribe"
    assert not bob["eligible"] and "destination_opt_out" in bob["ineligible_reasons"]

    report = explain(runtime, "Ann@Example.com")
    assert report["found"] and report["customer_id"] == "C1"
    assert [r["status"] for r in report["consent_history"]] == ["opted_in", "opted_out"]
    assert report["decision"]["allowed"] is False and report["decision"]["reasons"] == ["opted_out"]
    assert report["stored_consent"]["eligible"] is False
    text = render(report)
    assert "activity:unsubscribe" in text and "refused: opted_out" in text and "Destinations:" in text
    unknown = explain(runtime, "nobody@example.com")
    assert unknown["found"] is False and "no customer" in render(unknown)
