"""Turn the run's figures into report sections: a title, charts, tables and notes each.

A section whose input is absent is returned with `available=False` and says what it waits for; the
template renders every section the same way, so this module decides all content and wording.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from segflow_local.report import charts
from segflow_local.report.charts import Bar, Chart
from segflow_local.report.profile_stats import FUNNEL_STAGES, Group, ProfileStats
from segflow_local.report.quality import OUTCOMES, Quality
from segflow_local.report.sync_stats import DestinationTotals
from segflow_local.report.text import fmt_int, fmt_num, fmt_pct, humanize, safe_label

TOP_REASONS = 10
GRID_WIDTH = 540  # charts shown two per row
OUTCOME_COLOURS = {"clean": "#16a34a", "merged": "#0ea5e9", "quarantined": "#dc2626", "pending": "#f59e0b"}
FUNNEL_LABELS = {
    "all": "All contacts",
    "valid_email": "With a valid email",
    "eligible": "Eligible",
    "consented": "Consented",
    "synced": "Synced",
}


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # right-aligned column indexes


@dataclass
class Section:
    id: str
    title: str
    available: bool = True
    waiting_for: str = ""  # shown with "not available yet"
    intro: str = ""
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _missing(section_id: str, title: str, waiting_for: str) -> Section:
    return Section(section_id, title, available=False, waiting_for=waiting_for)


def _share_bars(
    counts: Sequence[tuple[str, int]], total: int, colours: Sequence[str] | None = None
) -> list[Bar]:
    return [
        Bar(label, value, colours[i] if colours else None, f"  ({fmt_pct(value, total)})" if total else "")
        for i, (label, value) in enumerate(counts)
    ]


# --- segments -------------------------------------------------------------------------------------------


def segments_section(definitions: list[dict[str, Any]] | None, stats: ProfileStats | None) -> Section:
    title = "Segment sizes"
    profiles = stats.total if stats else 0
    if definitions is not None:
        sizes = [
            (safe_label(d.get("name") or "unnamed"), _member_count(d), safe_label(d.get("description") or ""))
            for d in definitions
        ]
        source = "segments.json"
    elif stats and "segments" in stats.seen:
        sizes = [(safe_label(name), n, "") for name, n in stats.segment_members.items()]
        source = "the segments recorded on each profile"
    else:
        return _missing("segments", title, "segments.json or segment memberships on profiles")
    if not sizes:
        return Section("segments", title, intro=f"{source} lists no segments yet.")
    sizes.sort(key=lambda s: (-s[1], s[0]))
    chart = charts.hbar_chart(_share_bars([(n, v) for n, v, _ in sizes], profiles), "Customers per segment")
    rows = [[name, fmt_int(n), fmt_pct(n, profiles), description] for name, n, description in sizes]
    table = Table(
        "Segment membership", ["Segment", "Customers", "Share of profiles", "Description"], rows, {1, 2}
    )
    return Section(
        "segments",
        title,
        intro=f"{len(sizes)} segment(s), sized from {source}.",
        charts=[chart],
        tables=[table],
    )


def _member_count(definition: Mapping[str, Any]) -> int:
    members = definition.get("members")
    if isinstance(members, list):
        return len({str(m) for m in members})
    for key in ("size", "count"):
        value = definition.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(value, 0)
    return 0


# --- RFM grid -------------------------------------------------------------------------------------------


def rfm_section(stats: ProfileStats | None, default_names: Callable[[int, int], str]) -> Section:
    title = "RFM grid"
    if not stats or not {"rfm_scores", "rfm_segment"} & stats.seen:
        return _missing("rfm", title, "RFM scores on profiles (r_score, f_score, rfm_segment)")
    section = Section(
        "rfm",
        title,
        intro=(
            "Customers by recency score (rows, 5 = bought most recently) and frequency score (columns, "
            "5 = buys most often). Each cell shows its customer count and the RFM segment it belongs to."
        ),
    )
    if "rfm_scores" in stats.seen:
        scores = range(5, 0, -1)
        counts = [[stats.rfm_cells[(r, f)] for f in range(1, 6)] for r in scores]
        names = [[_cell_name(stats, r, f, default_names) for f in range(1, 6)] for r in scores]
        section.charts.append(
            charts.heatmap(
                counts,
                names,
                "RFM grid: customers by recency score and frequency score",
                row_labels=[f"R{r}" for r in scores],
                col_labels=[f"F{f}" for f in range(1, 6)],
                row_axis="Recency score",
                col_axis="Frequency score",
            )
        )
        scored = sum(stats.rfm_cells.values())
        if scored < stats.total:
            section.notes.append(f"{fmt_int(stats.total - scored)} profile(s) have no RFM scores yet.")
    if stats.rfm_segments:
        total = sum(stats.rfm_segments.values())
        rows = [
            [safe_label(name), fmt_int(n), fmt_pct(n, total)] for name, n in stats.rfm_segments.most_common()
        ]
        section.tables.append(
            Table("Customers per RFM segment", ["RFM segment", "Customers", "Share"], rows, {1, 2})
        )
    return section


def _cell_name(stats: ProfileStats, r: int, f: int, default_names: Callable[[int, int], str]) -> str:
    seen = stats.rfm_cell_names.get((r, f))
    return safe_label(seen.most_common(1)[0][0]) if seen else default_names(r, f)


# --- clusters -------------------------------------------------------------------------------------------

CLUSTER_COLUMNS = (
    ("recency_days", "Mean recency (days)", 0),
    ("frequency", "Mean frequency (orders)", 1),
    ("monetary", "Mean monetary value", 2),
    ("clv_predicted", "Mean predicted CLV", 2),
    ("churn_probability", "Mean churn probability", 2),
)

CLUSTER_CHARTS = ("recency_days", "frequency", "monetary")  # the brief's per-cluster bars besides size


def clusters_section(stats: ProfileStats | None) -> Section:
    title = "Cluster profiles"
    if not stats or "cluster" not in stats.seen:
        return _missing("clusters", title, "cluster labels on profiles (cluster_id / cluster_label)")
    groups = sorted(stats.clusters.items(), key=lambda kv: (-kv[1].size, kv[0]))
    clustered = sum(g.size for _, g in groups)
    columns = [
        (key, label, digits)
        for key, label, digits in CLUSTER_COLUMNS
        if any(g.means[key].count for _, g in groups)
    ]
    names = [safe_label(name) for name, _ in groups]
    section = Section(
        "clusters",
        title,
        intro=(
            f"{len(groups)} behavioural cluster(s) from K-Means on recency, frequency and monetary value; "
            "the bars compare their size and average customer."
        ),
    )
    section.charts.append(
        charts.hbar_chart(
            _share_bars([(n, g.size) for n, (_, g) in zip(names, groups, strict=True)], clustered),
            "Customers per cluster",
            width=GRID_WIDTH,
        )
    )
    for key, label, digits in (c for c in columns if c[0] in CLUSTER_CHARTS):
        bars = [
            Bar(n, g.means[key].value or 0.0)
            for n, (_, g) in zip(names, groups, strict=True)
            if g.means[key].count
        ]
        section.charts.append(
            charts.hbar_chart(
                bars, f"{label} per cluster", fmt=partial(fmt_num, digits=digits), width=GRID_WIDTH
            )
        )
    rows = [
        [n, fmt_int(g.size), fmt_pct(g.size, clustered)]
        + [fmt_num(g.means[key].value, d) for key, _, d in columns]
        for n, (_, g) in zip(names, groups, strict=True)
    ]
    section.tables.append(
        Table(
            "Average customer per cluster",
            ["Cluster", "Customers", "Share"] + [label for _, label, _ in columns],
            rows,
            set(range(1, 3 + len(columns))),
        )
    )
    return section


# --- CLV tiers and churn --------------------------------------------------------------------------------


def value_section(stats: ProfileStats | None) -> Section:
    title = "Customer value and churn risk"
    if not stats or not {"clv_tier", "churn_risk", "churn_probability"} & stats.seen:
        return _missing("value", title, "CLV and churn predictions on profiles (clv_tier, churn_risk)")
    section = Section(
        "value",
        title,
        intro="Predicted customer lifetime value tiers and churn risk levels, from the CLV and churn models.",
    )
    if stats.clv_tiers:
        tiers = _ordered(stats.clv_tiers, "clv_predicted")
        total = sum(g.size for _, g in tiers)
        colours = _ramp("#047857", "#a7f3d0", len(tiers))
        section.charts.append(
            charts.hbar_chart(
                _share_bars([(safe_label(n), g.size) for n, g in tiers], total, colours),
                "Customers per CLV tier",
                width=GRID_WIDTH,
            )
        )
        rows = [
            [
                safe_label(n),
                fmt_int(g.size),
                fmt_pct(g.size, total),
                fmt_num(g.means["clv_predicted"].value, 2),
            ]
            for n, g in tiers
        ]
        section.tables.append(
            Table("CLV tiers", ["CLV tier", "Customers", "Share", "Mean predicted CLV"], rows, {1, 2, 3})
        )
    else:
        section.notes.append("CLV tiers: not available yet.")
    if stats.churn_risk:
        levels = _ordered(stats.churn_risk, "churn_probability")
        total = sum(g.size for _, g in levels)
        colours = _ramp("#b91c1c", "#fca5a5", len(levels))
        section.charts.append(
            charts.hbar_chart(
                _share_bars([(safe_label(n), g.size) for n, g in levels], total, colours),
                "Customers per churn risk level",
                width=GRID_WIDTH,
            )
        )
        rows = [
            [
                safe_label(n),
                fmt_int(g.size),
                fmt_pct(g.size, total),
                fmt_num(g.means["churn_probability"].value, 2),
            ]
            for n, g in levels
        ]
        section.tables.append(
            Table(
                "Churn risk", ["Churn risk", "Customers", "Share", "Mean churn probability"], rows, {1, 2, 3}
            )
        )
    else:
        section.notes.append("Churn risk levels: not available yet.")
    if "churn_probability" in stats.seen:
        n_bins = len(stats.churn_histogram)
        bars = [
            Bar(f"{i * 100 // n_bins}–{(i + 1) * 100 // n_bins}%", count, charts.ACCENT)
            for i, count in enumerate(stats.churn_histogram)
        ]
        section.charts.append(
            charts.column_chart(bars, "Customers by predicted churn probability", width=GRID_WIDTH)
        )
    if stats.clv.count:
        section.notes.append(
            f"Mean predicted CLV across {fmt_int(stats.clv.count)} customers: {fmt_num(stats.clv.value, 2)}."
        )
    return section


def _ordered(groups: Mapping[str, Group], metric: str) -> list[tuple[str, Group]]:
    """Highest mean metric first when every group has one (tiers read top down), else largest first."""
    items = list(groups.items())
    if items and all(g.means[metric].count for _, g in items):
        return sorted(items, key=lambda kv: (-(kv[1].means[metric].value or 0.0), kv[0]))
    return sorted(items, key=lambda kv: (-kv[1].size, kv[0]))


def _ramp(start: str, end: str, n: int) -> list[str]:
    return [charts.blend(start, end, i / max(n - 1, 1)) for i in range(n)]


# --- consent funnel -------------------------------------------------------------------------------------


def funnel_section(stats: ProfileStats | None) -> Section:
    title = "Consent funnel"
    stages = stats.funnel() if stats else []
    if len(stages) < 2:
        return _missing("funnel", title, "contact, eligibility and consent fields on profiles")
    assert stats is not None
    labels = [FUNNEL_LABELS.get(s, humanize(s)) for s, _ in stages]
    section = Section(
        "funnel",
        title,
        intro=(
            "How many contacts can be reached by email: each step keeps only the contacts that passed every "
            "earlier step."
        ),
    )
    section.charts.append(
        charts.funnel_chart(list(zip(labels, (n for _, n in stages), strict=True)), "Consent funnel")
    )
    first = stages[0][1]
    rows, previous = [], None
    for label, (_, n) in zip(labels, stages, strict=True):
        rows.append(
            [label, fmt_int(n), fmt_pct(n, first), fmt_pct(n, previous) if previous is not None else "—"]
        )
        previous = n
    section.tables.append(
        Table("Funnel steps", ["Step", "Contacts", "Of all", "Of previous step"], rows, {1, 2, 3})
    )
    absent = [FUNNEL_LABELS[s] for s in FUNNEL_STAGES if s not in {name for name, _ in stages}]
    if absent:
        section.notes.append("Not available yet: " + ", ".join(absent) + ".")
    if stats.consent_statuses:
        rows = [
            [humanize(safe_label(s)), fmt_int(n), fmt_pct(n, stats.total)]
            for s, n in stats.consent_statuses.most_common()
        ]
        section.tables.append(Table("Consent status", ["Status", "Contacts", "Share"], rows, {1, 2}))
    if stats.ineligible_reasons:
        rows = [
            [humanize(safe_label(r)), fmt_int(n)]
            for r, n in stats.ineligible_reasons.most_common(TOP_REASONS)
        ]
        section.tables.append(Table("Why contacts are not eligible", ["Reason", "Contacts"], rows, {1}))
    return section


# --- data quality ---------------------------------------------------------------------------------------


def quality_section(quality: Quality | None, read_problems: Sequence[str]) -> Section:
    title = "Data quality"
    if quality is None or not (quality.totals or quality.reasons):
        section = _missing("quality", title, "accounting.json and quarantine/ from an ingest run")
        section.notes.extend(read_problems)
        return section
    section = Section(
        "quality",
        title,
        intro=(
            "What happened to every incoming row: clean, merged into an existing customer, quarantined "
            "with a reason, or pending (waiting for its customer to arrive)."
        ),
    )
    datasets = sorted(quality.totals.items())
    if datasets:
        section.charts.append(
            charts.stacked_hbar_chart(
                [(safe_label(name), {humanize(o): counts[o] for o in OUTCOMES}) for name, counts in datasets],
                [(humanize(o), OUTCOME_COLOURS[o]) for o in OUTCOMES],
                "Rows per dataset by outcome",
            )
        )
        rows = [
            [safe_label(name), fmt_int(c["rows_in"])]
            + [fmt_int(c[o]) for o in OUTCOMES]
            + [fmt_pct(c["quarantined"], c["rows_in"])]
            for name, c in datasets
        ]
        section.tables.append(
            Table(
                "Rows per dataset",
                ["Dataset", "Rows in", "Clean", "Merged", "Quarantined", "Pending", "Quarantine rate"],
                rows,
                set(range(1, 7)),
            )
        )
    if quality.reasons:
        rows = [
            [safe_label(d), safe_label(f), safe_label(r), fmt_int(n)]
            for (d, f, r), n in sorted(quality.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        ]
        section.tables.append(
            Table("Top quarantine reasons (rows)", ["Dataset", "Field", "Rule", "Rows"], rows, {3})
        )
    if quality.warnings:
        rows = [
            [safe_label(d), safe_label(r), fmt_int(n)]
            for (d, r), n in sorted(quality.warnings.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        ]
        section.tables.append(Table("Warnings (rows kept)", ["Dataset", "Rule", "Rows"], rows, {2}))
    whole = quality.files_quarantined
    if whole:
        rows = [
            [safe_label(d["dataset"]), safe_label(d["source_key"]), safe_label(d["file_reason"])]
            for d in whole
        ]
        section.tables.append(Table("Files quarantined whole", ["Dataset", "File", "Reason"], rows))
    section.notes.extend(read_problems)
    return section


# --- sync -----------------------------------------------------------------------------------------------


def sync_section(totals: Mapping[str, DestinationTotals] | None, stats: ProfileStats | None) -> Section:
    title = "Sync summary"
    statuses = stats.sync_statuses if stats and "sync" in stats.seen else {}
    if not totals and not statuses:
        return _missing("sync", title, "sync-log.jsonl from the Mailchimp and HubSpot syncs")
    section = Section("sync", title, intro="What was pushed to each destination (Mailchimp, HubSpot).")
    if totals:
        rows = [
            [
                safe_label(name),
                fmt_int(t.runs),
                fmt_int(t.contacts_pushed),
                fmt_int(t.api_calls),
                fmt_int(t.retries),
                fmt_int(t.errors),
                fmt_num(t.duration_s, 1),
            ]
            for name, t in totals.items()
        ]
        section.tables.append(
            Table(
                "Sync runs per destination",
                ["Destination", "Runs", "Contacts pushed", "API calls", "Retries", "Errors", "Time (s)"],
                rows,
                set(range(1, 7)),
            )
        )
    else:
        section.notes.append("Sync runs (sync-log.jsonl): not available yet.")
    if statuses:
        names = sorted({s for counter in statuses.values() for s in counter})
        rows = [[safe_label(dest)] + [fmt_int(statuses[dest][s]) for s in names] for dest in sorted(statuses)]
        section.tables.append(
            Table(
                "Contacts per destination and sync status",
                ["Destination"] + [humanize(safe_label(s)) for s in names],
                rows,
                set(range(1, 1 + len(names))),
            )
        )
    return section
