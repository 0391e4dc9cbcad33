"""A synthetic run output folder with every report input, for previewing the report and for its tests.

The profiles carry fake emails, names and phone numbers on purpose: the report must never show them.
Usage: python -m segflow_local.report.sample OUT_DIR [CUSTOMERS]  (writes the inputs and report.html)
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segflow.scoring.rfm_segments import segment_grid

from segflow_local.report.profile_stats import FUNNEL_STAGES

CLUSTERS = {  # label -> (recency days, orders, spend) centres
    "Big spenders": (20, 9, 900.0),
    "Loyal regulars": (35, 6, 320.0),
    "Recent first-timers": (15, 1, 60.0),
    "Lapsed": (260, 2, 110.0),
    "Dormant": (420, 1, 40.0),
}
SEGMENTS = [
    ("vip", "Top spenders in the last year"),
    ("winback_90d", "Bought before, nothing in 90 days"),
    ("newsletter", "Opted in to the newsletter"),
    ("cart_abandoners", "Added to cart in the last 7 days without buying"),
]
DESTINATIONS = ("mailchimp", "hubspot")


def sample_profiles(customers: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rfm_names = segment_grid()
    labels = list(CLUSTERS)
    profiles = []
    for i in range(customers):
        label = rng.choices(labels, weights=[1, 3, 2, 3, 2])[0]
        recency, orders, spend = CLUSTERS[label]
        r = max(1, min(5, 5 - int(recency / 90) + rng.choice((-1, 0, 0, 1))))
        f = max(1, min(5, int(orders / 2) + rng.choice((0, 1))))
        clv = round(spend * rng.uniform(0.5, 1.6), 2)
        churn = round(min(max(recency / 500 + rng.uniform(-0.2, 0.2), 0.0), 1.0), 3)
        eligible = rng.random() > 0.15
        consent = "opted_in" if rng.random() > 0.3 else "opted_out"
        segments = [{"name": name, "since": "2026-10-01"} for name, _ in SEGMENTS if rng.random() < 0.3]
        profiles.append(
            {
                "customer_id": f"C{i:08d}",
                "email": f"person{i}@example.com" if rng.random() > 0.05 else None,
                "first_name": f"Firstname{i}",
                "last_name": f"Lastname{i}",
                "phone": f"+44 20 7946 {i % 10000:04d}",
                "country": rng.choice(("GB", "DE", "FR", "NL")),
                "recency_days": max(0, int(rng.gauss(recency, recency / 4))),
                "frequency": max(1, int(rng.gauss(orders, 1))),
                "monetary": round(max(5.0, rng.gauss(spend, spend / 5)), 2),
                "r_score": r,
                "f_score": f,
                "m_score": rng.randint(1, 5),
                "rfm_segment": str(rfm_names[r - 1, f - 1]),
                "cluster_id": labels.index(label),
                "cluster_label": label,
                "clv_predicted": clv,
                "clv_tier": "high" if clv > 500 else "medium" if clv > 150 else "low",
                "churn_probability": churn,
                "churn_risk": "high" if churn > 0.6 else "medium" if churn > 0.3 else "low",
                "segments": segments,
                "consent_status": consent,
                "eligible": eligible,
                "ineligible_reasons": []
                if eligible
                else [rng.choice(("suppressed", "hard_bounce", "erased"))],
                "sync": {
                    d: {"status": "synced" if consent == "opted_in" and eligible else "skipped"}
                    for d in DESTINATIONS
                },
            }
        )
    return profiles


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def write_sample_run(out_dir: Path, customers: int = 600, seed: int = 7) -> dict[str, Any]:
    """Write profiles.jsonl, accounting.json, quarantine/, segments.json and sync-log.jsonl; return the
    profiles and the expected headline numbers so tests can compare the page against them."""
    rng = random.Random(seed + 1)
    profiles = sample_profiles(customers, seed)
    write_jsonl(out_dir / "profiles.jsonl", profiles)
    drops: list[dict[str, Any]] = []
    quarantine_rows: dict[str, list[dict[str, Any]]] = {}
    for dataset, rows_in in (
        ("customers", customers + 40),
        ("orders", customers * 6),
        ("events", customers * 12),
    ):
        bad = [
            {
                "file": f"raw/{dataset}/drop-001/{dataset}.csv",
                "dataset": dataset,
                "drop_id": f"{dataset}-1",
                "row": n,
                "reasons": [
                    {
                        "field": "email",
                        "rule": "email_syntax",
                        "value": f"bad{n}@@example",
                        "message": f"invalid email bad{n}@@example",
                    }
                ],
                "record": {"email": f"bad{n}@@example", "first_name": "QuarantinedPerson"},
            }
            for n in range(rng.randint(5, 30))
        ]
        bad += [
            {
                "file": f"raw/{dataset}/drop-001/{dataset}.csv",
                "dataset": dataset,
                "drop_id": f"{dataset}-1",
                "row": 1000 + n,
                "reasons": [
                    {
                        "field": "date",
                        "rule": "date_parse",
                        "value": "2024-13-45",
                        "message": "unrecognised date",
                    }
                ],
                "record": {},
            }
            for n in range(rng.randint(1, 10))
        ]
        quarantine_rows[dataset] = bad
        merged = rng.randint(0, 25) if dataset == "customers" else 0
        pending = rng.randint(0, rows_in // 20) if dataset != "customers" else 0
        drops.append(
            {
                "drop_id": f"{dataset}-1",
                "dataset": dataset,
                "source_key": f"raw/{dataset}/drop-001/{dataset}.csv",
                "rows_in": rows_in,
                "clean": rows_in - len(bad) - merged - pending,
                "merged": merged,
                "quarantined": len(bad),
                "pending": pending,
                "file_quarantined": False,
                "file_reason": None,
                "quarantine_rules": {"email_syntax": len(bad)},
                "warning_rules": {"phone_format": 3},
                "attached": {},
            }
        )
    drops.append(
        {
            "drop_id": "consent-2",
            "dataset": "consent",
            "source_key": "raw/consent/drop-002/consent.xlsx",
            "rows_in": 0,
            "clean": 0,
            "merged": 0,
            "quarantined": 0,
            "pending": 0,
            "file_quarantined": True,
            "file_reason": "unsupported_format",
            "quarantine_rules": {},
            "warning_rules": {},
            "attached": {},
        }
    )
    totals: dict[str, dict[str, int]] = {}
    for drop in drops:
        row = totals.setdefault(
            drop["dataset"], dict.fromkeys(("rows_in", "clean", "merged", "quarantined", "pending"), 0)
        )
        for key in row:
            row[key] += drop[key]
    (out_dir / "accounting.json").write_text(json.dumps({"drops": drops, "totals": totals}, indent=2))
    for dataset, rows in quarantine_rows.items():
        write_jsonl(out_dir / "quarantine" / f"{dataset}.jsonl", rows)
    members = {
        name: [p["customer_id"] for p in profiles if any(s["name"] == name for s in p["segments"])]
        for name, _ in SEGMENTS
    }
    (out_dir / "segments.json").write_text(
        json.dumps(
            {
                "segments": [
                    {"name": name, "description": text, "rule": "true", "members": members[name]}
                    for name, text in SEGMENTS
                ]
            }
        )
    )
    write_jsonl(
        out_dir / "sync-log.jsonl",
        (
            {
                "drop": "drop-001",
                "destination": d,
                "run_id": f"run-{k}",
                "contacts_pushed": rng.randint(50, 400),
                "api_calls": rng.randint(2, 9),
                "retries": rng.randint(0, 2),
                "errors": rng.randint(0, 1),
                "duration_s": round(rng.uniform(0.5, 4.0), 2),
            }
            for k in range(2)
            for d in DESTINATIONS
        ),
    )
    return {
        "profiles": profiles,
        "segment_sizes": {n: len(m) for n, m in members.items()},
        "funnel_stages": ("all",) + FUNNEL_STAGES,
    }


def main(argv: list[str]) -> int:
    from segflow_local.report.build import build_report

    out = Path(argv[0])
    write_sample_run(out, customers=int(argv[1]) if len(argv) > 1 else 600)
    print(build_report(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
