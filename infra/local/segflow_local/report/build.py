"""build_report(out_dir): read what `segflow run` wrote and write out_dir/report.html.

The page is self-contained (inline CSS and SVG, no scripts, no external URLs) so it can be mailed or
opened offline, and it shows counts and codes only, never contact details.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from segflow_local.report import sections
from segflow_local.report.inputs import (
    ReadProblems,
    iter_jsonl,
    quarantine_files,
    read_json,
    segment_definitions,
)
from segflow_local.report.profile_stats import ProfileStats, profile_stats
from segflow_local.report.quality import Quality, add_quarantine_rows, from_accounting
from segflow_local.report.sync_stats import DestinationTotals, sync_totals
from segflow_local.report.text import fmt_int, fmt_pct, fmt_seconds

REPORT_NAME = "report.html"
NOT_YET = "not available yet"
INPUT_NAMES = ("profiles.jsonl", "accounting.json", "quarantine/", "segments.json", "sync-log.jsonl")


@dataclass
class RunFigures:
    """Everything the report needs, reduced to counts while reading."""

    stats: ProfileStats | None
    quality: Quality | None
    segments: list[dict[str, Any]] | None
    sync: dict[str, DestinationTotals] | None
    problems: ReadProblems
    present: dict[str, bool]


def read_figures(out_dir: Path) -> RunFigures:
    problems = ReadProblems()
    profiles_path = out_dir / "profiles.jsonl"
    stats = profile_stats(iter_jsonl(profiles_path, problems)) if profiles_path.is_file() else None
    accounting = read_json(out_dir / "accounting.json", problems)
    quarantined = quarantine_files(out_dir)
    quality = from_accounting(accounting) if accounting is not None or quarantined else None
    for dataset, path in quarantined.items():
        assert quality is not None
        add_quarantine_rows(quality, dataset, iter_jsonl(path, problems))
    segments = segment_definitions(read_json(out_dir / "segments.json", problems))
    sync_path = out_dir / "sync-log.jsonl"
    sync = sync_totals(iter_jsonl(sync_path, problems)) if sync_path.is_file() else None
    present = {
        "profiles.jsonl": stats is not None,
        "accounting.json": accounting is not None,
        "quarantine/": bool(quarantined),
        "segments.json": segments is not None,
        "sync-log.jsonl": sync is not None,
    }
    return RunFigures(stats, quality, segments, sync, problems, present)


@cache
def default_rfm_names() -> Callable[[int, int], str]:
    """The scoring library's named RFM cells, used for grid cells no profile has reached yet."""
    try:
        from segflow.scoring.rfm_segments import segment_grid

        grid = segment_grid()
    except Exception:  # the grid labels are a nicety; the report must build without them
        return lambda r, f: "—"
    return lambda r, f: str(grid[r - 1, f - 1])


def summary_cards(figures: RunFigures, run_summary: Mapping[str, Any]) -> list[dict[str, str]]:
    quality, stats = figures.quality, figures.stats
    drops = quality.drops if quality else []
    rows_in = sum(c["rows_in"] for c in quality.totals.values()) if quality else 0
    quarantined = sum(c["quarantined"] for c in quality.totals.values()) if quality else 0
    folders = {_drop_folder(d["source_key"]) for d in drops}
    segment_count = (
        len(figures.segments)
        if figures.segments is not None
        else len(stats.segment_members)
        if stats and "segments" in stats.seen
        else None
    )
    seconds = run_summary.get("seconds")
    as_of = run_summary.get("as_of")
    cards = [
        _card("Customer profiles", stats.total if stats else None),
        _card("Drops", len(folders) if quality else None, f"{fmt_int(len(drops))} file(s)"),
        _card("Rows received", rows_in if quality else None),
        _card(
            "Rows quarantined", quarantined if quality else None, f"{fmt_pct(quarantined, rows_in)} of rows"
        ),
        _card("Segments", segment_count),
        {
            "label": "Run time",
            "value": fmt_seconds(float(seconds)) if isinstance(seconds, (int, float)) else "—",
            "sub": f"as of {as_of}" if as_of else "" if isinstance(seconds, (int, float)) else NOT_YET,
        },
    ]
    return cards


def _card(label: str, value: int | None, sub: str = "") -> dict[str, str]:
    if value is None:
        return {"label": label, "value": "—", "sub": NOT_YET}
    return {"label": label, "value": fmt_int(value), "sub": sub}


def _drop_folder(source_key: str) -> str:
    """raw/<dataset>/<drop folder>/<file> -> the drop folder; a flat key counts as its own drop."""
    parts = source_key.split("/")
    return parts[2] if len(parts) > 3 else source_key


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=False,
    )


def render_report(
    figures: RunFigures, *, out_dir_name: str, run_summary: Mapping[str, Any], generated_at: datetime
) -> str:
    stats = figures.stats
    report_sections = [
        sections.segments_section(figures.segments, stats),
        sections.rfm_section(stats, default_rfm_names()),
        sections.clusters_section(stats),
        sections.value_section(stats),
        sections.funnel_section(stats),
        sections.quality_section(figures.quality, figures.problems.messages()),
        sections.sync_section(figures.sync, stats),
    ]
    stamp = generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        _environment()
        .get_template("template.html")
        .render(
            title="segflow run report",
            subtitle=f"Customer segmentation results · generated {stamp}",
            cards=summary_cards(figures, run_summary),
            sections=report_sections,
            inputs=[(name, figures.present[name]) for name in INPUT_NAMES],
            out_dir_name=out_dir_name,
            generated_at=stamp,
        )
    )


def build_report(
    out_dir: Path,
    *,
    run_summary: Mapping[str, Any] | None = None,
    generated_at: datetime | None = None,
) -> Path:
    """Write out_dir/report.html from the run outputs in out_dir and return its path.

    `run_summary` may carry what only the caller knows (`seconds`, `as_of`); every input is optional.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_report(
        read_figures(out_dir),
        out_dir_name=out_dir.resolve().name or "out",
        run_summary=run_summary or {},
        generated_at=generated_at or datetime.now(timezone.utc),
    )
    target = out_dir / REPORT_NAME
    # write then rename, so a reader never sees half a page
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the report is meant to be opened and shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
