"""Connectors against real databases: type round trips, schema modes, bounded reads, errors."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa

from governor.engine.config import SchemaCreationMode, TableTruncationMode
from governor.engine.connectors import open_connector
from governor.engine.errors import ConnectionFailed, SchemaError
from governor.engine.runner import run_workflow
from tests.engine.connector_data import AWKWARD_STRINGS, copy_database, fill_postgres, fill_sqlite

UrlFactory = Callable[[], str]


def pg_dump_rows(url: str, table: str) -> bytes:
    """The table's rows in PostgreSQL's own text form: equal bytes mean equal values."""
    conninfo = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out = io.BytesIO()
    statement = f"COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT"
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in copy:
            out.write(chunk)
    return out.getvalue()


def pg_column_types(url: str, table: str) -> list[tuple[str, str, bool]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            f"WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def sqlite_rows(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns(table)]
        typed = ", ".join(f"{c}, typeof({c})" for c in columns)
        rows = conn.exec_driver_sql(f"SELECT {typed} FROM {table} ORDER BY id").all()
    engine.dispose()
    return [tuple(row) for row in rows]


# Round trips


def test_postgres_to_postgres_is_exact(pg_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), pg_url_factory()
    fill_postgres(source)
    before = pg_dump_rows(source, "everything")

    written = copy_database(source, target)

    assert written == {"everything": 12, "child": 12}
    for table in ("everything", "child"):
        assert pg_dump_rows(target, table) == pg_dump_rows(source, table)
        types = pg_column_types(target, table)
        assert types == pg_column_types(source, table)
    assert pg_dump_rows(source, "everything") == before
    body = pg_dump_rows(target, "everything").decode()
    assert "\\\\x00ff10" in body and "happy, really" in body


def test_postgres_targets_get_keys_indexes_enums_and_sequences(pg_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), pg_url_factory()
    fill_postgres(source)
    copy_database(source, target)

    engine = sa.create_engine(target)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("everything")["constrained_columns"] == ["id"]
    assert [fk["referred_table"] for fk in inspector.get_foreign_keys("child")] == ["everything"]
    assert {ix["name"]: ix["unique"] for ix in inspector.get_indexes("everything")} == {"everything_label": True}
    assert [ix["name"] for ix in inspector.get_indexes("child")] == ["child_parent"]
    assert [e["name"] for e in inspector.get_enums()] == ["mood"]
    with engine.begin() as conn:
        # Sequences continue after the loaded keys; identity columns accept given values.
        new_id = conn.exec_driver_sql("INSERT INTO everything (label) VALUES ('new') RETURNING id, generated").one()
        assert new_id == (13, 13)
        conn.exec_driver_sql("INSERT INTO everything (label, generated) VALUES ('given', 100)")
    engine.dispose()


def test_sqlite_to_sqlite_is_exact(sqlite_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    fill_sqlite(source)
    source_file = Path(sa.engine.make_url(source).database)
    digest = hashlib.sha256(source_file.read_bytes()).hexdigest()

    written = copy_database(source, target)

    assert written == {"everything": 12, "child": 12}
    for table in ("everything", "child"):
        assert sqlite_rows(target, table) == sqlite_rows(source, table)
    assert hashlib.sha256(source_file.read_bytes()).hexdigest() == digest
    bodies = [row[14] for row in sqlite_rows(target, "everything")]
    assert set(AWKWARD_STRINGS) <= set(bodies) and None in bodies


def test_postgres_to_sqlite_loads_sensible_values(pg_url_factory: UrlFactory, sqlite_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), sqlite_url_factory()
    fill_postgres(source)

    assert copy_database(source, target) == {"everything": 12, "child": 12}

    connector = open_connector(target)
    table = connector.reflect().tables["everything"]
    rows = pa.Table.from_batches(list(connector.read(table, 100))).sort_by("id").to_pylist()
    connector.close()
    first, second = rows[0], rows[1]
    assert first["big"] == -9223372036854775808 and second["normal"] == 2147483647
    assert str(second["money_like"]) == "9999999999.99"
    assert first["raw"] == b"\x00\xff\x10" and second["raw"] == b""
    assert first["flag"] is True and second["flag"] is False
    assert str(second["day"]) == "9999-12-31" and str(second["moment"]) == "23:59:59.999999"
    assert str(second["stamp_tz"]) == "2024-03-01 05:29:59.123456"
    assert first["ident"] == "00000000-0000-0000-0000-000000000000"
    assert first["numbers"] == "{1,NULL,3}" and first["feeling"] == "happy, really"
    assert first["docb"] == '{"a": "x\\"y", "z": 1}'
    assert first["body"] == AWKWARD_STRINGS[1] and rows[-1]["body"] is None
    assert [row["body"] for row in rows[2:-1]] == AWKWARD_STRINGS


def test_sqlite_to_postgres_loads(sqlite_url_factory: UrlFactory, pg_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), pg_url_factory()
    fill_sqlite(source)

    assert copy_database(source, target) == {"everything": 12, "child": 12}
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT big, money_like, raw, flag, day, stamp FROM everything WHERE id = 2").one()
        assert [str(v) for v in row] == [
            "9223372036854775807",
            "12.50",
            "b''",
            "False",
            "9999-12-31",
            "2024-02-29 12:34:56.789012",
        ]
    engine.dispose()


# Self-references and bounded reads


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_self_referencing_rows_load_in_any_order(
    kind: str, pg_url_factory: UrlFactory, sqlite_url_factory: UrlFactory
) -> None:
    url = pg_url_factory() if kind == "postgres" else sqlite_url_factory()
    metadata = sa.MetaData()
    employees = sa.Table(
        "employees",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("employees.id")),
    )
    connector = open_connector(url)
    connector.prepare([employees], SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE)
    # Each row's manager comes in a later row, and a later batch.
    batches = [
        pa.RecordBatch.from_pydict({"id": [1, 2], "manager_id": [2, 3]}),
        pa.RecordBatch.from_pydict({"id": [3], "manager_id": [None]}),
    ]
    assert connector.write(employees, batches) == 3
    with pytest.raises(SchemaError, match=r"cannot load table employees: .*(foreign key|FOREIGN KEY)"):
        connector.write(employees, [pa.RecordBatch.from_pydict({"id": [4], "manager_id": [99]})])
    assert connector.count(employees) == 3
    connector.close()


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_reads_are_bounded_by_the_batch_size(
    kind: str, pg_url_factory: UrlFactory, sqlite_url_factory: UrlFactory
) -> None:
    url = pg_url_factory() if kind == "postgres" else sqlite_url_factory()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big (id integer PRIMARY KEY, name text)")
        conn.execute(
            sa.text("INSERT INTO big VALUES (:id, :name)"), [{"id": i, "name": f"name {i}"} for i in range(50_000)]
        )
    engine.dispose()
    connector = open_connector(url)
    table = connector.reflect().tables["big"]
    assert connector.count(table) == 50_000
    sizes = [batch.num_rows for batch in connector.read(table, 1000)]
    assert max(sizes) <= 1000 and sum(sizes) == 50_000
    # Stopping early releases the read: the connector keeps working.
    reader = connector.read(table, 1000)
    next(reader)
    reader.close()
    assert sum(batch.num_rows for batch in connector.read(table, 20_000)) == 50_000
    connector.close()


# Schema creation and truncation modes


def _orders(metadata: sa.MetaData) -> list[sa.Table]:
    customers = sa.Table(
        "customers", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)
    )
    orders = sa.Table(
        "orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id")),
    )
    return [customers, orders]


def _load(url: str, creation: SchemaCreationMode, truncation: TableTruncationMode, first_id: int) -> None:
    tables = _orders(sa.MetaData())
    connector = open_connector(url)
    try:
        connector.prepare(tables, creation, truncation)
        connector.write(tables[0], [pa.RecordBatch.from_pydict({"id": [first_id], "name": ["x"]})])
        connector.write(tables[1], [pa.RecordBatch.from_pydict({"id": [first_id], "customer_id": [first_id]})])
    finally:
        connector.close()


def _ids(url: str, table: str) -> list[int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id")]
    engine.dispose()
    return ids


@pytest.fixture(params=["postgres", "sqlite"])
def target_url(request: pytest.FixtureRequest, pg_url_factory: UrlFactory, sqlite_url_factory: UrlFactory) -> str:
    return pg_url_factory() if request.param == "postgres" else sqlite_url_factory()


def test_do_not_create_requires_the_tables(target_url: str) -> None:
    with pytest.raises(SchemaError, match=r"DO_NOT_CREATE.*customers, orders"):
        _load(target_url, SchemaCreationMode.DO_NOT_CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    _load(target_url, SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    _load(target_url, SchemaCreationMode.DO_NOT_CREATE, TableTruncationMode.TRUNCATE, 2)
    assert _ids(target_url, "orders") == [2]


def test_create_fails_when_a_table_exists(target_url: str) -> None:
    _load(target_url, SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    with pytest.raises(SchemaError, match=r"CREATE.*already has table customers, orders"):
        _load(target_url, SchemaCreationMode.CREATE, TableTruncationMode.TRUNCATE, 2)
    assert _ids(target_url, "orders") == [1]


def test_create_if_not_exists_creates_only_missing_tables(target_url: str) -> None:
    engine = sa.create_engine(target_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id integer PRIMARY KEY, name text, extra text)")
    engine.dispose()
    _load(target_url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    columns = [c["name"] for c in sa.inspect(sa.create_engine(target_url)).get_columns("customers")]
    assert columns == ["id", "name", "extra"]  # the existing table was kept as it is
    assert _ids(target_url, "orders") == [1]


def test_drop_and_create_replaces_tables(target_url: str) -> None:
    engine = sa.create_engine(target_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id integer PRIMARY KEY, old text)")
        conn.exec_driver_sql("CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers)")
        conn.exec_driver_sql("INSERT INTO customers VALUES (7, 'old')")
        conn.exec_driver_sql("INSERT INTO orders VALUES (7, 7)")
    engine.dispose()
    _load(target_url, SchemaCreationMode.DROP_AND_CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    columns = [c["name"] for c in sa.inspect(sa.create_engine(target_url)).get_columns("customers")]
    assert columns == ["id", "name"]
    assert _ids(target_url, "customers") == [1] and _ids(target_url, "orders") == [1]


def test_truncation_modes(target_url: str) -> None:
    _load(target_url, SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    with pytest.raises(SchemaError, match=r"DO_NOT_TRUNCATE.*customers, orders is not empty"):
        _load(target_url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.DO_NOT_TRUNCATE, 2)
    _load(target_url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.IGNORE, 2)
    assert _ids(target_url, "orders") == [1, 2]
    _load(target_url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.TRUNCATE, 3)
    assert _ids(target_url, "customers") == [3] and _ids(target_url, "orders") == [3]


# Errors


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice:s3cr3t-pw@127.0.0.1:1/nothing",
        "postgres://alice:s3cr3t-pw@127.0.0.1:1/nothing",
        "mysql+nosuchdriver://alice:s3cr3t-pw@127.0.0.1/db",
        "::not a url alice:s3cr3t-pw@",
        "sqlite:////no/such/folder/s3cr3t-pw.db",
    ],
)
def test_connection_failures_are_one_line_without_the_password(url: str) -> None:
    with pytest.raises(ConnectionFailed) as caught:
        open_connector(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "s3cr3t-pw" not in message or url.startswith("sqlite")
    assert message


def test_wrong_password_is_masked(postgres: object) -> None:
    port = postgres.port  # type: ignore[attr-defined]
    with pytest.raises(ConnectionFailed, match=r"cannot connect to") as caught:
        open_connector(f"postgresql://nobody:s3cr3t-pw@127.0.0.1:{port}/no_such_database")
    assert "s3cr3t-pw" not in str(caught.value) and "***" in str(caught.value)


def test_write_names_missing_target_columns(target_url: str) -> None:
    tables = _orders(sa.MetaData())
    connector = open_connector(target_url)
    connector.prepare(tables, SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE)
    with pytest.raises(SchemaError, match=r"no column nickname"):
        connector.write(tables[0], [pa.RecordBatch.from_pydict({"id": [1], "nickname": ["x"]})])
    connector.close()


def test_database_refusals_while_preparing_are_schema_errors(pg_url_factory: UrlFactory) -> None:
    url = pg_url_factory()
    _load(url, SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    customers = _orders(sa.MetaData())[0]
    connector = open_connector(url)
    # orders, outside this load, still references customers: PostgreSQL refuses the TRUNCATE.
    with pytest.raises(SchemaError, match=r"cannot prepare the target tables: .*foreign key"):
        connector.prepare([customers], SchemaCreationMode.DO_NOT_CREATE, TableTruncationMode.TRUNCATE)
    connector.close()
    assert _ids(url, "customers") == [1]


def test_postgres_sources_the_engine_cannot_copy_fail_in_one_line(pg_url_factory: Callable[[], str]) -> None:
    """An unknown schema used to copy nothing and succeed; a type without DDL ended in a CompileError."""
    source, target = pg_url_factory(), pg_url_factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE shapes (id int PRIMARY KEY, at point)")
        conn.exec_driver_sql("INSERT INTO shapes VALUES (1, '(1,2)')")
    engine.dispose()
    with pytest.raises(SchemaError, match=r"^the source has no schema nope$"):
        run_workflow("schemas: [nope]\n", source, target)
    with pytest.warns(sa.exc.SAWarning, match="point"), pytest.raises(SchemaError) as caught:
        run_workflow("{}\n", source, target)
    assert "table 'shapes', column 'at'" in str(caught.value) and "\n" not in str(caught.value)
