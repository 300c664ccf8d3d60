"""The check that a run never writes into the database it reads.

``plan.check_not_same_database`` compares URLs before connecting; URLs can hide that two are one
database (``localhost`` and ``127.0.0.1``, a default port left out, a relative and an absolute
path to one SQLite file, a symbolic link). Once both are connected, this asks the databases
themselves: the same PostgreSQL server (its port and start time) and database, the same file
(device and inode). In MySQL a schema is a database, and a table of a non-default schema is
written to that schema on a MySQL target whatever database its URL names: there the check compares
the server and the databases of the tables read with those of the tables written. Writing a target
truncates and drops its tables, so under any ``safety_mode`` such a target is refused before anything
is written.
"""

from __future__ import annotations

import os

import sqlalchemy as sa

from governor.engine.connectors.base import Connector
from governor.engine.connectors.types import MYSQL_DIALECTS
from governor.engine.errors import SchemaError

_IDENTITY_QUERIES = {
    "postgresql": "SELECT current_setting('port'), pg_postmaster_start_time()::text, current_database(),"
    " (SELECT oid::text FROM pg_database WHERE datname = current_database())",
    "mysql": "SELECT @@hostname, @@port, DATABASE()",
    "mariadb": "SELECT @@hostname, @@port, DATABASE()",
}


def database_identity(connector: Connector) -> tuple[str, ...]:
    """What tells this database apart from every other one the engine can reach."""
    engine: sa.Engine | None = getattr(connector, "engine", None)
    if engine is None:
        return (connector.url,)
    url = engine.url
    if connector.dialect == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return ("sqlite", database, str(id(connector)))  # private to its connection: never shared
        try:
            stat = os.stat(database)
        except OSError:
            return ("sqlite", os.path.realpath(database))
        return ("sqlite", str(stat.st_dev), str(stat.st_ino))
    query = _IDENTITY_QUERIES.get(connector.dialect)
    if query is not None:
        with engine.connect() as conn:
            return (connector.dialect, *(str(value) for value in conn.exec_driver_sql(query).one()))
    return (connector.dialect, str(url.host), str(url.port), str(url.database))


def check_target_is_not_source(source: Connector, target: Connector, tables: list[sa.Table]) -> None:
    """Refuse a target that would write into a database ``tables`` (the source's, as planned) are read from."""
    source_identity, target_identity = database_identity(source), database_identity(target)
    if source.dialect in MYSQL_DIALECTS and target.dialect in MYSQL_DIALECTS:
        # (dialect, hostname, port, database): the dialect name says only which URL scheme was used.
        if source_identity[1:3] != target_identity[1:3]:
            return
        read = {table.schema or source.default_schema() for table in tables}
        written = {target.target_key(table)[0] or target.default_schema() for table in tables}
        shared = sorted(str(database) for database in read & written)
        if shared:
            raise SchemaError(
                f"the target writes into database {', '.join(shared)} of the source server, which the run reads; "
                "refusing to write into the database being read"
            )
    elif source_identity == target_identity:
        raise SchemaError(
            "the target is the source database (reached through another URL); "
            "refusing to write into the database being read"
        )
