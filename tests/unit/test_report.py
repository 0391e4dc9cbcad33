"""The run report: builds from any subset of run outputs, shows the right numbers, leaks no PII, escapes."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from segflow_local.report import build_report
from segflow_local.report.build import read_figures
from segflow_local.report.profile_stats import profile_stats
from segflow_local.report.quality import add_quarantine_rows, from_accounting
from segflow_local.report.sample import write_jsonl, write_sample_run
from segflow_local.report.text import REDACTED, safe_label

SECTION_IDS = ("segments", "rfm", "clusters", "value", "funnel", "quality", "sync")
MALICIOUS = "<script>alert(1)</script>"
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


class Page(HTMLParser):
    """Just enough structure to assert on: sections, svg charts, table cells and visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}  # id -> data-available
        self.svgs: list[dict[str, str | None]] = []
        self.svg_titles = 0
        self.tags: Counter[str] = Counter()
        self.text: list[str] = []
        self._stack: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if tag == "section" and a.get("id") in SECTION_IDS:
            self.sections[str(a["id"])] = str(a.get("data-available"))
        if tag == "svg":
            self.svgs.append(a)
        if tag == "title" and self._stack and self._stack[-1] == "svg":
            self.svg_titles += 1
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._stack and self._stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if "style" not in self._stack:
            self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def build(out: Path, **kwargs: Any) -> tuple[str, Page]:
    path = build_report(out, generated_at=WHEN, **kwargs)
    assert path == out / "report.html"
    html = path.read_text(encoding="utf-8")
    return html, Page(html)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("run")
    return out, write_sample_run(out, customers=300, seed=11)


def test_full_run_has_every_section_with_accessible_charts(sample: tuple[Path, dict[str, Any]]) -> None:
    out, _ = sample
    html, page = build(out, run_summary={"seconds": 12.34, "as_of": "2026-11-01"})
    assert page.sections == {sid: "yes" for sid in SECTION_IDS}
    assert "not available yet" not in html.lower()
    # segments, heatmap, 4 cluster charts, clv tiers, churn risk, churn histogram, funnel, data quality
    assert len(page.svgs) == 11
    assert all(s.get("role") == "img" and s.get("aria-label") for s in page.svgs)
    assert page.svg_titles == len(page.svgs)
    assert "12.3 s" in page.all_text and "as of 2026-11-01" in page.all_text


def test_report_is_self_contained(sample: tuple[Path, dict[str, Any]]) -> None:
    html, page = build(sample[0])
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert page.tags["script"] == 0 and page.tags["link"] == 0 and page.tags["img"] == 0
    assert "src=" not in html


def test_numbers_match_the_inputs(sample: tuple[Path, dict[str, Any]]) -> None:
    out, expected = sample
    _, page = build(out)
    text = page.all_text
    profiles = expected["profiles"]
    assert f"{len(profiles):,} Customer profiles" in text
    for name, size in expected["segment_sizes"].items():
        assert re.search(rf"\b{re.escape(name)} {size:,} ", text), name
    champions = sum(1 for p in profiles if (p["r_score"], p["f_score"]) == (5, 5))
    assert f"Recency score R5, Frequency score F5: {champions:,} customers" in text
    consented = sum(1 for p in profiles if p["email"] and p["eligible"] and p["consent_status"] == "opted_in")
    assert f"Consented {consented:,} " in text
    accounting = json.loads((out / "accounting.json").read_text())
    rows_in = sum(t["rows_in"] for t in accounting["totals"].values())
    assert f"{rows_in:,} Rows received" in text
    pushed: dict[str, int] = {}
    for line in (out / "sync-log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        pushed[entry["destination"]] = pushed.get(entry["destination"], 0) + entry["contacts_pushed"]
    for destination, total in pushed.items():
        assert re.search(rf"{destination} \d+ {total:,} ", text), destination


def test_no_contact_details_reach_the_page(sample: tuple[Path, dict[str, Any]]) -> None:
    out, expected = sample
    html, page = build(out)
    for profile in expected["profiles"]:
        for key in ("email", "first_name", "last_name", "phone"):
            if profile[key]:
                assert profile[key] not in html, key
    # nor the offending values that quarantine rows keep (bad1@@example)
    assert "@" not in page.all_text and not re.search(r"[\w.+-]@", html)
    assert "QuarantinedPerson" not in html


def test_malicious_labels_are_escaped(tmp_path: Path) -> None:
    write_sample_run(tmp_path, customers=40)
    (tmp_path / "segments.json").write_text(
        json.dumps(
            [
                {
                    "name": MALICIOUS,
                    "description": f"<img src=x onerror=alert(2)> {MALICIOUS}",
                    "members": ["C1", "C2"],
                }
            ]
        )
    )
    profiles = [
        dict(json.loads(line), cluster_label=MALICIOUS, clv_tier='"><b>x</b>')
        for line in (tmp_path / "profiles.jsonl").read_text().splitlines()
    ]
    write_jsonl(tmp_path / "profiles.jsonl", profiles)
    write_jsonl(tmp_path / "sync-log.jsonl", [{"destination": MALICIOUS, "contacts_pushed": 3}])
    html, page = build(tmp_path)
    assert MALICIOUS not in html and "<img" not in html and "<b>x</b>" not in html
    assert page.tags["script"] == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert MALICIOUS in page.all_text  # shown as text, in tables and charts alike
    assert html.count("&lt;script&gt;") >= 4


def test_contact_details_in_labels_are_redacted(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "profiles.jsonl",
        [
            {
                "customer_id": "C1",
                "cluster_label": "owner jane.doe@example.com",
                "churn_risk": "+44 20 7946 0958",
            },
        ],
    )
    (tmp_path / "segments.json").write_text(json.dumps({"segments": [{"name": "vip of bob@example.org"}]}))
    html, page = build(tmp_path)
    assert "jane.doe@example.com" not in html and "bob@example.org" not in html and "7946" not in html
    assert page.all_text.count(REDACTED) >= 3


def test_empty_out_dir_builds_with_every_section_waiting(tmp_path: Path) -> None:
    html, page = build(tmp_path)
    assert page.sections == {sid: "no" for sid in SECTION_IDS}
    assert page.all_text.count("Not available yet.") == len(SECTION_IDS)
    assert page.svgs == []
    assert "Run summary" in page.all_text


def test_partial_profiles_fill_only_their_sections(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "profiles.jsonl",
        [
            {"customer_id": "C1", "r_score": 5, "f_score": 5, "rfm_segment": "Champions"},
            {"customer_id": "C2", "r_score": 1, "f_score": 1, "rfm_segment": "Hibernating"},
        ],
    )
    _, page = build(tmp_path)
    assert page.sections["rfm"] == "yes"
    assert {sid for sid, available in page.sections.items() if available == "no"} == set(SECTION_IDS) - {
        "rfm"
    }
    assert len(page.svgs) == 1


def test_damaged_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "profiles.jsonl").write_text(
        '{"customer_id": "C1", "cluster_label": "A"}\n{broken\n[1, 2]\n\n'
    )
    (tmp_path / "accounting.json").write_text("{not json")
    _, page = build(tmp_path)
    assert "1 Customer profiles" in page.all_text
    assert "profiles.jsonl: 2 unreadable line(s) skipped" in page.all_text
    assert "accounting.json: could not be read" in page.all_text
    assert page.sections["clusters"] == "yes"


def test_funnel_narrows_and_skips_stages_without_data() -> None:
    stats = profile_stats(
        [
            {"email": "a@example.com", "eligible": True, "consent_status": "opted_in"},
            {"email": "b@example.com", "eligible": True, "consent_status": "opted_out"},
            {"email": "c@example.com", "eligible": False, "consent_status": "opted_in"},
            {"email": "not-an-email", "eligible": True, "consent_status": "opted_in"},
            {"email": None, "eligible": True, "consent_status": "opted_in"},
            {
                "email": "d@example.com",
                "eligible": True,
                "consent_status": "opted_in",
                "ineligible_reasons": ["invalid_email"],
            },
        ]
    )
    assert stats.funnel() == [("all", 6), ("valid_email", 3), ("eligible", 2), ("consented", 1)]


def test_funnel_counts_synced_contacts_per_destination_status() -> None:
    base = {"email": "a@example.com", "eligible": True, "consent_status": "opted_in"}
    stats = profile_stats(
        [
            {**base, "sync": {"mailchimp": {"status": "synced"}, "hubspot": {"status": "failed"}}},
            {**base, "sync": {"mailchimp": {"status": "pending"}}},
        ]
    )
    assert stats.funnel()[-1] == ("synced", 1)
    assert stats.sync_statuses == {"mailchimp": Counter(synced=1, pending=1), "hubspot": Counter(failed=1)}


def test_cluster_means_and_churn_histogram() -> None:
    stats = profile_stats(
        [
            {"cluster_label": "A", "monetary": 10, "frequency": 1, "churn_probability": 0.05},
            {"cluster_label": "A", "monetary": 30, "frequency": "3", "churn_probability": 1.0},
            {"cluster_id": 2, "monetary": "n/a", "churn_probability": 0.55},
        ]
    )
    assert stats.clusters["A"].size == 2 and stats.clusters["A"].means["monetary"].value == 20
    assert stats.clusters["A"].means["frequency"].value == 2
    assert stats.clusters["Cluster 2"].means["monetary"].count == 0
    assert stats.churn_histogram == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]


def test_quarantine_rows_replace_accounting_rule_counts_per_dataset() -> None:
    quality = from_accounting(
        {
            "drops": [
                {
                    "dataset": "orders",
                    "source_key": "raw/orders/d1/o.csv",
                    "rows_in": 10,
                    "quarantined": 3,
                    "quarantine_rules": {"date_parse": 3},
                },
                {
                    "dataset": "events",
                    "source_key": "raw/events/d1/e.csv",
                    "rows_in": 5,
                    "quarantined": 1,
                    "quarantine_rules": {"event_type": 1},
                },
            ]
        }
    )
    assert quality.totals["orders"]["rows_in"] == 10  # totals summed from drops when absent
    add_quarantine_rows(
        quality,
        "orders",
        [
            {
                "reasons": [
                    {"field": "order_date", "rule": "date_parse"},
                    {"field": "total", "rule": "numeric"},
                ]
            },
            {"reasons": [{"field": "order_date", "rule": "date_parse"}]},
            {"reasons": "garbage"},
        ],
    )
    assert quality.reasons == Counter(
        {
            ("orders", "order_date", "date_parse"): 2,
            ("orders", "total", "numeric"): 1,
            ("orders", "—", "unknown"): 1,
            ("events", "—", "event_type"): 1,
        }
    )


def test_segment_sizes_fall_back_to_profile_memberships(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "profiles.jsonl",
        [
            {"customer_id": "C1", "segments": [{"name": "vip", "since": "2026-01-01"}, {"name": "new"}]},
            {"customer_id": "C2", "segments": {"vip": "2026-02-01"}},
            {"customer_id": "C3", "segments": []},
        ],
    )
    figures = read_figures(tmp_path)
    assert figures.stats is not None and figures.stats.segment_members == Counter(vip=2, new=1)
    _, page = build(tmp_path)
    assert page.sections["segments"] == "yes"
    assert re.search(r"vip 2 66\.7%", page.all_text)


@pytest.mark.parametrize("label", ["Jane.Doe@example.com", "call +44 20 7946 0958", "tel 020-7946-0958"])
def test_safe_label_redacts_contact_details(label: str) -> None:
    assert REDACTED in safe_label(label)


@pytest.mark.parametrize(
    "label", ["Can't Lose Them", "winback_90d", "orders-orders-0afe489908aa", "2024-05-12"]
)
def test_safe_label_keeps_ordinary_labels(label: str) -> None:
    assert safe_label(label) == label
