"""The segment function through the template's wiring: events on the bus -> rule -> handler -> items, S3."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from segflow.store.customers import PROFILE, SCORES, DynamoCustomerItems

from tests.conftest import AS_OF

CUSTOMERS = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date\n"
    "C1,ann@example.com,Ann,Lee,,US,Austin,73301,,2024-05-10\n"
)
SEGMENTS_FILE = """
guardrails: {min_segment_size: 2}
segments:
  - {name: VIP, builtin: "rfm:Champions", destinations: {mailchimp: {tag: "segflow: VIP"}}}
  - {name: Big spenders, rule: "spend_30d > 500.0"}
"""


def put_events(runtime: Any, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
    bus = runtime.deployment.physical["EventBus"]
    response = boto3.client("events").put_events(
        Entries=[
            {"EventBusName": bus, "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
            for source, detail_type, detail in entries
        ]
    )
    assert response["FailedEntryCount"] == 0


def activity(event_id: str, event_type: str, at: Any, **fields: Any) -> tuple[str, str, dict[str, Any]]:
    detail = {"event_id": event_id, "event_type": event_type, "timestamp": at.isoformat(), **fields}
    return "segflow.activity", "CustomerActivity", detail


def segments_item(runtime: Any, customer_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(runtime.table_name)
    return table.get_item(Key={"pk": f"CUST#{customer_id}", "sk": "SEGMENTS"}).get("Item", {})


def changes(capture: Any) -> list[dict[str, Any]]:
    """Every SegmentsChanged detail captured so far."""
    return [e["detail"] for e in capture.drain() if e["detail-type"] == "SegmentsChanged"]


def assert_no_failures(runtime: Any) -> list[Any]:
    ours = [i for i in runtime.router.invocations if i.function in ("IngestFunction", "SegmentFunction")]
    assert [i.error for i in ours if i.error or i.failed] == []
    return [i for i in ours if i.function == "SegmentFunction"]


def test_customer_activity_moves_a_customer_between_segments_in_real_time(runtime, capture, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    runtime.upload_folder(drop)
    runtime.settle()
    assert [p["customer_id"] for p in runtime.profiles()] == ["C1"]

    put_events(runtime, [activity("A1", "cart_add", AS_OF - timedelta(days=2), customer_id="C1", product_id="P1")])
    runtime.settle()
    assert set(segments_item(runtime, "C1")["memberships"]) == {"Abandoned cart"}
    [entered] = changes(capture)
    assert entered["trigger"] == "CustomerActivity" and entered["changed"]["customer_ids"] == ["C1"]
    assert entered["changes"] == [{"segment": "Abandoned cart", "entered": ["C1"], "exited": []}]

    purchase = activity("A2", "purchase", AS_OF - timedelta(hours=3), email="Ann@Example.com", product_id="P1",
                        order_id="O1", total=120.0)
    put_events(runtime, [purchase])
    runtime.settle()
    item = segments_item(runtime, "C1")
    assert set(item["memberships"]) == {"Recent US buyers"}
    [_, moved] = changes(capture)
    assert {c["segment"]: (c["entered"], c["exited"]) for c in moved["changes"]} == {
        "Abandoned cart": ([], ["C1"]),
        "Recent US buyers": (["C1"], []),
    }

    put_events(runtime, [purchase])  # EventBridge may deliver an event twice
    runtime.settle()
    assert segments_item(runtime, "C1") == item
    assert all(c == moved for c in changes(capture)[2:])  # at most a repeat of the same change
    invocations = assert_no_failures(runtime)
    assert len(invocations) >= 3  # plus a ProfilesScored run once the score function answers the drop


def test_a_scoring_run_uses_the_uploaded_segments_file_and_writes_latest_json(runtime, capture):
    s3 = runtime.s3()
    s3.put_object(Bucket=runtime.bucket, Key="config/segments.yaml", Body=SEGMENTS_FILE.encode())
    items = DynamoCustomerItems(boto3.resource("dynamodb").Table(runtime.table_name))
    for customer_id, segment, spend in (("C1", "Champions", 900.0), ("C2", "Champions", 10.0), ("C3", "Hibernating", 0.0)):
        items.put_if_newer(PROFILE, {customer_id: {"customer_id": customer_id, "updated_at": "1"}}, "updated_at")
        items.put_if_newer(SCORES, {customer_id: {"scored_at": "1", "rfm_segment": segment, "spend_30d": spend}}, "scored_at")
    scored = {"run_id": "nightly-1", "mode": "all", "as_of": AS_OF.isoformat(), "model_version": None,
              "customers_scored": 3, "changed": {"count": 3, "everyone": True}}
    put_events(runtime, [("segflow.score", "ProfilesScored", scored)])
    runtime.settle()

    assert_no_failures(runtime)
    [event] = changes(capture)
    assert {c["segment"]: c["entered"] for c in event["changes"]} == {"VIP": ["C1", "C2"], "Big spenders": ["C1"]}
    latest = json.loads(s3.get_object(Bucket=runtime.bucket, Key="segments/latest.json")["Body"].read())
    assert {s["name"]: s["members"] for s in latest["segments"]} == {"VIP": ["C1", "C2"], "Big spenders": ["C1"]}
    assert latest["complete"] is True
    vip = next(s for s in latest["segments"] if s["name"] == "VIP")
    assert vip["destinations"] == {"mailchimp": {"tag": "segflow: VIP"}}
    assert [(v["kind"], v["segment"]) for v in latest["guardrails"]["violations"]] == [("too_small", "Big spenders")]
    assert set(segments_item(runtime, "C1")["memberships"]) == {"VIP", "Big spenders"}
    assert segments_item(runtime, "C3") == {}


CONSENT = (
    "email,status,timestamp,source,lawful_basis,double_opt_in_confirmed\n"
    "ann@example.com,opted_in,2026-06-01T10:00:00Z,signup form,consent,true\n"
)


def destination_memberships(runtime: Any, email: str) -> tuple[set[str], set[str]]:
    """(Mailchimp tags, HubSpot lists) the fake destinations hold for one email."""
    mailchimp = runtime.mailchimp.state()["lists"][runtime.mailchimp.default_list_id]
    member = mailchimp["members"].get(email, {})  # the fake keys members by email
    tags = {t["name"] if isinstance(t, dict) else t for t in member.get("tags", [])}
    hubspot = runtime.hubspot.state()
    lists = {name for name, found in hubspot["lists"].items() if email in found["members"]}
    return tags, lists


def test_a_purchase_takes_a_customer_out_of_abandoned_cart_and_the_destinations_follow(runtime, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (drop / "consent.csv").write_text(CONSENT, encoding="utf-8")
    runtime.upload_folder(drop)
    runtime.settle()

    put_events(runtime, [activity("B1", "cart_add", AS_OF - timedelta(days=2), customer_id="C1", product_id="P1")])
    runtime.settle()
    tags, lists = destination_memberships(runtime, "ann@example.com")
    assert "segflow: Abandoned cart" in tags and "segflow - Abandoned cart" in lists

    put_events(runtime, [activity("B2", "purchase", AS_OF - timedelta(hours=3), customer_id="C1",
                                  product_id="P1", order_id="O9", total=80.0)])
    runtime.settle()
    tags, lists = destination_memberships(runtime, "ann@example.com")
    assert "segflow: Abandoned cart" not in tags and "segflow - Abandoned cart" not in lists
    assert not [i.error for i in runtime.router.invocations if i.error]
