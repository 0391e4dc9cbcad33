"""The ingest use case with in-memory ports: accounting, idempotency, conflicts, pending rows."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segflow.config import settings_from
from segflow.events.bus import InMemoryPublisher
from segflow.ingest.drop import DropRef
from segflow.ingest.service import IngestService, content_hash
from segflow.store.objects import LocalObjectStore
from segflow.store.parquet import read_parquet_bytes, to_parquet_bytes
from segflow.store.profiles import InMemoryProfileStore

SETTINGS = settings_from({"SEGFLOW_AS_OF": "2026-11-01", "CHUNK_ROWS": "7"})


def make_service(root: Path, profiles: InMemoryProfileStore | None = None):
    objects = LocalObjectStore(root / "bucket", bucket="data")
    store = profiles or InMemoryProfileStore()
    publisher = InMemoryPublisher()
    return IngestService(objects, store, publisher, SETTINGS, workdir=root), objects, store, publisher


def drop(objects: LocalObjectStore, key: str, text: str) -> DropRef:
    objects.put_bytes(key, text.encode("utf-8"))
    return DropRef("data", key, version="v1")


def row_numbers_out(objects: LocalObjectStore, dataset: str, drop_id: str) -> list[int]:
    """Every row number that appears in any output of a drop, with repeats."""
    rows: list[int] = []
    for prefix in (f"clean/{dataset}/{drop_id}", f"pending/{dataset}/{drop_id}"):
        for info in objects.list(prefix):
            if info.key.endswith(".parquet"):
                rows += read_parquet_bytes(objects.get_bytes(info.key))["_row"].astype(int).tolist()
    for prefix in (f"quarantine/{dataset}/{drop_id}", f"reports/merges/{dataset}/{drop_id}"):
        for info in objects.list(prefix):
            rows += [json.loads(line)["row"] for line in objects.get_bytes(info.key).decode().splitlines()]
    return rows


def test_customers_then_orders_in_chunks(tmp_path):
    service, objects, store, publisher = make_service(tmp_path)
    customers = "customer_id,email,signup_date\n" + "".join(
        f"C{i},user{i % 9}@example.com,2024-01-{1 + i % 28:02d}\n" for i in range(20)
    )
    outcome = service.ingest(drop(objects, "raw/customers/c.csv", customers))
    acc = outcome.accounting
    assert (acc["rows_in"], acc["clean"], acc["merged"]) == (20, 9, 11)
    assert len(store.profiles) == 9
    orders = "order_id,customer_id,order_date,total,currency,status\n" + "".join(
        f"O{i},C{i % 25},2026-10-01,{i}.50,USD,completed\n" for i in range(30)
    )
    acc = service.ingest(drop(objects, "raw/orders/o.csv", orders)).accounting
    assert acc["clean"] == 25 and acc["pending"] == 5  # orders of C20..C24 wait for their customer
    clean = read_parquet_bytes(objects.get_bytes(f"clean/orders/{acc['drop_id']}.parquet"))
    assert set(clean["customer_id"]) <= set(store.profiles)  # every order points at a canonical id
    assert [e["detail-type"] for e in publisher.events] == ["DataIngested", "DataIngested"]


def test_replay_is_a_no_op(tmp_path):
    service, objects, store, publisher = make_service(tmp_path)
    ref = drop(objects, "raw/customers/c.csv", "customer_id,email\nC1,a@example.com\n")
    first = service.ingest(ref)
    writes = store.stats.writes
    second = service.ingest(ref)
    assert second.status == "replayed" and second.accounting == first.accounting
    assert store.stats.writes == writes and len(publisher.events) == 1


class RacingStore(InMemoryProfileStore):
    """Another writer updates C1 just before our first write lands."""

    raced = False

    def put_profiles(self, profiles):
        if not self.raced and "C1" in self.profiles:
            self.raced = True
            self.profiles["C1"] = {**self.profiles["C1"], "city": "Elsewhere", "version": self.profiles["C1"]["version"] + 1}
        return super().put_profiles(profiles)


def test_a_lost_race_is_merged_again_on_fresh_data(tmp_path):
    store = RacingStore()
    service, objects, _, _ = make_service(tmp_path, store)
    service.ingest(drop(objects, "raw/customers/a.csv", "customer_id,email,first_name\nC1,a@example.com,Ann\n"))
    acc = service.ingest(drop(objects, "raw/customers/b.csv", "customer_id,email,first_name\nC1,a@example.com,Anne\n")).accounting
    assert store.raced and store.stats.conflicts == 1
    assert store.profiles["C1"]["first_name"] == "Anne" and store.profiles["C1"]["city"] == "Elsewhere"
    assert acc["clean"] == 1


ids = st.sampled_from(["C1", "C2", "C3", "", "C 4", "c1"])
emails = st.sampled_from(["a@example.com", " A@Example.com ", "b@example.com", "bad@", "", "c@example.org"])
dates = st.sampled_from(["2026-10-01", "2030-01-01", "nope", "", "01/02/2026", "2026-10-01T10:00:00+02:00"])
totals = st.sampled_from(["10", "-5", "1,234.50", "abc", "", "0"])
statuses = st.sampled_from(["completed", "refunded", "cancelled", "paid", "weird", ""])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    customers=st.lists(st.tuples(ids, emails, dates), max_size=12),
    orders=st.lists(st.tuples(st.sampled_from(["O1", "O2", "O3", ""]), ids, emails, dates, totals, statuses), max_size=15),
)
def test_every_row_is_accounted_for_exactly_once(tmp_path_factory, customers, orders):
    root = tmp_path_factory.mktemp("prop")
    service, objects, _, _ = make_service(root)
    text = "customer_id,email,signup_date\n" + "".join(f"{c},{e},{d}\n" for c, e, d in customers)
    c = service.ingest(drop(objects, "raw/customers/c.csv", text)).accounting
    text = "order_id,customer_id,email,order_date,total,currency,status\n" + "".join(
        f'{o},{c_},{e},{d},"{t}",USD,{s}\n' for o, c_, e, d, t, s in orders
    )
    o = service.ingest(drop(objects, "raw/orders/o.csv", text)).accounting
    # A record with no content in any cell carries no data and is not a row (spreadsheets pad with ",,,").
    n_customers = sum(any(v.strip() for v in r) for r in customers)
    n_orders = sum(any(v.strip() for v in r[:-1]) or True for r in orders)  # currency is always "USD"
    for acc, dataset, n in ((c, "customers", n_customers), (o, "orders", n_orders)):
        assert acc["rows_in"] == n
        assert acc["clean"] + acc["merged"] + acc["quarantined"] + acc["pending"] == n
        if dataset == "customers":
            assert len(row_numbers_out(objects, dataset, acc["drop_id"])) == n
            assert len(set(row_numbers_out(objects, dataset, acc["drop_id"]))) == n


def test_consent_drops_get_a_json_lines_copy_for_light_readers(tmp_path):
    service, objects, _, _ = make_service(tmp_path)
    text = ("email,status,timestamp,source,lawful_basis,double_opt_in_confirmed\n"
            "A@Example.com,opted_in,2026-10-01T10:00:00Z,signup form,consent,true\n")
    acc = service.ingest(drop(objects, "raw/consent/c.csv", text)).accounting
    lines = objects.get_bytes(f"clean/consent/{acc['drop_id']}.jsonl").decode().splitlines()
    record = json.loads(lines[0])
    assert record["email"] == "a@example.com" and record["status"] == "opted_in"
    assert record["timestamp"].startswith("2026-10-01T10:00:00")


def test_rows_of_erased_people_are_dropped_unseen_and_counted(tmp_path):
    objects = LocalObjectStore(tmp_path / "bucket", bucket="data")
    store = InMemoryProfileStore()
    erased_values = {"gone@example.com", "C9"}
    service = IngestService(objects, store, InMemoryPublisher(), SETTINGS, workdir=tmp_path,
                            erased=lambda values: set(values) & erased_values)
    customers = ("customer_id,email,phone,country\nC1,a@example.com,,US\nC2,Gone@Example.com,bad-phone,US\n"
                 "C3,gone@example.com,,US\n")
    acc = service.ingest(drop(objects, "raw/customers/c.csv", customers)).accounting
    assert (acc["clean"], acc["erased"], acc["rows_in"]) == (1, 2, 3)
    assert set(store.profiles) == {"C1"}
    orders = ("order_id,customer_id,order_date,total,currency,status\nO1,C9,2026-10-01,5,USD,completed\n"
              "O2,C9,never,5,USD,completed\nO3,C1,2026-10-01,5,USD,completed\n")
    acc = service.ingest(drop(objects, "raw/orders/o.csv", orders)).accounting
    assert (acc["clean"], acc["erased"], acc["quarantined"]) == (1, 2, 0)  # O2 would have been quarantined
    everything = b"".join(objects.get_bytes(i.key) for i in objects.list("") if not i.key.startswith("raw/"))
    assert b"gone@example.com" not in everything.lower() and b"C9," not in everything


def test_a_redrop_merges_unchanged_records_and_keeps_changed_ones(tmp_path):
    service, objects, _, _ = make_service(tmp_path)
    customers = "customer_id,email\n" + "".join(f"C{i},u{i}@example.com\n" for i in range(5))
    service.ingest(drop(objects, "raw/customers/c.csv", customers))
    orders = ["order_id,customer_id,order_date,total,currency,status\n"] + [
        f"O{i},C{i % 5},2026-10-01,{i}.50,USD,completed\n" for i in range(12)
    ]
    first = service.ingest(drop(objects, "raw/orders/a.csv", "".join(orders))).accounting
    assert (first["clean"], first["merged"]) == (12, 0)
    orders[4] = "O3,C3,2026-10-01,3.50,USD,refunded\n"  # one order changed since
    second = service.ingest(drop(objects, "raw/orders/b.csv", "".join(orders))).accounting
    assert (second["clean"], second["merged"]) == (1, 11)
    clean = read_parquet_bytes(objects.get_bytes(f"clean/orders/{second['drop_id']}.parquet"))
    assert clean["order_id"].tolist() == ["O3"] and clean["status"].tolist() == ["refunded"]


def test_content_hashes_stored_as_text_by_earlier_versions_still_match(tmp_path):
    service, objects, _, _ = make_service(tmp_path)
    service.ingest(drop(objects, "raw/customers/c.csv", "customer_id,email\nC1,u1@example.com\n"))
    orders = "order_id,customer_id,order_date,total,currency,status\nO1,C1,2026-10-01,9.50,USD,completed\n"
    first = service.ingest(drop(objects, "raw/orders/a.csv", orders)).accounting
    key = f"clean/orders/{first['drop_id']}.parquet"
    stored = read_parquet_bytes(objects.get_bytes(key))
    assert stored["_hash"].dtype == "uint64" and int(stored["_hash"].iloc[0]) >= 0
    objects.put_bytes(key, to_parquet_bytes(stored.assign(_hash=stored["_hash"].astype(str))))
    again = service.ingest(drop(objects, "raw/orders/b.csv", orders)).accounting
    assert (again["clean"], again["merged"]) == (0, 1)


def test_content_hash_keeps_all_64_bits_and_depends_on_every_column():
    frame = pd.DataFrame({"a": ["x", "x", "y"], "b": [1, 2, 1]})
    hashes = content_hash(frame, ["a", "b"])
    assert hashes.dtype == "uint64" and hashes.nunique() == 3
    assert content_hash(frame.iloc[::-1], ["a", "b"]).iloc[::-1].tolist() == hashes.tolist()  # row order free
