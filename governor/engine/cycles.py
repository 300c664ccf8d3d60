"""Reference cycles between tables: the load order, and where each cycle is broken.

Tables load parents first, which a cycle (``a -> b -> a``) makes impossible. A cycle is broken at
one of its nullable references: that column is loaded as NULL, so both tables load, and then

* ``cycle_breaker_references`` (named on a table) restores the real values with updates once
  every table is in: the target ends with all of its references;
* ``cycle_resolution_strategy: DELETE_NOT_REQUIRED`` breaks the cycles nobody named at a nullable
  ("not required") reference and leaves it NULL in the target, as TDK does;
* ``FAIL`` (the default) refuses the run before anything is written, naming the cycle.

Self-references are no cycles here: every connector loads a table in one statement or
transaction whose foreign keys are checked at its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from governor.engine.config import CycleResolutionStrategy, WorkflowConfig
from governor.engine.connectors.base import Connector
from governor.engine.errors import ConfigError, SchemaError
from governor.engine.schema import Reference, Schema, TableName


@dataclass(frozen=True)
class CycleBreak:
    """A reference loaded as NULL; ``restore`` sets its values again after the load."""

    reference: Reference
    restore: bool
    origin: str  # the config path that named it, or the strategy that chose it

    def describe(self) -> str:
        then = "restored after the load" if self.restore else "left NULL (DELETE_NOT_REQUIRED)"
        return f"{self.reference} loaded NULL, {then}"


@dataclass(frozen=True)
class CycleResolution:
    order: list[TableName]
    breaks: list[CycleBreak]

    def broken(self, table: TableName) -> list[CycleBreak]:
        return [b for b in self.breaks if b.reference.table == table]


def resolve_cycles(config: WorkflowConfig, schema: Schema) -> CycleResolution:
    """The load order with every cycle broken as the config says, or an error naming the cycle."""
    breaks = _named_breakers(config, schema)
    broken = {b.reference for b in breaks}
    while True:
        try:
            return CycleResolution(_order(schema, broken), breaks)
        except CycleError as exc:
            cycle = list(reversed(exc.args[1]))
        names = " -> ".join(str(t) for t in cycle)
        if config.cycle_resolution_strategy is CycleResolutionStrategy.FAIL:
            raise SchemaError(
                f"the tables form a reference cycle: {names}; name a nullable reference to break it at in "
                "cycle_breaker_references, or set cycle_resolution_strategy: DELETE_NOT_REQUIRED"
            )
        candidates = [r for r in _cycle_references(schema, cycle, broken) if _nullable(schema, r)]
        if not candidates:
            raise SchemaError(
                f"the tables form a reference cycle: {names}; every reference in it is NOT NULL, "
                "so no load order can satisfy it"
            )
        choice = min(candidates, key=str)
        breaks.append(CycleBreak(choice, restore=False, origin="cycle_resolution_strategy: DELETE_NOT_REQUIRED"))
        broken.add(choice)


def _order(schema: Schema, broken: set[Reference]) -> list[TableName]:
    graph: dict[TableName, set[TableName]] = {t: set() for t in schema.tables}
    for ref in schema.references:
        if not ref.self_reference and ref not in broken:
            graph[ref.table].add(ref.parent)
    # Sorting the input makes the order stable from run to run.
    return list(TopologicalSorter(dict(sorted(graph.items(), key=lambda item: str(item[0])))).static_order())


def _cycle_references(schema: Schema, cycle: list[TableName], broken: set[Reference]) -> list[Reference]:
    """The references along the cycle's edges (the cycle lists each table, the first one twice)."""
    edges = set(pairwise(cycle))
    edges |= {(b, a) for a, b in edges}
    return [r for r in schema.references if (r.table, r.parent) in edges and not r.self_reference and r not in broken]


def _nullable(schema: Schema, ref: Reference) -> bool:
    table = schema.tables[ref.table]
    return all(table.columns[c].nullable for c in ref.columns)


def _named_breakers(config: WorkflowConfig, schema: Schema) -> list[CycleBreak]:
    problems: list[str] = []
    breaks: list[CycleBreak] = []
    for t, entry in enumerate(config.tables):
        name = schema.resolve(entry.table_name_with_schema)
        if name is None:
            continue  # reported by planning with the table's own path
        for i, item in enumerate(entry.cycle_breaker_references):
            path = f"tables[{t}].cycle_breaker_references[{i}]"
            parent = schema.resolve(item.referenced_table) if item.referenced_table else None
            if item.referenced_table and parent is None:
                problems.append(f"{path}.referenced_table: {schema.unknown_table(item.referenced_table)}")
                continue
            matches = [
                r
                for r in schema.references
                if r.table == name and list(r.columns) == item.columns and (parent is None or r.parent == parent)
            ]
            if len(matches) != 1:
                what = "no reference" if not matches else "several references"
                problems.append(f"{path}.columns: {what} of {name} from ({', '.join(item.columns)})")
                continue
            ref = matches[0]
            if ref.self_reference:
                problems.append(f"{path}: {ref} is a self-reference, which loads without breaking")
            elif not _nullable(schema, ref):
                problems.append(f"{path}: {ref} is NOT NULL; a cycle can only be broken at a nullable reference")
            elif not schema.tables[name].primary_key.columns:
                problems.append(f"{path}: {name} has no primary key to restore the reference by")
            else:
                breaks.append(CycleBreak(ref, restore=True, origin=path))
    if problems:
        raise ConfigError(problems)
    return breaks


@dataclass
class Restorer:
    """Loads broken references as NULL and, for those to restore, keeps their values to set later.

    ``points_at_kept`` tells, on a source batch, which rows' reference points at a row the run
    loads (subsetting may have left the parent out; those values stay NULL). Only the key and
    the reference's columns are kept, as the load transformed them (masked keys stay joined).
    """

    breaks: list[CycleBreak]
    tables: dict[TableName, sa.Table]
    points_at_kept: Callable[[Reference, pa.RecordBatch], np.ndarray]
    pending: dict[CycleBreak, list[pa.RecordBatch]] = field(default_factory=dict)

    def detach(self, name: TableName, source: pa.RecordBatch, loaded: pa.RecordBatch) -> pa.RecordBatch:
        """``loaded`` (the transformed ``source`` rows) with the table's broken references NULL."""
        for cycle_break in (b for b in self.breaks if b.reference.table == name):
            columns = list(cycle_break.reference.columns)
            if cycle_break.restore:
                keys = [c.name for c in self.tables[name].primary_key.columns]
                present = np.ones(source.num_rows, dtype=bool)
                for column in columns:
                    present &= ~np.asarray(source.column(column).is_null().to_numpy(zero_copy_only=False), dtype=bool)
                rows = present & self.points_at_kept(cycle_break.reference, source)
                self.pending.setdefault(cycle_break, []).append(loaded.select(keys + columns).filter(pa.array(rows)))
            for column in columns:
                index = loaded.schema.get_field_index(column)
                loaded = loaded.set_column(
                    index, loaded.schema.field(index), pa.nulls(loaded.num_rows, loaded.schema.field(index).type)
                )
        return loaded

    def restore(self, target: Connector) -> int:
        """Write the kept values back into the loaded tables; the rows updated."""
        updated = 0
        for cycle_break, batches in self.pending.items():
            table = self.tables[cycle_break.reference.table]
            updated += target.update(table, [c.name for c in table.primary_key.columns], batches)
        return updated
