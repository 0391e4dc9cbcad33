"""Sample data generator behind `segflow generate`.

Writes customers.csv, orders.csv, order_items.csv, events.jsonl and consent.csv into one folder:
realistic, with behaviour that RFM / CLV / churn / clustering can find (see generate_behaviour), and
optionally with counted data problems (see generate_rows). The output is byte-identical for the same
arguments. Customers are processed in chunks, so memory stays bounded: only a few numbers per
customer live for the whole run, rows never do.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from .generate_behaviour import chunk_bounds, plan_customers
from .generate_events import MEAN_SESSION_EVENTS, PURCHASE_SESSION_EVENTS
from .generate_format import open_sink
from .generate_rows import RowBuilder

DEFAULT_AS_OF = date(2026, 11, 1)
EVENTS_PER_ORDER = 3.0

# dataset -> (file name, columns in file order)
FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers": (
        "customers.csv",
        (
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "country",
            "city",
            "postal_code",
            "birth_date",
            "signup_date",
            "loyalty_tier",
        ),
    ),
    "orders": (
        "orders.csv",
        ("order_id", "customer_id", "email", "order_date", "total", "currency", "status"),
    ),
    "order_items": (
        "order_items.csv",
        ("order_id", "product_id", "product_name", "category", "quantity", "unit_price"),
    ),
    "events": (
        "events.jsonl",
        ("event_id", "customer_id", "email", "event_type", "timestamp", "product_id", "campaign_id"),
    ),
    "consent": (
        "consent.csv",
        (
            "email",
            "customer_id",
            "channel",
            "status",
            "timestamp",
            "source",
            "lawful_basis",
            "double_opt_in_confirmed",
        ),
    ),
}
_FORMATS = {"events": {"event_id": "E{:010d}"}}


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    rows: int  # data rows (CSV header excluded), injected duplicate rows included


@dataclass(frozen=True)
class GenerateSummary:
    out_dir: Path
    seed: int
    as_of: date
    dirty: bool
    customers: int  # distinct generated customers; customers.csv adds injected duplicate rows
    orders: int  # generated orders; orders.csv adds injected duplicate rows
    files: dict[str, GeneratedFile]
    # dataset -> problem -> rows affected (rows added, for the duplicate_* problems); empty when clean
    injected: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def paths(self) -> dict[str, Path]:
        return {name: f.path for name, f in self.files.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, e.g. for the CLI to print."""
        return {
            "out_dir": str(self.out_dir),
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "dirty": self.dirty,
            "customers": self.customers,
            "orders": self.orders,
            "files": {name: {"path": str(f.path), "rows": f.rows} for name, f in self.files.items()},
            "injected": self.injected,
        }


def generate_dataset(
    out_dir: Path,
    *,
    customers: int,
    orders: int,
    seed: int = 7,
    as_of: date | None = None,
    dirty: bool = True,
) -> GenerateSummary:
    """Write the five sample files into out_dir (created if needed; existing files are replaced).

    Orders fall in the two years before as_of (default 2026-11-01), events in its last 60 days;
    "future" dirty dates are 30-900 days after as_of.
    """
    if customers < 0 or orders < 0 or seed < 0:
        raise ValueError("customers, orders and seed must not be negative")
    if orders and not customers:
        raise ValueError("orders need at least one customer")
    as_of = as_of or DEFAULT_AS_OF
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_customers(
        np.random.default_rng([seed, 0]),
        customers,
        orders,
        events_target=int(round(EVENTS_PER_ORDER * orders)),
        mean_session_events=MEAN_SESSION_EVENTS,
        purchase_session_events=PURCHASE_SESSION_EVENTS,
    )
    builder = RowBuilder(plan, np.datetime64(as_of.isoformat(), "s"), dirty)
    injected: dict[str, dict[str, int]] = {name: {} for name in FILES}
    with ExitStack() as stack:
        sinks = {
            name: stack.enter_context(open_sink(out_dir / file, columns, _FORMATS.get(name)))
            for name, (file, columns) in FILES.items()
        }
        for k, (lo, hi) in enumerate(chunk_bounds(plan)):
            rows = builder.chunk(
                np.random.default_rng([seed, 1, k]), np.random.default_rng([seed, 2, k]), lo, hi
            )
            for name, (columns, counts) in rows.items():
                sinks[name].write(columns)
                for problem, count in counts.items():
                    injected[name][problem] = injected[name].get(problem, 0) + int(count)
    return GenerateSummary(
        out_dir=out_dir,
        seed=seed,
        as_of=as_of,
        dirty=dirty,
        customers=customers,
        orders=orders,
        files={name: GeneratedFile(sink.path, sink.rows) for name, sink in sinks.items()},
        injected={name: counts for name, counts in injected.items() if counts},
    )
