"""PostgreSQL columns and values beyond the canonical types: generated columns, domains, infinities."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
import sqlalchemy as sa

from governor.engine.connectors import open_connector
from governor.engine.errors import SchemaError
from governor.engine.runner import run_workflow
from tests.engine.test_connectors import pg_column_types, pg_dump_rows

UrlFactory = Callable[[], str]

KEEP = "default_config: {mode: KEEP}\n"


def execute(url: str, script: str) -> list[tuple]:
    """Run a script; the rows of its last statement, if it returns any."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        result = conn.exec_driver_sql(script)
        rows = [tuple(row) for row in result] if result.returns_rows else []
    engine.dispose()
    return rows


def test_generated_and_identity_columns_are_recreated_not_written(pg_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), pg_url_factory()
    execute(
        source,
        "CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int, "
        "g int GENERATED ALWAYS AS (a * 2) STORED);"
        "INSERT INTO t (a) VALUES (1), (NULL), (21)",
    )

    run_workflow(KEEP, source, target)

    assert pg_dump_rows(target, "t") == pg_dump_rows(source, "t") == b"1\t1\t2\n2\t\\N\t\\N\n3\t21\t42\n"
    generated = "SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attgenerated = 's'"
    assert execute(target, generated) == [("g",)]
    assert execute(target, "INSERT INTO t (a) VALUES (5) RETURNING id, g") == [(4, 10)]


def test_a_domain_is_created_before_its_tables(pg_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), pg_url_factory()
    execute(
        source,
        "CREATE DOMAIN posint AS integer CHECK (VALUE > 0);"
        "CREATE DOMAIN day_off AS date DEFAULT '2024-12-25' NOT NULL;"
        "CREATE TABLE t (id int PRIMARY KEY, p posint, d day_off);"
        "INSERT INTO t VALUES (1, 5, DEFAULT), (2, NULL, 'infinity')",
    )

    run_workflow(KEEP, source, target)

    assert pg_dump_rows(target, "t") == pg_dump_rows(source, "t")
    # Reflection merges a domain's NOT NULL into its columns: the same rows fit.
    assert [column[:2] for column in pg_column_types(target, "t")] == [
        ("id", "integer"),
        ("p", "posint"),
        ("d", "day_off"),
    ]
    definitions = (
        "SELECT typname, format_type(typbasetype, typtypmod), typnotnull, typdefault, "
        "(SELECT string_agg(pg_get_constraintdef(oid), ', ') FROM pg_constraint WHERE contypid = pg_type.oid) "
        "FROM pg_type WHERE typtype = 'd' AND typnamespace = 'public'::regnamespace ORDER BY typname"
    )
    assert execute(target, definitions) == execute(source, definitions)
    with pytest.raises(sa.exc.IntegrityError, match="posint_check"):
        execute(target, "INSERT INTO t VALUES (3, -1, DEFAULT)")
    connector = open_connector(source)
    schema = connector.arrow_schema(connector.reflect().tables["t"])
    connector.close()
    assert schema.field("p").type == pa.int32()  # the base type's, for transformers


SPECIAL_VALUES = """
CREATE TABLE t (
    id int PRIMARY KEY,
    day date, stamp timestamp, stamp_tz timestamptz, moment time(0), amount numeric(8, 2),
    plain_day date, plain_stamp timestamptz, plain_moment time, plain_amount numeric(8, 2)
);
INSERT INTO t VALUES
    (1, 'infinity', 'infinity', 'infinity', '24:00:00', 'NaN',
     '2024-02-29', '2024-02-29 12:00:00+01', '23:59:59.999999', 123456.78),
    (2, '-infinity', '-infinity', '-infinity', '00:00:00', -1.5, NULL, NULL, NULL, NULL),
    (3, '0044-03-15 BC', '4713-01-01 00:00:00 BC', '0001-12-31 23:59:59.999999+00 BC', NULL, NULL,
     '0001-01-01', '0001-01-01 00:00:00+00', '00:00:00', 0),
    (4, '12345-06-07', '294276-12-31 23:59:59.999999', '10000-01-01 00:00:00+00', '12:00:00', 1,
     '9999-12-31', '9999-12-31 23:59:59.999999+00', '12:00:00', 1),
    (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
"""


def test_values_beyond_arrow_types_round_trip(pg_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), pg_url_factory()
    execute(source, SPECIAL_VALUES)

    run_workflow(KEEP, source, target)

    assert pg_dump_rows(target, "t") == pg_dump_rows(source, "t")
    assert pg_column_types(target, "t") == pg_column_types(source, "t")
    connector = open_connector(source)
    schema = connector.arrow_schema(connector.reflect().tables["t"])
    connector.close()
    assert [field.type for field in schema] == [
        pa.int32(),
        *[pa.string()] * 5,  # PostgreSQL's text, which the target parses back
        pa.date32(),
        pa.timestamp("us", tz="UTC"),
        pa.time64("us"),
        pa.decimal128(8, 2),
    ]


def test_values_beyond_arrow_types_are_refused_by_mariadb_by_column(
    pg_url_factory: UrlFactory, mysql_url_factory: UrlFactory
) -> None:
    source, target = pg_url_factory(), mysql_url_factory()
    execute(source, "CREATE TABLE t (id int PRIMARY KEY, day date); INSERT INTO t VALUES (1, 'infinity')")

    with pytest.raises(SchemaError, match=r"^cannot load table t: .*'infinity' for column .*day") as caught:
        run_workflow(KEEP, source, target)
    assert "\n" not in str(caught.value)


def test_generated_columns_and_domains_are_plain_in_other_databases(
    pg_url_factory: UrlFactory, sqlite_url_factory: UrlFactory
) -> None:
    """Their expressions and checks are PostgreSQL's SQL: the target keeps the values read instead."""
    source, target = pg_url_factory(), sqlite_url_factory()
    execute(
        source,
        "CREATE DOMAIN posint AS integer CHECK (VALUE > 0);"
        "CREATE TABLE t (id int PRIMARY KEY, a text, g text GENERATED ALWAYS AS (a || '!'::text) STORED, p posint);"
        "INSERT INTO t (id, a, p) VALUES (1, 'x', 5)",
    )

    run_workflow(KEEP, source, target)

    assert execute(target, "SELECT * FROM t") == [(1, "x", "x!", 5)]
    assert execute(target, "SELECT type FROM pragma_table_info('t') WHERE name = 'p'") == [("INTEGER",)]
    assert execute(target, "UPDATE t SET g = 'given' RETURNING g") == [("given",)]
