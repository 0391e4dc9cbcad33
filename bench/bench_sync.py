"""Sync: API calls per contact for a full sync and for a 1 % change, throughput against the rate limit.

Calls bench/sync_calls.py's measurements (fake Mailchimp and HubSpot over loopback HTTP, the shipped
segments file): `incremental` for the call counts, `throughput` for HubSpot's sustained rate against the
fake's enforced window (virtual clock). Counts are deterministic for a seed, so one run is enough.

    python bench/bench_sync.py --contacts 1000
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lib.child import run_child
from lib.data import customers_for
from lib.report import FixedRow, SizeRow, error_text, table, verdict

CHANGE_KINDS = ("membership", "fields", "mixed")


def measure(
    contacts: int, rate_contacts: int, margins: tuple[float, ...] = (0.9,), seed: int = 3
) -> dict[str, Any]:
    """(child process) Calls per contact per destination, and the rate as a share of the ceiling."""
    from segflow.segments.config import load_segments
    from segflow.sync.desired import SyncConfig
    from sync_calls import DESTINATIONS, incremental, throughput

    config = SyncConfig.from_segments(load_segments())
    inc = incremental(config, contacts, seed)
    per_destination = {}
    for destination in DESTINATIONS:
        row = inc[destination]
        per_destination[destination] = {
            "full_requests": row["full"]["requests"],
            "full_per_contact": row["full"]["requests"] / contacts,
            "full_wall_s": row["full"]["seconds"],
            "unchanged_requests": row["unchanged"],
            "changes": {
                kind: {
                    "changed_contacts": row[kind]["k"],
                    "requests": row[kind]["requests"],
                    "per_changed_contact": row[kind]["requests"] / row[kind]["k"],
                    "share_of_full": row[kind]["requests"] / row["full"]["requests"],
                }
                for kind in CHANGE_KINDS
            },
        }
    rates = [throughput(config, rate_contacts, margin) for margin in margins] if rate_contacts else []
    return {
        "contacts": contacts,
        "subscribable": inc["subscribable"],
        "destinations": per_destination,
        "rate": [
            {k: r[k] for k in ("margin", "requests", "virtual_s", "rate", "share", "throttled", "wall_s")}
            for r in rates
        ],
        "rate_contacts": rate_contacts,
        "ceiling_per_second": 10.0,  # the fake HubSpot's window: 100 requests per 10 s
    }


def run(
    sizes: list[int], max_contacts: int, rate_contacts: int, timeout: float | None = None
) -> dict[str, Any]:
    """One contact per generated customer (about a tenth of the orders), up to max_contacts."""
    out: dict[str, Any] = {"sizes": {}, "skipped": {}, "rate": [], "rate_contacts": rate_contacts}
    for orders in sizes:
        contacts = customers_for(orders)
        if contacts > max_contacts:
            out["skipped"][str(orders)] = (
                f"{contacts:,} contacts not run (cap {max_contacts:,}): calls per contact are set by the batch "
                "sizes (500 per Mailchimp call, 100 per HubSpot call), not by the audience size"
            )
            continue
        rate = 0 if out["rate"] else rate_contacts  # the rate does not depend on the size: measured once
        child = run_child(
            "bench_sync:measure", {"contacts": contacts, "rate_contacts": rate}, timeout=timeout
        )
        if child.error:
            out["sizes"][str(orders)] = {"error": child.error}
            continue
        out["rate"] = out["rate"] or child.result.pop("rate")
        out["sizes"][str(orders)] = child.result
    return out


def headline(result: dict[str, Any]) -> tuple[list[SizeRow], list[FixedRow]]:
    full = SizeRow("Sync", "API calls per contact, full sync: Mailchimp / HubSpot")
    change = SizeRow(
        "Sync", "API calls for a 1 % change (mixed fields + memberships) ÷ full sync: Mailchimp / HubSpot"
    )
    unchanged = SizeRow("Sync", "API calls for an unchanged re-sync: Mailchimp / HubSpot", target="0")
    zero = []
    for size, r in result["sizes"].items():
        n = int(size)
        if "error" in r:
            full.values[n] = change.values[n] = unchanged.values[n] = "failed"
            continue
        mc, hs = r["destinations"]["mailchimp"], r["destinations"]["hubspot"]
        full.values[n] = f"{mc['full_per_contact']:.3f} / {hs['full_per_contact']:.3f}"
        change.values[n] = (
            f"{mc['changes']['mixed']['share_of_full']:.1%} / {hs['changes']['mixed']['share_of_full']:.1%}"
        )
        unchanged.values[n] = f"{mc['unchanged_requests']} / {hs['unchanged_requests']}"
        zero.append(mc["unchanged_requests"] == 0 and hs["unchanged_requests"] == 0)
    for size in result["skipped"]:
        full.values[int(size)] = change.values[int(size)] = unchanged.values[int(size)] = "not run (see Sync)"
    unchanged.verdict = verdict(all(zero)) if zero else verdict(None)
    fixed = [
        FixedRow(
            "Sync",
            f"HubSpot sustained rate ÷ enforced limit (client margin {r['margin']})",
            f"{r['share']:.1%} ({r['rate']:.2f} of 10 requests/s), {r['throttled']} × 429",
            "close to the margin, no 429",
            verdict(r["throttled"] == 0 and r["share"] >= r["margin"] * 0.9),
        )
        for r in result["rate"]
    ]
    return [full, change, unchanged], fixed


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        "bench/sync_calls.py's `incremental` and `throughput` against the fake Mailchimp and HubSpot servers",
        "(real HTTP on loopback, the shipped segments file), one contact per generated customer. A 1 % change:",
        "1 % of contacts leave one segment and join another (membership), change two merge fields (fields), or",
        "half and half (mixed). The HubSpot rate is measured on the fake's virtual clock against its enforced",
        "window of 100 requests per 10 s. Counts are deterministic for the seed: one run per size.",
        "",
    ]
    rows = []
    for size, r in result["sizes"].items():
        if "error" in r:
            rows.append([f"{int(size):,}", "", "failed", "", "", "", "", error_text(r["error"])])
            continue
        for destination, d in r["destinations"].items():
            c = d["changes"]
            rows.append(
                [
                    f"{int(size):,}",
                    f"{r['contacts']:,}",
                    destination,
                    d["full_requests"],
                    f"{d['full_per_contact']:.3f}",
                    d["unchanged_requests"],
                    " / ".join(f"{c[k]['requests']} ({c[k]['share_of_full']:.1%})" for k in CHANGE_KINDS),
                    " / ".join(f"{c[k]['per_changed_contact']:.2f}" for k in CHANGE_KINDS),
                ]
            )
    lines += table(
        [
            "orders",
            "contacts",
            "destination",
            "full sync calls",
            "calls per contact",
            "unchanged re-sync",
            "1 % change calls (share of full): membership / fields / mixed",
            "calls per changed contact: membership / fields / mixed",
        ],
        rows,
    )
    rate_rows = [
        [
            r["margin"],
            r["requests"],
            f"{r['virtual_s']:.0f}",
            f"{r['rate']:.2f}",
            f"{r['share']:.1%}",
            r["throttled"],
            f"{r['wall_s']:.1f}",
        ]
        for r in result["rate"]
    ]
    if rate_rows:
        lines += ["", f"HubSpot sustained rate, one full sync of {result['rate_contacts']:,} contacts:", ""]
        lines += table(
            ["client margin", "requests", "virtual s", "requests/s", "share of limit", "429s", "wall s"],
            rate_rows,
        )
    for size, reason in result["skipped"].items():
        lines.append(f"\n{int(size):,} orders: {reason}.")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000)
    parser.add_argument("--rate-contacts", type=int, default=3_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.contacts, args.rate_contacts), indent=2))


if __name__ == "__main__":
    main()
