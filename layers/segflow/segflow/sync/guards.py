"""Build the applier's Guard from fresh profile views and the consent checks (injected, so segflow.sync does
not depend on segflow.consent): the guard fails closed on anything it cannot prove."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from segflow.sync.desired import DesiredContact
from segflow.sync.ports import Guard
from segflow.sync.state import SyncState

PushCheck = Callable[[Mapping[str, Any]], bool]  # e.g. segflow.consent.may_push
SubscribeCheck = Callable[[Mapping[str, Any], str | None], bool]  # e.g. segflow.consent.may_subscribe_new


def guard_from_views(
    views: Mapping[str, Mapping[str, Any]],
    may_push: PushCheck,
    may_subscribe_new: SubscribeCheck | None = None,
    states: Mapping[str, SyncState] | None = None,
) -> Guard:
    """A Guard reading each contact's view (by customer id) as loaded right before applying.

    Refuses when the view is missing, its email differs from the one about to be sent, `may_push` says
    no, or (for a contact that would be subscribed if new) `may_subscribe_new` says no. The destination
    status from `states` is handed to the checks as `destination_status`.
    """

    def guard(contact: DesiredContact) -> bool:
        try:
            view = views.get(contact.customer_id)
            if view is None or str(view.get("email") or "").strip().lower() != contact.email:
                return False
            state = (states or {}).get(contact.customer_id)
            status = state.status if state is not None else None
            checked = {**view, "destination_status": status or view.get("destination_status")}
            if not may_push(checked):
                return False
            if contact.subscribe_if_new and may_subscribe_new is not None:
                return bool(may_subscribe_new(checked, status))
            return True
        except Exception:  # a guard that cannot decide refuses
            return False

    return guard
