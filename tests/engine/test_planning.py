"""Planning against small real SQLite sources: configs TDK users bring, and refusals before anything is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from governor.engine.config import parse_config
from governor.engine.errors import ConfigError
from governor.engine.plan import Plan
from governor.engine.preview import preview_plan
from governor.engine.runner import run_workflow

SHOP = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, buyer INTEGER NOT NULL, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO customers SELECT i, 'customer ' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120)
INSERT INTO orders SELECT i, 1 + i % 40, 'note ' || i FROM n;
"""


def sqlite_source(url: str, script: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.executescript(script)
    return url


def plan(config: str, source: str) -> Plan:
    return preview_plan(parse_config(config), source)


def problems(config: str, source: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        plan(config, source)
    return caught.value.problems


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def shop(sqlite_url_factory: Callable[[], str]) -> str:
    return sqlite_source(sqlite_url_factory(), SHOP)


TDK_VIRTUAL_KEY = """
global_seed: 3
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - columns: [id]
        params: {type: unique_hashing}
metadata:
  tables:
    - table_name_with_schema: orders
      foreign_keys:
        orders_bought_by:
          referred_schema: main
          referred_table: customers
          columns:
            - {column: buyer, referred_column: id}
"""


def test_a_virtual_foreign_key_in_tdk_shape_carries_the_masking(
    shop: str, sqlite_url_factory: Callable[[], str]
) -> None:
    target = sqlite_url_factory()
    run_workflow(TDK_VIRTUAL_KEY, shop, target)
    joined = "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.buyer"
    assert rows(target, joined) == [(120,)]
    assert rows(target, "SELECT count(*) FROM customers WHERE id BETWEEN 1 AND 40") != [(40,)]


def test_both_virtual_foreign_key_shapes_plan_alike(shop: str) -> None:
    listed = TDK_VIRTUAL_KEY.replace(
        """        orders_bought_by:
          referred_schema: main
          referred_table: customers
          columns:
            - {column: buyer, referred_column: id}
""",
        """        - referencing_columns: [buyer]
          referenced_table: customers
          referenced_columns: [id]
""",
    )
    assert plan(listed, shop).describe() == plan(TDK_VIRTUAL_KEY, shop).describe()


FK_PATH = "metadata.tables[0].foreign_keys.orders_bought_by"


def test_tdk_shape_problems_name_the_foreign_key(shop: str) -> None:
    config = TDK_VIRTUAL_KEY.replace("referred_table: customers", "referred_table: clients")
    [problem] = problems(config, shop)
    assert problem.startswith(
        "metadata.tables[0].foreign_keys.orders_bought_by.referred_table: no table 'main.clients'"
    )
    config = TDK_VIRTUAL_KEY.replace("referred_column: id}", "referred_column: ident}")
    assert problems(config, shop) == [f"{FK_PATH}.columns[0].referred_column: no column 'ident' in main.customers"]


def test_tdk_row_number_and_heuristics_at_their_documented_places(shop: str) -> None:
    config = """
default_config: {mode: GENERATION, target_row_number: 25}
use_text_column_heuristics: true
flags: []
tables:
  - table_name_with_schema: customers
    target_ratio: 0.5
"""
    specs = {str(table.name): table.generation for table in plan(config, shop).tables}
    assert {name: spec.target_rows(100) for name, spec in specs.items() if spec} == {
        "main.customers": 50,  # the table's own target wins over the default's row number
        "main.orders": 25,
    }
    assert all(spec is not None and spec.use_text_column_heuristics for spec in specs.values())


def test_a_tdk_flag_is_accepted_as_a_key_but_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("flags: [SOME_FLAG]\n")
    assert caught.value.problems == ["flags[0]: 'SOME_FLAG' is a TDK flag this engine does not support"]


def test_a_default_row_number_without_generated_tables_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("default_config: {target_row_number: 10}\n")
    assert caught.value.problems == [
        "default_config.target_row_number: only in GENERATION mode, and no table is generated"
    ]


def test_strict_leaves_a_kept_table_whose_key_follows_a_masked_parent(
    shop: str, sqlite_url_factory: Callable[[], str]
) -> None:
    config = TDK_VIRTUAL_KEY.replace("global_seed: 3", "global_seed: 3\nsafety_mode: STRICT").replace(
        "params: {type: unique_hashing}",
        "params: {type: unique_hashing}\n      - {columns: [name], mode: KEEP, params: {type: passthrough}}",
    )
    target = sqlite_url_factory()
    run_workflow(config, shop, target)
    assert rows(target, "SELECT count(*) FROM orders JOIN customers ON customers.id = orders.buyer") == [(120,)]
    assert rows(target, "SELECT note FROM orders WHERE id = 7") == [("note 7",)]


def test_every_transformer_refusing_its_column_is_named_by_its_path(shop: str) -> None:
    config = """
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - {columns: [name], params: {type: noising}}
  - table_name_with_schema: orders
    mode: MASKING
    transformations:
      - {columns: [note], params: {type: noising}}
"""
    assert [problem.split(": ", 1)[0] for problem in problems(config, shop)] == [
        "tables[0].transformations[0] on name",
        "tables[1].transformations[0] on note",
    ]
    assert "column 'note' is string" in problems(config, shop)[1]


def test_a_bad_transformer_param_shows_the_value_given() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "tables:\n  - table_name_with_schema: t\n    transformations:\n"
            "      - {columns: [x], params: {type: noising, noise_type: GAUSSIAN}}\n"
        )
    [problem] = caught.value.problems
    assert problem.startswith("tables[0].transformations[0].params.noise_type: ")
    assert problem.endswith("(got 'GAUSSIAN')")


def test_a_masked_key_referenced_by_a_column_of_another_type_is_refused(sqlite_url_factory: Callable[[], str]) -> None:
    source = sqlite_source(sqlite_url_factory(), SHOP.replace("buyer INTEGER NOT NULL", "buyer TEXT NOT NULL"))
    [problem] = problems(TDK_VIRTUAL_KEY, source)
    assert problem.startswith("tables[0].transformations[0] on id: main.orders.buyer (string) references")
    assert "Give both sides of the reference the same type" in problem


def test_a_transformer_that_can_collide_is_refused_on_a_unique_column(sqlite_url_factory: Callable[[], str]) -> None:
    source = sqlite_source(
        sqlite_url_factory(),
        "CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT); INSERT INTO codes VALUES ('A1', 'x'), ('A2', 'y');",
    )
    config = """
tables:
  - table_name_with_schema: codes
    mode: MASKING
    transformations:
      - {columns: [code], params: {type: format_preserving_hashing}}
      - {columns: [label], params: {type: redaction}}
"""
    assert problems(config, source) == [
        "tables[0].transformations[0] on code: format_preserving_hashing can map distinct values of the unique "
        "column 'code' to one; mask unique and key columns with unique_hashing"
    ]


def test_text_hashing_is_refused_on_uuid_and_json_columns(pg_url_factory: Callable[[], str]) -> None:
    source = pg_url_factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id uuid PRIMARY KEY, body jsonb, note text)")
    engine.dispose()
    config = """
tables:
  - table_name_with_schema: events
    mode: MASKING
    transformations:
      - {columns: [id, body, note], params: {type: unique_hashing}}
"""
    assert [problem.split(": ", 1)[0] for problem in problems(config, source)] == [
        "tables[0].transformations[0] on id",
        "tables[0].transformations[0] on body",
    ]
    assert "uuid_generator" in problems(config, source)[0]


GENERATED_SHOP = "default_config: {mode: GENERATION}\ntables:\n  - table_name_with_schema: customers\n"


def test_a_sequence_on_a_key_generated_rows_reference_is_refused(sqlite_url_factory: Callable[[], str]) -> None:
    source = sqlite_source(
        sqlite_url_factory(), SHOP.replace("buyer INTEGER NOT NULL", "buyer INTEGER REFERENCES customers(id)")
    )
    config = GENERATED_SHOP + "    transformations:\n      - {columns: [id], params: {type: int_sequence_generator}}\n"
    [problem] = problems(config, source)
    assert problem.startswith("tables[0].transformations[0] on id: int_sequence_generator numbers main.customers(id)")


def test_a_cycle_through_a_generated_table_is_refused(sqlite_url_factory: Callable[[], str]) -> None:
    source = sqlite_source(
        sqlite_url_factory(),
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id));"
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a(id));",
    )
    breaker = "{table_name_with_schema: a, cycle_breaker_references: [{columns: [b_id]}]}"
    config = f"default_config: {{mode: GENERATION}}\ntables:\n  - {breaker}\n"
    [problem] = problems(config, source)
    assert problem.startswith("tables[0].cycle_breaker_references[0]: main.a(b_id) -> main.b(id) breaks a cycle")


def test_generating_a_table_whose_references_share_a_column_is_refused(sqlite_url_factory: Callable[[], str]) -> None:
    source = sqlite_source(
        sqlite_url_factory(),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);"
        "CREATE TABLE s (t_id INTEGER REFERENCES t(id), code TEXT, PRIMARY KEY (t_id, code));"
        "CREATE TABLE c (id INTEGER PRIMARY KEY, t_id INTEGER REFERENCES t(id), code TEXT,"
        " FOREIGN KEY (t_id, code) REFERENCES s(t_id, code));",
    )
    [problem] = problems("default_config: {mode: GENERATION}\n", source)
    assert problem.startswith("main.c: generating it would break one of ")
