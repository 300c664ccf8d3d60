"""Source databases for the connector tests: every supported type, awkward values, NULLs."""

from __future__ import annotations

import json

import sqlalchemy as sa

from governor.engine.config import SchemaCreationMode, TableTruncationMode
from governor.engine.connectors import open_connector
from governor.engine.connectors.base import Connector

AWKWARD_STRINGS = [
    'say "hi", then leave',
    "line one\nline two\r\nline three",
    "back\\slash \\N \\x00ff",
    "unicode: żółć 日本語 🚀",
    "",
    " leading and trailing spaces ",
    ",",
    '"',
    "NULL",
]

PG_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy, really');
CREATE TABLE everything (
    id serial PRIMARY KEY,
    small smallint,
    normal integer,
    big bigint,
    money_like numeric(12, 2),
    exact numeric,
    single real,
    double double precision,
    label varchar(200),
    code char(3),
    body text,
    flag boolean,
    day date,
    moment time,
    stamp timestamp,
    stamp_tz timestamptz,
    ident uuid,
    doc json,
    docb jsonb,
    raw bytea,
    numbers integer[],
    words text[],
    feeling mood,
    moment_tz timetz,
    span interval,
    generated bigint GENERATED ALWAYS AS IDENTITY
);
CREATE UNIQUE INDEX everything_label ON everything (label);
CREATE TABLE child (
    id integer PRIMARY KEY,
    parent_id integer NOT NULL REFERENCES everything (id),
    note text
);
CREATE INDEX child_parent ON child (parent_id);
"""

PG_ROWS = """
INSERT INTO everything (small, normal, big, money_like, exact, single, double, label, code, body, flag,
    day, moment, stamp, stamp_tz, ident, doc, docb, raw, numbers, words, feeling, moment_tz, span)
VALUES
    (-32768, -2147483648, -9223372036854775808, -9999999999.99, 3.14159265358979323846264338327950288419716939,
     -3.4e38, -1.7976931348623157e308, %s, 'abc', %s, true,
     '0001-01-01', '00:00:00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00',
     '00000000-0000-0000-0000-000000000000', '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "x\\"y"}',
     '\\x00ff10', '{1,NULL,3}', '{"a b","c,d","e\\"f",NULL}', 'happy, really',
     '00:00:00-15:59', '-178000000 years -1 mons -0.000001 seconds'),
    (32767, 2147483647, 9223372036854775807, 9999999999.99, 0.000000000000000000001,
     1.5, 0.1, %s, 'x', %s, false,
     '9999-12-31', '23:59:59.999999', '2024-02-29 12:34:56.789012', '2024-02-29 23:59:59.123456-05:30',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '[]', '{}', '\\x', '{}', '{}', 'sad',
     '24:00:00+15:59', '1 year 2 mons -3 days 04:05:06.789012')
"""


def fill_postgres(url: str) -> None:
    """The PG source: two rows of extremes, one per awkward string, and one all NULL."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(PG_SCHEMA)
        conn.exec_driver_sql(PG_ROWS, (AWKWARD_STRINGS[0], AWKWARD_STRINGS[1], "second", AWKWARD_STRINGS[2]))
        for i, text in enumerate(AWKWARD_STRINGS):
            conn.exec_driver_sql(
                "INSERT INTO everything (label, body, words, doc) VALUES (%s, %s, ARRAY[%s], %s)",
                (f"awkward {i}", text, text, json.dumps({"s": text})),
            )
        conn.exec_driver_sql("INSERT INTO everything DEFAULT VALUES")
        conn.exec_driver_sql("INSERT INTO child (id, parent_id, note) SELECT id * 10, id, label FROM everything")
    engine.dispose()


SQLITE_SCHEMA = """
CREATE TABLE everything (
    id INTEGER PRIMARY KEY,
    small SMALLINT,
    normal INTEGER,
    big BIGINT,
    money_like NUMERIC(12, 2),
    double REAL,
    label VARCHAR(200),
    body TEXT,
    flag BOOLEAN,
    day DATE,
    moment TIME,
    stamp DATETIME,
    raw BLOB
);
CREATE UNIQUE INDEX everything_label ON everything (label);
CREATE TABLE child (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER NOT NULL REFERENCES everything (id),
    note TEXT
);
"""


def fill_sqlite(url: str) -> None:
    """The SQLite source, written as SQLAlchemy writes these types (dates as ISO text)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in SQLITE_SCHEMA.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        conn.exec_driver_sql(
            "INSERT INTO everything VALUES (1, -32768, -2147483648, -9223372036854775808, -9999999999.99, "
            "-1.7976931348623157e308, 'first', ?, 1, '0001-01-01', '00:00:00.000000', "
            "'1970-01-01 00:00:00.000000', x'00ff10')",
            (AWKWARD_STRINGS[0],),
        )
        conn.exec_driver_sql(
            "INSERT INTO everything VALUES (2, 32767, 2147483647, 9223372036854775807, 12.5, 0.1, 'second', ?, 0, "
            "'9999-12-31', '23:59:59.999999', '2024-02-29 12:34:56.789012', x'')",
            (AWKWARD_STRINGS[1],),
        )
        for i, text in enumerate(AWKWARD_STRINGS):
            conn.exec_driver_sql("INSERT INTO everything (label, body) VALUES (?, ?)", (f"awkward {i}", text))
        conn.exec_driver_sql("INSERT INTO everything DEFAULT VALUES")
        conn.exec_driver_sql("INSERT INTO child SELECT id * 10, id, label FROM everything")
    engine.dispose()


def copy_database(
    source_url: str,
    target_url: str,
    creation: SchemaCreationMode = SchemaCreationMode.CREATE_IF_NOT_EXISTS,
    truncation: TableTruncationMode = TableTruncationMode.DO_NOT_TRUNCATE,
    batch_size: int = 3,
) -> dict[str, int]:
    """Every table of the source into the target, parents first, as the runner does it."""
    source, target = open_connector(source_url), open_connector(target_url)
    try:
        return copy_with(source, target, creation, truncation, batch_size)
    finally:
        source.close()
        target.close()


def copy_with(
    source: Connector,
    target: Connector,
    creation: SchemaCreationMode,
    truncation: TableTruncationMode,
    batch_size: int,
) -> dict[str, int]:
    tables = source.reflect().sorted_tables
    target.prepare(tables, creation, truncation)
    return {table.name: target.write(table, source.read(table, batch_size)) for table in tables}
