"""The planner: what to create, update, add, remove and unsubscribe; what never to write; call estimates."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segflow.sync.desired import DesiredContact, build_desired
from segflow.sync.dryrun import render_plan
from segflow.sync.planner import (
    NOTE_DUPLICATE_EMAIL,
    NOTE_NOT_SUBSCRIBABLE,
    ContactPlan,
    estimate_calls,
    plan,
    plan_contact,
)
from segflow.sync.state import BLOCKING_STATUSES, GONE_STATUSES, SyncState

from tests.unit.sync.builders import CONFIG, SEGMENTS, opted_out, view


def synced(desired: DesiredContact, **overrides: object) -> SyncState:
    """The state after `desired` was fully pushed."""
    state = SyncState(
        desired.customer_id,
        desired.destination,
        email=desired.email,
        destination_id="id-1",
        status="subscribed",
        version=1,
    ).with_fields(desired.fields)
    return replace(state.with_memberships(desired.memberships()), **overrides)  # type: ignore[arg-type]


def confirm(contact: ContactPlan, state: SyncState | None) -> SyncState:
    """What a perfect destination would leave recorded after applying the contact plan."""
    state = state or SyncState(contact.customer_id, contact.destination)
    if contact.action == "create":  # a new member: its own id and status
        state = replace(
            state.with_fields(contact.fields), email=contact.email, destination_id="new", status="subscribed"
        )
    elif contact.action == "update":
        state = state.with_fields({**state.fields, **contact.fields})
    pairs = (state.memberships() - contact.removes) | contact.adds
    state = state.with_memberships(pairs)
    if contact.unsubscribe:
        state = replace(state, status="unsubscribed")
    return state


def test_new_subscribable_contact_is_created_with_all_fields_and_memberships() -> None:
    desired = build_desired(view(1, "At risk"), "mailchimp", CONFIG)
    contact = plan_contact(desired, None)
    assert contact.action == "create" and contact.fields == desired.fields
    assert contact.adds == {("tag", "segflow: At risk"), ("segment", "segflow - At risk")}
    assert not contact.removes and not contact.unsubscribe


def test_mailchimp_does_not_create_a_contact_without_opt_in_but_hubspot_does() -> None:
    not_opted_in = view(2, "Champions", consent_status="unknown")
    mailchimp = plan_contact(build_desired(not_opted_in, "mailchimp", CONFIG), None)
    assert not mailchimp.has_work and mailchimp.note == NOTE_NOT_SUBSCRIBABLE
    hubspot = plan_contact(build_desired(not_opted_in, "hubspot", CONFIG), None)
    assert hubspot.action == "create" and hubspot.adds == {("list", "segflow - Champions")}
    # already on the audience (e.g. through Mailchimp's own form): updated without any status
    known = build_desired(not_opted_in, "mailchimp", CONFIG)
    updated = plan_contact(replace(known, fields={**known.fields, "CITY": "Nice"}), synced(known))
    assert updated.action == "update" and updated.changed_fields == ("CITY",)


def test_unchanged_contact_has_nothing_to_do_and_a_change_sends_only_changed_fields() -> None:
    desired = build_desired(view(3, "Champions"), "hubspot", CONFIG)
    assert not plan_contact(desired, synced(desired)).has_work
    moved = replace(desired, fields={**desired.fields, "segflow_city": "Nice"})
    contact = plan_contact(moved, synced(desired))
    assert contact.action == "update" and contact.fields == {"segflow_city": "Nice"}
    assert not contact.adds and not contact.removes


def test_dropping_to_preference_none_clears_the_pushed_fields() -> None:
    full = build_desired(view(4, "Champions"), "mailchimp", CONFIG)
    none = build_desired(view(4, "Champions", preference_level="none"), "mailchimp", CONFIG)
    contact = plan_contact(none, synced(full))
    assert contact.action == "update" and contact.fields == dict.fromkeys(full.fields, "")


def test_leaving_a_segment_removes_its_tag_and_nothing_else() -> None:
    before = build_desired(view(5, "Champions", "Big spenders"), "mailchimp", CONFIG)
    after = build_desired(view(5, "Champions"), "mailchimp", CONFIG)
    contact = plan_contact(after, synced(before))
    assert contact.removes == {("tag", "segflow: Big spenders")} and not contact.adds
    assert contact.action == "none" and not contact.unsubscribe


def test_ineligible_contact_loses_only_segflow_memberships_it_was_given() -> None:
    before = build_desired(view(6, "Champions", "At risk"), "hubspot", CONFIG)
    inactive = build_desired(view(6, "Champions", eligible=False), "hubspot", CONFIG)
    contact = plan_contact(inactive, synced(before))
    assert contact.removes == {("list", "segflow - Champions"), ("list", "segflow - At risk")}
    assert contact.action == "none" and not contact.adds and not contact.fields and not contact.unsubscribe


def test_opted_out_contact_is_unsubscribed_and_removed_but_never_updated() -> None:
    before = build_desired(view(7, "Champions"), "mailchimp", CONFIG)
    contact = plan_contact(build_desired(opted_out(7, "Champions"), "mailchimp", CONFIG), synced(before))
    assert contact.unsubscribe and contact.removes == {("tag", "segflow: Champions")}
    assert contact.action == "none" and not contact.adds
    never_synced = plan_contact(build_desired(opted_out(8), "mailchimp", CONFIG), None)
    assert not never_synced.has_work  # nobody to unsubscribe: segflow does not create them to do it


@pytest.mark.parametrize("status", sorted(BLOCKING_STATUSES))
def test_blocked_destination_status_allows_removals_only(status: str) -> None:
    before = build_desired(view(9, "Champions"), "mailchimp", CONFIG)
    wants_more = build_desired(view(9, "Champions", "At risk", first_name="Changed"), "mailchimp", CONFIG)
    contact = plan_contact(wants_more, synced(before, status=status))
    assert contact.action == "none" and not contact.fields and not contact.adds and not contact.unsubscribe
    assert contact.note == f"destination_status:{status}"
    left = plan_contact(build_desired(view(9), "mailchimp", CONFIG), synced(before, status=status))
    assert left.removes == {("tag", "segflow: Champions")}


def test_new_email_is_a_new_member_and_the_old_address_leaves_segflow_tags() -> None:
    before = build_desired(view(10, "Champions"), "mailchimp", CONFIG)
    after = build_desired(view(10, "Champions", email="new10@example.com"), "mailchimp", CONFIG)
    contact = plan_contact(after, synced(before))
    assert contact.action == "create" and contact.previous_email == "user10@example.com"
    assert contact.adds == contact.removes == {("tag", "segflow: Champions")}
    assert contact.removal_email == "user10@example.com"


def test_plan_counts_unchanged_held_and_duplicates() -> None:
    a = build_desired(view(11, "Champions"), "mailchimp", CONFIG)
    twin = build_desired(view(12, "Champions", email="user11@example.com"), "mailchimp", CONFIG)
    no_opt_in = build_desired(view(13, consent_status="unknown"), "mailchimp", CONFIG)
    unchanged = build_desired(view(14, "Champions"), "mailchimp", CONFIG)
    result = plan([twin, no_opt_in, a, unchanged], {"c00014": synced(unchanged)})
    assert [c.customer_id for c in result.contacts] == ["c00011"]
    assert result.unchanged == 1 and result.held == {NOTE_DUPLICATE_EMAIL: 1, NOTE_NOT_SUBSCRIBABLE: 1}
    with pytest.raises(ValueError, match="listed twice"):
        plan([a, a], {})
    with pytest.raises(ValueError, match="one destination"):
        plan([a, build_desired(view(15), "hubspot", CONFIG)], {})


def test_estimates_follow_the_api_batch_sizes() -> None:
    mailchimp = plan([build_desired(view(i, "Champions"), "mailchimp", CONFIG) for i in range(1_200)], {})
    estimate = estimate_calls(mailchimp)
    assert estimate["upsert_batches"] == 3 and estimate["member_updates"] == 0
    assert estimate["membership"] == 3 and estimate["work_items"] == 3  # one tag, one call per item
    hubspot = plan(
        [build_desired(view(i, "Champions", "At risk"), "hubspot", CONFIG) for i in range(250)], {}
    )
    estimate = estimate_calls(hubspot)
    assert estimate["upsert_batches"] == 3 and estimate["membership"] == 6 and estimate["work_items"] == 3
    assert estimate["provisioning_reads"] == 2 + 2  # group, properties, and each of the two lists
    updates = [
        plan_contact(replace(d, fields={**d.fields, "FNAME": "x"}), synced(d))
        for d in (build_desired(view(i), "mailchimp", CONFIG) for i in range(7))
    ]
    estimate = estimate_calls(replace(mailchimp, contacts=tuple(updates)))
    assert estimate["member_updates"] == 0 and estimate["batch_requests"] == 3  # more than 3: one batch
    estimate = estimate_calls(replace(mailchimp, contacts=tuple(updates[:3])))
    assert estimate["member_updates"] == 3 and estimate["batch_requests"] == 0


def moved(count: int, start: int = 0, **changed: object) -> list[ContactPlan]:
    """Mailchimp contacts who left Champions (a tag) for At risk (a tag and a static segment)."""
    contacts = []
    for i in range(start, start + count):
        before = build_desired(view(i, "Champions"), "mailchimp", CONFIG)
        after = build_desired(view(i, "At risk", **changed), "mailchimp", CONFIG)  # type: ignore[arg-type]
        contacts.append(plan_contact(after, synced(before)))
    return contacts


def test_small_mailchimp_changes_go_in_one_batch_with_the_updates_large_ones_one_call_per_name() -> None:
    base = plan([], {}, "mailchimp")
    # 3 names touched, no updates: one call each (3) is not more than a batch (3)
    few = estimate_calls(replace(base, contacts=tuple(moved(5))))
    assert (few["membership"], few["batch_requests"], few["contact_calls"]) == (3, 0, 3)
    # the same with 5 field updates: 3 (update batch) + 3 > one batch holding everything
    mixed = estimate_calls(replace(base, contacts=tuple(moved(5, city="Nice"))))
    assert (mixed["member_updates"], mixed["membership"], mixed["batch_requests"]) == (0, 0, 3)
    # two single updates and 3 names (5 calls) also go in one batch
    two = moved(2, city="Nice") + moved(3, start=10)
    assert estimate_calls(replace(base, contacts=tuple(two)))["contact_calls"] == 3
    # one update and one name: two calls stay cheaper than a batch
    one = [plan_contact(build_desired(view(1, "Champions", "High CLV", city="Nice"), "mailchimp", CONFIG),
                        synced(build_desired(view(1, "Champions"), "mailchimp", CONFIG)))]
    assert estimate_calls(replace(base, contacts=tuple(one)))["contact_calls"] == 2
    # a large change (a tags operation per member would overfill the batch): one call per name
    large = estimate_calls(replace(base, contacts=tuple(moved(300, city="Nice"))))
    assert (large["batch_requests"], large["membership"]) == (3, 3)  # the updates' batch, then 3 names


def test_mailchimp_batch_sizes_mirror_the_client() -> None:
    from segflow.destinations import mailchimp, mailchimp_batches
    from segflow.sync import planner

    assert planner.MAILCHIMP_SINGLE_UPDATES == mailchimp.BATCH_UPDATES_ABOVE
    assert planner.MAILCHIMP_BATCH_OPERATIONS == mailchimp_batches.MAX_OPERATIONS
    assert planner.MAILCHIMP_BATCHED_MEMBERSHIP_OPERATIONS <= mailchimp_batches.MAX_OPERATIONS


def test_render_plan_names_changes_without_personal_data() -> None:
    before = build_desired(view(16, "Champions"), "mailchimp", CONFIG)
    after = build_desired(view(16, "At risk", first_name="Zed"), "mailchimp", CONFIG)
    rendered = render_plan(plan([after], {"c00016": synced(before)}))
    (contact,) = rendered["contacts"]
    assert contact["action"] == "update" and contact["changed_fields"] == ["FNAME"]
    assert contact["tags"] == {"add": ["segflow: At risk"], "remove": ["segflow: Champions"]}
    assert contact["segments"] == {"add": ["segflow - At risk"], "remove": []}
    assert "user16@example.com" not in str(rendered) and "Zed" not in str(rendered)
    calls = rendered["estimated_calls"]  # 1 PUT + 3 names (4 calls) cost more than one batch (3)
    assert (calls["member_updates"], calls["membership"], calls["batch_requests"]) == (0, 0, 3)
    assert render_plan(plan([after], {}), include_values=True)["contacts"][0]["fields"]["FNAME"] == "Zed"


# ---- properties ----------------------------------------------------------------------------------------

views = st.builds(
    lambda i, segs, level, consent, eligible, destination: build_desired(
        view(i, *segs, preference_level=level, consent_status=consent, eligible=eligible), destination, CONFIG
    ),
    st.integers(0, 5),
    st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=4),
    st.sampled_from(["full", "basic", "none"]),
    st.sampled_from(["opted_in", "opted_out", "unknown"]),
    st.booleans(),
    st.sampled_from(["mailchimp", "hubspot"]),
)
statuses = st.sampled_from([None, "subscribed", "pending", *sorted(BLOCKING_STATUSES)])


@settings(max_examples=300, deadline=None)
@given(views, views, statuses)
def test_after_confirming_a_plan_nothing_is_left_to_do_and_blocked_contacts_get_no_writes(
    before: DesiredContact, after: DesiredContact, status: str | None
) -> None:
    after = replace(after, destination=before.destination, customer_id=before.customer_id)
    state = None if status is None else synced(before, status=status)
    if state is not None and status in GONE_STATUSES:
        state = state.with_memberships(())
    contact = plan_contact(after, state)
    if state is not None and state.blocked and state.email == after.email:
        assert contact.action == "none" and not contact.adds and not contact.unsubscribe
        assert contact.removes <= state.memberships()
        return
    if not after.eligible:
        assert contact.action == "none" and not contact.adds
    if contact.unsubscribe:
        assert after.unsubscribe and state is not None
    assert contact.removes <= (state.memberships() if state else frozenset())
    assert not plan_contact(after, confirm(contact, state)).has_work
