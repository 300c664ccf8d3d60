"""Whole runs of the engine against real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from governor.engine.errors import ConfigError, RunStopped, SchemaError
from governor.engine.runner import RunEvent, run_workflow

UrlPair = tuple[str, str]


def build_shop(url: str) -> None:
    """Customers, their orders, and employees with a manager self-reference pointing forward."""
    metadata = sa.MetaData()
    customers = sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
    )
    orders = sa.Table(
        "orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("note", sa.Text),
    )
    employees = sa.Table(
        "employees",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("employees.id")),
        sa.Column("name", sa.String(100), nullable=False),
    )
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            customers.insert(),
            [{"id": i, "name": f"Customer {i}", "email": f"customer{i}@example.com"} for i in range(1, 301)],
        )
        conn.execute(
            orders.insert(),
            [
                {"id": i, "customer_id": 1 + (i * 7) % 300, "amount": Decimal(i) / 4, "note": f"note {i}"}
                for i in range(1, 2001)
            ],
        )
        # Managers have higher ids than their reports: a load in id order meets children first.
        conn.execute(
            employees.insert(),
            [{"id": i, "manager_id": None if i == 60 else min(60, i + 10), "name": f"E{i}"} for i in range(60, 0, -1)],
        )
    engine.dispose()


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        result = {
            name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for name, table in metadata.tables.items()
        }
    engine.dispose()
    return result


def checksum(url: str) -> str:
    return hashlib.sha256(repr(sorted(dump(url).items())).encode()).hexdigest()


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest) -> UrlPair:
    factory: Callable[[], str] = request.getfixturevalue(
        f"{'pg' if request.param == 'postgresql' else 'sqlite'}_url_factory"
    )
    source, target = factory(), factory()
    build_shop(source)
    return source, target


MASK_IDS = """
global_seed: {seed}
default_config: {{mode: KEEP, insert_batch_size: 128}}
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - columns: [id]
        params: {{type: unique_hashing}}
"""


def test_keep_copies_every_row_exactly(shop: UrlPair) -> None:
    source, target = shop
    report = run_workflow("default_config: {mode: KEEP, insert_batch_size: 100}", source, target)
    assert dump(target) == dump(source)
    assert {t.table.split(".")[-1]: t.rows_written for t in report.tables} == {
        "customers": 300,
        "orders": 2000,
        "employees": 60,
    }
    assert all(t.rows_read == t.rows_written for t in report.tables)


def test_masked_primary_key_keeps_every_order_with_its_customer(shop: UrlPair) -> None:
    source, target = shop
    run_workflow(MASK_IDS.format(seed=7), source, target)
    before, after = dump(source), dump(target)
    old_id = {c[1]: c[0] for c in before["customers"]}
    assert all(c[0] != old_id[c[1]] for c in after["customers"]), "a customer kept its id"
    owner_before = {c[0]: c[1] for c in before["customers"]}
    owner_after = {c[0]: c[1] for c in after["customers"]}
    # Orders keep their ids: each one must still belong to the customer of the same name.
    for order_before, order_after in zip(before["orders"], after["orders"], strict=True):
        assert order_before[0] == order_after[0]
        assert owner_after[order_after[1]] == owner_before[order_before[1]]


def test_same_seed_same_output_other_seed_other_output(shop: UrlPair, sqlite_url_factory: Callable[[], str]) -> None:
    source, target = shop
    again, other = sqlite_url_factory(), sqlite_url_factory()
    run_workflow(MASK_IDS.format(seed=7), source, target)
    run_workflow(MASK_IDS.format(seed=7), source, again)
    run_workflow(MASK_IDS.format(seed=8), source, other)
    assert dump(target)["customers"] == dump(again)["customers"]
    assert dump(other)["customers"] != dump(target)["customers"]


def test_source_is_unchanged_by_a_masking_run(shop: UrlPair) -> None:
    source, target = shop
    before = checksum(source)
    run_workflow(MASK_IDS.format(seed=1), source, target)
    assert checksum(source) == before


def test_strict_refuses_unconfigured_columns_before_writing(shop: UrlPair) -> None:
    source, target = shop
    config = """
safety_mode: STRICT
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - columns: [name]
        params: {type: constant_string, value: x}
"""
    with pytest.raises(ConfigError) as caught:
        run_workflow(config, source, target)
    [problem] = caught.value.problems
    assert (
        "STRICT" in problem and "customers" in problem and "email" in problem and "name" not in problem.split(":")[-1]
    )
    assert dump(target) == {}


def test_masking_only_the_referencing_side_is_refused(shop: UrlPair) -> None:
    source, target = shop
    config = """
tables:
  - table_name_with_schema: orders
    mode: MASKING
    transformations:
      - columns: [customer_id]
        params: {type: unique_hashing}
"""
    with pytest.raises(ConfigError) as caught:
        run_workflow(config, source, target)
    assert caught.value.problems[0].startswith("tables[0].transformations[0]")
    assert "configure the masking on the referenced column" in caught.value.problems[0]


def test_unknown_table_and_column_are_named(shop: UrlPair) -> None:
    source, target = shop
    config = """
tables:
  - table_name_with_schema: nowhere
  - table_name_with_schema: customers
    transformations:
      - columns: [name, shoe_size]
        params: {type: constant_string, value: x}
"""
    with pytest.raises(ConfigError) as caught:
        run_workflow(config, source, target)
    problems = caught.value.problems
    assert problems[0].startswith("tables[0].table_name_with_schema: no table 'nowhere'")
    assert "tables[1].transformations[0].columns[1]: no column 'shoe_size'" in problems[1]


def test_a_stop_request_ends_the_run_between_batches(shop: UrlPair) -> None:
    source, target = shop
    calls = []

    def stop_after_three_checks() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(RunStopped):
        run_workflow(MASK_IDS.format(seed=1), source, target, should_stop=stop_after_three_checks)


def test_events_report_progress_per_table(shop: UrlPair) -> None:
    source, target = shop
    events = []
    run_workflow(MASK_IDS.format(seed=1), source, target, on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and kinds.count("table_started") == 3 and kinds.count("table_finished") == 3
    orders_rows = [e.rows for e in events if e.kind == "rows" and e.table and e.table.endswith("orders")]
    assert orders_rows == sorted(orders_rows) and orders_rows[-1] == 2000 and len(orders_rows) >= 16


def test_reference_cycle_fails_before_writing(sqlite_url_factory: Callable[[], str]) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id))")
        conn.exec_driver_sql("CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id))")
    engine.dispose()
    with pytest.raises(SchemaError, match=r"reference cycle: .*a.* -> .*b.*|reference cycle: .*b.* -> .*a.*"):
        run_workflow("{}", source, target)
    assert dump(target) == {}


def test_the_source_database_is_refused_as_target(sqlite_url_factory: Callable[[], str]) -> None:
    url = sqlite_url_factory()
    build_shop(url)
    with pytest.raises(SchemaError, match="target is the source"):
        run_workflow("{}", url, url)


def test_a_failed_run_reports_what_it_loaded(sqlite_url_factory: Callable[[], str]) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_shop(source)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount NUMERIC, note TEXT)"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN NEW.id = 1500 BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    engine.dispose()
    with pytest.raises(SchemaError) as caught:
        run_workflow("default_config: {insert_batch_size: 100}", source, target)
    report = {t.table: t for t in caught.value.report.tables}
    assert report["main.customers"].rows_written == 300
    assert report["main.employees"].rows_written == 60
    assert report["main.orders"].rows_written == 0 and report["main.orders"].rows_read >= 1400


def test_a_postgresql_source_is_read_as_of_one_moment(pg_url_factory: Callable[[], str]) -> None:
    """Rows written to the source while a run reads it are not half seen: orders added (with their
    new customer) after the customers were copied would otherwise point at nothing in the target."""
    source, target = pg_url_factory(), pg_url_factory()
    build_shop(source)
    writer = sa.create_engine(source)
    written: list[str] = []

    def write_while_reading(event: RunEvent) -> None:
        if event.kind == "table_finished" and event.table == "public.customers":
            with writer.begin() as conn:
                conn.execute(sa.text("INSERT INTO customers (id, name, email) VALUES (9999, 'New', 'new@x.org')"))
                conn.execute(sa.text("INSERT INTO orders (id, customer_id, amount) VALUES (99999, 9999, 1)"))
            written.append(event.table)

    try:
        run_workflow("default_config: {mode: KEEP}\n", source, target, on_event=write_while_reading)
    finally:
        writer.dispose()
    assert written == ["public.customers"]
    copied = dump(target)
    assert 99999 not in {row[0] for row in copied["orders"]} and len(copied["orders"]) == 2000
