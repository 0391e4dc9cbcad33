"""`segflow explain --email X`: why a contact may (not) be emailed, and what each destination holds.

`explain(runtime_or_ports, email)` gathers, for one email: the consent ledger (every record, oldest first),
the state and policy decision it resolves to (recomputed now, with the reasons), eligibility, what the
CONSENT#email item stores, segment memberships (SEGMENTS) and sync state per destination (SYNC#*).
`render(report)` turns that into text. An unknown email is a clear message, never a stack trace.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

from segflow.consent.eligibility import EligibilityConfig, consent_state, evaluate
from segflow.consent.store import DynamoLedger, ledger_pk_for_email, ledger_pk_for_id
from segflow.store.customers import CONSENT, PROFILE, SCORES, SEGMENTS, DynamoCustomerItems
from segflow.store.profiles import DynamoProfileStore

_HIDDEN = ("pk", "sk")
_RECORD_FIELDS = ("timestamp", "status", "source", "lawful_basis", "double_opt_in_confirmed", "region",
                  "preference_level", "reason", "origin", "record_id")
_SYNC_FIELDS = ("status", "destination_id", "synced_at", "tags", "segments", "lists", "fields_hash")


def _stores(runtime_or_ports: Any) -> tuple[Any, Any, Any, datetime]:
    """(customer items, identity resolver, ledger, now) from a LocalRuntime or from ConsentPorts."""
    if hasattr(runtime_or_ports, "table_name"):  # a LocalRuntime (its environment points boto3 at moto)
        import boto3

        table = boto3.resource("dynamodb").Table(runtime_or_ports.table_name)
        now = getattr(runtime_or_ports, "as_of", None) or datetime.now(timezone.utc)
        return DynamoCustomerItems(table), DynamoProfileStore(table), DynamoLedger(table), now
    ports = runtime_or_ports
    return ports.items, ports.identities, ports.ledger, datetime.now(timezone.utc)


def _plain(item: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (item or {}).items() if k not in _HIDDEN}


def _sync(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: item[k] for k in _SYNC_FIELDS if item.get(k) not in (None, [], "")}
    if item.get("last_result_json"):
        try:
            out["last_result"] = json.loads(item["last_result_json"])
        except ValueError:
            out["last_result"] = item["last_result_json"]
    return out


def explain(runtime_or_ports: Any, email: str, *, config: EligibilityConfig | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    config = config or EligibilityConfig()
    normalised = (email or "").strip().lower()
    if "@" not in normalised:
        return {"email": email, "found": False, "message": f"{email!r} is not an email address"}
    items, identities, ledger, default_now = _stores(runtime_or_ports)
    now = now or default_now
    customer_id = identities.resolve("email", [normalised]).get(normalised)
    views = items.get([customer_id]) if customer_id else {}
    view = views.get(customer_id or "", {})
    profile = view.get(PROFILE, {})
    pks = [ledger_pk_for_email(normalised)]
    if customer_id:
        pks += [ledger_pk_for_id(i) for i in [customer_id, *(profile.get("alias_ids") or [])]]
        pks += [ledger_pk_for_email(e) for e in profile.get("alternate_emails") or []]
    records = sorted({r.record_id: r for rs in ledger.records(dict.fromkeys(pks)).values() for r in rs}.values(),
                     key=lambda r: (r.timestamp, r.record_id))
    if not customer_id and not records:
        return {"email": email, "found": False,
                "message": "no customer and no consent records for this email (never seen, or erased)"}

    state, region = consent_state(records, profile.get("country"), config.policy)
    merged = {**_plain(profile), **_plain(view.get(SCORES)), "email": profile.get("email") or normalised}
    eligibility = evaluate(merged, state, None, now, config)
    segments = _plain(view.get(SEGMENTS))
    return {
        "email": email,
        "found": True,
        "customer_id": customer_id,
        "as_of": now.isoformat(),
        "consent_history": [
            {k: v for k, v in r.model_dump(mode="json").items() if k in _RECORD_FIELDS and v not in (None, False)}
            for r in records
        ],
        "consent_state": state.model_dump(mode="json", exclude_none=True),
        "decision": {"region": region, **eligibility.decision.model_dump(mode="json")},
        "eligibility": {"eligible": eligibility.eligible, "reasons": eligibility.reasons,
                        "preference_level": eligibility.preference_level},
        "stored_consent": _plain(view.get(CONSENT)) or None,
        "segments": segments.get("memberships") or {},
        "destinations": {kind.split("#", 1)[1]: _sync(item) for kind, item in view.items() if kind.startswith("SYNC#")},
    }


def _why(reasons: list[str]) -> str:
    return ", ".join(reasons) if reasons else "-"


def render(report: Mapping[str, Any]) -> str:
    if not report.get("found"):
        return f"{report.get('email')}: {report.get('message')}\n"
    lines = [f"{report['email']}  customer: {report.get('customer_id') or '(no profile yet)'}  as of {report['as_of']}"]
    lines.append("")
    lines.append("Consent history (oldest first):")
    for record in report["consent_history"] or [{"status": "(none)"}]:
        extra = " ".join(f"{k}={record[k]}" for k in ("source", "lawful_basis", "region", "reason") if k in record)
        doi = " double-opt-in" if record.get("double_opt_in_confirmed") else ""
        lines.append(f"  {record.get('timestamp', ''):<26} {record['status']:<10} {extra}{doi}")
    state, decision, eligibility = report["consent_state"], report["decision"], report["eligibility"]
    lines.append("")
    lines.append(f"Consent state: {state.get('status')} (basis {state.get('basis') or '-'}, "
                 f"source {state.get('source') or '-'}, since {state.get('at') or '-'})")
    if state.get("destination_opt_out"):
        lines.append(f"  destination opt-out in force: {state.get('destination_opt_out_source')} "
                     f"({state.get('destination_opt_out_reason') or '-'})")
    verdict = f"allowed on {decision.get('basis')}" if decision.get("allowed") else f"refused: {_why(decision.get('reasons', []))}"
    lines.append(f"Policy ({decision.get('region')}): {verdict}")
    status = "eligible" if eligibility["eligible"] else f"not eligible: {_why(eligibility['reasons'])}"
    lines.append(f"Eligibility: {status}; personalisation {eligibility['preference_level']}")
    stored = report.get("stored_consent")
    if stored:
        same = stored.get("eligible") == eligibility["eligible"]
        lines.append(f"Stored (evaluated {stored.get('evaluated_at')}): eligible={stored.get('eligible')}"
                     + ("" if same else "  <- differs from now; the next evaluation updates it"))
    lines.append("")
    segments = report.get("segments") or {}
    lines.append("Segments: " + (", ".join(f"{name} (since {since})" for name, since in sorted(segments.items())) or "none"))
    lines.append("Destinations:")
    for name, sync in sorted((report.get("destinations") or {}).items()):
        parts = [f"{k}={sync[k]}" for k in ("status", "destination_id", "synced_at") if k in sync]
        for k in ("tags", "segments", "lists"):
            if sync.get(k):
                parts.append(f"{k}={','.join(map(str, sync[k]))}")
        lines.append(f"  {name}: " + " ".join(parts))
    if not report.get("destinations"):
        lines.append("  nothing synced yet")
    return "\n".join(lines) + "\n"
