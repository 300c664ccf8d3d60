"""The MySQL/MariaDB connector against a real MariaDB: round trips, other dialects, modes, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from governor.engine.config import SchemaCreationMode, TableTruncationMode
from governor.engine.connectors import open_connector
from governor.engine.errors import ConnectionFailed, SchemaError
from governor.engine.runner import run_workflow
from tests.engine.connector_data import AWKWARD_STRINGS, copy_database, fill_postgres
from tests.engine.test_connectors import pg_column_types
from tests.servers import MariaDBServer

UrlFactory = Callable[[], str]

MARIADB_SCHEMA = [
    """CREATE TABLE everything (
        id int AUTO_INCREMENT PRIMARY KEY,
        tiny tinyint,
        tiny_unsigned tinyint unsigned,
        small smallint,
        small_unsigned smallint unsigned,
        medium mediumint,
        normal int,
        normal_unsigned int unsigned,
        big bigint,
        big_unsigned bigint unsigned,
        money_like decimal(12, 2),
        wide decimal(65, 30),
        single float,
        `double` double,
        label varchar(200),
        code char(3),
        body text,
        long_body longtext,
        flag boolean,
        day date,
        moment time(6),
        stamp datetime(6),
        stamp_utc timestamp(6) NULL,
        year_of year,
        doc json,
        raw blob,
        short_raw varbinary(16),
        long_raw longblob,
        feeling enum('sad', 'ok', 'happy, really'),
        tags set('a', 'b', 'c'),
        bits bit(10),
        UNIQUE KEY everything_label (label)
    )""",
    """CREATE TABLE child (
        id int PRIMARY KEY,
        parent_id int NOT NULL,
        note text,
        KEY child_parent (parent_id),
        CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES everything (id)
    )""",
]

EXTREMES = [
    {
        "tiny": -128, "tiny_unsigned": 0, "small": -32768, "small_unsigned": 0, "medium": -8388608,
        "normal": -2147483648, "normal_unsigned": 0, "big": -9223372036854775808, "big_unsigned": 0,
        "money_like": "-9999999999.99", "wide": "-" + "9" * 35 + "." + "9" * 30, "single": -1048576.25,
        "double": -1.7976931348623157e308, "label": AWKWARD_STRINGS[0], "code": "abc", "body": AWKWARD_STRINGS[1],
        "long_body": "long " * 100_000, "flag": True, "day": "0001-01-01", "moment": "00:00:00",
        "stamp": "0001-01-01 00:00:00", "stamp_utc": "1970-01-01 00:00:01", "year_of": 1901,
        "doc": '{"a": [1, 2, {"b": null}], "s": "x\\"y"}', "raw": b"\x00\xff\x10\\'\"", "short_raw": b"",
        "long_raw": bytes(range(256)) * 1000, "feeling": "happy, really", "tags": "a,c", "bits": 1023,
    },
    {
        "tiny": 127, "tiny_unsigned": 255, "small": 32767, "small_unsigned": 65535, "medium": 8388607,
        "normal": 2147483647, "normal_unsigned": 4294967295, "big": 9223372036854775807,
        "big_unsigned": 18446744073709551615, "money_like": "9999999999.99", "wide": "0." + "0" * 29 + "1",
        "single": 1.5, "double": 0.1, "label": "second", "code": "x", "body": AWKWARD_STRINGS[2],
        "long_body": "", "flag": False, "day": "9999-12-31", "moment": "23:59:59.999999",
        "stamp": "9999-12-31 23:59:59.999999", "stamp_utc": "2038-01-19 03:14:07.999999", "year_of": 2155,
        "doc": "[]", "raw": b"", "short_raw": b"\x00", "long_raw": b"", "feeling": "sad", "tags": "", "bits": 0,
    },
]  # fmt: skip


def fill_mariadb(url: str) -> None:
    """The MariaDB source: two rows of extremes, one per awkward string, and one all NULL."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in MARIADB_SCHEMA:
            conn.exec_driver_sql(statement)
        for row in EXTREMES:
            columns = ", ".join(f"`{name}`" for name in row)
            values = ", ".join("b%s" if name == "bits" else "%s" for name in row)
            conn.exec_driver_sql(
                f"INSERT INTO everything ({columns}) VALUES ({values})",
                tuple(format(v, "b") if name == "bits" else v for name, v in row.items()),
            )
        for i, text in enumerate(AWKWARD_STRINGS):
            conn.exec_driver_sql(
                "INSERT INTO everything (label, body, long_body, doc, short_raw) VALUES (%s, %s, %s, %s, %s)",
                (f"awkward {i}", text, text, json.dumps({"s": text}), text.encode()[:16]),
            )
        conn.exec_driver_sql("INSERT INTO everything () VALUES ()")
        conn.exec_driver_sql("INSERT INTO child SELECT id * 10, id, label FROM everything")
    engine.dispose()


def _connect(url: str) -> pymysql.Connection:
    parsed = sa.engine.make_url(url)
    return pymysql.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database, charset="utf8mb4"
    )


def mariadb_query(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Rows as PyMySQL's own converters read them (exact decimals, bytes, timedeltas)."""
    with _connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(statement)
        return list(cursor.fetchall())


def mariadb_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    return mariadb_query(url, f"SELECT * FROM `{table}` ORDER BY id")


def mariadb_definition(url: str, table: str) -> str:
    """SHOW CREATE TABLE without the AUTO_INCREMENT counter, which depends on the rows' history."""
    with _connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"SHOW CREATE TABLE `{table}`")
        return re.sub(r" AUTO_INCREMENT=\d+", "", cursor.fetchone()[1])


def mariadb_column_types(url: str, table: str) -> dict[str, str]:
    with _connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        return dict(cursor.fetchall())


def connector_rows(url: str, table: str) -> list[dict[str, Any]]:
    """The table as the connector reads it: canonical Arrow values, sorted by id."""
    connector = open_connector(url)
    try:
        reflected = connector.reflect().tables[table]
        return (
            pa.Table.from_batches(list(connector.read(reflected, 4)), connector.arrow_schema(reflected))
            .sort_by("id")
            .to_pylist()
        )
    finally:
        connector.close()


# Round trips


def test_mariadb_to_mariadb_is_exact(mysql_url_factory: UrlFactory) -> None:
    source, target = mysql_url_factory(), mysql_url_factory()
    fill_mariadb(source)
    before = mariadb_rows(source, "everything")

    written = copy_database(source, target)

    assert written == {"everything": 12, "child": 12}
    for table in ("everything", "child"):
        assert mariadb_rows(target, table) == mariadb_rows(source, table)
        assert mariadb_definition(target, table) == mariadb_definition(source, table)
    assert mariadb_rows(source, "everything") == before
    first, second = before[0], before[1]
    assert first[17] == "long " * 100_000 and first[25] == b"\x00\xff\x10\\'\"" and first[30] == b"\x03\xff"
    assert second[9] == 18446744073709551615 and second[11] == Decimal("1E-30")
    assert {row[16] for row in before} >= set(AWKWARD_STRINGS)
    assert "CHECK (json_valid(`doc`))" in mariadb_definition(target, "everything")
    # The server prints floats with 6 digits: compare them as doubles; keys continue after the loaded ones.
    singles = "SELECT single + 0e0 FROM everything ORDER BY id"
    assert mariadb_query(target, singles) == mariadb_query(source, singles)
    assert mariadb_query(target, singles)[0] == (-1048576.25,)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO everything (label) VALUES ('new')")
        assert conn.exec_driver_sql("SELECT id FROM everything WHERE label = 'new'").scalar_one() == 13
    engine.dispose()


def test_mariadb_reads_canonical_arrow_values(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    fill_mariadb(url)
    connector = open_connector(url)
    schema = connector.arrow_schema(connector.reflect().tables["everything"])
    connector.close()
    assert {name: str(schema.field(name).type) for name in ("tiny", "small_unsigned", "normal_unsigned")} == {
        "tiny": "int16",
        "small_unsigned": "int32",
        "normal_unsigned": "int64",
    }
    assert schema.field("big_unsigned").type == pa.decimal128(20, 0)
    assert schema.field("flag").type == pa.bool_() and schema.field("single").type == pa.float32()
    assert schema.field("stamp_utc").type == pa.timestamp("us", tz="UTC")

    first, second, *_, last = connector_rows(url, "everything")
    assert first["flag"] is True and second["flag"] is False
    assert second["big_unsigned"] == Decimal(18446744073709551615) and first["big"] == -9223372036854775808
    assert str(second["stamp_utc"]) == "2038-01-19 03:14:07.999999+00:00"
    assert str(second["moment"]) == "23:59:59.999999" and str(first["day"]) == "0001-01-01"
    assert first["single"] == -1048576.25 and first["bits"] == 1023 and first["year_of"] == 1901
    assert first["doc"] == '{"a": [1, 2, {"b": null}], "s": "x\\"y"}' and first["tags"] == "a,c"
    assert first["raw"] == b"\x00\xff\x10\\'\"" and second["raw"] == b""
    assert all(value is None for name, value in last.items() if name != "id")


def test_postgres_to_mariadb_adapts_types(pg_url_factory: UrlFactory, mysql_url_factory: UrlFactory) -> None:
    source, target = pg_url_factory(), mysql_url_factory()
    fill_postgres(source)

    assert copy_database(source, target) == {"everything": 12, "child": 12}

    types = mariadb_column_types(target, "everything")
    assert {name: types[name] for name in ("label", "body", "flag", "moment", "stamp", "stamp_tz")} == {
        "label": "varchar(200)",
        "body": "longtext",
        "flag": "tinyint(1)",
        "moment": "time(6)",
        "stamp": "datetime(6)",
        "stamp_tz": "datetime(6)",
    }
    assert {name: types[name] for name in ("ident", "raw", "single", "double", "exact", "money_like")} == {
        "ident": "char(36)",
        "raw": "longblob",
        "single": "float",
        "double": "double",
        "exact": "decimal(65,30)",
        "money_like": "decimal(12,2)",
    }
    assert "CHECK (json_valid(`docb`))" in mariadb_definition(target, "everything")
    assert "utf8mb4_bin" in mariadb_definition(target, "everything")

    loaded, original = connector_rows(target, "everything"), connector_rows(source, "everything")
    exact = ("id", "big", "money_like", "label", "body", "flag", "day", "moment", "stamp", "raw", "ident")
    assert [[row[name] for name in exact] for row in loaded] == [[row[name] for name in exact] for row in original]
    first, second = loaded[0], loaded[1]
    assert str(second["stamp_tz"]) == "2024-03-01 05:29:59.123456"  # the UTC wall time
    assert first["numbers"] == "{1,NULL,3}" and first["feeling"] == "happy, really"
    assert str(first["exact"]) == "3.141592653589793238462643383280"  # rounded to 30 decimals
    assert json.loads(first["docb"]) == {"a": 'x"y', "z": 1}


def test_mariadb_to_postgres_adapts_types(mysql_url_factory: UrlFactory, pg_url_factory: UrlFactory) -> None:
    source, target = mysql_url_factory(), pg_url_factory()
    fill_mariadb(source)

    assert copy_database(source, target) == {"everything": 12, "child": 12}

    types = {name: kind for name, kind, _not_null in pg_column_types(target, "everything")}
    assert {name: types[name] for name in ("flag", "stamp", "stamp_utc", "big_unsigned", "normal_unsigned")} == {
        "flag": "boolean",
        "stamp": "timestamp without time zone",
        "stamp_utc": "timestamp with time zone",
        "big_unsigned": "numeric(20,0)",
        "normal_unsigned": "bigint",
    }
    assert {name: types[name] for name in ("raw", "moment", "money_like", "feeling", "tags")} == {
        "raw": "bytea",
        "moment": "time without time zone",
        "money_like": "numeric(12,2)",
        "feeling": "character varying(13)",
        "tags": "character varying(5)",
    }
    assert connector_rows(target, "everything") == connector_rows(source, "everything")
    assert connector_rows(target, "child") == connector_rows(source, "child")


# Keys, self-references, bounded reads


def test_self_referencing_rows_load_in_any_order_and_orphans_are_refused(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    employees = sa.Table(
        "employees",
        sa.MetaData(),
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
    with pytest.raises(SchemaError, match=r"^cannot load table employees: foreign key \(manager_id\)") as caught:
        connector.write(employees, [pa.RecordBatch.from_pydict({"id": [4, 5], "manager_id": [1, 99]})])
    assert "\n" not in str(caught.value)
    assert connector.count(employees) == 3  # the refused load left nothing behind
    with pytest.raises(SchemaError, match=r"^cannot load table employees: .*Duplicate entry '1'"):
        connector.write(employees, [pa.RecordBatch.from_pydict({"id": [1], "manager_id": [None]})])
    connector.close()

    engine = sa.create_engine(url)
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        # The refused loads' connections were dropped: checks are on wherever the pool hands out.
        conn.exec_driver_sql("INSERT INTO employees (manager_id) VALUES (42)")
    engine.dispose()


def test_updates_restore_references_and_scripts_run(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    employees = sa.Table(
        "employees",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("employees.id")),
    )
    connector = open_connector(url)
    connector.prepare([employees], SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE)
    connector.write(employees, [pa.RecordBatch.from_pydict({"id": [1, 2, 3], "manager_id": [None, None, None]})])
    restored = pa.RecordBatch.from_pydict({"id": [1, 2], "manager_id": [2, 3]})
    assert connector.update(employees, ["id"], [restored]) == 2
    with pytest.raises(SchemaError, match=r"^cannot update table employees: .*foreign key constraint fails"):
        connector.update(employees, ["id"], [pa.RecordBatch.from_pydict({"id": [3], "manager_id": [99]})])
    connector.execute_script(
        ["UPDATE employees SET manager_id = NULL WHERE id % 2 = 0", "DELETE FROM employees WHERE id = 3"]
    )
    with pytest.raises(SchemaError, match=r"^a script failed on the target: .*no_such_table"):
        connector.execute_script(["DELETE FROM no_such_table"])
    connector.close()
    assert mariadb_rows(url, "employees") == [(1, 2), (2, None)]


def test_reads_are_bounded_by_the_batch_size(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big (id integer PRIMARY KEY, name text)")
        conn.exec_driver_sql("INSERT INTO big SELECT seq, CONCAT('name ', seq) FROM seq_0_to_49999")
    engine.dispose()
    connector = open_connector(url)
    table = connector.reflect().tables["big"]
    assert connector.count(table) == 50_000
    sizes = [batch.num_rows for batch in connector.read(table, 1000)]
    assert max(sizes) <= 1000 and sum(sizes) == 50_000
    # Stopping early drops the streaming connection: the connector keeps working.
    reader = connector.read(table, 1000)
    next(reader)
    reader.close()
    assert sum(batch.num_rows for batch in connector.read(table, 20_000)) == 50_000
    # A subsetting filter runs on the server.
    assert connector.count(table, "id % 1000 = 7") == 50
    assert [batch.num_rows for batch in connector.read(table, 1000, "id % 1000 = 7")] == [50]
    connector.close()


def test_large_batches_are_split_into_statements_the_server_accepts(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    columns = [sa.Column("id", sa.Integer, primary_key=True), sa.Column("data", mysql.LONGTEXT)]
    table = sa.Table("blobs", sa.MetaData(), *columns)
    connector = open_connector(url)
    connector.prepare([table], SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE)
    # 24 MB in one batch, more than the server's max_allowed_packet (16 MB).
    values = [f"{i:04d}" + "x" * 1_000_000 for i in range(24)]
    assert connector.write(table, [pa.RecordBatch.from_pydict({"id": list(range(24)), "data": values})]) == 24
    connector.close()
    assert [row["data"] for row in connector_rows(url, "blobs")] == values


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
    customers, orders = _orders(sa.MetaData())
    connector = open_connector(url)
    try:
        connector.prepare([customers, orders], creation, truncation)
        connector.write(customers, [pa.RecordBatch.from_pydict({"id": [first_id], "name": ["x"]})])
        connector.write(orders, [pa.RecordBatch.from_pydict({"id": [first_id], "customer_id": [first_id]})])
    finally:
        connector.close()


def _ids(url: str, table: str) -> list[int]:
    return [row[0] for row in mariadb_rows(url, table)]


def test_creation_modes(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    with pytest.raises(SchemaError, match=r"DO_NOT_CREATE.*customers, orders"):
        _load(url, SchemaCreationMode.DO_NOT_CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    _load(url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    with pytest.raises(SchemaError, match=r"CREATE.*already has table customers, orders"):
        _load(url, SchemaCreationMode.CREATE, TableTruncationMode.TRUNCATE, 2)
    _load(url, SchemaCreationMode.DO_NOT_CREATE, TableTruncationMode.TRUNCATE, 2)
    assert _ids(url, "orders") == [2]
    assert mariadb_column_types(url, "customers") == {"id": "int(11)", "name": "text"}

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE customers ADD COLUMN old text")
    engine.dispose()
    _load(url, SchemaCreationMode.DROP_AND_CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 3)
    assert list(mariadb_column_types(url, "customers")) == ["id", "name"]
    assert _ids(url, "customers") == [3] and _ids(url, "orders") == [3]
    connector = open_connector(url)
    with pytest.raises(SchemaError, match=r"^table customers in the target has no column nickname"):
        connector.write(_orders(sa.MetaData())[0], [pa.RecordBatch.from_pydict({"id": [4], "nickname": ["x"]})])
    connector.close()


def test_truncation_modes(mysql_url_factory: UrlFactory) -> None:
    url = mysql_url_factory()
    _load(url, SchemaCreationMode.CREATE, TableTruncationMode.DO_NOT_TRUNCATE, 1)
    with pytest.raises(SchemaError, match=r"DO_NOT_TRUNCATE.*customers, orders is not empty"):
        _load(url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.DO_NOT_TRUNCATE, 2)
    _load(url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.IGNORE, 2)
    assert _ids(url, "orders") == [1, 2]
    _load(url, SchemaCreationMode.CREATE_IF_NOT_EXISTS, TableTruncationMode.TRUNCATE, 3)
    assert _ids(url, "customers") == [3] and _ids(url, "orders") == [3]

    customers = _orders(sa.MetaData())[0]
    connector = open_connector(url)
    # orders, outside this load, still references customers: MariaDB refuses to empty it.
    with pytest.raises(SchemaError, match=r"^cannot prepare the target tables: .*foreign key constraint fails"):
        connector.prepare([customers], SchemaCreationMode.DO_NOT_CREATE, TableTruncationMode.TRUNCATE)
    connector.close()
    assert _ids(url, "customers") == [3]


def test_text_keys_get_a_length(sqlite_url_factory: UrlFactory, mysql_url_factory: UrlFactory) -> None:
    source, target = sqlite_url_factory(), mysql_url_factory()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tags (name TEXT PRIMARY KEY, note TEXT)")
        conn.exec_driver_sql("CREATE TABLE uses (id INTEGER PRIMARY KEY, tag TEXT REFERENCES tags (name))")
        conn.exec_driver_sql("INSERT INTO tags VALUES ('Zürich 🚀', 'x'), ('zurich', NULL)")
        conn.exec_driver_sql("INSERT INTO uses VALUES (1, 'Zürich 🚀'), (2, 'zurich')")
    engine.dispose()

    assert copy_database(source, target) == {"tags": 2, "uses": 2}
    assert mariadb_column_types(target, "tags") == {"name": "varchar(255)", "note": "longtext"}
    assert mariadb_column_types(target, "uses")["tag"] == "varchar(255)"
    assert [row["tag"] for row in connector_rows(target, "uses")] == ["Zürich 🚀", "zurich"]


# URLs and errors


def test_urls_without_a_driver_use_pymysql(mariadb: MariaDBServer, mysql_url_factory: UrlFactory) -> None:
    database = sa.engine.make_url(mysql_url_factory()).database
    for scheme in ("mysql", "mariadb", "mariadb+pymysql"):
        connector = open_connector(f"{scheme}://root@127.0.0.1:{mariadb.port}/{database}")
        assert connector.default_schema() == database
        connector.close()


def test_wrong_password_is_one_line_without_it(mariadb: MariaDBServer) -> None:
    mariadb.execute("CREATE USER IF NOT EXISTS 'alice'@'127.0.0.1' IDENTIFIED BY 'right-pw'")
    with pytest.raises(ConnectionFailed, match=r"^cannot connect to .*Access denied") as caught:
        open_connector(f"mysql://alice:s3cr3t-pw@127.0.0.1:{mariadb.port}/mysql")
    message = str(caught.value)
    assert "s3cr3t-pw" not in message and "***" in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    ["mysql://alice:s3cr3t-pw@127.0.0.1:1/nothing", "mariadb+pymysql://alice:s3cr3t-pw@127.0.0.1:1/nothing"],
)
def test_unreachable_server_is_one_line_without_the_password(url: str) -> None:
    with pytest.raises(ConnectionFailed, match=r"^cannot connect to .*Can't connect") as caught:
        open_connector(url)
    assert "s3cr3t-pw" not in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_database_is_one_line(mariadb: MariaDBServer) -> None:
    with pytest.raises(ConnectionFailed, match=r"^cannot connect to .*Unknown database 'nowhere'"):
        open_connector(f"mysql://root@127.0.0.1:{mariadb.port}/nowhere")


def test_a_target_writing_into_a_database_the_source_reads_is_refused(mysql_url_factory: UrlFactory) -> None:
    """In MySQL a schema is a database: ``schemas: [other]`` is written to ``other``, whatever the target URL says."""
    source, target, other = mysql_url_factory(), mysql_url_factory(), mysql_url_factory()
    other_name = sa.engine.make_url(other).database
    with _connect(other) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id int PRIMARY KEY)")
        cursor.execute("INSERT INTO t VALUES (1), (2), (3)")
        conn.commit()
    config = f"schemas: [{other_name}]\ntable_truncation_mode: TRUNCATE\n"
    with pytest.raises(SchemaError, match=rf"writes into database {other_name} of the source server"):
        run_workflow(config, source, target)
    assert mariadb_rows(other, "t") == [(1,), (2,), (3,)]
