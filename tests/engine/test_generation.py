"""GENERATION mode on the demo database, SQLite and PostgreSQL: constraints hold, distributions follow the source."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from governor.demo import build_demo_database
from governor.engine.errors import ConfigError
from governor.engine.generation.values import ScrambledText
from governor.engine.runner import RunReport, run_workflow
from tests.servers import PostgresServer

SCALE = 1.0  # the demo database as `governor demo` builds it, generated ten times over
GENERATE_TEN_TIMES = """
default_config: {mode: GENERATION, target_ratio: 10, use_text_column_heuristics: true, insert_batch_size: 4000}
global_seed: 11
table_truncation_mode: TRUNCATE
"""
CATEGORY_COLUMNS = [
    ("customers", "loyalty_tier"),
    ("customers", "marketing_opt_in"),
    ("orders", "status"),
    ("payments", "method"),
    ("products", "category"),
    ("order_items", "quantity"),
    ("employees", "department"),
]
RANGE_COLUMNS = [
    ("products", "price"),
    ("order_items", "unit_price"),
    ("payments", "amount"),
    ("employees", "salary"),
    ("customers", "birth_date"),
    ("orders", "ordered_at"),
]

_numbers = itertools.count(1)


class Databases:
    """A demo source and an empty target on one backend, dropped at the end of the module."""

    def __init__(self, backend: str, postgres: Callable[[], PostgresServer], folder: Path) -> None:
        self.backend, self._postgres, self._folder, self._created = backend, postgres, folder, []

    def new(self) -> str:
        name = f"gen_{next(_numbers)}"
        if self.backend == "sqlite":
            return f"sqlite:///{self._folder / f'{name}.sqlite'}"
        self._created.append(name)
        return self._postgres().create_database(name)

    def drop(self) -> None:
        for name in self._created:
            self._postgres().drop_database(name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(request.param, lambda: request.getfixturevalue("postgres"), tmp_path_factory.mktemp(request.param))
    yield dbs
    dbs.drop()


@pytest.fixture(scope="module")
def demo(databases: Databases) -> str:
    url = databases.new()
    build_demo_database(url, scale=SCALE)
    return url


@pytest.fixture(scope="module")
def generated(databases: Databases, demo: str) -> tuple[str, str, RunReport]:
    target = databases.new()
    return demo, target, run_workflow(GENERATE_TEN_TIMES, demo, target)


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def orphans(url: str) -> dict[str, int]:
    """Per foreign key of the target, the rows whose reference finds no parent (an anti-join)."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    found = {}
    with engine.connect() as conn:
        for table in metadata.tables.values():
            for fk in table.foreign_key_constraints:
                parent = fk.referred_table.alias("parent")
                child = table.alias("child")
                joined = sa.and_(*(child.c[e.parent.name] == parent.c[e.column.name] for e in fk.elements))
                query = (
                    sa.select(sa.func.count())
                    .select_from(child.outerjoin(parent, joined))
                    .where(*(child.c[e.parent.name].is_not(None) for e in fk.elements))
                    .where(parent.c[fk.elements[0].column.name].is_(None))
                )
                found[f"{table.name}({', '.join(c.name for c in fk.columns)})"] = conn.execute(query).scalar_one()
    engine.dispose()
    return found


def frequencies(url: str, table: str, column: str) -> dict[object, float]:
    counted = rows(url, f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}")
    total = sum(int(count) for _, count in counted)  # type: ignore[call-overload]
    return {value: int(count) / total for value, count in counted}  # type: ignore[call-overload]


def test_ten_times_the_demo_rows_load_with_every_constraint(generated: tuple[str, str, RunReport]) -> None:
    source, target, report = generated
    for table in report.tables:
        name = table.table.split(".")[-1]
        source_rows = int(scalar(source, f"SELECT COUNT(*) FROM {name}"))  # type: ignore[call-overload]
        assert table.rows_written == 10 * source_rows == scalar(target, f"SELECT COUNT(*) FROM {name}")
    found = orphans(target)
    assert len(found) == 7 and set(found.values()) == {0}
    # Unique keys and the self-reference's tree hold.
    customers = scalar(target, "SELECT COUNT(*) FROM customers")
    assert scalar(target, "SELECT COUNT(DISTINCT email) FROM customers") == customers
    assert scalar(target, "SELECT COUNT(*) FROM (SELECT order_id, product_id FROM order_items GROUP BY 1, 2) AS k") == (
        scalar(target, "SELECT COUNT(*) FROM order_items")
    )
    assert scalar(target, "SELECT COUNT(*) FROM employees WHERE manager_id >= id") == 0
    # Realistic people from the column names, never a source person.
    assert scalar(target, "SELECT COUNT(*) FROM customers WHERE email NOT LIKE '%@example.%'") == 0
    source_emails = {email for (email,) in rows(source, "SELECT email FROM customers")}
    assert not source_emails & {email for (email,) in rows(target, "SELECT email FROM customers")}


@pytest.mark.parametrize(("table", "column"), CATEGORY_COLUMNS)
def test_category_frequencies_follow_the_source(generated: tuple[str, str, RunReport], table: str, column: str) -> None:
    source, target, _ = generated
    before, after = frequencies(source, table, column), frequencies(target, table, column)
    assert set(after) == set(before)
    for value, share in before.items():
        assert abs(after[value] - share) < 0.03, (value, share, after[value])


@pytest.mark.parametrize(("table", "column"), RANGE_COLUMNS)
def test_numbers_and_dates_stay_in_the_source_range(
    generated: tuple[str, str, RunReport], table: str, column: str
) -> None:
    source, target, _ = generated
    low, high = rows(source, f"SELECT MIN({column}), MAX({column}) FROM {table}")[0]
    new_low, new_high = rows(target, f"SELECT MIN({column}), MAX({column}) FROM {table}")[0]
    assert low <= new_low <= new_high <= high  # type: ignore[operator]
    # ...and spread like it: the medians are close.
    ordered = [v for (v,) in rows(source, f"SELECT {column} FROM {table} ORDER BY {column}")]
    generated_ordered = [v for (v,) in rows(target, f"SELECT {column} FROM {table} ORDER BY {column}")]
    median, new_median = ordered[len(ordered) // 2], generated_ordered[len(generated_ordered) // 2]
    position = sum(1 for v in ordered if v <= new_median) / len(ordered)
    assert 0.4 < position < 0.6, (median, new_median)


def test_null_rates_follow_the_source(generated: tuple[str, str, RunReport]) -> None:
    source, target, _ = generated
    for table, column in [("payments", "card_last4"), ("employees", "manager_id")]:
        sql = f"SELECT AVG(CASE WHEN {column} IS NULL THEN 1.0 ELSE 0.0 END) FROM {table}"
        assert abs(float(scalar(source, sql)) - float(scalar(target, sql))) < 0.03  # type: ignore[arg-type]
    # Each customer's number of addresses (the fan-out) is learned too.
    sql = "SELECT AVG(n) FROM (SELECT COUNT(*) AS n FROM addresses GROUP BY customer_id) AS c"
    assert abs(float(scalar(source, sql)) - float(scalar(target, sql))) < 0.1  # type: ignore[arg-type]


MIXED = """
default_config: {mode: KEEP}
global_seed: 3
table_truncation_mode: TRUNCATE
tables:
  - table_name_with_schema: customers
    mode: GENERATION
    target_row_number: 500
    use_text_column_heuristics: true
  - table_name_with_schema: orders
    mode: MASKING
    transformations:
      - columns: [status]
        params: {type: categorical_generator, categories: {value_source: LEARNED}}
  - table_name_with_schema: order_items
    mode: GENERATION
    target_ratio: 2
    transformations:
      - columns: [quantity]
        params: {type: categorical_generator, categories: {value_source: LEARNED}}
  - table_name_with_schema: payments
    mode: GENERATION
    target_row_number: 300
    transformations:
      - columns: [order_id]
        params: {type: foreign_key_generator, referred_table: orders, referred_fields: [id]}
"""


def test_generated_tables_next_to_copied_and_masked_ones(databases: Databases, demo: str) -> None:
    target = databases.new()
    report = run_workflow(MIXED, demo, target)
    modes = {t.table.split(".")[-1]: (t.mode, t.rows_written) for t in report.tables}
    source_count = {name: scalar(demo, f"SELECT COUNT(*) FROM {name}") for name in modes}
    assert modes["customers"] == ("GENERATION", 500)
    assert modes["order_items"] == ("GENERATION", 2 * source_count["order_items"])  # type: ignore[operator]
    assert modes["payments"] == ("GENERATION", 300)
    # Addresses reference generated customers now: copied otherwise, so masked only there.
    assert modes["addresses"] == ("MASKING", source_count["addresses"])
    assert set(orphans(target).values()) == {0}
    for kept in ("products", "employees"):
        assert rows(target, f"SELECT * FROM {kept} ORDER BY id") == rows(demo, f"SELECT * FROM {kept} ORDER BY id")
    assert rows(target, "SELECT id, shipping_address_id, ordered_at FROM orders ORDER BY id") == rows(
        demo, "SELECT id, shipping_address_id, ordered_at FROM orders ORDER BY id"
    )
    # Learned categories: masking maps each status to one of the source's; generating follows their frequencies.
    assert set(frequencies(target, "orders", "status")) <= set(frequencies(demo, "orders", "status"))
    before, after = frequencies(demo, "order_items", "quantity"), frequencies(target, "order_items", "quantity")
    assert set(before) == set(after) and all(abs(after[v] - before[v]) < 0.03 for v in before)


def test_same_seed_same_rows_other_seed_other_rows(databases: Databases, demo: str) -> None:
    if databases.backend != "sqlite":
        pytest.skip("determinism is the engine's, one backend shows it")
    config = "default_config: {{mode: GENERATION, insert_batch_size: 700}}\nglobal_seed: {seed}"
    dumps = []
    for seed in (1, 1, 2):
        target = databases.new()
        run_workflow(config.format(seed=seed), demo, target)
        dumps.append(rows(target, "SELECT * FROM order_items ORDER BY id") + rows(target, "SELECT * FROM customers"))
    assert dumps[0] == dumps[1] != dumps[2]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("default_config: {target_ratio: 2}", "default_config.target_ratio: above 1 only in GENERATION mode"),
        (
            "tables: [{table_name_with_schema: orders, mode: MASKING, target_row_number: 5}]",
            "tables[0].target_row_number: only in GENERATION mode",
        ),
        (
            "tables: [{table_name_with_schema: orders, mode: GENERATION, transformations: [{columns: [customer_id], "
            "params: {type: foreign_key_generator, referred_table: clients, referred_fields: [id]}}]}]",
            "tables[0].transformations[0].params.referred_table: no table 'clients'",
        ),
        (
            "tables: [{table_name_with_schema: orders, mode: GENERATION, transformations: [{columns: [status], "
            "params: {type: categorical_generator, categories: {value_source: LEARNED, values: [a]}}}]}]",
            "learned categories come from the source column; give no values",
        ),
    ],
)
def test_generation_settings_errors_name_their_path(databases: Databases, demo: str, config: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        run_workflow(config, demo, databases.new())
    assert problem in str(caught.value)


def test_scrambled_text_replaces_letters_of_any_script() -> None:
    """Generated text drawn from source values must not carry them through, Cyrillic or Chinese ones neither."""
    sample = pa.array(["Иван Петров", "张伟", "José Ñúñez", "SKU-0012"])
    drawn = ScrambledText(sample).draw(np.arange(1, 2001, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    values = drawn.to_pylist()
    assert not set(values) & set(sample.to_pylist())
    assert {len(value) for value in values} == {len(value) for value in sample.to_pylist()}
    assert all(value[3] == "-" for value in values if value.isascii())
