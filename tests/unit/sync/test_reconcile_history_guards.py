"""Reconciliation rules, run history lines, the view-based guard, the API sizes mirrored from the clients."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from segflow.destinations import hubspot, mailchimp
from segflow.destinations.results import CallStats, ContactResult, Outcome
from segflow.sync import limits
from segflow.sync.applier import ApplyReport, ContactOutcome
from segflow.sync.desired import build_desired
from segflow.sync.guards import guard_from_views
from segflow.sync.history import read_jsonl, summarise, to_jsonl
from segflow.sync.reconcile import Observation, emails_to_read, observe_hubspot, observe_mailchimp, reconcile
from segflow.sync.state import SyncState

from tests.unit.sync.builders import CONFIG, view

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def known(i: int, destination: str = "mailchimp", **overrides: object) -> SyncState:
    base = {
        "email": f"u{i}@example.com",
        "destination_id": f"id{i}",
        "status": "subscribed",
        "lists": frozenset({"L"}),
        "tags": frozenset({"T"}),
        "version": 3,
    }
    base.update(overrides)
    return SyncState(f"c{i}", destination, **base)  # type: ignore[arg-type]


def test_reconcile_rules() -> None:
    states = [
        known(1),
        known(2),
        known(3),
        known(4),
        known(5, status="unsubscribed"),
        known(6),
        known(7, destination_id=None, status=None),
        known(8, status="forgotten"),
    ]
    observed = {
        "u1@example.com": Observation(True, "id1", "unsubscribed"),
        "u2@example.com": Observation(False),
        "u3@example.com": Observation(True, "id3", "subscribed"),
        "u4@example.com": Observation(True, "id4", "pending"),
        "u5@example.com": Observation(True, "id5", "unsubscribed"),
        "u7@example.com": Observation(False),
        "u8@example.com": Observation(False),
    }
    result = reconcile("mailchimp", states, observed, NOW)
    assert dict(result.findings) == {"unsubscribed": 1, "deleted": 1, "status_changed": 1}
    by_id = {s.customer_id: s for s in result.corrections}
    assert by_id["c1"].status == "unsubscribed" and by_id["c1"].version == 4
    assert by_id["c2"].destination_id is None and by_id["c2"].memberships() == frozenset()
    assert by_id["c4"].status == "pending" and by_id["c1"].last_result["finding"] == "unsubscribed"
    assert [r["customer_id"] for r in result.opt_outs] == ["c1"]  # c5 was already known: no repeat
    assert emails_to_read(states) == [f"u{i}@example.com" for i in (1, 2, 3, 4, 5, 6)]
    assert result.to_record() == {
        "opt_outs": 1,
        "corrections": 3,
        "findings": {"unsubscribed": 1, "deleted": 1, "status_changed": 1},
    }


def test_hubspot_merge_and_observations_from_client_answers() -> None:
    records = {
        "U1@example.com": {"id": "77", "properties": {}},
        "u2@example.com": None,
        "u3@example.com": {"id": "id3", "archived": True},
        "u4@example.com": {"id": "id4"},
    }
    unsubscribed = ContactResult.for_email(
        "hubspot", "u4@example.com", "subscription", Outcome.COMPLIANCE, status="UNSUBSCRIBED"
    )
    observed = observe_hubspot(records, {"u4@example.com": unsubscribed})
    # no status was read for u1: its record is known, whether it unsubscribed is not (not a check)
    assert observed["u1@example.com"] == Observation(True, "77", None, checked=False)
    assert not observed["u2@example.com"].present and not observed["u3@example.com"].present
    assert observed["u2@example.com"].checked  # no record: nothing there to have unsubscribed
    assert observed["u4@example.com"].status == "unsubscribed" and observed["u4@example.com"].checked
    states = [known(i, "hubspot", status=None) for i in (1, 2, 3, 4)]
    result = reconcile("hubspot", states, observed, NOW)
    assert dict(result.findings) == {"merged": 1, "deleted": 2, "unsubscribed": 1}
    merged = next(s for s in result.corrections if s.customer_id == "c1")
    assert merged.destination_id == "77" and merged.lists == frozenset()
    assert result.opt_outs[0]["source"] == "destination:hubspot"
    mailchimp_seen = observe_mailchimp({"A@b.com": {"id": "h", "status": "Cleaned"}, "c@d.com": None})
    assert mailchimp_seen == {"a@b.com": Observation(True, "h", "cleaned"), "c@d.com": Observation(False)}


def report(item: str, run: str = "r1", destination: str = "hubspot", **outcomes: str) -> ApplyReport:
    contacts = {c: ContactOutcome(c, o, retryable=o in ("deferred",)) for c, o in outcomes.items()}
    return ApplyReport(
        item,
        run,
        destination,
        contacts,
        CallStats(calls=3, retries=1, throttled=1, errors=1),
        duration_s=0.5,
        stop_run="deferred" in outcomes.values(),
        error="hubspot POST upsert: daily (status 429, 1 attempt(s))"
        if "deferred" in outcomes.values()
        else None,
    )


def test_run_summary_counts_each_item_once_and_every_attempt_s_calls() -> None:
    reports = [
        report("i1", c1="pushed", c2="deferred"),
        report("i2", c3="failed", c4="unchanged"),
        report("i1", c1="unchanged", c2="pushed"),
    ]  # i1 redelivered after the quota reset
    summary = summarise("r1", "hubspot", reports, NOW, NOW + timedelta(seconds=9))
    assert summary.work_items == 2 and summary.contacts == 4 and summary.contacts_pushed == 2
    assert summary.api_calls == 9 and summary.retries == 3 and summary.throttled == 3 and summary.errors == 3
    assert summary.outcomes == {"unchanged": 2, "pushed": 1, "failed": 1} and summary.failed_contacts == 1
    assert not summary.stop_run and summary.retryable_contacts == 0 and summary.item_errors == []
    line = summary.to_json_line()
    assert "\n" not in line and json.loads(line)["contacts_pushed"] == 2
    assert read_jsonl(to_jsonl([summary, summary])) == [json.loads(line)] * 2
    with pytest.raises(ValueError):
        summarise("r2", "hubspot", reports, NOW, NOW)


def test_history_lines_feed_the_report_totals() -> None:
    from segflow_local.report.sync_stats import sync_totals

    summary = summarise("r1", "hubspot", [report("i1", c1="pushed")], NOW, NOW)
    totals = sync_totals(read_jsonl(to_jsonl([summary])))["hubspot"]
    assert (totals.runs, totals.contacts_pushed, totals.api_calls, totals.errors) == (1, 1, 3, 1)


def test_guard_from_views_with_the_consent_checks() -> None:
    from segflow.consent import may_push, may_subscribe_new

    fresh = {
        "c00001": view(
            1,
            consent_basis="consent",
            consent_at="2026-10-01T00:00:00+00:00",
            country="FR",
            consent_explicit=True,
            consent_double_opt_in=True,
            destination_opt_out=False,
            last_order_at="2026-10-20T00:00:00+00:00",
        ),
        "c00002": view(2, consent_status="opted_out", eligible=False),
        "c00003": view(3, email="changed@example.com"),
    }
    states = {"c00001": SyncState("c00001", "mailchimp", status="subscribed")}
    guard = guard_from_views(fresh, may_push, may_subscribe_new, states)
    desired = {i: build_desired(view(i, "Champions"), "mailchimp", CONFIG) for i in (1, 2, 3, 4)}
    assert guard(desired[1]) is True
    assert guard(desired[2]) is False  # opted out since the plan was made
    assert guard(desired[3]) is False  # the email changed since the plan was made
    assert guard(desired[4]) is False  # no view: fail closed
    unsubscribed = guard_from_views(
        fresh,
        may_push,
        may_subscribe_new,
        {"c00001": SyncState("c00001", "mailchimp", status="unsubscribed")},
    )
    assert unsubscribed(desired[1]) is False

    def explode(view: object) -> bool:
        raise RuntimeError("boom")

    assert guard_from_views(fresh, explode)(desired[1]) is False


def test_mirrored_api_sizes_match_the_clients() -> None:
    assert limits.MAILCHIMP_MEMBER_BATCH == mailchimp.BATCH_SIZE
    assert limits.MAILCHIMP_SEGMENT_CHANGE == mailchimp.SEGMENT_CHANGE_SIZE
    assert limits.HUBSPOT_UPSERT_BATCH == hubspot.BATCH_SIZE
    assert limits.HUBSPOT_MEMBERSHIP_CHUNK == hubspot.MEMBERSHIP_CHUNK


def test_sync_package_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, segflow.sync, segflow.store.sync_state; "
        "print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
