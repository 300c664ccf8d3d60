"""MySQL and MariaDB: streamed reads and multi-row INSERTs rendered by Arrow, not per value.

The driver is PyMySQL (pure Python, so Governor installs anywhere, and what the tests run). A
driver named in the URL (``mysql+mysqldb://``, mysqlclient, faster at reading) takes the same
path, as only the DB-API is used on the data path.

* Reads stream through a server-side cursor, inside ``START TRANSACTION WITH CONSISTENT
  SNAPSHOT, READ ONLY``. The driver is told to convert nothing: every value arrives as text (or
  bytes for binary columns) and Arrow casts whole columns to the canonical types, which halves
  the driver's per-value work.
* Writes render each batch into SQL literals with Arrow's string kernels and send multi-row
  ``INSERT`` statements of a few megabytes, one transaction per table. Binding the rows through
  ``executemany`` instead escapes every value in Python and loads half as many rows a second,
  before the cost of turning Arrow batches into Python rows.
* Foreign key checks are off during a load, so that rows referencing later rows of the same
  table (self-references) load in any order; MySQL never re-checks rows loaded that way, so
  before committing the load checks every foreign key of the table with one anti-join (over
  the whole table, rows kept by ``IGNORE`` included) and refuses the table if a reference
  dangles, as the connector contract promises.

Every session runs in UTC (``TIMESTAMP`` columns read and write UTC instants) with a fixed
``sql_mode``: strict, so a value that does not fit fails the load instead of being truncated,
and ``NO_AUTO_VALUE_ON_ZERO``, so a loaded key 0 stays 0. InnoDB moves a table's AUTO_INCREMENT
counter past the largest loaded key by itself.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from governor.engine.connectors.prefetch import prefetch
from governor.engine.connectors.sql import SqlAlchemyConnector, describe, where_clause
from governor.engine.connectors.types import MYSQL_DIALECTS, arrow_type
from governor.engine.connectors.urls import first_line
from governor.engine.errors import SchemaError

_SESSION_SETTINGS = (
    "SET time_zone = '+00:00', "
    "sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
    # A slow consumer must not make the server give up on a streamed read.
    "net_write_timeout = 3600"
)
_STATEMENT_BYTES = 4 << 20
_PACKET_MARGIN = 1024
# Key columns without a length: 255 characters of utf8mb4 fit InnoDB's index limit three times.
_KEY_TEXT_LENGTH = 255
_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
_JSON_CHECK = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$")
_ESCAPES = ((b"\\", b"\\\\"), (b"'", b"\\'"), (b"\x00", b"\\0"))


def _session_settings(engine: sa.Engine) -> None:
    """Settings for every new connection, before SQLAlchemy looks at the first one's sql_mode."""

    @sa.event.listens_for(engine, "connect", insert=True)
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(_SESSION_SETTINGS)
        cursor.close()


class MySqlConnector(SqlAlchemyConnector):
    """A MySQL or MariaDB database; ``mysql://`` and ``mariadb://`` without a driver mean PyMySQL."""

    def __init__(self, url: str) -> None:
        parsed = sa.engine.make_url(url)
        if "+" not in parsed.drivername:
            parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        engine = sa.create_engine(parsed)
        super().__init__(url, engine)
        dbapi = engine.dialect.dbapi
        self._driver_errors = (dbapi.Error,)
        self._streaming_cursor = importlib.import_module(f"{dbapi.__name__}.cursors").SSCursor
        # Reads use connections whose driver decodes nothing (every key of ``conv`` that is an
        # int is a decoder); Arrow converts the text instead.
        encoders = {
            key: value
            for key, value in importlib.import_module(f"{dbapi.__name__}.converters").conversions.items()
            if not isinstance(key, int)
        }
        self._text_engine = sa.create_engine(parsed, connect_args={"conv": encoders})
        _session_settings(engine)
        _session_settings(self._text_engine)

    def reflect(self, schemas: list[str] | None = None) -> sa.MetaData:
        metadata = super().reflect(schemas)
        if self.engine.dialect.is_mariadb:
            self._mark_json_columns(metadata)
        return metadata

    def _mark_json_columns(self, metadata: sa.MetaData) -> None:
        """MariaDB's JSON is LONGTEXT with a ``json_valid`` check, which reflection reads as LONGTEXT.

        Typed as JSON again, the column is created as JSON in other targets (and with its check
        in MariaDB ones).
        """
        default = self.default_schema()
        with self.engine.connect() as conn:
            checks = conn.exec_driver_sql(
                "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CHECK_CLAUSE LIKE 'json_valid(%%'"
            ).all()
        for schema, name, clause in checks:
            table = metadata.tables.get(name if schema == default else f"{schema}.{name}")
            match = _JSON_CHECK.match(clause)
            if table is None or match is None:
                continue
            column = table.columns.get(match.group(1).replace("``", "`"))
            if column is not None and isinstance(column.type, mysql.LONGTEXT):
                column.type = mysql.JSON()

    def _same_dialect(self, source: sa.Table) -> bool:
        """MySQL and MariaDB tables are copied as they are between the two."""
        return source.info.get("dialect", self.dialect) in MYSQL_DIALECTS

    # Reading

    def _begin_read(self, conn: sa.Connection) -> None:
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def read(self, table: sa.Table, batch_size: int, where: str | None = None) -> Iterator[pa.RecordBatch]:
        return prefetch(self._read_batches(table, batch_size, where))

    def _read_batches(self, table: sa.Table, batch_size: int, where: str | None) -> Iterator[pa.RecordBatch]:
        schema = self.arrow_schema(table)
        statement = f"SELECT {self._select_list(table, schema)} FROM {self._qualified(table)}{where_clause(where)}"
        with self._read_connection(self._text_engine) as conn:
            cursor = conn.connection.driver_connection.cursor(self._streaming_cursor)
            finished = False
            try:
                cursor.execute(statement)
                while rows := cursor.fetchmany(batch_size):
                    yield _to_batch(rows, schema)
                cursor.close()
                finished = True
            except (pa.ArrowInvalid, *self._driver_errors) as exc:
                raise SchemaError(f"cannot read table {describe(self._key(table))}: {first_line(exc)}") from None
            finally:
                if not finished:
                    _drop_stream(conn, cursor)

    def _select_list(self, table: sa.Table, schema: pa.Schema) -> str:
        """Columns as text the canonical types cast from.

        Bits are read as numbers, JSON and other types as text, and single-precision floats as
        doubles: the server prints a FLOAT with six significant digits, which loses bits.
        """
        expressions = []
        for column, field in zip(table.columns, schema, strict=True):
            name = self._quote(column.name)
            if isinstance(column.type, mysql.BIT):
                name = f"{name} + 0"
            elif pa.types.is_float32(field.type):
                name = f"{name} + 0e0"
            elif pa.types.is_string(field.type) and not isinstance(column.type, sa.String):
                name = f"CAST({name} AS CHAR)"
            expressions.append(name)
        return ", ".join(expressions)

    # Writing

    def _load(self, target: sa.Table, batches: Iterable[pa.RecordBatch]) -> int:
        written = 0
        header: bytes | None = None
        with self.engine.begin() as conn:
            try:
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
                limit = min(_STATEMENT_BYTES, self._max_packet(conn))
                cursor = conn.connection.cursor()
                for batch in batches:
                    if header is None:
                        wire = self._wire_table(target, batch.schema)  # refuses columns the target lacks
                        columns = ", ".join(self._quote(column.name) for column in wire.columns)
                        header = f"INSERT INTO {self._qualified(target)} ({columns}) VALUES ".encode()
                    for statement in _insert_statements(header, batch, limit - len(header)):
                        cursor.execute(statement)
                    written += batch.num_rows
                self._check_foreign_keys(conn, target)
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
            except BaseException:
                # Never hand a connection with foreign key checks off back to the pool.
                conn.invalidate()
                raise
        return written

    def _max_packet(self, conn: sa.Connection) -> int:
        return int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one()) - _PACKET_MARGIN

    def _check_foreign_keys(self, conn: sa.Connection, table: sa.Table) -> None:
        """Refuse the load if a row references a parent row that is not there."""
        for constraint in table.foreign_key_constraints:
            parent = constraint.referred_table.alias("parent")
            children = [element.parent for element in constraint.elements]
            matches = sa.and_(*(parent.c[element.column.name] == element.parent for element in constraint.elements))
            orphan = conn.execute(
                sa.select(sa.literal(1))
                .select_from(table)
                .where(*(column.is_not(None) for column in children), ~sa.exists().where(matches))
                .limit(1)
            ).first()
            if orphan is not None:
                raise SchemaError(
                    f"cannot load table {describe(self._key(table))}: foreign key "
                    f"({', '.join(column.name for column in children)}) references rows missing from "
                    f"{describe(self._key(constraint.referred_table))}"
                )

    # Preparing the target

    def _adapt(self, copy: sa.Table, source: sa.Table) -> None:
        """Types MySQL can index and hold exactly; tables in utf8mb4 with exact comparisons."""
        super()._adapt(copy, source)
        keys = _key_columns(copy)
        source_dialect = source.info.get("dialect", "")
        for column, original in zip(copy.columns, source.columns, strict=True):
            canonical = arrow_type(original.type, source_dialect)
            column.type = _mysql_type(column.type, original.type, canonical, column.name in keys)
        for option, value in _TABLE_OPTIONS.items():
            copy.dialect_kwargs[option] = value

    def close(self) -> None:
        self._text_engine.dispose()
        super().close()


def _drop_stream(conn: sa.Connection, cursor: Any) -> None:
    """End a streamed read early by closing its connection.

    The server sends every row of a query, and closing the cursor would read them all: the
    rest of a large table. The connection is closed instead, and the cursor (and PyMySQL's
    result) told the stream is over, or they would try to read it when they are collected.
    """
    conn.invalidate()
    result = getattr(cursor, "_result", None)
    if hasattr(result, "unbuffered_active"):
        result.unbuffered_active = False
    cursor.connection = None


def _to_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    columns = zip(*rows, strict=True)
    return pa.RecordBatch.from_arrays(
        [_column(values, field.type) for values, field in zip(columns, schema, strict=True)], schema=schema
    )


def _column(values: tuple[Any, ...], data_type: pa.DataType) -> pa.Array:
    """One column of the driver's text values as its canonical Arrow type."""
    if pa.types.is_binary(data_type):
        return pa.array(values, pa.binary())
    text = pa.array(values, pa.string())
    if pa.types.is_string(data_type):
        return text
    if pa.types.is_boolean(data_type):
        return pc.not_equal(text.cast(pa.int64()), 0)
    if pa.types.is_time(data_type):
        # Arrow parses times only as part of a timestamp; TIME values beyond a day fail here.
        stamps = pc.binary_join_element_wise("1970-01-01 ", text, "").cast(pa.timestamp("us"))
        return stamps.cast(data_type)
    if pa.types.is_timestamp(data_type) and data_type.tz is not None:
        return text.cast(pa.timestamp(data_type.unit)).cast(data_type)  # the session's UTC wall time
    return text.cast(data_type)


def _insert_statements(header: bytes, batch: pa.RecordBatch, limit: int) -> Iterator[bytes]:
    """``INSERT ... VALUES (...), (...)`` statements of at most ``limit`` bytes of rows each.

    A row longer than the limit goes alone; the server refuses it if it exceeds
    ``max_allowed_packet``.
    """
    if not batch.num_rows:
        return
    values = pc.binary_join_element_wise(*(_literals(column) for column in batch.columns), _bytes(b","))
    rows = pc.binary_join_element_wise(_bytes(b"("), values, _bytes(b"),"), _bytes(b""))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + len(rows) + 1]
    data = rows.buffers()[2].to_pybytes()
    start = 0
    while start < len(rows):
        end = int(np.searchsorted(offsets, offsets[start] + limit, side="right")) - 1
        end = min(max(end, start + 1), len(rows))
        yield header + data[offsets[start] : offsets[end] - 1]  # without the last row's comma
        start = end


def _literals(column: pa.Array) -> pa.Array:
    """The column's values as MySQL literals (large binary, no nulls: NULL is a literal too)."""
    data_type = column.type
    if pa.types.is_boolean(data_type):
        text = pc.if_else(column, "1", "0").cast(pa.large_binary())
    elif pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        text = column.cast(pa.large_string()).cast(pa.large_binary())
    elif pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        text = _quoted(column.cast(pa.large_binary()), b"_binary'")
    else:
        if pa.types.is_timestamp(data_type) and data_type.tz is not None:
            column = column.cast(pa.timestamp(data_type.unit))  # UTC wall time, as the session reads it
        text = _quoted(column.cast(pa.large_string()).cast(pa.large_binary()), b"'")
    return pc.fill_null(text, _bytes(b"NULL"))


def _quoted(text: pa.Array, opening: bytes) -> pa.Array:
    """Quoted literals, with backslash escapes (the session's sql_mode keeps backslashes special)."""
    for special, escape in _ESCAPES:
        text = pc.replace_substring(text, special, escape)
    return pc.binary_join_element_wise(_bytes(opening), text, _bytes(b"'"), _bytes(b""))


def _bytes(value: bytes) -> pa.Scalar:
    return pa.scalar(value, pa.large_binary())


def _key_columns(table: sa.Table) -> set[str]:
    """Columns in a primary, unique or foreign key or an index: MySQL indexes need a length."""
    keys = {column.name for column in table.primary_key.columns}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint | sa.ForeignKeyConstraint):
            keys.update(column.name for column in constraint.columns)
    for index in table.indexes:
        keys.update(column.name for column in index.columns)
    return keys


def _mysql_type(
    chosen: sa.types.TypeEngine, original: sa.types.TypeEngine, canonical: pa.DataType, key: bool
) -> sa.types.TypeEngine:
    """The MySQL column for another dialect's column, given the generic type chosen for it.

    Text and binary without a length become the long types (64 KiB TEXT and BLOB are too small
    for PostgreSQL's text and bytea), or 255-character keys; times keep microseconds; numerics
    without precision take MySQL's widest decimal; uuids are their 36 characters.
    """
    if isinstance(original, sa.Uuid):
        return mysql.CHAR(36)
    if isinstance(original, sa.JSON):
        return mysql.JSON()
    if pa.types.is_timestamp(canonical):
        return mysql.DATETIME(fsp=6)
    if pa.types.is_time(canonical):
        return mysql.TIME(fsp=6)
    if pa.types.is_floating(canonical):
        return mysql.FLOAT() if canonical.bit_width == 32 else mysql.DOUBLE()
    if pa.types.is_binary(canonical) and getattr(chosen, "length", None) is None:
        return mysql.VARBINARY(_KEY_TEXT_LENGTH) if key else mysql.LONGBLOB()
    if isinstance(chosen, sa.Numeric) and chosen.precision is None:
        return mysql.DECIMAL(65, 30)
    if pa.types.is_string(canonical) and (not isinstance(chosen, sa.String) or chosen.length is None):
        return mysql.VARCHAR(_KEY_TEXT_LENGTH) if key else mysql.LONGTEXT()
    return chosen
