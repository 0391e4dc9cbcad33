"""Row accounting for one drop: every input row is clean, merged, quarantined or pending — counted."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class AccountingError(AssertionError):
    """rows_in != clean + merged + quarantined + pending + erased: a row was lost or counted twice (a bug)."""


@dataclass
class DropAccounting:
    drop_id: str
    dataset: str
    source_key: str
    rows_in: int = 0
    clean: int = 0
    merged: int = 0
    quarantined: int = 0
    pending: int = 0
    # Rows of people who exercised their right to erasure: dropped unseen, only counted (quarantining them
    # would store their data again).
    erased: int = 0
    file_quarantined: bool = False
    file_reason: str | None = None
    quarantine_rules: Counter = field(default_factory=Counter)
    warning_rules: Counter = field(default_factory=Counter)
    attached: dict[str, int] = field(default_factory=dict)
    profiles_written: int = 0
    profiles_unchanged: int = 0

    def check(self) -> None:
        total = self.clean + self.merged + self.quarantined + self.pending + self.erased
        if total != self.rows_in:
            raise AccountingError(
                f"{self.source_key}: rows_in={self.rows_in} but clean+merged+quarantined+pending+erased={total}"
            )

    def counts(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "clean": self.clean,
            "merged": self.merged,
            "quarantined": self.quarantined,
            "pending": self.pending,
            "erased": self.erased,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "drop_id": self.drop_id,
            "dataset": self.dataset,
            "source_key": self.source_key,
            **self.counts(),
            "file_quarantined": self.file_quarantined,
            "file_reason": self.file_reason,
            "quarantine_rules": dict(sorted(self.quarantine_rules.items())),
            "warning_rules": dict(sorted(self.warning_rules.items())),
            "attached": self.attached,
            "profiles_written": self.profiles_written,
            "profiles_unchanged": self.profiles_unchanged,
        }
