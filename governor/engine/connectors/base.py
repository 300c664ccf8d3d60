"""The connector contract: how the engine reads and writes one kind of database.

Connectors move Arrow record batches, so that transformers work on columns and memory stays
bounded by the batch size whatever the table size. Schema reflection goes through SQLAlchemy,
which already knows every dialect; the data path is each connector's own, because that is where
speed is won (COPY for PostgreSQL).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

import pyarrow as pa
import sqlalchemy as sa

from governor.engine.config import SchemaCreationMode, TableTruncationMode


class Connector(ABC):
    """One database, opened from a SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    @abstractmethod
    def dialect(self) -> str:
        """SQLAlchemy dialect name: ``postgresql``, ``sqlite``, ``mysql``..."""

    @abstractmethod
    def check(self) -> None:
        """Connect once; raise ``ConnectionFailed`` with a one-line reason if that fails."""

    @abstractmethod
    def default_schema(self) -> str | None:
        """The schema unqualified table names resolve to (``public``, ``main``, the database)."""

    @abstractmethod
    def reflect(self, schemas: list[str] | None = None) -> sa.MetaData:
        """Tables, columns, keys and indexes of the given schemas (default: the default one)."""

    def target_key(self, source: sa.Table) -> tuple[str | None, str]:
        """Where a source table is written here: its schema (None for the default one) and name.

        The safety check compares it with where the source reads, so it must be what ``prepare``
        and ``write`` really use.
        """
        return (source.schema, source.name)

    @abstractmethod
    def arrow_schema(self, table: sa.Table) -> pa.Schema:
        """The Arrow types this connector reads the table's columns as."""

    @abstractmethod
    def count(self, table: sa.Table, where: str | None = None) -> int:
        """Rows in the table, or those meeting ``where`` (exact; used for progress and reports)."""

    @abstractmethod
    def read(self, table: sa.Table, batch_size: int, where: str | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the table's columns as batches of at most ``batch_size`` rows, read-only.

        ``where`` is an SQL condition over the table (a config ``filter``, checked by
        ``governor.engine.sql_text.check_condition``) that the database applies, so rows it
        excludes never leave the server. A table object holding only some of the columns of the
        real table reads just those (subsetting reads key columns alone).
        """

    @abstractmethod
    def prepare(
        self,
        tables: list[sa.Table],
        creation: SchemaCreationMode,
        truncation: TableTruncationMode,
    ) -> None:
        """Create, drop or truncate target tables (given parents first) as the modes say.

        ``tables`` come from the source's reflection, possibly of another dialect: the connector
        adapts types to its own.
        """

    @abstractmethod
    def write(self, table: sa.Table, batches: Iterable[pa.RecordBatch]) -> int:
        """Load all batches into the table in one statement or transaction; return rows written.

        Foreign keys are checked at the end of the load, so rows referencing rows of the same
        table load in any order.
        """

    @abstractmethod
    def execute_script(self, statements: list[str]) -> None:
        """Run SQL statements (a config's ``scripts``) in one transaction where the database allows."""

    @abstractmethod
    def update(self, table: sa.Table, key_columns: list[str], batches: Iterable[pa.RecordBatch]) -> int:
        """Set the non-key columns of the batches on the target rows their key columns identify.

        Restores the references a cycle was broken at once both sides are loaded; returns the
        rows updated.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
