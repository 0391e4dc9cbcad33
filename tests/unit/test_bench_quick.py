"""The benchmark harness (bench/run.py): the quick variant end to end on a tiny drop, and its helpers.

Nothing here asserts anything about time: only that every section ran, reported, and that the figures
are consistent with each other (row counts, stage times adding up to the wall time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))

from lib.child import run_child
from lib.data import changed_customers_file
from lib.report import MISSED, SizeRow, size_table, table, verdict
from lib.stats import fmt_percent, fmt_spread, ratio_spread, spread

TINY = 200  # orders (20 customers): every section, in about a minute on two busy cores
QUICK_SECTIONS = (
    "Ingest",
    "RFM against lifetimes",
    "Clustering and prediction",
    "Storage (DynamoDB writes)",
    "Sync (API calls and rate limit)",
    "Cold start and function size",
    "End to end (`segflow run`)",
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--sizes", str(TINY), "--out", str(out)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "returncode": done.returncode,
        "stderr": done.stderr,
        "stdout": done.stdout,
        "report": out.read_text() if out.exists() else "",
        "results": json.loads(out.with_suffix(".json").read_text())
        if out.with_suffix(".json").exists()
        else {},
    }


@pytest.mark.slow
def test_quick_variant_reports_every_section(quick: dict[str, Any]) -> None:
    assert quick["returncode"] == 0, quick["stderr"][-2000:] + json.dumps(
        quick["results"].get("harness_errors")
    )
    report = quick["report"]
    for heading in (
        "## How it was measured",
        "## Headline",
        "## Missed targets, failures and skipped runs",
        *(f"## {title}" for title in QUICK_SECTIONS),
    ):
        assert heading in report, heading
    assert "## CLV accuracy on CDNOW" not in report  # the quick variant leaves the CDNOW fit out
    assert f"`python bench/run.py --quick --sizes {TINY} --out" in report
    assert f"| area | figure | {TINY} orders | target | verdict |" in report


@pytest.mark.slow
def test_quick_figures_are_consistent(quick: dict[str, Any]) -> None:
    sections = quick["results"]["sections"]
    size = str(TINY)
    ingest = sections["ingest"]["sizes"][size]
    per_file = ingest["datasets"]
    assert ingest["rows"] == sum(d["rows"] for d in per_file.values())
    for d in per_file.values():
        counts = d["counts"]
        assert sum(counts.values()) <= d["rows"]  # the rest were merged by identity or quarantined
        assert d["peak_rss_mb"]["median"] >= d["baseline_rss_mb"]["median"] > 0
    rfm = sections["rfm"]["sizes"][size]
    assert rfm["customers_scored"] > 0 and len(rfm["segflow_seconds"]) == len(rfm["lifetimes_seconds"])
    storage = sections["storage"]["sizes"][size]["steps"]
    assert storage["first drop"]["profiles_changed"] == storage["first drop"]["profile_puts"] > 0
    e2e = sections["e2e"]["sizes"][size]
    assert e2e["finished"], e2e["error"]
    accounted = sum(f["seconds"] for f in e2e["functions"].values()) + sum(e2e["stages"].values())
    assert accounted == pytest.approx(e2e["wall_s"], rel=0.05)  # the breakdown covers the whole run
    cold = sections["coldstart"]["functions"]
    assert {f["function"] for f in cold} >= {"IngestFunction", "SegmentFunction"}


def test_spread_and_formats() -> None:
    s = spread([3.0, 1.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["runs"]) == (2.0, 1.0, 3.0, 3)
    assert fmt_spread(s) == "2.00 (1.00–3.00)"
    assert fmt_spread(spread([5.0])) == "5.00"
    assert fmt_spread(spread([])) == "n/a"
    assert fmt_percent(spread([0.5, 0.25])) == "37.5% (25.0–50.0)"
    assert ratio_spread([10.0, 30.0], [2.0, 3.0])["values"] == [5.0, 10.0]


def test_tables_escape_cells_and_mark_misses() -> None:
    lines = table(["a", "b"], [["x|y", "two\nlines"]])
    assert lines == ["| a | b |", "|---|---|", "| x\\|y | two lines |"]
    row = SizeRow("RFM", "speed-up", {10: "4.0x"}, "≥ 5x", verdict(False))
    rendered = "\n".join(size_table([row], [10, 100]))
    assert "| RFM | speed-up | 4.0x | — | ≥ 5x | **MISSED** |" in rendered and MISSED in rendered
    assert verdict(None) == "not measured"


def test_changed_customers_file_changes_one_row_in_a_hundred(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(
        "customer_id,email,city\n" + "".join(f"C{i},c{i}@example.com,Leeds\n" for i in range(250))
    )
    target = tmp_path / "changed.csv"
    assert changed_customers_file(source, target) == 3  # rows 0, 100 and 200
    before, after = source.read_text().splitlines(), target.read_text().splitlines()
    assert len(before) == len(after)
    assert sum(a != b for a, b in zip(before, after)) == 3


def test_child_failures_and_timeouts_are_reported_not_raised() -> None:
    failed = run_child("lib.stats:spread", {"unexpected": 1}, timeout=60)
    assert failed.error and "unexpected" in failed.error
    stopped = run_child("subprocess:run", {"args": ["sleep", "30"]}, timeout=1)  # a grandchild, too
    assert stopped.error == "timed out after 1 s"
    ok = run_child("lib.stats:spread", {"values": [1, 2, 3]}, timeout=60)
    assert ok.error is None and ok.result["median"] == 2 and ok.peak_rss_mb > 0
