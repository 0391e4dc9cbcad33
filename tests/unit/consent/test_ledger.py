"""The consent ledger: append-only, replay-safe, latest-by-timestamp with sticky destination opt-outs."""
from __future__ import annotations

from segflow.consent.ledger import (
    apply,
    current_state,
    destination_opt_out,
    fresh,
    from_destination_status,
    from_row,
    from_unsubscribe_event,
    ledger_sk,
)

from ._support import NOW, at, dest_out, opt_in, opt_out, rec


def test_apply_appends_new_records_once_and_replays_change_nothing():
    first, second = opt_in(30), opt_out(10)
    ledger, changed = apply([], [second, first, first])
    assert changed and ledger == (first, second)  # canonical (time) order, one copy each
    replayed, changed_again = apply(ledger, [first, second])
    assert not changed_again and replayed == ledger
    stored = [r.model_dump(mode="json") for r in ledger]  # the DynamoDB form is accepted too
    assert apply(stored, [second]) == (ledger, False)
    assert fresh(ledger, [second, opt_in(1), opt_in(1)]) == [opt_in(1)]


def test_latest_record_wins_whatever_the_arrival_order():
    records = [opt_in(300), opt_out(200), opt_in(100, basis="legitimate_interest", source="checkout")]
    for order in (records, records[::-1], [records[1], records[2], records[0]]):
        state = current_state(order)
        assert state.status == "opted_in"
        # the opt-out ended the earlier consent
        assert state.basis == "legitimate_interest" and not state.explicit_opt_in
        assert state.at == at(100) and state.source == "checkout" and state.records == 3


def test_late_old_record_does_not_override_a_newer_one():
    ledger, _ = apply([opt_out(5)], [opt_in(50)])
    assert current_state(ledger).status == "opted_out"


def test_opt_out_wins_a_timestamp_tie():
    state = current_state([opt_in(7), opt_out(7)])
    assert state.status == "opted_out" and state.at == at(7)


def test_a_standing_explicit_opt_in_is_not_weakened_by_a_later_soft_opt_in():
    state = current_state([opt_in(90, double_opt_in_confirmed=True),
                           opt_in(20, basis="legitimate_interest", source="checkout")])
    assert state.status == "opted_in" and state.basis == "consent"
    assert state.explicit_opt_in and state.double_opt_in_confirmed
    assert state.source == "checkout"


def test_empty_ledger_is_unknown():
    state = current_state([])
    assert state.status == "unknown" and state.records == 0 and not state.destination_opt_out


def test_destination_opt_out_is_sticky_against_later_soft_opt_ins():
    state = current_state([opt_in(100), dest_out(50, reason="cleaned"),
                           opt_in(10, basis="legitimate_interest", source="checkout"),
                           opt_in(5, basis="contract", source="import")])
    assert state.status == "opted_out" and state.destination_opt_out
    assert state.destination_opt_out_source == "destination:mailchimp"
    assert state.destination_opt_out_reason == "cleaned" and state.destination_opt_out_at == at(50)


def test_an_explicit_opt_in_at_the_same_time_does_not_lift_a_destination_opt_out():
    assert current_state([dest_out(20), opt_in(20)]).status == "opted_out"


def test_a_strictly_newer_explicit_opt_in_lifts_a_destination_opt_out():
    state = current_state([dest_out(20, destination="hubspot"), opt_in(19)])
    assert state.status == "opted_in" and state.explicit_opt_in and not state.destination_opt_out


def test_a_later_destination_opt_out_needs_its_own_newer_opt_in():
    state = current_state([dest_out(40), opt_in(30), dest_out(20), opt_in(25)])
    assert state.status == "opted_out" and state.destination_opt_out_at == at(20)
    both = current_state([dest_out(40, reason="cleaned"), dest_out(20, destination="hubspot"),
                          opt_in(10, "contract")])
    assert both.destination_opt_out_source == "destination:hubspot" and both.destination_opt_out_at == at(20)


def test_policy_may_demand_double_opt_in_to_lift_a_destination_opt_out():
    plain = [dest_out(20), opt_in(10)]
    assert current_state(plain).status == "opted_in"
    assert current_state(plain, lift_requires_double_opt_in=True).status == "opted_out"
    confirmed = [dest_out(20), opt_in(10, double_opt_in_confirmed=True)]
    assert current_state(confirmed, lift_requires_double_opt_in=True).status == "opted_in"


def test_an_ordinary_opt_out_is_not_sticky():
    assert current_state([opt_out(20), opt_in(10, basis="legitimate_interest")]).status == "opted_in"


def test_region_and_preference_are_the_latest_stated():
    state = current_state([opt_in(30, region="DE", preference_level="basic"), opt_out(20),
                           opt_in(10, preference_level="none")])
    assert state.region == "DE" and state.preference_level == "none"


def test_unsubscribe_events_become_opt_outs_and_other_events_nothing():
    event = {"event_id": "e1", "event_type": "unsubscribe", "customer_id": "C1",
             "timestamp": "2026-10-01T08:00:00Z"}
    record = from_unsubscribe_event(event)
    assert record is not None and record.status == "opted_out" and record.customer_id == "C1"
    assert record.source == "activity:unsubscribe" and record.origin == "e1"
    assert from_unsubscribe_event({**event, "event_id": "e2"}).record_id == record.record_id  # same fact
    assert from_unsubscribe_event({**event, "event_type": "email_open"}) is None
    assert current_state([opt_in(100, customer_id="C1"), record]).status == "opted_out"


def test_destination_statuses_that_mean_no_email_become_destination_opt_outs():
    for destination, status in [("mailchimp", "unsubscribed"), ("mailchimp", "cleaned"),
                                ("mailchimp", "compliance_state"), ("hubspot", "UNSUBSCRIBED")]:
        record = from_destination_status(destination, status, at=NOW, email="Ann@Example.com")
        assert record is not None and record.from_destination and record.status == "opted_out"
        assert record.reason == status.lower() and record.email == "ann@example.com"
    for destination, status in [("mailchimp", "subscribed"), ("mailchimp", "pending"),
                                ("hubspot", "SUBSCRIBED"), ("mailchimp", None), ("other", "unsubscribed")]:
        assert from_destination_status(destination, status, at=NOW, email="a@b.co") is None
    assert destination_opt_out("HubSpot", at=NOW, reason="x", customer_id="C").source == "destination:hubspot"


def test_ledger_sort_key_orders_by_time_and_names_the_record():
    early, late = opt_in(2), opt_in(1)
    assert ledger_sk(early) < ledger_sk(late)
    assert ledger_sk(late).startswith("LEDGER#2026-10-31T00:00:00.000000Z#")
    assert ledger_sk(late).endswith(late.record_id)
    assert rec("opted_in", 0).timestamp == NOW


def test_clean_dataset_rows_become_records():
    row = {"email": "ann@example.com", "customer_id": float("nan"), "channel": None, "status": "opted_in",
           "timestamp": "2026-09-01T10:00:00Z", "source": "signup_form", "lawful_basis": "consent",
           "double_opt_in_confirmed": True, "region": "", "_row": 7, "drop_id": "d1"}
    record = from_row(row, origin="raw/consent/a.csv")
    assert record.customer_id is None and record.channel == "email" and record.region is None
    assert record.double_opt_in_confirmed and record.origin == "raw/consent/a.csv"
    assert record.record_id == from_row({**row, "_row": 9}).record_id  # a re-drop is the same record
