"""API sizes that shape work items and call estimates (mirrors of the destination clients' constants).

Kept here so the planner stays free of HTTP libraries; a unit test checks they match the clients.
"""

from __future__ import annotations

MAILCHIMP = "mailchimp"
HUBSPOT = "hubspot"
DESTINATIONS = (MAILCHIMP, HUBSPOT)

MAILCHIMP_MEMBER_BATCH = 500  # members per batch subscribe call
MAILCHIMP_SEGMENT_CHANGE = 500  # adds (and removes) per static segment call
HUBSPOT_UPSERT_BATCH = 100  # inputs per batch upsert call
HUBSPOT_MEMBERSHIP_CHUNK = 1_000  # record ids per list membership call

# Contacts per work item: one member batch (Mailchimp) or one upsert batch (HubSpot), so an item's
# membership changes also fit in one call per tag, segment or list.
CONTACTS_PER_ITEM = {MAILCHIMP: MAILCHIMP_MEMBER_BATCH, HUBSPOT: HUBSPOT_UPSERT_BATCH}


def check_destination(destination: str) -> str:
    if destination not in DESTINATIONS:
        raise ValueError(f"unknown destination {destination!r} (known: {', '.join(DESTINATIONS)})")
    return destination


def ceil_div(count: int, size: int) -> int:
    return -(-count // size)
