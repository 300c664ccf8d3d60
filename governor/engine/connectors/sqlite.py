"""SQLite: batched inserts in one transaction per table, foreign keys checked at commit.

Python's sqlite3 module opens and commits transactions on its own schedule, which would commit
schema changes one by one and reset ``defer_foreign_keys`` between statements; the engine here
hands transaction control to SQLAlchemy so a load really is one transaction. Reads go through a
second engine that opens the file read-only, so a source can never be written by accident.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from governor.engine.connectors.sql import SqlAlchemyConnector
from governor.engine.connectors.urls import connection_failed


def _explicit_transactions(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")


class SqliteConnector(SqlAlchemyConnector):
    def __init__(self, url: str) -> None:
        engine = sa.create_engine(url)
        _explicit_transactions(engine)
        super().__init__(url, engine)
        path = self._path()
        if path is not None:
            read_uri = f"file:{quote(str(path))}?mode=ro"
            self._read_engine = sa.create_engine(
                "sqlite://", creator=lambda: sqlite3.connect(read_uri, uri=True, check_same_thread=False)
            )
            _explicit_transactions(self._read_engine)

    def check(self) -> None:
        """Connect without creating the file: a target's is created when tables are, a source's must exist."""
        path = self._path()
        if path is not None and not path.parent.is_dir():
            raise connection_failed(self.url, FileNotFoundError(f"no folder {path.parent}"))
        if path is None or path.exists():
            super().check()

    def reflect(self, schemas: list[str] | None = None) -> sa.MetaData:
        path = self._path()
        if path is not None and not path.is_file():
            raise connection_failed(self.url, FileNotFoundError(f"no database file {path}"))
        return super().reflect(schemas)

    def _path(self) -> Path | None:
        """The database file, or None for an in-memory database or a ``file:`` URI."""
        database = self.engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).absolute()

    def _begin_write(self, conn: sa.Connection) -> None:
        # Rows may reference rows later in the same load (self-references): check at commit.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")

    def close(self) -> None:
        self._read_engine.dispose()
        super().close()
