"""Generated tables in a subsetted run: they keep every row they make and reference only kept rows."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
import yaml

from governor.engine.runner import run_workflow

UrlFactory = Callable[[], str]


def build(url: str) -> None:
    """1,000 parents and 3,000 children with a declared foreign key."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.exec_driver_sql(
            "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL REFERENCES p(id), v INTEGER)"
        )
        conn.exec_driver_sql("INSERT INTO p VALUES " + ", ".join(f"({i}, 'p{i}')" for i in range(1, 1001)))
        conn.exec_driver_sql(
            "INSERT INTO c VALUES " + ", ".join(f"({i}, {1 + i % 1000}, {i % 7})" for i in range(1, 3001))
        )
    engine.dispose()


def run(source: str, target: str, tables: list[dict[str, object]]) -> dict[str, int]:
    report = run_workflow(yaml.safe_dump({"global_seed": 1, "tables": tables}), source, target)
    return {t.table.removeprefix("main."): t.rows_written for t in report.tables}


def orphans(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT count(*) FROM c LEFT JOIN p ON p.id = c.p_id WHERE p.id IS NULL")
        count = found.scalar_one()
    engine.dispose()
    return count


def test_a_generated_child_of_a_subsetted_parent_gets_all_its_rows(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build(source)
    written = run(
        source,
        target,
        [
            {"table_name_with_schema": "p", "target_ratio": 0.1},
            {"table_name_with_schema": "c", "mode": "GENERATION", "target_row_number": 500},
        ],
    )
    assert written == {"p": 100, "c": 500}
    assert orphans(target) == 0


def test_a_generated_parent_of_a_subsetted_child_is_not_cut(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build(source)
    written = run(
        source,
        target,
        [
            {"table_name_with_schema": "p", "mode": "GENERATION", "target_row_number": 50},
            {"table_name_with_schema": "c", "mode": "KEEP", "target_ratio": 0.1},
        ],
    )
    assert written == {"p": 50, "c": 300}
    assert orphans(target) == 0


def test_picked_keys_come_from_the_kept_rows_of_a_subsetted_parent(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build(source)
    engine = sa.create_engine(source)
    with engine.begin() as conn:  # a child without a declared key, so nothing but the picked keys keep it sound
        conn.exec_driver_sql("CREATE TABLE d (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO d SELECT id, p_id FROM c")
    engine.dispose()
    fk = {"type": "foreign_key_generator", "referred_table": "p", "referred_fields": ["id"]}
    written = run(
        source,
        target,
        [
            {"table_name_with_schema": "p", "target_ratio": 0.1},
            {
                "table_name_with_schema": "d",
                "mode": "MASKING",
                "transformations": [{"columns": ["p_id"], "params": fk}],
            },
        ],
    )
    assert written["p"] == 100 and written["d"] > 0
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        dangling = conn.exec_driver_sql("SELECT count(*) FROM d WHERE p_id NOT IN (SELECT id FROM p)").scalar_one()
    engine.dispose()
    assert dangling == 0
