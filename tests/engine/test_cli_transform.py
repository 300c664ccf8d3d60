"""``governor transform`` as a user runs it: a real subprocess, real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tests.engine.test_runner import build_shop, dump

MASKING = """
global_seed: 3
default_config: {insert_batch_size: 100}
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - columns: [id]
        params: {type: unique_hashing}
      - columns: [email]
        params: {type: unique_hashing}  # email is a unique column
"""


def governor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "governor", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_transform_masks_and_reports(tmp_path: Path, sqlite_url_factory: Callable[[], str]) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_shop(source)
    config = tmp_path / "mask.yaml"
    config.write_text(MASKING)
    result = governor("transform", "--config", str(config), "--source", source, "--target", target, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {t["table"]: t["rows_written"] for t in report["tables"]} == {
        "main.customers": 300,
        "main.orders": 2000,
        "main.employees": 60,
    }
    emails_before = {row[2] for row in dump(source)["customers"]}
    emails_after = {row[2] for row in dump(target)["customers"]}
    assert len(emails_after) == 300 and emails_after.isdisjoint(emails_before)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, sqlite_url_factory: Callable[[], str]) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_shop(source)
    config = tmp_path / "mask.yaml"
    config.write_text(MASKING)
    result = governor("transform", "-c", str(config), "--source", source, "--target", target, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    order = [t["table"] for t in plan["tables"]]
    assert order.index("main.customers") < order.index("main.orders")
    orders = next(t for t in plan["tables"] if t["table"] == "main.orders")
    assert orders["columns"]["customer_id"] == "unique_hashing (same as main.customers.id)"
    assert orders["mode"] == "MASKING"
    assert not Path(target.removeprefix("sqlite:///")).exists()


def test_failures_are_one_line_without_traceback(tmp_path: Path, sqlite_url_factory: Callable[[], str]) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_shop(source)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT CHECK (id < 250))")
    engine.dispose()
    config = tmp_path / "keep.yaml"
    config.write_text("default_config: {insert_batch_size: 50}\n")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("tables:\n  - table_name_with_schema: customers\n    mode: SHUFFLE\n")
    cases = [
        ("-c", str(config), "--source", source, "--target", target),  # the load hits a CHECK
        ("-c", str(bad_config), "--source", source, "--target", target),
        ("-c", str(tmp_path / "missing.yaml"), "--source", source, "--target", target),
        ("-c", str(config), "--source", "postgresql://u:hunter2@127.0.0.1:1/x", "--target", target),
    ]
    for args in cases:
        result = governor("transform", *args)
        assert result.returncode == 1, args
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
        assert "hunter2" not in result.stderr
    assert "tables[0].mode: 'SHUFFLE' is not one of" in governor("transform", *cases[1]).stderr


def test_dry_run_shows_what_generated_tables_will_make(tmp_path: Path, sqlite_url_factory: Callable[[], str]) -> None:
    source = sqlite_url_factory()
    build_shop(source)
    config = tmp_path / "generate.yaml"
    config.write_text(
        "tables:\n"
        "  - {table_name_with_schema: customers, target_ratio: 0.5}\n"
        "  - {table_name_with_schema: orders, mode: GENERATION, target_row_number: 50}\n"
        "  - {table_name_with_schema: employees, mode: GENERATION, target_ratio: 2}\n"
    )
    result = governor("transform", "-c", str(config), "--source", source, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    tables = {t["table"]: t for t in json.loads(result.stdout)["tables"]}
    assert (tables["main.orders"]["rows"], tables["main.orders"]["estimated_rows"]) == ("generated: 50 rows", 50)
    assert (tables["main.employees"]["rows"], tables["main.employees"]["estimated_rows"]) == (
        "generated: 2 x source rows",
        120,
    )
    assert tables["main.customers"]["estimated_rows"] == 150


def _sqlite_file(path: Path, *statements: str) -> str:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    return f"sqlite:///{path}"


def test_bad_sources_and_configs_fail_in_one_line(tmp_path: Path) -> None:
    """Each case used to end in a traceback or, worse, in 'done: 0 tables' and exit 0."""
    ok = tmp_path / "ok.yaml"
    ok.write_text("global_seed: 1\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("# caf\xe9\nglobal_seed: 1\n".encode("latin-1"))
    nope = tmp_path / "nope.yaml"
    nope.write_text("schemas: [nope]\n")
    not_a_database = tmp_path / "text.db"
    not_a_database.write_text("hello, not sqlite " * 100)
    shop = _sqlite_file(tmp_path / "shop.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    cases = [
        (ok, "foo", "not a database URL"),
        (latin, shop, "not UTF-8 text"),
        (ok, _sqlite_file(tmp_path / "untyped.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, x)"), "column 'x'"),
        (ok, f"sqlite:///{not_a_database}", "file is not a database"),
        (nope, shop, "the source has no schema nope"),
        (
            ok,
            _sqlite_file(
                tmp_path / "abc.db",
                "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
                "INSERT INTO t VALUES (1, 'abc')",
            ),
            "cannot read column n of table t",
        ),
        (ok, f"sqlite:///{tmp_path / 'missing.db'}", "no database file"),
        (ok, _sqlite_file(tmp_path / "empty.db", "PRAGMA user_version = 1"), "the source has no tables"),
    ]
    for number, (config, source, reason) in enumerate(cases):
        target = tmp_path / f"target_{number}.db"
        for dry_run in (
            ((), ("--dry-run",)) if reason in ("no database file", "the source has no schema nope") else ((),)
        ):
            result = governor(
                "transform", "-c", str(config), "--source", source, "--target", f"sqlite:///{target}", *dry_run
            )
            assert result.returncode == 1, (source, result.stdout)
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert lines[-1].startswith("error: ") and reason in lines[-1], result.stderr
            assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "target_6.db").exists()  # refused before the plan: no empty target left behind
