"""Subsetting the demo database on real SQLite files and a real PostgreSQL server.

Every foreign key of the target is checked with an anti-join (child rows whose parent row is not
in the target), and driving tables must land within 10% of the ratio asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from governor.demo.database import build_demo_database
from governor.engine.errors import ConfigError, SchemaError
from governor.engine.runner import RunReport, run_workflow

UrlFactory = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A demo source database and an empty target of one kind."""
    factory: UrlFactory = request.getfixturevalue(f"{'pg' if request.param == 'postgresql' else 'sqlite'}_url_factory")
    source, target = factory(), factory()
    build_demo_database(source, scale=1.0, seed=11)
    return source, target


def orphans(url: str) -> dict[str, int]:
    """Per foreign key of the target, the rows referencing a row that is not there."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    found = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.tables.values():
                for fk in table.foreign_key_constraints:
                    parent = fk.referred_table.alias("parent")
                    joined = sa.and_(*(parent.c[e.column.name] == e.parent for e in fk.elements))
                    present = sa.and_(*(e.parent.is_not(None) for e in fk.elements))
                    query = (
                        sa.select(sa.func.count())
                        .select_from(table.outerjoin(parent, joined))
                        .where(present, parent.c[fk.elements[0].column.name].is_(None))
                    )
                    found[f"{table.name}.{fk.elements[0].parent.name}"] = conn.execute(query).scalar_one()
    finally:
        engine.dispose()
    return found


def ids(url: str, table: str) -> list[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY id")).scalars())
    finally:
        engine.dispose()


def ratios(report: RunReport) -> dict[str, float]:
    return {t.table.rsplit(".", 1)[-1]: t.ratio or 0.0 for t in report.tables}


def test_default_ratio_subsets_every_table_without_orphans(databases: tuple[str, str]) -> None:
    source, target = databases
    report = run_workflow("default_config:\n  target_ratio: 0.1\nglobal_seed: 5\n", source, target)
    achieved = ratios(report)
    # Subsetted tables without subsetted parents drive the subset and get the ratio asked for.
    for driving in ("customers", "products", "employees"):
        assert abs(achieved[driving] - 0.1) <= 0.01 + 1e-9, achieved
    # The others follow their parents and never exceed their own ratio.
    for table in report.tables:
        if table.table.rsplit(".", 1)[-1] in ("addresses", "orders", "order_items", "payments"):
            assert 0 < table.rows_written <= round(0.1 * table.source_rows), table
    found = orphans(target)
    assert len(found) == 7 and not any(found.values()), found
    # The manager of every kept employee is kept (the self-reference pulled them in).
    assert ids(target, "employees")[0] == 1


def test_same_seed_same_subset_other_seed_other_subset(sqlite_url_factory: UrlFactory) -> None:
    source = sqlite_url_factory()
    build_demo_database(source, scale=0.3, seed=3)
    chosen = []
    for seed in (1, 1, 2):
        target = sqlite_url_factory()
        run_workflow(f"default_config:\n  target_ratio: 0.2\nglobal_seed: {seed}\n", source, target)
        chosen.append((ids(target, "customers"), ids(target, "orders")))
    assert chosen[0] == chosen[1]
    assert chosen[0][0] != chosen[2][0]


def test_filter_drives_and_children_follow(databases: tuple[str, str]) -> None:
    source, target = databases
    config = """
global_seed: 1
tables:
  - table_name_with_schema: customers
    filter: "loyalty_tier IN ('gold', 'platinum') AND created_at < '2024-01-01 00:00:00'"
  - table_name_with_schema: payments
    filter: "method = 'card'"
"""
    report = run_workflow(config, source, target)
    engine = sa.create_engine(source)
    with engine.connect() as conn:
        asked = conn.execute(
            sa.text(
                "SELECT count(*) FROM customers WHERE loyalty_tier IN ('gold', 'platinum') "
                "AND created_at < '2024-01-01 00:00:00'"
            )
        ).scalar_one()
        orders_of_them = conn.execute(
            sa.text(
                "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
                "WHERE c.loyalty_tier IN ('gold', 'platinum') AND c.created_at < '2024-01-01 00:00:00'"
            )
        ).scalar_one()
    engine.dispose()
    written = {t.table.rsplit(".", 1)[-1]: t.rows_written for t in report.tables}
    assert written["customers"] == asked
    assert written["orders"] == orders_of_them  # every order of a kept customer follows it
    assert written["products"] == 200 and written["employees"] == 100  # untouched tables are whole
    found = orphans(target)
    assert not any(found.values()), found
    target_engine = sa.create_engine(target)
    with target_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM payments WHERE method <> 'card'")).scalar_one() == 0
        tiers = set(conn.execute(sa.text("SELECT DISTINCT loyalty_tier FROM customers")).scalars())
    target_engine.dispose()
    assert tiers <= {"gold", "platinum"}


def test_a_subsetted_child_pulls_in_the_rows_it_references(databases: tuple[str, str]) -> None:
    source, target = databases
    config = """
global_seed: 2
default_config:
  mode: MASKING
tables:
  - table_name_with_schema: orders
    target_ratio: 0.1
    filter: "status = 'delivered'"
  - table_name_with_schema: customers
    transformations:
      - columns: [id]
        params: {type: unique_hashing}
"""
    report = run_workflow(config, source, target)
    engine = sa.create_engine(source)
    with engine.connect() as conn:
        delivered = conn.execute(sa.text("SELECT count(*) FROM orders WHERE status = 'delivered'")).scalar_one()
    engine.dispose()
    written = {t.table.rsplit(".", 1)[-1]: t.rows_written for t in report.tables}
    assert written["orders"] == round(0.1 * delivered)
    # Customers and addresses hold what the drawn orders reference, no more.
    assert 0 < written["customers"] <= written["orders"]
    assert 0 < written["addresses"] <= written["orders"]
    assert not any(orphans(target).values())


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("true)) TO PROGRAM 'id' --", "closes a parenthesis"),
        ("id = 1; DROP TABLE customers", "';' is not allowed"),
        ("id = 1 -- everything", "comments"),
        ("name = $$x$$", "'$' is not allowed"),
        ("name = 'open", "unterminated"),
    ],
)
def test_filters_that_could_escape_their_condition_are_refused(
    sqlite_url_factory: UrlFactory, condition: str, reason: str
) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_demo_database(source, scale=0.05)
    config = {"tables": [{"table_name_with_schema": "customers", "filter": condition}]}
    with pytest.raises(ConfigError) as caught:
        run_workflow(_yaml(config), source, target)
    [problem] = caught.value.problems
    assert problem.startswith("tables[0].filter: ") and reason in problem


def test_a_filter_the_database_refuses_fails_in_one_line(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_demo_database(source, scale=0.05)
    config = 'tables:\n  - table_name_with_schema: customers\n    filter: "no_such_column = 1"\n'
    with pytest.raises(SchemaError) as caught:
        run_workflow(config, source, target)
    assert "no_such_column" in str(caught.value) and "\n" not in str(caught.value)
    assert sa.inspect(sa.create_engine(target)).get_table_names() == []  # refused before any write


def _yaml(data: object) -> str:
    import yaml

    return yaml.safe_dump(data)


def test_a_filter_that_writes_is_refused_and_the_source_is_untouched(pg_url_factory: UrlFactory) -> None:
    """Counts, key reads and reads all run read-only: a filter calling nextval never moves the source's sequence."""
    source, target = pg_url_factory(), pg_url_factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id serial PRIMARY KEY, name text)")
        conn.exec_driver_sql("INSERT INTO t (name) SELECT 'n' || i FROM generate_series(1, 20) AS i")
    config = "tables:\n  - table_name_with_schema: t\n    filter: \"nextval('t_id_seq') > 0\"\n"
    try:
        with pytest.raises(SchemaError, match="read-only transaction"):
            run_workflow(config, source, target)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT last_value FROM t_id_seq").scalar_one() == 20
    finally:
        engine.dispose()


def test_a_table_without_a_primary_key_subsets_rows_with_nulls_exactly(sqlite_url_factory: UrlFactory) -> None:
    """Its identity is all its columns: a NULL in one of them must neither match every other NULL nor drop the row."""
    source, target = sqlite_url_factory(), sqlite_url_factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("CREATE TABLE c (p_id INTEGER NOT NULL, note TEXT)")
        for i in range(1, 1001):
            conn.exec_driver_sql("INSERT INTO p VALUES (?, ?)", (i, f"p{i}"))
            conn.exec_driver_sql("INSERT INTO c VALUES (?, ?)", (i, None if i % 2 else f"n{i}"))
    engine.dispose()
    config = {
        "global_seed": 1,
        "tables": [{"table_name_with_schema": "c", "target_ratio": 0.1}],
        "metadata": {
            "tables": [
                {
                    "table_name_with_schema": "c",
                    "foreign_keys": [
                        {"referencing_columns": ["p_id"], "referenced_table": "p", "referenced_columns": ["id"]}
                    ],
                }
            ]
        },
    }
    report = run_workflow(_yaml(config), source, target)
    assert {t.table: t.rows_written for t in report.tables} == {"main.p": 100, "main.c": 100}
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        orphans = conn.exec_driver_sql("SELECT count(*) FROM c LEFT JOIN p ON p.id = c.p_id WHERE p.id IS NULL")
        assert orphans.scalar_one() == 0
        assert 0 < conn.exec_driver_sql("SELECT count(*) FROM c WHERE note IS NULL").scalar_one() < 100
    engine.dispose()
