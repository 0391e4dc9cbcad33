"""The whole pipeline on a generated sample, through the template's wiring, against the fake destinations."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from segflow_local.generate import generate_dataset

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`segflow run` as a user runs it, in its own process, with every byte it prints captured."""
    root = tmp_path_factory.mktemp("e2e")
    generate_dataset(root / "data", customers=250, orders=2000, seed=11, as_of=date(2026, 11, 1))
    out = root / "out"
    segflow = Path(sys.executable).with_name("segflow")
    result = subprocess.run(
        [str(segflow), "run", "--data", str(root / "data"), "--out", str(out), "--as-of", "2026-11-01",
         "--log-level", "INFO"],
        capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "run.json").read_text())
    return root, out, summary, result.stdout + result.stderr


def test_every_function_succeeded_and_every_output_exists(run):
    _, out, summary, _ = run
    assert summary["failed_invocations"] == 0
    for name in ("profiles.jsonl", "accounting.json", "segments.json", "report.html",
                 "destinations/mailchimp.json", "destinations/hubspot.json"):
        assert (out / name).exists(), name


def test_profiles_carry_scores_segments_and_consent(run):
    _, out, _, _ = run
    profiles = [json.loads(line) for line in (out / "profiles.jsonl").read_text().splitlines()]
    buyers = [p for p in profiles if p.get("frequency")]
    assert len(buyers) > 100
    for field in ("rfm_segment", "cluster_label", "clv_tier", "churn_risk"):
        assert all(field in p for p in buyers), field
    assert any(p.get("memberships") or p.get("segments") for p in profiles)
    assert all("eligible" in p and "consent_status" in p for p in profiles)


def test_no_personal_data_in_any_log_line(run):
    root, _, _, logs = run
    assert logs.strip(), "the run logged nothing: the test would prove nothing"
    emails, names, phones = set(), set(), set()
    with (root / "data" / "customers.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["email"] and "@" in row["email"]:
                emails.add(row["email"].strip().lower())
            for name in (row["first_name"], row["last_name"]):
                if name and len(name.strip()) >= 4:
                    names.add(name.strip())
            digits = re.sub(r"\D", "", row["phone"] or "")
            if len(digits) >= 8:
                phones.add(digits[-8:])
    lowered = logs.lower()
    leaked_emails = [e for e in emails if e in lowered]
    assert not leaked_emails, leaked_emails[:3]
    leaked_names = [n for n in names if re.search(rf"\b{re.escape(n)}\b", logs)]
    assert not leaked_names, leaked_names[:3]
    runs = {re.sub(r"\D", "", m) for m in re.findall(r"\+?\d[\d ().-]{7,}\d", logs)}
    assert not [p for p in phones if any(p in run for run in runs)], "a phone number appears in the logs"


def test_explain_reads_the_run_output_for_known_and_unknown_emails(run, capsys):
    from segflow_local.cli import main

    _, out, _, _ = run
    profiles = [json.loads(line) for line in (out / "profiles.jsonl").read_text().splitlines()]
    email = next(p["email"] for p in profiles if p.get("email"))
    assert main(["explain", "--email", email.upper(), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report.get("found", True) and report.get("customer_id")
    assert main(["explain", "--email", "nobody@example.com", "--out", str(out)]) == 1
    assert "Traceback" not in capsys.readouterr().out
