"""The generic connector: any database SQLAlchemy has a dialect and an installed driver for.

Reads stream through server-side cursors (``yield_per``), writes are ``executemany`` inserts in
one transaction per table. SQLite, PostgreSQL and MySQL/MariaDB specialize it; other databases
work through it as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import sqlalchemy as sa

from governor.engine.config import SchemaCreationMode, TableTruncationMode
from governor.engine.connectors.base import Connector
from governor.engine.connectors.types import MYSQL_DIALECTS, arrow_schema, target_type, wire_type
from governor.engine.connectors.urls import connection_failed, first_line
from governor.engine.errors import SchemaError

TableKey = tuple[str | None, str]


def describe(key: TableKey) -> str:
    schema, name = key
    return f"{schema}.{name}" if schema else name


class SqlAlchemyConnector(Connector):
    """A database reached through a SQLAlchemy engine."""

    def __init__(self, url: str, engine: sa.Engine) -> None:
        super().__init__(url)
        self.engine = engine
        self._read_engine = engine
        self._target_metadata = sa.MetaData()
        self._targets: dict[TableKey, sa.Table] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def check(self) -> None:
        try:
            with self.engine.connect():
                pass
        except sa.exc.DBAPIError as exc:
            raise connection_failed(self.url, exc) from None

    def default_schema(self) -> str | None:
        return sa.inspect(self._read_engine).default_schema_name

    def reflect(self, schemas: list[str] | None = None) -> sa.MetaData:
        """Tables of the default schema carry no schema name, those of other schemas do.

        A schema the database does not have is refused: reflecting it finds no tables, and a run
        would copy nothing and report success.
        """
        metadata = sa.MetaData()
        try:
            default = self.default_schema()
            if schemas:
                known = set(sa.inspect(self._read_engine).get_schema_names())
                unknown = [schema for schema in schemas if schema not in known and schema != default]
                if unknown:
                    raise SchemaError(f"the source has no schema {', '.join(unknown)}")
            for schema in schemas or [None]:
                metadata.reflect(bind=self._read_engine, schema=None if schema == default else schema)
        except (sa.exc.DBAPIError, *self._driver_errors) as exc:
            raise SchemaError(f"cannot read the schema of the source: {first_line(exc)}") from None
        for table in metadata.tables.values():
            table.info["dialect"] = self.dialect
        return metadata

    def arrow_schema(self, table: sa.Table) -> pa.Schema:
        return arrow_schema(table, self.dialect)

    def count(self, table: sa.Table, where: str | None = None) -> int:
        statement = f"SELECT count(*) FROM {self._qualified(table)}{where_clause(where)}"
        try:
            with self._read_connection() as conn:
                return conn.execution_options(no_parameters=True).exec_driver_sql(statement).scalar_one()
        except (sa.exc.DBAPIError, *self._driver_errors) as exc:
            raise SchemaError(f"cannot count rows of {describe(self._key(table))}: {first_line(exc)}") from None

    # Reading

    def read(self, table: sa.Table, batch_size: int, where: str | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.arrow_schema(table)
        columns = [self._read_expression(column, field) for column, field in zip(table.columns, schema, strict=True)]
        query = sa.select(*columns).select_from(table)
        if where is not None:
            # literal_column: a filter's text is SQL as written, with no bind parameters parsed out of it.
            query = query.where(sa.literal_column(f"({where})"))
        try:
            with self._read_connection() as conn:
                result = conn.execution_options(yield_per=batch_size).execute(query)
                for rows in result.partitions():
                    values = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays(
                        [self._array(table, column, field) for column, field in zip(values, schema, strict=True)],
                        schema=schema,
                    )
        except sa.exc.DBAPIError as exc:
            raise SchemaError(f"cannot read table {describe(self._key(table))}: {first_line(exc)}") from None

    def _array(self, table: sa.Table, values: tuple[object, ...], field: pa.Field) -> pa.Array:
        """A column's values as its canonical type; a value that is not of it (SQLite's 'abc' in an INTEGER) fails."""
        try:
            return pa.array(values, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise SchemaError(
                f"cannot read column {field.name} of table {describe(self._key(table))} as {field.type}: {exc}"
            ) from None

    def _read_expression(self, column: sa.Column, field: pa.Field) -> sa.ColumnElement:
        """Values as the canonical type wants them: text in the database's own form for strings."""
        if pa.types.is_string(field.type) and not isinstance(column.type, sa.String):
            return sa.cast(column, sa.Text).label(column.name)
        return sa.type_coerce(column, wire_type(field.type)).label(column.name)

    @contextmanager
    def _read_connection(self, engine: sa.Engine | None = None) -> Iterator[sa.Connection]:
        """A connection (of ``engine``, the read engine by default) for every statement run on a source.

        Counts, key reads and reads all come here: filters are SQL as users write it, and may call
        functions that write (``nextval``), so they run inside a read-only transaction wherever the
        database has them.
        """
        with (engine or self._read_engine).connect() as conn:
            self._begin_read(conn)
            yield conn

    def _begin_read(self, conn: sa.Connection) -> None:
        """Hook: make the connection's transaction read-only (and fix its session settings)."""

    # Writing

    def write(self, table: sa.Table, batches: Iterable[pa.RecordBatch]) -> int:
        """Rows the target refuses (a broken key, a value too long) fail the table in one line."""
        target = self._target(table)
        try:
            return self._load(target, batches)
        except (sa.exc.DBAPIError, *self._driver_errors) as exc:
            raise SchemaError(f"cannot load table {describe(self._key(target))}: {first_line(exc)}") from None

    _driver_errors: tuple[type[Exception], ...] = ()

    def _load(self, target: sa.Table, batches: Iterable[pa.RecordBatch]) -> int:
        written = 0
        with self.engine.begin() as conn:
            self._begin_write(conn)
            insert = None
            for batch in batches:
                if insert is None:
                    insert = sa.insert(self._wire_table(target, batch.schema))
                if batch.num_rows:
                    conn.execute(insert, batch.to_pylist())
                    written += batch.num_rows
            self._after_load(conn, target)
        return written

    def execute_script(self, statements: list[str]) -> None:
        try:
            with self.engine.begin() as conn:
                for statement in statements:
                    # As written: a % in a script (LIKE 'a%') is no parameter placeholder.
                    conn.execution_options(no_parameters=True).exec_driver_sql(statement)
        except (sa.exc.DBAPIError, *self._driver_errors) as exc:
            raise SchemaError(f"a script failed on the target: {first_line(exc)}") from None

    def update(self, table: sa.Table, key_columns: list[str], batches: Iterable[pa.RecordBatch]) -> int:
        target = self._target(table)
        updated = 0
        try:
            with self.engine.begin() as conn:
                self._begin_write(conn)
                for batch in batches:
                    if not batch.num_rows:
                        continue
                    wire = self._wire_table(target, batch.schema)
                    values = {name: sa.bindparam(f"v_{name}") for name in batch.schema.names if name not in key_columns}
                    statement = sa.update(wire).values(values)
                    for name in key_columns:
                        statement = statement.where(wire.c[name] == sa.bindparam(f"k_{name}"))
                    rows = [
                        {(f"k_{k}" if k in key_columns else f"v_{k}"): v for k, v in row.items()}
                        for row in batch.to_pylist()
                    ]
                    conn.execute(statement, rows)
                    updated += batch.num_rows
        except (sa.exc.DBAPIError, *self._driver_errors) as exc:
            raise SchemaError(f"cannot update table {describe(self._key(target))}: {first_line(exc)}") from None
        return updated

    def _wire_table(self, target: sa.Table, schema: pa.Schema) -> sa.TableClause:
        """The target table with each column typed by how its Arrow values bind."""
        missing = [name for name in schema.names if name not in target.columns]
        if missing:
            raise SchemaError(f"table {describe(self._key(target))} in the target has no column {', '.join(missing)}")
        columns = [sa.column(field.name, wire_type(field.type)) for field in schema]
        return sa.table(target.name, *columns, schema=target.schema)

    def _begin_write(self, conn: sa.Connection) -> None:
        """Hook: session settings for a load."""

    def _after_load(self, conn: sa.Connection, table: sa.Table) -> None:
        """Hook: work after a table's rows are in (sequences, say)."""

    # Preparing the target

    def _key(self, table: sa.Table) -> TableKey:
        return (table.schema, table.name)

    def target_key(self, source: sa.Table) -> TableKey:
        """Where a source table goes: the same schema in a database of the same kind, else the default."""
        return (source.schema if self._same_dialect(source) else None, source.name)

    def _same_dialect(self, source: sa.Table) -> bool:
        """Reflected tables know their dialect (see ``reflect``); others are taken as ours."""
        return source.info.get("dialect", self.dialect) == self.dialect

    def _target(self, source: sa.Table) -> sa.Table:
        key = self.target_key(source)
        if key not in self._targets:
            if not sa.inspect(self.engine).has_table(key[1], schema=key[0]):
                raise SchemaError(f"table {describe(key)} does not exist in the target")
            self._targets[key] = sa.Table(key[1], sa.MetaData(), schema=key[0], autoload_with=self.engine)
        return self._targets[key]

    def prepare(
        self,
        tables: list[sa.Table],
        creation: SchemaCreationMode,
        truncation: TableTruncationMode,
    ) -> None:
        keys = [self.target_key(table) for table in tables]
        inspector = sa.inspect(self.engine)
        existing = [key for key in keys if inspector.has_table(key[1], schema=key[0])]
        missing = [key for key in keys if key not in existing]
        if creation is SchemaCreationMode.DO_NOT_CREATE and missing:
            names = ", ".join(describe(key) for key in missing)
            raise SchemaError(f"schema_creation_mode is DO_NOT_CREATE, but the target has no table {names}")
        if creation is SchemaCreationMode.CREATE and existing:
            names = ", ".join(describe(key) for key in existing)
            raise SchemaError(f"schema_creation_mode is CREATE, but the target already has table {names}")
        if creation is SchemaCreationMode.DROP_AND_CREATE:
            kept = []
        else:
            kept = [self._target(table) for table, key in zip(tables, keys, strict=True) if key in existing]
        if truncation is TableTruncationMode.DO_NOT_TRUNCATE:
            self._refuse_non_empty(kept)

        try:
            created = self._change_schema(tables, keys, existing, missing, kept, creation, truncation)
        except (sa.exc.DBAPIError, sa.exc.CompileError, *self._driver_errors) as exc:
            # CompileError: a column type this database has no DDL for (a SQLite column declared
            # without a type); its message names the table and column.
            raise SchemaError(f"cannot prepare the target tables: {first_line(exc)}") from None
        for table in created:
            self._targets[self._key(table)] = table

    def _change_schema(
        self,
        tables: list[sa.Table],
        keys: list[TableKey],
        existing: list[TableKey],
        missing: list[TableKey],
        kept: list[sa.Table],
        creation: SchemaCreationMode,
        truncation: TableTruncationMode,
    ) -> list[sa.Table]:
        """Drop, create and truncate in one transaction; the tables it created."""
        with self.engine.begin() as conn:
            self._begin_write(conn)
            if creation is SchemaCreationMode.DROP_AND_CREATE:
                self._drop(conn, [key for key in reversed(keys) if key in existing])
                created = self._copy_tables(conn, tables)
            else:
                created = self._copy_tables(conn, [t for t, key in zip(tables, keys, strict=True) if key in missing])
            self._create(conn, created)
            if truncation is TableTruncationMode.TRUNCATE and kept:
                self._truncate(conn, kept)
        return created

    def _refuse_non_empty(self, tables: list[sa.Table]) -> None:
        """DO_NOT_TRUNCATE, as in TDK: existing rows are never mixed with loaded ones."""
        with self.engine.connect() as conn:
            full = [
                describe(self._key(table))
                for table in tables
                if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None
            ]
        if full:
            raise SchemaError(
                f"table_truncation_mode is DO_NOT_TRUNCATE, but target table {', '.join(full)} is not empty; "
                "use TRUNCATE to empty it first or IGNORE to add rows to it"
            )

    def _drop(self, conn: sa.Connection, keys: list[TableKey]) -> None:
        """Drop tables, children first."""
        preparer = self.engine.dialect.identifier_preparer
        for schema, name in keys:
            conn.exec_driver_sql(
                f"DROP TABLE {preparer.quote_schema(schema) + '.' if schema else ''}"
                f"{preparer.quote(name)}{self._drop_suffix()}"
            )

    def _drop_suffix(self) -> str:
        return ""

    def _truncate(self, conn: sa.Connection, tables: list[sa.Table]) -> None:
        """Empty tables, children first, inside the load's transaction settings."""
        for table in reversed(tables):
            conn.execute(sa.delete(table))

    def _copy_tables(self, conn: sa.Connection, sources: list[sa.Table]) -> list[sa.Table]:
        """Copies of source tables in the target's metadata, adapted to this dialect."""
        self._target_metadata = sa.MetaData()
        copies = []
        for source in sources:
            same = self._same_dialect(source)
            copy = (source if same else self._adapted(source)).to_metadata(
                self._target_metadata,
                schema=source.schema if same else None,
                referred_schema_fn=lambda _t, _s, _c, referred, same=same: referred if same else None,
            )
            copy.info["dialect"] = self.dialect
            copies.append(copy)
        for copy in copies:
            self._resolve_foreign_keys(conn, copy)
        return copies

    def _adapted(self, source: sa.Table) -> sa.Table:
        """A scratch copy of another dialect's table, adapted to this one.

        The target's copy is then made from it, so it never sees the source's types: types with
        create and drop events of their own (PostgreSQL's and MySQL's ENUMs) would fire them on
        this dialect.
        """
        scratch = source.to_metadata(sa.MetaData())
        self._adapt(scratch, source)
        return scratch

    def _adapt(self, copy: sa.Table, source: sa.Table) -> None:
        """Types, defaults, checks and index names of another dialect, made into this one's.

        Generated columns become plain ones holding the values read: their expressions are in
        the other dialect's SQL.
        """
        source_dialect = source.info.get("dialect", "")
        for column, original in zip(copy.columns, source.columns, strict=True):
            column.type = target_type(original.type, source_dialect, self.engine.dialect)
            column.server_default = None
            column.identity = None
            if column.computed is not None:
                column.computed = column.server_onupdate = None
        for constraint in [c for c in copy.constraints if isinstance(c, sa.CheckConstraint)]:
            copy.constraints.discard(constraint)
        if source_dialect in MYSQL_DIALECTS:
            # MySQL names indexes per table (two tables' unique emails are both "email"); other
            # databases name them per schema, so they take the table's name in front.
            unique = [c for c in copy.constraints if isinstance(c, sa.UniqueConstraint)]
            for named in [*copy.indexes, *unique]:
                if isinstance(named.name, str) and not named.name.startswith(f"{copy.name}_"):
                    named.name = f"{copy.name}_{named.name}"

    def _resolve_foreign_keys(self, conn: sa.Connection, table: sa.Table) -> None:
        """Keep foreign keys to tables being created or already in the target; drop the others."""
        for constraint in list(table.foreign_key_constraints):
            parent = constraint.elements[0].target_fullname.rsplit(".", 1)[0]
            if parent in self._target_metadata.tables:
                continue
            schema, _, name = parent.rpartition(".")
            if sa.inspect(conn).has_table(name, schema=schema or None):
                sa.Table(name, self._target_metadata, schema=schema or None, autoload_with=conn)
                continue
            table.constraints.discard(constraint)
            for element in constraint.elements:
                element.parent.foreign_keys.discard(element)
            table.foreign_keys.difference_update(constraint.elements)

    def _create(self, conn: sa.Connection, tables: list[sa.Table]) -> None:
        self._target_metadata.create_all(conn, tables=tables)

    def _quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def _qualified(self, table: sa.Table) -> str:
        return self.engine.dialect.identifier_preparer.format_table(table)

    def close(self) -> None:
        self.engine.dispose()


def where_clause(where: str | None) -> str:
    """`` WHERE (condition)``: the parentheses keep a checked condition one expression."""
    return "" if where is None else f" WHERE ({where})"
