"""Generated data sets, cached under bench/data/ (git-ignored) by size and seed.

A folder is complete when its summary.json exists: generation writes it last, so an interrupted run is
regenerated instead of being measured half-written.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
DATA = BENCH / "data"
WORK = BENCH / ".work"  # scratch space for stores and outputs (git-ignored)
AS_OF = date(2026, 11, 1)
SEED = 7
# file name per dataset, in the order a team would drop them (customers first, so orders resolve)
DROP_ORDER = (
    ("customers", "customers.csv"),
    ("orders", "orders.csv"),
    ("order_items", "order_items.csv"),
    ("events", "events.jsonl"),
    ("consent", "consent.csv"),
)


@dataclass(frozen=True)
class Dataset:
    folder: Path
    orders: int
    customers: int
    rows: dict[str, int]  # data rows per dataset file

    def path(self, dataset: str) -> Path:
        return self.folder / dict(DROP_ORDER)[dataset]


def customers_for(orders: int) -> int:
    """About a tenth of the orders, as the issue asks."""
    return max(orders // 10, 1)


def dataset(orders: int, seed: int = SEED) -> Dataset:
    """The `segflow generate` output for this size and seed, generated on first use."""
    customers = customers_for(orders)
    folder = DATA / f"generate-o{orders}-c{customers}-s{seed}"
    summary = folder / "summary.json"
    if not summary.exists():
        from segflow_local.generate import generate_dataset

        shutil.rmtree(folder, ignore_errors=True)
        generated = generate_dataset(
            folder / "drop", customers=customers, orders=orders, seed=seed, as_of=AS_OF
        )
        summary.write_text(json.dumps(generated.to_dict(), indent=2))
    info = json.loads(summary.read_text())
    rows = {name: spec["rows"] for name, spec in info["files"].items()}
    return Dataset(folder / "drop", orders, customers, rows)


def changed_customers_file(source: Path, target: Path, share: float = 0.01, column: str = "city") -> int:
    """Copies customers.csv with `column` changed on every 1/share-th row; returns the rows changed."""
    step = max(round(1 / share), 1)
    changed = 0
    with (
        source.open(newline="", encoding="utf-8") as src,
        target.open("w", newline="", encoding="utf-8") as dst,
    ):
        reader = csv.DictReader(src)
        assert reader.fieldnames and column in reader.fieldnames, f"{source} has no {column} column"
        writer = csv.DictWriter(dst, reader.fieldnames)
        writer.writeheader()
        for number, row in enumerate(reader):
            if number % step == 0:
                row[column] = f"Benchtown {number}"
                changed += 1
            writer.writerow(row)
    return changed


def scratch(name: str) -> Path:
    """An empty scratch folder under bench/.work/."""
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def clean_store_path(orders: int) -> Path:
    """Where this run keeps one ingested copy of a size (a LocalObjectStore root under bucket/)."""
    return WORK / f"clean-o{orders}"


def clean_store(orders: int) -> Path:
    """The ingested drop for this size: the ingest benchmark's last repeat, or ingested here if absent."""
    root = clean_store_path(orders)
    if (root / "COMPLETE").exists():
        return root / "bucket"
    from segflow.config import settings_from
    from segflow.events.bus import InMemoryPublisher
    from segflow.ingest.drop import DropRef
    from segflow.ingest.service import IngestService
    from segflow.store.objects import LocalObjectStore
    from segflow.store.profiles import InMemoryProfileStore

    data = dataset(orders)
    root = scratch(root.name)
    objects = LocalObjectStore(root / "bucket", bucket="bench")
    settings = settings_from({"SEGFLOW_AS_OF": AS_OF.isoformat()})
    service = IngestService(objects, InMemoryProfileStore(), InMemoryPublisher(), settings, workdir=root)
    for name, file in DROP_ORDER:
        key = f"raw/{name}/drop-001/{file}"
        objects.put_bytes(key, data.path(name).read_bytes())
        service.ingest(DropRef("bench", key, version="v1"))
    (root / "COMPLETE").touch()
    return root / "bucket"


def load_clean_tables(orders: int, datasets: tuple[str, ...] = ("orders", "events")) -> dict[str, Any]:
    """Clean tables (pandas) of this size, as the score and train functions read them."""
    from segflow.scoring.data import load_clean
    from segflow.store.objects import LocalObjectStore

    objects = LocalObjectStore(clean_store(orders), bucket="bench")
    return {name: load_clean(objects, name) for name in datasets}
