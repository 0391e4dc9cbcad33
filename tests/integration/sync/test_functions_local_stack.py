"""sync-plan, sync-mailchimp and sync-hubspot through the template's wiring (LocalRuntime: moto, the router
and the fake Mailchimp and HubSpot servers): drops sync both destinations, an identical drop costs no call, a
customer leaving a segment leaves its tag and list, an opted-out customer is never sent, a manual unsubscribe
found by the nightly read-back becomes a consent opt-out, a dry run calls nothing, and with 20 % injected
faults every sync still converges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from segflow.consent.guard import may_push, may_subscribe_new
from segflow.segments.config import load_segments
from segflow.segments.personalisation import personalise
from segflow.segments.rules import compile_rules
from segflow.sync.desired import SyncConfig, build_desired
from segflow_local.runtime import LocalRuntime

from tests.conftest import AS_OF, REPO_ROOT, EventCapture

SEGMENTS_FILE = """
guardrails: {min_segment_size: 1}
hysteresis: {exit_after_evaluations: 1}
segments:
  - name: US buyers
    rule: 'country == "US"'
    destinations:
      mailchimp: {tag: "segflow: US"}
      hubspot: {list: "segflow - US"}
  - name: French buyers
    rule: 'country == "FR"'
    destinations:
      mailchimp: {tag: "segflow: FR", static_segment: "segflow - FR"}
      hubspot: {list: "segflow - FR", property: {name: segflow_market, value: fr}}
merge_fields:
  - {tag: FNAME, name: First name, type: text, source: first_name, hubspot_property: segflow_first_name}
  - {tag: CITY, name: City, type: text, source: city, hubspot_property: segflow_city}
"""
CUSTOMER_HEADER = (
    "customer_id,email,first_name,last_name,phone,country,city,postal_code,birth_date,signup_date\n"
)
CUSTOMERS = {
    "C1": "C1,ann@example.com,Ann,Lee,,US,Austin,73301,,2024-05-10",
    "C2": "C2,bob@example.com,Bob,Ray,,US,Boston,02108,,2024-06-11",
    "C3": "C3,cleo@example.com,Cleo,Roux,,FR,Lyon,69001,,2024-07-12",
    "C4": "C4,dan@example.com,Dan,Fox,,US,Denver,80201,,2024-08-13",  # opted out
}
ORDERS = "order_id,customer_id,order_date,total,currency,status\n" + "".join(
    f"O{i},C{i},2026-10-{10 + i}T10:00:00Z,{40 + i}.00,USD,completed\n" for i in range(1, 5)
)
CONSENT = (
    "email,customer_id,channel,status,timestamp,source,lawful_basis,double_opt_in_confirmed\n"
    + "".join(
        f"{email},,email,{status},2026-09-01T10:00:00Z,signup_form,consent,true\n"
        for email, status in (
            ("ann@example.com", "opted_in"),
            ("bob@example.com", "opted_in"),
            ("cleo@example.com", "opted_in"),
            ("dan@example.com", "opted_out"),
        )
    )
)
OPTED_OUT = "dan@example.com"
SYNC_FUNCTIONS = ("SyncPlanFunction", "SyncMailchimpFunction", "SyncHubspotFunction")


def write_drop(folder: Path, customers: dict[str, str], with_activity: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.csv").write_text(
        CUSTOMER_HEADER + "\n".join(customers.values()) + "\n", encoding="utf-8"
    )
    if with_activity:
        (folder / "orders.csv").write_text(ORDERS, encoding="utf-8")
        (folder / "consent.csv").write_text(CONSENT, encoding="utf-8")
    return folder


@contextmanager
def local_stack(tmp_path: Path, **options: Any) -> Iterator[LocalRuntime]:
    segments = tmp_path / "segments.yaml"
    segments.write_text(SEGMENTS_FILE, encoding="utf-8")
    with LocalRuntime(REPO_ROOT, as_of=AS_OF, segments_file=segments, **options) as runtime:
        yield runtime


def failures(runtime: LocalRuntime) -> list[str]:
    return [f"{i.function}: {i.error or 'failed'}" for i in runtime.router.invocations if i.error or i.failed]


def requests(runtime: LocalRuntime) -> tuple[int, int]:
    return runtime.mailchimp.stats()["total_requests"], runtime.hubspot.stats()["total_requests"]


def mailchimp_members(runtime: LocalRuntime) -> dict[str, dict[str, Any]]:
    return runtime.mailchimp.state()["lists"][runtime.mailchimp.default_list_id]["members"]


def hubspot_lists(runtime: LocalRuntime) -> dict[str, set[str]]:
    return {name: set(found["members"]) for name, found in runtime.hubspot.state()["lists"].items()}


def sync_log(runtime: LocalRuntime) -> list[dict[str, Any]]:
    return sorted(
        runtime.read_json_objects("sync/log/", ".json"),
        key=lambda line: (line["run_id"], line["destination"]),
    )


def check_converged(runtime: LocalRuntime) -> None:
    """Each destination holds exactly the desired state computed from the stored profile views."""
    config = load_segments(SEGMENTS_FILE)
    compiled, routes = compile_rules(config), SyncConfig.from_segments(config)
    members, lists = mailchimp_members(runtime), hubspot_lists(runtime)
    contacts = runtime.hubspot.state()["contacts"]
    for view in runtime.profiles():
        wanted = {
            destination: build_desired(
                view,
                destination,
                routes,
                field_values=lambda v: personalise(compiled, v).mailchimp,
                eligible=lambda v: may_push(v, now=AS_OF),
                subscribable=lambda v: may_subscribe_new(v, now=AS_OF),
            )
            for destination in ("mailchimp", "hubspot")
        }
        mailchimp, hubspot = wanted["mailchimp"], wanted["hubspot"]
        member = members.get(mailchimp.email)
        if mailchimp.eligible and mailchimp.subscribe_if_new:
            assert member is not None, view["customer_id"]
            assert set(member["tags"]) == set(mailchimp.tags | mailchimp.segments), view["customer_id"]
            assert {k: member["merge_fields"].get(k) for k in mailchimp.fields} == dict(mailchimp.fields)
        else:  # never sent, or (once pushed) left without segflow's tags and not subscribed by segflow
            assert member is None or not member["tags"] and member["status"] != "subscribed", view[
                "customer_id"
            ]
        in_lists = {name for name, emails in lists.items() if hubspot.email in emails}
        assert in_lists == set(hubspot.lists), view["customer_id"]
        if hubspot.eligible:
            properties = contacts[hubspot.email]["properties"]
            assert {k: properties.get(k) for k in hubspot.fields} == dict(hubspot.fields), view["customer_id"]


def test_drops_sync_both_destinations_and_only_what_changed(tmp_path: Path) -> None:
    with local_stack(tmp_path) as runtime:
        capture = EventCapture(runtime.deployment.physical["EventBus"])
        first = write_drop(tmp_path / "drop1", CUSTOMERS)
        runtime.upload_folder(first)
        runtime.settle()
        assert failures(runtime) == []
        assert set(SYNC_FUNCTIONS) <= {i.function for i in runtime.router.invocations}

        members = mailchimp_members(runtime)
        assert set(members) == {"ann@example.com", "bob@example.com", "cleo@example.com"}
        assert members["ann@example.com"]["tags"] == ["segflow: US"]
        assert set(members["cleo@example.com"]["tags"]) == {"segflow: FR", "segflow - FR"}
        assert members["bob@example.com"]["merge_fields"]["FNAME"] == "Bob"
        lists = hubspot_lists(runtime)
        assert lists["segflow - US"] == {"ann@example.com", "bob@example.com"} and lists["segflow - FR"] == {
            "cleo@example.com"
        }
        assert runtime.hubspot.state()["contacts"]["cleo@example.com"]["properties"]["segflow_market"] == "fr"
        check_converged(runtime)

        completed = [e["detail"] for e in capture.drain() if e["detail-type"] == "SyncCompleted"]
        assert {c["destination"] for c in completed} == {"mailchimp", "hubspot"}
        assert {c["status"] for c in completed} == {"completed"}
        log = sync_log(runtime)
        pushed = {
            d: sum(line["contacts_pushed"] for line in log if line["destination"] == d)
            for d in ("mailchimp", "hubspot")
        }
        assert pushed["mailchimp"] >= 3 and pushed["hubspot"] >= 3
        assert sum(line["api_calls"] for line in log) == sum(requests(runtime))  # every call is in the log

        # The same files again: nothing changed, so no destination call at all.
        before, lines = requests(runtime), len(log)
        runtime.upload_folder(first)
        runtime.settle()
        assert failures(runtime) == [] and requests(runtime) == before
        assert all(line["api_calls"] == 0 for line in sync_log(runtime)[lines:])

        # Bob moves to France: the nightly run takes him out of the US segment, its tag and its list.
        moved = dict(CUSTOMERS, C2="C2,bob@example.com,Bob,Ray,,FR,Paris,75001,,2024-06-11")
        runtime.upload_folder(write_drop(tmp_path / "drop3", moved, with_activity=False))
        runtime.settle()
        runtime.router.fire_schedules(["ScoreFunction"])
        runtime.settle()
        assert failures(runtime) == []
        bob = mailchimp_members(runtime)["bob@example.com"]
        assert set(bob["tags"]) == {"segflow: FR", "segflow - FR"}
        lists = hubspot_lists(runtime)
        assert lists["segflow - US"] == {"ann@example.com"}
        assert lists["segflow - FR"] == {"bob@example.com", "cleo@example.com"}
        check_converged(runtime)

        # Ann unsubscribes in Mailchimp itself: the nightly read-back records it as a consent opt-out, after
        # which segflow only removes (her tag, her list) and never sends her again.
        runtime.mailchimp.set_member_status("ann@example.com", "unsubscribed")
        runtime.router.fire_schedules(["SyncPlanFunction"])
        runtime.settle()
        assert failures(runtime) == []
        ann = mailchimp_members(runtime)["ann@example.com"]
        assert ann["status"] == "unsubscribed" and ann["tags"] == []
        assert "ann@example.com" not in hubspot_lists(runtime)["segflow - US"]
        [nightly] = [
            line
            for line in sync_log(runtime)
            if line["trigger"] == "schedule:all" and line["destination"] == "mailchimp"
        ]
        assert nightly["reconcile"]["opt_outs"] == 1 and nightly["reconcile"]["read"] == 3
        consent = [
            e["detail"]
            for e in capture.drain()
            if e["detail-type"] == "ConsentChanged" and e["source"] == "segflow.sync"
        ]
        assert [r["source"] for d in consent for r in d["records"]] == ["destination:mailchimp"]
        check_converged(runtime)

        # The opted-out customer was never sent anywhere.
        assert (
            OPTED_OUT not in mailchimp_members(runtime)
            and OPTED_OUT not in runtime.hubspot.state()["contacts"]
        )
        assert OPTED_OUT not in json.dumps(runtime.mailchimp.state()) + json.dumps(runtime.hubspot.state())


def test_a_dry_run_writes_the_plan_and_calls_no_destination(tmp_path: Path) -> None:
    with local_stack(tmp_path, env={"SYNC_DRY_RUN": "true"}) as runtime:
        runtime.upload_folder(write_drop(tmp_path / "drop", CUSTOMERS))
        runtime.settle()
        assert failures(runtime) == []
        assert requests(runtime) == (0, 0)
        assert not {"SyncMailchimpFunction", "SyncHubspotFunction"} & {
            i.function for i in runtime.router.invocations
        }
        plans = runtime.read_json_objects("sync/", "/plan.json")
        assert plans and all(p["dry_run"] for p in plans)
        # nobody was ever checked: the plan defers them all behind the checks a real run would queue first
        for destination in ("mailchimp", "hubspot"):
            assert {c for p in plans for c in p["destinations"][destination]["checks"]} == {"C1", "C2", "C3"}
            assert not [c for p in plans for c in p["destinations"][destination]["contacts"]]
            assert max(p["destinations"][destination]["estimated_calls"]["checks"] for p in plans) > 0
        assert {line["status"] for line in sync_log(runtime)} == {"dry_run"}


def test_with_injected_faults_every_sync_converges(tmp_path: Path) -> None:
    with local_stack(tmp_path, faults=0.2) as runtime:
        runtime.upload_folder(write_drop(tmp_path / "drop", CUSTOMERS))
        runtime.settle()
        assert [f for f in failures(runtime) if not f.startswith(("SyncMailchimp", "SyncHubspot"))] == []
        check_converged(runtime)
        assert len(mailchimp_members(runtime)) == 3
        queues = boto3.client("sqs")
        for name in ("MailchimpQueueDeadLetter", "HubSpotQueueDeadLetter"):
            attributes = queues.get_queue_attributes(
                QueueUrl=runtime.deployment.physical[name], AttributeNames=["ApproximateNumberOfMessages"]
            )
            assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
        log = sync_log(runtime)
        assert log and {line["status"] for line in log} <= {"completed", "partial"}
        assert sum(line["retries"] + line["throttled"] for line in log) > 0  # the faults did happen
