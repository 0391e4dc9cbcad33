"""The profile view a segment evaluation sees: nightly scores overlaid with real-time activity.

`activity_view(view, state, now, nightly)` returns the view with the activity aggregates, trigger flags
and (given the nightly RFM thresholds) RFM values refreshed at `now` by segflow.segments.realtime.refresh.

The nightly SCORES item holds aggregates at the nightly run's as_of, not the records behind them. When the
score step also stores the nightly activity state on it (`activity_state`, as
segflow.scoring.activity_batch.compute_states gives, dict or JSON), the two states are merged and every
aggregate is exact. Without it:
- last-* timestamps, days_since_*, cart_open, cart_abandoned and inactive_30d stay exact (they need only
  the latest timestamps, which the nightly view carries);
- windowed counts and sums are the nightly value plus the real-time records dated after the nightly as_of
  (records that slid out of a window since as_of still count until the next nightly run);
- browse_abandoned and open_no_click keep the nightly answer unless real-time activity since as_of
  decides otherwise (a purchase, a click), or the real-time records alone satisfy them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segflow.segments import activity, realtime
from segflow.segments.timeutil import to_us
from segflow.segments.triggers import DEFAULT_TRIGGERS, TriggerSettings

ADDITIVE_COUNTS = ("orders_30d", "orders_90d", "opens_14d", "clicks_14d", "views_7d", "cart_adds_7d")
ADDITIVE_SUMS = ("spend_30d", "spend_90d", "spend_365d")
NIGHTLY_STATE_FIELD = "activity_state"
RFM_KEYS = ("recency_days", "frequency", "monetary")


@dataclass(frozen=True)
class Nightly:
    """What the last nightly scoring run left for real-time refreshes (scores/thresholds/latest.json)."""

    rfm_thresholds: Mapping[str, Any] | None = None
    as_of: Any = None
    rfm_grid: Sequence[Sequence[str]] | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> Nightly:
        """From the score step's thresholds document: {"rfm": rfm_thresholds, "as_of"?, "rfm_grid"?, ...}.

        A bare rfm_thresholds dict (with "recency_days" at the top) is accepted too.
        """
        if not document:
            return cls()
        rfm = document.get("rfm") if "rfm" in document else document
        if not isinstance(rfm, Mapping) or not all(k in rfm for k in RFM_KEYS):
            rfm = None
        grid = document.get("rfm_grid")
        rows = grid if isinstance(grid, list) and len(grid) == 5 else []
        valid_grid = bool(rows) and all(isinstance(r, list) and len(r) == 5 for r in rows)
        return cls(rfm, document.get("as_of"), grid if valid_grid else None)


def activity_view(
    view: Mapping[str, Any],
    state: Mapping[str, Any] | None,
    now: Any,
    nightly: Nightly = Nightly(),
    settings: TriggerSettings = DEFAULT_TRIGGERS,
) -> dict[str, Any]:
    """The view to evaluate; unchanged when there is neither real-time nor nightly activity state."""
    nightly_state = _nightly_state(view)
    if not state and nightly_state is None:
        return dict(view)
    as_of = nightly.as_of or view.get("scored_at")
    merged = activity.merge_states(nightly_state, state)
    fields = realtime.refresh(view, merged, now, nightly.rfm_thresholds, as_of, nightly.rfm_grid, settings)
    if nightly_state is None:
        fields.update(_windows_without_nightly_state(view, fields, state, now, as_of, settings))
    return {**view, **fields}


def _windows_without_nightly_state(
    view: Mapping[str, Any],
    fields: Mapping[str, Any],
    state: Mapping[str, Any] | None,
    now: Any,
    as_of: Any,
    settings: TriggerSettings,
) -> dict[str, Any]:
    after = activity.aggregates(_records_after(state, as_of), now, settings)
    combined: dict[str, Any] = {name: _number(view.get(name)) + after[name] for name in ADDITIVE_COUNTS}
    for name in ADDITIVE_SUMS:
        combined[name] = round(float(_number(view.get(name))) + after[name], 4)
    if _number(view.get("max_product_views_7d")) >= after["max_product_views_7d"]:
        combined["max_product_views_7d"] = _number(view.get("max_product_views_7d"))
        combined["top_viewed_product_7d"] = view.get("top_viewed_product_7d")
    else:
        combined["max_product_views_7d"] = after["max_product_views_7d"]
        combined["top_viewed_product_7d"] = after["top_viewed_product_7d"]
    purchased_since = after["last_purchase_at"] is not None
    clicked_since = after["clicks_14d"] > 0
    combined["browse_abandoned"] = bool(fields["browse_abandoned"]) or (
        view.get("browse_abandoned") is True and not purchased_since
    )
    if settings.open_no_click.window_days == 14:
        combined["open_no_click"] = (
            combined["clicks_14d"] == 0 and combined["opens_14d"] >= settings.open_no_click.min_opens
        )
    else:
        combined["open_no_click"] = bool(fields["open_no_click"]) or (
            view.get("open_no_click") is True and not clicked_since
        )
    return combined


def _records_after(state: Mapping[str, Any] | None, as_of: Any) -> dict[str, Any]:
    """The real-time records the nightly run cannot have seen (all of them when as_of is unknown)."""
    copied = activity.copy_state(state)
    cutoff = to_us(as_of)
    if cutoff is None:
        return {**copied, "pruned": {}}
    return {
        "orders": {k: v for k, v in copied["orders"].items() if v[0] > cutoff},
        "events": {k: v for k, v in copied["events"].items() if v[0] > cutoff},
        "pruned": {},
    }


def _nightly_state(view: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = view.get(NIGHTLY_STATE_FIELD)
    if isinstance(raw, str) and raw:
        raw = json.loads(raw)
    return activity.copy_state(raw) if isinstance(raw, Mapping) else None


def _number(value: Any) -> int | float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else 0
