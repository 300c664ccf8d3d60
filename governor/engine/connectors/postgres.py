"""PostgreSQL through psycopg 3, moving data with COPY in both directions.

This is the connector the performance target is about (masking PG -> PG at most twice the
cost of a plain COPY pipe), so no value passes through Python one at a time:

* reads run ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` and parse the stream with Arrow's CSV
  reader into the canonical types, in a thread a couple of batches ahead of the consumer;
* writes serialize each batch with Arrow's CSV writer into one ``COPY ... FROM STDIN`` per
  table, whose foreign keys PostgreSQL checks at the end of the statement.

In PostgreSQL's CSV, NULL is an unquoted empty field and an empty string is ``""``, which is
exactly how Arrow writes them and how the reader below is told to read them.

Values PostgreSQL holds and the canonical types cannot (``infinity``, dates outside years 1 to
9999, BC ones included, time ``24:00:00``, numeric ``NaN``) would fail Arrow's parse halfway
through a table. Columns holding any are found once per table, when the plan asks for its Arrow
schema, and read as PostgreSQL's text instead (see ``arrow_schema``); every other column, and every
batch, goes the plain way.

A source is read as of one moment: the first read exports a snapshot from a REPEATABLE READ
transaction held open for the connector's life (as ``pg_dump`` does), and every later statement
(counts, subset key reads, table reads, also in the prefetch thread) imports it. Rows written to
the source during a run can then neither leave a foreign key dangling between the rows chosen
and the rows loaded, nor make two tables disagree. A server that cannot export snapshots (a hot
standby before PostgreSQL 10, say) is read statement by statement, as before.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterable, Iterator

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.dialects import postgresql

from governor.engine.connectors.prefetch import prefetch
from governor.engine.connectors.sql import SqlAlchemyConnector, TableKey, describe, where_clause
from governor.engine.connectors.urls import first_line
from governor.engine.errors import SchemaError

# Session settings that fix the text form of values whatever the server's defaults are.
_READ_SETTINGS = (
    "SET TRANSACTION READ ONLY",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL bytea_output = 'hex'",
    "SET LOCAL extra_float_digits = 3",
)
_CSV_BLOCK_BYTES = 4 << 20
_CSV_WRITE = pacsv.WriteOptions(include_header=False)
_NEXTVAL = re.compile(r"^nextval\('(.+)'::regclass\)$")


class PostgresConnector(SqlAlchemyConnector):
    def __init__(self, url: str) -> None:
        super().__init__(url, sa.create_engine(url))
        self._owned_sequences: list[tuple[str, sa.Column]] = []
        self._snapshot_lock = threading.Lock()
        self._snapshot_holder: sa.Connection | None = None
        self._snapshot: str | None = None
        self._snapshot_tried = False
        self._out_of_range: dict[TableKey, dict[str, bool]] = {}

    # Reading

    def arrow_schema(self, table: sa.Table) -> pa.Schema:
        """The canonical types, but text for columns holding values those cannot (see ``_out_of_range_check``).

        PostgreSQL parses its own text back exactly, so a PG -> PG copy keeps ``infinity`` and BC
        dates as they are. Other databases receive the text too: SQLite stores it as it is, MySQL
        and MariaDB refuse it, naming the column. Transformers see such a column as a string
        column, at plan time already. Looking costs one scan of the table for all its columns of
        these types, once per table (subset projections ask again for fewer columns).
        """
        schema = super().arrow_schema(table)
        key = self._key(table)
        known = self._out_of_range.setdefault(key, {})
        checks = {
            field.name: check
            for field in schema
            if field.name not in known and (check := _out_of_range_check(self._quote(field.name), field.type))
        }
        if checks:
            found = ", ".join(f"bool_or({check})" for check in checks.values())
            try:
                with self._read_connection() as conn:
                    row = (
                        conn.execution_options(no_parameters=True)
                        .exec_driver_sql(f"SELECT {found} FROM {self._qualified(table)}")
                        .one()
                    )
            except (sa.exc.DBAPIError, *self._driver_errors) as exc:
                raise SchemaError(f"cannot read table {describe(key)}: {first_line(exc)}") from None
            known.update((name, bool(value)) for name, value in zip(checks, row, strict=True))
        for i, field in enumerate(schema):
            if known.get(field.name):
                schema = schema.set(i, field.with_type(pa.string()))
        return schema

    def _begin_read(self, conn: sa.Connection) -> None:
        snapshot = self._run_snapshot()
        if snapshot is not None:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        for setting in _READ_SETTINGS:
            conn.exec_driver_sql(setting)

    def _run_snapshot(self) -> str | None:
        """The snapshot every read of this connector sees, exported at the first read."""
        with self._snapshot_lock:
            if not self._snapshot_tried:
                self._snapshot_tried = True
                holder = self._read_engine.connect()
                try:
                    holder.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    self._snapshot = holder.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                    self._snapshot_holder = holder
                except sa.exc.DBAPIError:
                    holder.close()
            return self._snapshot

    def close(self) -> None:
        if self._snapshot_holder is not None:
            self._snapshot_holder.close()
            self._snapshot_holder = None
        super().close()

    def read(self, table: sa.Table, batch_size: int, where: str | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.arrow_schema(table)
        return prefetch(self._read_batches(table, schema, batch_size, where))

    def _read_batches(
        self, table: sa.Table, schema: pa.Schema, batch_size: int, where: str | None
    ) -> Iterator[pa.RecordBatch]:
        binary = [i for i, field in enumerate(schema) if pa.types.is_binary(field.type)]
        parse_schema = schema
        for i in binary:
            parse_schema = parse_schema.set(i, pa.field(schema[i].name, pa.string()))
        convert = pacsv.ConvertOptions(
            column_types=parse_schema,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
            true_values=["t"],
            false_values=["f"],
        )
        read = pacsv.ReadOptions(column_names=schema.names, block_size=_CSV_BLOCK_BYTES, use_threads=False)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        columns = ", ".join(self._quote(column.name) for column in table.columns)
        statement = f"COPY (SELECT {columns} FROM {self._qualified(table)}{where_clause(where)}) TO STDOUT (FORMAT csv)"

        with self._read_connection() as conn:
            driver: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
            finished = False
            try:
                with driver.cursor() as cursor, cursor.copy(statement) as copy:
                    stream = io.BufferedReader(_CopyStream(copy), buffer_size=1 << 20)
                    try:
                        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
                        for block in reader:
                            if binary:
                                block = _decode_bytea(block, binary, schema)
                            for start in range(0, block.num_rows, batch_size):
                                yield block.slice(start, batch_size)
                    except pa.ArrowInvalid as exc:
                        if "Empty CSV file" in str(exc):
                            finished = True
                            return
                        raise SchemaError(f"cannot read table {describe(self._key(table))}: {exc}") from None
                finished = True
            finally:
                if not finished:
                    # Stopped mid-COPY: cancel it and throw the connection away.
                    driver.cancel_safe()
                    conn.invalidate()

    # Writing

    _driver_errors = (psycopg.Error,)

    def _load(self, target: sa.Table, batches: Iterable[pa.RecordBatch]) -> int:
        batches = iter(batches)
        first = next(batches, None)
        written = 0
        with self.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")  # see _to_csv
            if first is not None:
                missing = [name for name in first.schema.names if name not in target.columns]
                if missing:
                    raise SchemaError(
                        f"table {describe(self._key(target))} in the target has no column {', '.join(missing)}"
                    )
                # PostgreSQL computes generated columns itself and refuses values for them.
                generated = {column.name for column in target.columns if column.computed is not None}
                names = [name for name in first.schema.names if name not in generated]
                columns = ", ".join(self._quote(name) for name in names)
                statement = f"COPY {self._qualified(target)} ({columns}) FROM STDIN (FORMAT csv)"
                driver: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
                with driver.cursor() as cursor, cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
                    # The queued writer sends in a thread of its own: the target server keeps
                    # loading while the next batch is read and transformed.
                    for batch in _chain(first, batches):
                        if batch.num_rows:
                            copy.write(_to_csv(batch.select(names) if generated else batch))
                            written += batch.num_rows
            self._after_load(conn, target)
        return written

    def _after_load(self, conn: sa.Connection, table: sa.Table) -> None:
        """Move serial and identity sequences past the largest loaded value."""
        name = self._qualified(table)
        for column, sequence in conn.exec_driver_sql(
            "SELECT attname, pg_get_serial_sequence(%(t)s, attname) FROM pg_attribute "
            "WHERE attrelid = %(t)s::regclass AND attnum > 0 AND NOT attisdropped",
            {"t": name},
        ):
            if sequence is not None:
                conn.exec_driver_sql(
                    f"SELECT setval(%(s)s, m) FROM (SELECT max({self._quote(column)}) AS m FROM {name}) AS x "
                    "WHERE m IS NOT NULL",
                    {"s": sequence},
                )

    # Preparing the target

    def _copy_tables(self, conn: sa.Connection, sources: list[sa.Table]) -> list[sa.Table]:
        copies = super()._copy_tables(conn, sources)
        self._owned_sequences = []
        for copy in copies:
            for column in copy.columns:
                if isinstance(column.type, postgresql.DOMAIN):
                    _creatable(column.type)
                default = column.server_default
                match = _NEXTVAL.match(str(default.arg)) if isinstance(default, sa.DefaultClause) else None
                if match:
                    # Create the sequence ourselves rather than let SERIAL name a new one.
                    column.autoincrement = False
                    self._owned_sequences.append((match.group(1), column))
                elif column.identity is not None and column.identity.always:
                    # COPY must be able to load the key values: GENERATED BY DEFAULT, not ALWAYS.
                    identity = sa.Identity(**{**column.identity._as_dict(), "always": False})
                    column.server_default = None
                    column.identity = None
                    identity._set_parent(column)
        return copies

    def _create(self, conn: sa.Connection, tables: list[sa.Table]) -> None:
        for schema in sorted({table.schema for table in tables if table.schema}):
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self._quote(schema)}")
        for sequence, _column in self._owned_sequences:
            conn.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {sequence}")
        super()._create(conn, tables)
        for sequence, column in self._owned_sequences:
            conn.exec_driver_sql(
                f"ALTER SEQUENCE {sequence} OWNED BY {self._qualified(column.table)}.{self._quote(column.name)}"
            )

    def _drop_suffix(self) -> str:
        # Removes other tables' foreign keys to the dropped ones, never the other tables.
        return " CASCADE"

    def _truncate(self, conn: sa.Connection, tables: list[sa.Table]) -> None:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(self._qualified(table) for table in tables)}")


def _creatable(domain: postgresql.DOMAIN) -> None:
    """Let a reflected domain be created (if missing) with the tables using it, before them.

    Reflection marks it not to be created and keeps its default as SQL text, which creation
    would otherwise quote as a string. SQLAlchemy reflects one CHECK constraint per domain (the
    first by name): the target's domain gets that one. Its columns come out NOT NULL when the
    domain is (reflection merges the two), which holds the same rows.
    """
    domain.create_type = True
    if isinstance(domain.default, str):
        domain.default = sa.text(domain.default)


class _CopyStream(io.RawIOBase):
    """A readable file over the rows of a ``COPY ... TO STDOUT``, for Arrow's CSV reader.

    libpq hands COPY data over one row at a time; rows are gathered into a bytearray (appends
    are amortized) until a read is filled, so the per-row Python work is one call and one append.
    """

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy = copy
        self._pending = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        target = memoryview(buffer).cast("B")
        pending, read = self._pending, self._copy.read
        while len(pending) < len(target):
            row = read()
            if not row:
                break
            pending += row
        size = min(len(pending), len(target))
        target[:size] = pending[:size]
        del pending[:size]
        return size


def _out_of_range_check(column: str, data_type: pa.DataType) -> str | None:
    """SQL true where the column holds a value its canonical type cannot parse; None if it never can.

    The date bounds are Arrow's CSV parser's (four-digit years); infinities fall outside them.
    PostgreSQL's numerics with a precision hold no infinities, only NaN.
    """
    if pa.types.is_date(data_type) or pa.types.is_timestamp(data_type):
        return f"NOT ({column} >= '0001-01-01' AND {column} < '10000-01-01')"
    if pa.types.is_time(data_type):
        return f"{column} = '24:00:00'"
    if pa.types.is_decimal(data_type):
        return f"{column} = 'NaN'"
    return None


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _to_csv(batch: pa.RecordBatch) -> bytes:
    """One batch in PostgreSQL's CSV form; binary columns become bytea's ``\\x`` hex text.

    Zoned timestamps are written as their UTC wall-clock time, which the load's session reads
    back as UTC: formatting them with their zone costs Arrow a zone lookup per value, 30 times
    the cost of the rest of the row.
    """
    columns = [_csv_ready(column) for column in batch.columns]
    sink = io.BytesIO()
    pacsv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), sink, _CSV_WRITE)
    return sink.getvalue()


def _csv_ready(column: pa.Array) -> pa.Array:
    if pa.types.is_binary(column.type):
        return _encode_bytea(column)
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        return column.cast(pa.timestamp(column.type.unit))
    return column


def _rehexed(array: pa.Array, convert: str) -> pa.Array:
    """The array with its whole data buffer hex-encoded (``hex``) or decoded (``unhex``).

    Offsets scale by two either way; validity and the array's offset carry over unchanged, so
    slices need no copy.
    """
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[: array.offset + len(array) + 1]
    data = array.buffers()[2]
    payload = data.to_pybytes()[: offsets[-1]] if data is not None else b""
    if convert == "hex":
        new_type, new_offsets, new_data = pa.string(), offsets * 2, payload.hex().encode()
    else:
        new_type, new_offsets, new_data = pa.binary(), offsets // 2, bytes.fromhex(payload.decode())
    return pa.Array.from_buffers(
        new_type,
        len(array),
        [array.buffers()[0], pa.py_buffer(new_offsets.astype(np.int32).tobytes()), pa.py_buffer(new_data)],
        offset=array.offset,
    )


def _encode_bytea(array: pa.Array) -> pa.Array:
    """binary -> bytea's ``\\x``-prefixed hex text."""
    return pc.binary_join_element_wise(pa.scalar("\\x"), _rehexed(array, "hex"), pa.scalar(""))


def _decode_bytea(block: pa.RecordBatch, indices: list[int], schema: pa.Schema) -> pa.RecordBatch:
    """bytea's ``\\x`` hex text -> binary."""
    columns = list(block.columns)
    for i in indices:
        columns[i] = _rehexed(pc.utf8_slice_codeunits(columns[i], 2), "unhex")
    return pa.RecordBatch.from_arrays(columns, schema=schema)
