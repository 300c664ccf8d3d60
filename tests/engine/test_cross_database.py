"""Workflows from one kind of database to another, through ``run_workflow``, on the demo database.

Each route creates the target schema from a source of another dialect, loads it, and is checked
on the target itself: row counts, values (kept or masked, read back through the demo's typed
tables so that every database compares alike), and every foreign key by an anti-join.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from governor.demo import DEMO_MASKING_CONFIG, DEMO_TABLES, build_demo_database
from governor.engine.runner import run_workflow
from tests.servers import MariaDBServer, PostgresServer
from tests.test_demo_database import EXPECTED_FOREIGN_KEYS, MASKED_COLUMNS, dump, query

KEEP_CONFIG = """\
default_config:
  mode: KEEP
schema_creation_mode: CREATE_IF_NOT_EXISTS
table_truncation_mode: TRUNCATE
safety_mode: RELAXED
"""

URL_FACTORIES = {"postgres": "pg_url_factory", "sqlite": "sqlite_url_factory", "mariadb": "mysql_url_factory"}
SOURCES = {"postgres": "postgres_demo", "mariadb": "mariadb_demo"}
ROUTES = [("postgres", "sqlite"), ("mariadb", "postgres"), ("postgres", "mariadb")]


@pytest.fixture(scope="module")
def postgres_demo(postgres: PostgresServer) -> Iterator[str]:
    """One demo source per worker, shared by the routes that read it (they never write it)."""
    url = postgres.create_database("cross_demo")
    build_demo_database(url)
    yield url
    postgres.drop_database("cross_demo")


@pytest.fixture(scope="module")
def mariadb_demo(mariadb: MariaDBServer) -> Iterator[str]:
    url = mariadb.create_database("cross_demo")
    build_demo_database(url)
    yield url
    mariadb.drop_database("cross_demo")


def foreign_keys(url: str) -> set[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    """The target's foreign keys as the target itself reports them."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            (table, tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for table in inspector.get_table_names()
            for fk in inspector.get_foreign_keys(table)
        }
    finally:
        engine.dispose()


def changed_values(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]], index: int) -> tuple[int, int]:
    """(values that differ, non-null values that stayed) in one column of two row lists."""
    pairs = [(old[index], new[index]) for old, new in zip(before, after, strict=True)]
    return sum(old != new for old, new in pairs), sum(old == new for old, new in pairs if old is not None)


@pytest.mark.parametrize("mode", ["KEEP", "MASKING"])
@pytest.mark.parametrize(("source_kind", "target_kind"), ROUTES, ids=[f"{s}-to-{t}" for s, t in ROUTES])
def test_demo_workflow_across_databases(
    request: pytest.FixtureRequest, source_kind: str, target_kind: str, mode: str
) -> None:
    source = request.getfixturevalue(SOURCES[source_kind])
    target = request.getfixturevalue(URL_FACTORIES[target_kind])()

    report = run_workflow(KEEP_CONFIG if mode == "KEEP" else DEMO_MASKING_CONFIG, source, target)

    before, after = dump(source), dump(target)
    written = {table.table.rsplit(".", 1)[-1]: table.rows_written for table in report.tables}
    assert written == {name: len(rows) for name, rows in before.items()}
    assert {name: len(rows) for name, rows in after.items()} == written
    masked = MASKED_COLUMNS if mode == "MASKING" else {}
    for table in DEMO_TABLES:
        for index, column in enumerate(table.columns):
            changed, kept = changed_values(before[table.name], after[table.name], index)
            if column.name not in masked.get(table.name, ()):
                assert changed == 0, f"{table.name}.{column.name} changed"
            elif (table.name, column.name) != ("addresses", "state"):  # 50 states: some draws repeat
                assert kept == 0, f"{kept} values of {table.name}.{column.name} survived masking"

    assert foreign_keys(target) == EXPECTED_FOREIGN_KEYS
    for table, (column,), parent, (parent_column,) in sorted(EXPECTED_FOREIGN_KEYS):
        orphans = query(
            target,
            f"SELECT count(*) FROM {table} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {parent} p WHERE p.{parent_column} = c.{column})",
        )
        assert orphans == [(0,)], f"{table}.{column} -> {parent}.{parent_column}"
