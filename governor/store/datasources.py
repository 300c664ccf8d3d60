"""Data sources: the databases workflows read and write, their URLs encrypted at rest."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governor.engine.connectors import open_connector
from governor.engine.errors import EngineError
from governor.settings import Settings
from governor.store.crypto import UndecryptableError, decrypt, display_url, encrypt, parse_url
from governor.store.errors import Conflict, Invalid, NotFound
from governor.store.models import Access, DataSource, User, as_id

KINDS = ("postgresql", "sqlite", "mysql", "mariadb")


def kind_of(url: str) -> str:
    """The database kind a URL names (``postgresql+psycopg://`` is ``postgresql``)."""
    try:
        kind = parse_url(url).get_backend_name()
    except ValueError as exc:
        raise Invalid(f"url: {exc}") from None
    if kind not in KINDS:
        raise Invalid(f"url: unsupported database kind {kind!r}; supported: {', '.join(KINDS)}")
    return kind


def create_data_source(
    session: Session,
    settings: Settings,
    name: str,
    url: str,
    access: Access = Access.READ_WRITE,
    worker_group: str = "default",
    created_by: User | None = None,
) -> DataSource:
    kind = kind_of(url)
    if session.scalar(sa.select(DataSource.id).where(DataSource.name == name)) is not None:
        raise Conflict(f"a data source named {name!r} already exists")
    source = DataSource(
        name=name,
        kind=kind,
        url_encrypted=encrypt(url, settings),
        url_display=display_url(url),
        access=access,
        worker_group=worker_group,
        created_by=created_by.id if created_by is not None else None,
    )
    session.add(source)
    session.flush()
    return source


def get_data_source(session: Session, source_id: int) -> DataSource:
    source = session.get(DataSource, source_id)
    if source is None:
        raise NotFound(f"data source {source_id} not found")
    return source


def find_data_source(session: Session, id_or_name: str) -> DataSource:
    """A data source by id or name, as the CLI accepts either."""
    source_id = as_id(id_or_name)
    if source_id is not None:
        return get_data_source(session, source_id)
    source = session.scalar(sa.select(DataSource).where(DataSource.name == id_or_name))
    if source is None:
        raise NotFound(f"data source {id_or_name!r} not found")
    return source


def list_data_sources(session: Session) -> list[DataSource]:
    return list(session.scalars(sa.select(DataSource).order_by(DataSource.id)))


def connection_url(source: DataSource, settings: Settings) -> str:
    """The real URL, credentials included: for connecting only, never for showing."""
    return decrypt(source.url_encrypted, settings)


def test_connection(source: DataSource, settings: Settings) -> str | None:
    """Connect once; the one-line reason it failed, or None when it worked."""
    try:
        url = connection_url(source, settings)
    except UndecryptableError as exc:
        return str(exc)
    try:
        connector = open_connector(url)
        try:
            connector.check()
        finally:
            connector.close()
    except EngineError as exc:
        return str(exc)
    return None
