"""The metadata database: engine, sessions and migrations, on SQLite or PostgreSQL.

SQLite is the embedded default and is shared by several processes (the server, its workers, the
admin CLI), so every transaction starts with ``BEGIN IMMEDIATE``: writers queue on the database
lock (``busy_timeout``) instead of failing when a read transaction later wants to write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from governor.settings import Settings
from governor.store.crypto import ensure_secret_key, parse_url

MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant: serializes concurrent migrations of one PostgreSQL database.
_MIGRATION_LOCK_ID = 0x60BE_4A0B


class UnusableDatabaseUrl(Exception):
    """The metadata URL names no database Governor can keep its metadata in; says why, in one line."""


def _engine_url(url: str) -> sa.URL:
    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise UnusableDatabaseUrl(f"GOVERNOR_DATABASE_URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        # The psycopg 3 driver is the one installed; plain postgresql:// would mean psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UnusableDatabaseUrl(
            f"GOVERNOR_DATABASE_URL: the metadata can be kept in sqlite or postgresql, not {parsed.drivername!r}"
        )
    return parsed


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN instead of the driver's implicit deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def stuck_transaction_seconds(settings: Settings) -> float:
    """How long PostgreSQL lets a metadata transaction wait on its client before ending it.

    Governor's transactions last milliseconds; one that waits longer belongs to a process that is
    paused or cut off, and may hold what the others need: the reaper's lock, a run's row. Ending it
    well within the dead-worker bound keeps a frozen worker from stalling everyone else's work.
    """
    return max(5.0, settings.worker_timeout / 4)


class Store:
    """One metadata database; share one per process (it holds the connection pool)."""

    def __init__(self, url: str, stuck_after: float | None = None) -> None:
        self.url = _engine_url(url)
        postgres = self.url.get_backend_name() == "postgresql"
        connect_args = (
            {"options": f"-c idle_in_transaction_session_timeout={round(stuck_after * 1000)}"}
            if postgres and stuck_after is not None
            else {}
        )
        try:
            self.engine = sa.create_engine(self.url, pool_pre_ping=postgres, connect_args=connect_args)
        except ImportError as exc:
            raise UnusableDatabaseUrl(
                f"GOVERNOR_DATABASE_URL: no driver installed for {self.url.drivername!r} ({exc})"
            ) from None
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe to run from several processes."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings) -> Store:
    """The store of an installation, ready to use: home folder, encryption key, schema."""
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    ensure_secret_key(settings)
    store = Store(settings.effective_database_url, stuck_transaction_seconds(settings))
    store.migrate()
    return store
