"""The marketer-facing run report: one self-contained HTML page built from a `segflow run` output folder."""

from segflow_local.report.build import build_report

__all__ = ["build_report"]
