"""Tolerant readers for what `segflow run` writes into its output folder.

Every input is optional: a missing file reads as None and a damaged line is skipped and counted, so the
report always builds. JSON Lines files are streamed, so large runs are never held in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ReadProblems:
    """Lines or files that could not be read, by file name (never their content: it may hold PII)."""

    skipped_lines: dict[str, int] = field(default_factory=dict)
    unreadable_files: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        lines = [
            f"{name}: {count:,} unreadable line(s) skipped"
            for name, count in sorted(self.skipped_lines.items())
        ]
        return lines + [f"{name}: could not be read" for name in self.unreadable_files]


def iter_jsonl(path: Path, problems: ReadProblems) -> Iterator[dict[str, Any]]:
    """Objects of a JSON Lines file; blank lines are ignored, bad lines and non-objects are counted."""
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except OSError:
        problems.unreadable_files.append(path.name)
        return
    with fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                yield value
            else:
                problems.skipped_lines[path.name] = problems.skipped_lines.get(path.name, 0) + 1


def read_json(path: Path, problems: ReadProblems) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        problems.unreadable_files.append(path.name)
        return None


def quarantine_files(out_dir: Path) -> dict[str, Path]:
    """dataset -> quarantine/<dataset>.jsonl, for the files that exist."""
    folder = out_dir / "quarantine"
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.jsonl")) if path.is_file()}


def segment_definitions(raw: Any) -> list[dict[str, Any]] | None:
    """segments.json holds {"segments": [...]} or a bare list; anything else reads as absent."""
    if isinstance(raw, dict):
        raw = raw.get("segments")
    if not isinstance(raw, list):
        return None
    return [s for s in raw if isinstance(s, dict)]
