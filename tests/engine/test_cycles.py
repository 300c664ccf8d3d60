"""Reference cycles, self-references, scripts and the same-database refusal, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from governor.engine.errors import ConfigError, SchemaError
from governor.engine.runner import run_workflow
from tests.engine.test_subset import orphans

UrlFactory = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest) -> UrlFactory:
    return request.getfixturevalue("pg_url_factory" if request.param == "postgresql" else "sqlite_url_factory")


def build_company(url: str) -> None:
    """Departments have a head (nullable, an employee); employees belong to a department (NOT NULL)."""
    engine = sa.create_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    # SQLite takes a reference to a table created later (and checks none unless asked to);
    # PostgreSQL gets the departments -> employees key once both tables exist.
    head = "INTEGER REFERENCES employees(id)" if sqlite else "INTEGER"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL, head_id {head})")
        conn.exec_driver_sql(
            "CREATE TABLE employees (id INTEGER PRIMARY KEY, department_id INTEGER NOT NULL REFERENCES departments(id),"
            " manager_id INTEGER REFERENCES employees(id), name TEXT NOT NULL)"
        )
        conn.execute(
            sa.text("INSERT INTO departments VALUES (:id, :name, NULL)"),
            [{"id": d, "name": f"D{d}"} for d in range(1, 11)],
        )
        conn.execute(
            sa.text("INSERT INTO employees VALUES (:id, :d, :m, :n)"),
            [
                {"id": i, "d": 1 + i % 10, "m": None if i <= 10 else 1 + (i - 1) // 4, "n": f"E{i}"}
                for i in range(1, 201)
            ],
        )
        conn.exec_driver_sql("UPDATE departments SET head_id = id * 3")
        if not sqlite:
            conn.exec_driver_sql("ALTER TABLE departments ADD FOREIGN KEY (head_id) REFERENCES employees(id)")
    engine.dispose()


def rows(url: str, query: str) -> list[tuple]:  # type: ignore[type-arg]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


HEADS = "SELECT id, head_id FROM departments ORDER BY id"


def test_a_cycle_fails_by_default_naming_it(factory: UrlFactory) -> None:
    source, target = factory(), factory()
    build_company(source)
    with pytest.raises(
        SchemaError, match=r"reference cycle: .*(departments -> .*employees|employees -> .*departments)"
    ):
        run_workflow("global_seed: 1\n", source, target)


def test_delete_not_required_loads_the_cycle_with_the_nullable_side_empty(factory: UrlFactory) -> None:
    source, target = factory(), factory()
    build_company(source)
    report = run_workflow("cycle_resolution_strategy: DELETE_NOT_REQUIRED\n", source, target)
    assert [t.rows_written for t in report.tables] == [10, 200]
    assert rows(target, HEADS) == [(d, None) for d in range(1, 11)]
    assert rows(target, "SELECT count(*) FROM employees WHERE manager_id IS NOT NULL") == [(190,)]


def test_cycle_breaker_reference_restores_the_values(factory: UrlFactory) -> None:
    source, target = factory(), factory()
    build_company(source)
    config = """
tables:
  - table_name_with_schema: departments
    cycle_breaker_references:
      - columns: [head_id]
"""
    run_workflow(config, source, target)
    assert rows(target, HEADS) == rows(source, HEADS)
    assert not any(orphans(target).values())


def test_cycle_breaker_with_masked_keys_and_a_subset(factory: UrlFactory) -> None:
    source, target = factory(), factory()
    build_company(source)
    config = """
global_seed: 4
tables:
  - table_name_with_schema: departments
    target_ratio: 0.5
    cycle_breaker_references:
      - columns: [head_id]
        referenced_table: employees
  - table_name_with_schema: employees
    mode: MASKING
    transformations:
      - columns: [id]
        params: {type: unique_hashing}
      - columns: [name]
        params: {type: passthrough}
"""
    report = run_workflow(config, source, target)
    written = {t.table.rsplit(".", 1)[-1]: t.rows_written for t in report.tables}
    assert written["departments"] == 5
    # Employees follow their departments; heads that were kept point at them again.
    assert rows(target, "SELECT count(*) FROM employees") == [(written["employees"],)]
    restored = rows(target, "SELECT count(*) FROM departments d JOIN employees e ON e.id = d.head_id")
    assert restored[0][0] >= 1
    assert not any(orphans(target).values())


def test_named_breakers_are_checked(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_company(source)
    config = """
tables:
  - table_name_with_schema: employees
    cycle_breaker_references:
      - columns: [department_id]
      - columns: [manager_id]
      - columns: [nothing]
"""
    with pytest.raises(ConfigError) as caught:
        run_workflow(config, source, target)
    problems = caught.value.problems
    assert any(p.startswith("tables[0].cycle_breaker_references[0]:") and "NOT NULL" in p for p in problems)
    assert any(p.startswith("tables[0].cycle_breaker_references[1]:") and "self-reference" in p for p in problems)
    assert any(p.startswith("tables[0].cycle_breaker_references[2].columns:") for p in problems)


@pytest.mark.parametrize("strategy", ["FAIL", "DELETE_NOT_REQUIRED"])
def test_self_reference_loads_whole_and_subsetted_under_both_strategies(factory: UrlFactory, strategy: str) -> None:
    source = factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE staff (id INTEGER PRIMARY KEY, boss INTEGER REFERENCES staff(id))")
        # Bosses have higher ids than their reports: loading in id order meets children first.
        conn.execute(
            sa.text("INSERT INTO staff VALUES (:id, :boss)"),
            [{"id": i, "boss": None if i == 300 else min(300, i + 7)} for i in range(300, 0, -1)],
        )
    engine.dispose()
    whole, part = factory(), factory()
    run_workflow(f"cycle_resolution_strategy: {strategy}\n", source, whole)
    assert rows(whole, "SELECT id, boss FROM staff ORDER BY id") == rows(
        source, "SELECT id, boss FROM staff ORDER BY id"
    )
    report = run_workflow(
        f"cycle_resolution_strategy: {strategy}\nglobal_seed: 3\ndefault_config:\n  target_ratio: 0.2\n", source, part
    )
    assert abs(report.tables[0].rows_written - 60) <= 6
    assert rows(part, "SELECT count(*) FROM staff WHERE boss IS NULL") == [(1,)]  # every chain reaches the top
    assert not any(orphans(part).values())


def test_scripts_run_on_the_target_before_and_after_the_load(factory: UrlFactory) -> None:
    source, target = factory(), factory()
    build_company(source)
    config = """
cycle_resolution_strategy: DELETE_NOT_REQUIRED
scripts:
  before:
    - "CREATE TABLE audit (note TEXT); INSERT INTO audit VALUES ('before; with a semicolon')"
  after:
    - |
      -- heads are assigned again by hand
      UPDATE departments SET head_id = (SELECT min(id) FROM employees e WHERE e.department_id = departments.id);
      INSERT INTO audit SELECT 'after ' || count(*) FROM departments WHERE head_id IS NOT NULL;
"""
    run_workflow(config, source, target)
    assert rows(target, "SELECT note FROM audit ORDER BY note") == [("after 10",), ("before; with a semicolon",)]


def test_a_failing_script_fails_the_run_in_one_line(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_company(source)
    config = "cycle_resolution_strategy: DELETE_NOT_REQUIRED\nscripts:\n  before: ['SELEKT 1']\n"
    with pytest.raises(SchemaError, match="a script failed on the target") as caught:
        run_workflow(config, source, target)
    assert "\n" not in str(caught.value)


def test_the_source_reached_by_another_path_is_refused_as_target(sqlite_url_factory: UrlFactory) -> None:
    source = sqlite_url_factory()
    build_company(source)
    path = source.removeprefix("sqlite:///")
    link = f"{path}.link"
    os.symlink(path, link)
    with pytest.raises(SchemaError, match="the target is the source database"):
        run_workflow("cycle_resolution_strategy: DELETE_NOT_REQUIRED\n", source, f"sqlite:///{link}")
    assert rows(source, "SELECT count(*) FROM employees") == [(200,)]
