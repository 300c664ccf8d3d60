"""The source schema as the engine sees it: tables, keys and the references between them.

SQLAlchemy reflection gives tables, columns and declared keys for every dialect; this module adds
what the config knows and the database does not (virtual foreign keys). The order tables load in,
cycles included, is ``governor.engine.cycles``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from governor.engine.config import Metadata
from governor.engine.errors import ConfigError


@dataclass(frozen=True, order=True)
class TableName:
    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Reference:
    """A foreign key from ``table.columns`` to ``parent.parent_columns``, declared or virtual."""

    table: TableName
    columns: tuple[str, ...]
    parent: TableName
    parent_columns: tuple[str, ...]
    virtual: bool = False

    @property
    def self_reference(self) -> bool:
        return self.table == self.parent

    def __str__(self) -> str:
        return f"{self.table}({', '.join(self.columns)}) -> {self.parent}({', '.join(self.parent_columns)})"


class Schema:
    """Reflected tables keyed by ``TableName``, with declared and virtual references."""

    def __init__(self, metadata: sa.MetaData, default_schema: str | None, virtual: Metadata | None = None) -> None:
        self.default_schema = default_schema
        self.tables: dict[TableName, sa.Table] = {
            TableName(table.schema or default_schema, table.name): table for table in metadata.tables.values()
        }
        self.references: list[Reference] = [
            ref for name, table in self.tables.items() for ref in self._declared(name, table)
        ]
        if virtual is not None:
            self.references.extend(self._virtual(virtual))

    def _declared(self, name: TableName, table: sa.Table) -> Iterable[Reference]:
        for fk in table.foreign_key_constraints:
            parent = fk.referred_table
            yield Reference(
                table=name,
                columns=tuple(c.name for c in fk.columns),
                parent=TableName(parent.schema or self.default_schema, parent.name),
                parent_columns=tuple(e.column.name for e in fk.elements),
            )

    def _virtual(self, metadata: Metadata) -> Iterable[Reference]:
        problems = []
        for t, entry in enumerate(metadata.tables):
            path = f"metadata.tables[{t}]"
            table = self.resolve(entry.table_name_with_schema)
            if table is None:
                problems.append(f"{path}.table_name_with_schema: {self.unknown_table(entry.table_name_with_schema)}")
                continue
            for fk in entry.virtual_foreign_keys(path):
                parent = self.resolve(fk.referenced_table)
                if parent is None:
                    problems.append(f"{fk.path}.{fk.table_key}: {self.unknown_table(fk.referenced_table)}")
                    continue
                if len(fk.referencing_columns) != len(fk.referenced_columns):
                    problems.append(f"{fk.path}: referencing_columns and referenced_columns differ in length")
                    continue
                for key, owner, columns in (
                    (fk.referencing_key, table, fk.referencing_columns),
                    (fk.referenced_key, parent, fk.referenced_columns),
                ):
                    problems.extend(
                        f"{fk.path}.{key.format(i)}: no column {column!r} in {owner}"
                        for i, column in enumerate(columns)
                        if column not in self.tables[owner].columns
                    )
                yield Reference(table, fk.referencing_columns, parent, fk.referenced_columns, True)
        if problems:
            raise ConfigError(problems)

    def resolve(self, name: str) -> TableName | None:
        """The table a config names, as ``schema.table`` or just ``table`` (default schema)."""
        schema, _, table = name.rpartition(".")
        candidate = TableName(schema or self.default_schema, table)
        if candidate in self.tables:
            return candidate
        # SQLite reflects its main schema as no schema at all; accept both spellings.
        matches = [t for t in self.tables if t.name == table and (not schema or t.schema in (schema, None))]
        return matches[0] if len(matches) == 1 else None

    def unknown_table(self, name: str) -> str:
        known = ", ".join(sorted(str(t) for t in self.tables)) or "none"
        return f"no table {name!r} in the source database; its tables: {known}"

    def references_to(self, parent: TableName) -> list[Reference]:
        return [r for r in self.references if r.parent == parent]

    def unique_columns(self, name: TableName) -> set[str]:
        """Columns that are unique on their own: single-column primary or unique keys."""
        table = self.tables[name]
        keys = [tuple(c.name for c in table.primary_key.columns)]
        keys += [
            tuple(c.name for c in con.columns) for con in table.constraints if isinstance(con, sa.UniqueConstraint)
        ]
        keys += [tuple(c.name for c in ix.columns) for ix in table.indexes if ix.unique]
        return {key[0] for key in keys if len(key) == 1}

    def key_columns(self, name: TableName) -> set[str]:
        """Primary key columns and columns that reference another table."""
        table = self.tables[name]
        columns = {c.name for c in table.primary_key.columns}
        columns.update(c for r in self.references if r.table == name for c in r.columns)
        return columns
