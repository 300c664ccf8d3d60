"""Opening a database by URL: the connector class is chosen by the URL's scheme.

Each connector's module, and its driver with it, is imported only when a URL of its kind is
opened: a PostgreSQL-only ``governor transform`` does not pay for PyMySQL's import. The engine's
fork server preloads them all (``governor.runs.executor``).
"""

from __future__ import annotations

import sqlalchemy as sa

from governor.engine.connectors.base import Connector
from governor.engine.connectors.sql import SqlAlchemyConnector
from governor.engine.connectors.types import MYSQL_DIALECTS
from governor.engine.connectors.urls import connection_failed, mask_url
from governor.engine.errors import ConnectionFailed

__all__ = ["CONNECTOR_MODULES", "Connector", "open_connector"]

_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
CONNECTOR_MODULES = tuple(f"governor.engine.connectors.{name}" for name in ("postgres", "sqlite", "mysql"))


def open_connector(url: str) -> Connector:
    """The connector for ``url``, checked to connect; ``ConnectionFailed`` (password masked) if not.

    ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://`` open PostgreSQL through
    psycopg 3, ``sqlite:///path`` a SQLite file, ``mysql://`` and ``mariadb://`` MySQL or MariaDB
    (through PyMySQL unless the URL names another driver), anything else SQLAlchemy's dialect for
    it, once its driver is installed.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        # Not echoed: where the password is in a malformed URL cannot be told.
        raise ConnectionFailed(
            "not a database URL; expected dialect[+driver]://user:password@host:port/database or sqlite:///path"
        ) from None
    try:
        if parsed.drivername in _POSTGRES_SCHEMES:
            from governor.engine.connectors.postgres import PostgresConnector

            normalized = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
            connector: Connector = PostgresConnector(normalized)
            connector.url = url
        elif parsed.get_backend_name() == "sqlite":
            from governor.engine.connectors.sqlite import SqliteConnector

            connector = SqliteConnector(url)
        elif parsed.get_backend_name() in MYSQL_DIALECTS:
            from governor.engine.connectors.mysql import MySqlConnector

            connector = MySqlConnector(url)
        else:
            connector = SqlAlchemyConnector(url, sa.create_engine(parsed))
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConnectionFailed(
            f"cannot open {mask_url(url)}: no driver installed for {parsed.drivername!r} ({exc})"
        ) from None
    except (sa.exc.ArgumentError, TypeError, ValueError) as exc:
        raise connection_failed(url, exc) from None
    try:
        connector.check()
    except ConnectionFailed:
        connector.close()
        raise
    return connector
