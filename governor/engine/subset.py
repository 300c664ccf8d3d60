"""Subsetting: a smaller copy of the source whose foreign keys all still point at loaded rows.

How rows are chosen (decided per table from the config, before any data is read):

* **driving** tables are subsetted (``target_ratio`` below 1 or a ``filter``) and have no
  subsetted ancestor. Their rows are the ones passing the filter (run by the source database),
  of which ``round(target_ratio * rows passing)`` are drawn: those with the smallest seeded hash of
  their primary key, so a seed always draws the same rows.
* **referenced** tables are the ancestors of driving tables. Selected rows pull in every row they
  reference, transitively, and nothing else: a subset of orders brings the customers and
  addresses those orders need.
* **following** tables are all others whose parents are subsetted. As in TDK, a row follows its
  parents: it is kept when every reference it has points at a kept row, and dropped otherwise
  (a following table's own ratio or filter narrows it further, never widens it). Following never
  pulls parents in, which keeps the driving tables at the ratio asked for.
* tables that nothing above touches are copied whole.

Self-references pull the referenced rows (a sampled employee brings their managers up to the
root), with the draw shrunk until the closure fits the table's target. References a cycle is
broken at take no part in the choice (see ``governor.engine.cycles``); the values restored
afterwards are only those pointing at kept rows.

Memory holds key columns only: each subsetted table's keys are read once (only those columns,
with the filter applied by the database), and the load then streams the full rows and keeps a
batch's rows with one vectorized ``is_in`` against the kept keys. A following leaf table, usually
the largest, is never materialized at all: its batches are checked against its parents' keys as
they stream by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from governor.engine.config import Mode, WorkflowConfig
from governor.engine.connectors.base import Connector
from governor.engine.errors import ConfigError, RunStopped
from governor.engine.hashing import hash_columns, stream_key
from governor.engine.schema import Reference, Schema, TableName
from governor.engine.sql_text import check_condition

if TYPE_CHECKING:
    from governor.engine.plan import Plan

Role = Literal["all", "driving", "referenced", "following"]
_SEPARATOR = pa.scalar(b"\x1f", pa.binary())
_NULL_PART = pa.scalar(b"\x00", pa.binary())
_VALUE_PART = pa.scalar(b"\x01", pa.binary())


@dataclass(frozen=True)
class TableSubset:
    name: TableName
    role: Role
    ratio: float = 1.0
    filter: str | None = None

    @property
    def capped(self) -> bool:
        return self.ratio < 1.0

    def describe(self) -> str:
        how = {
            "all": "all rows",
            "driving": "drawn",
            "referenced": "rows referenced by kept rows",
            "following": "rows whose references point at kept rows",
        }[self.role]
        if self.filter:
            how += f", filter: {self.filter}"
        if self.capped and self.role != "referenced":
            how += f", target_ratio {self.ratio:g}"
        return how


@dataclass
class SubsetPlan:
    """Every table's role; ``ignored`` are the references cycles are broken at."""

    tables: dict[TableName, TableSubset]
    references: list[Reference]
    ignored: set[Reference] = field(default_factory=set)

    def parents(self, name: TableName) -> list[Reference]:
        return [r for r in self.references if r.table == name and not r.self_reference and r not in self.ignored]

    def children(self, name: TableName) -> list[Reference]:
        return [r for r in self.references if r.parent == name and not r.self_reference and r not in self.ignored]

    def self_references(self, name: TableName) -> list[Reference]:
        return [r for r in self.references if r.table == name and r.self_reference]


def plan_subset(
    config: WorkflowConfig,
    schema: Schema,
    modes: dict[TableName, Mode],
    order: list[TableName],
    ignored: set[Reference],
) -> SubsetPlan | None:
    """Each table's role, or None when the config subsets nothing. Bad filters fail with their path."""
    problems = []
    ratios = {name: config.default_config.target_ratio for name in schema.tables}
    filters: dict[TableName, str] = {}
    for t, entry in enumerate(config.tables):
        name = schema.resolve(entry.table_name_with_schema)
        if name is None:
            continue  # reported by planning with the table's own path
        if entry.target_ratio is not None:
            ratios[name] = entry.target_ratio
        if entry.filter is not None:
            reason = check_condition(entry.filter)
            if reason:
                problems.append(f"tables[{t}].filter: {reason}")
            filters[name] = entry.filter
    if problems:
        raise ConfigError(problems)
    # Generated tables size themselves (ratios above 1 are theirs); subsetting applies to copies.
    generated = {name for name in schema.tables if modes[name] is Mode.GENERATION}
    subsetted = {name for name in schema.tables if name not in generated and (ratios[name] < 1 or name in filters)}
    if not subsetted:
        return None

    # A generated table references the kept rows it is given, and a copied table's references to a
    # generated one are re-pointed at generated rows (governor.engine.generation): neither side of
    # such a reference follows or pulls the other, so generated tables keep every row they make.
    references = [r for r in schema.references if r.table not in generated and r.parent not in generated]
    plan = SubsetPlan({}, references, ignored)
    ancestors = {name: _ancestors(plan, name) for name in schema.tables}
    driving = {name for name in subsetted if not ancestors[name] & subsetted}
    referenced = set().union(*(ancestors[name] for name in driving))
    restricted: set[TableName] = set()
    for name in order:
        ratio = ratios[name] if name in subsetted else 1.0
        if name in driving:
            role: Role = "driving"
        elif name in referenced:
            role = "referenced"
        elif name in subsetted or any(r.parent in restricted for r in plan.parents(name)):
            role = "following"
        else:
            role = "all"
        if role != "all":
            restricted.add(name)
        plan.tables[name] = TableSubset(name, role, ratio, filters.get(name))
    return plan


def _ancestors(plan: SubsetPlan, name: TableName) -> set[TableName]:
    seen: set[TableName] = set()
    pending = [name]
    while pending:
        for ref in plan.parents(pending.pop()):
            if ref.parent not in seen:
                seen.add(ref.parent)
                pending.append(ref.parent)
    return seen


# Keys


def _integer_keys(types: list[pa.DataType]) -> bool:
    return len(types) == 1 and pa.types.is_integer(types[0])


def _as_bytes(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return array.cast(pa.binary())
    return array.cast(pa.string()).cast(pa.binary())


def encode(
    arrays: list[pa.Array | pa.ChunkedArray], integer: bool, nulls_are_values: bool = False
) -> pa.Array | pa.ChunkedArray:
    """One comparable value per row for a (possibly composite) key; NULL if any part is NULL (unless below).

    Integer keys stay int64 (an int32 foreign key meets its int64 parent); anything else becomes
    the bytes of its text form, parts joined by a separator no key text contains.

    ``nulls_are_values`` encodes a NULL part as a value of its own (each part marked as NULL or
    not), never NULL: the identity of a table without a primary key is all its columns, and a
    row with a NULL in one of them is still one row to keep or drop.
    """
    if integer and not nulls_are_values:
        return arrays[0].cast(pa.int64())
    parts = [_as_bytes(array) for array in arrays]
    if nulls_are_values:
        parts = [
            pc.if_else(part.is_null(), _NULL_PART, pc.binary_join_element_wise(_VALUE_PART, part, b""))
            for part in parts
        ]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEPARATOR)


@dataclass(frozen=True)
class _Key:
    """How one side of a reference (or a table's identity) is read out of a batch or frame."""

    columns: tuple[str, ...]
    integer: bool
    nulls_are_values: bool = False  # identities without a primary key (see ``encode``)

    def of(self, data: pa.Table | pa.RecordBatch) -> pa.Array | pa.ChunkedArray:
        return encode([data.column(c) for c in self.columns], self.integer, self.nulls_are_values)


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _member(keys: pa.Array | pa.ChunkedArray, kept: pa.Array, nulls_pass: bool) -> np.ndarray:
    """Per key: is it one of ``kept``? A NULL key never is (it only passes, with ``nulls_pass``)."""
    inside = _mask(pc.is_in(keys, value_set=kept, skip_nulls=True))
    if nulls_pass:
        inside |= _mask(keys.is_null())
    return inside


# Selection


@dataclass
class TableRows:
    """How the load keeps one table's rows: ``where`` runs in the source, ``keep`` on each batch."""

    name: TableName
    where: str | None = None
    identity: _Key | None = None
    kept: pa.Array | None = None  # encoded identities of the kept rows (materialized tables)
    checks: list[tuple[_Key, pa.Array]] = field(default_factory=list)  # streamed: reference -> parent keys
    expected: int | None = None

    def keep(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.kept is not None and self.identity is not None:
            return batch.filter(_member(self.identity.of(batch), self.kept, nulls_pass=False))
        if self.checks:
            mask = np.ones(batch.num_rows, dtype=bool)
            for key, parent_keys in self.checks:
                mask &= _member(key.of(batch), parent_keys, nulls_pass=True)
            return batch.filter(mask)
        return batch


@dataclass
class Selection:
    """The outcome of subsetting: per table, how the load keeps its rows."""

    tables: dict[TableName, TableRows] = field(default_factory=dict)
    kept_frames: dict[TableName, pa.Table] = field(default_factory=dict)
    integer_refs: dict[Reference, bool] = field(default_factory=dict)

    def rows(self, name: TableName) -> TableRows:
        return self.tables.get(name) or TableRows(name)

    def parent_keys(self, ref: Reference) -> pa.Array | None:
        """Encoded keys of the kept rows a reference may point at; None when all parent rows are kept."""
        frame = self.kept_frames.get(ref.parent)
        if frame is None:
            return None
        return _Key(ref.parent_columns, self.integer_refs[ref]).of(frame).combine_chunks().drop_null().unique()

    def reference_key(self, ref: Reference) -> _Key:
        return _Key(ref.columns, self.integer_refs[ref])

    def points_at_kept(self, ref: Reference, batch: pa.RecordBatch) -> np.ndarray:
        """Per row of a source batch: does the reference point at a kept row (or at nothing)?"""
        keys = self.parent_keys(ref)
        if keys is None:
            return np.ones(batch.num_rows, dtype=bool)
        return _member(self.reference_key(ref).of(batch), keys, nulls_pass=True)


def select_for(plan: Plan, source: Connector, batch_size: int, stop: Callable[[], bool]) -> Selection:
    """The plan's selection; every row of every table when the config subsets nothing."""
    if plan.subset is None:
        return Selection()
    tables = {t.name: t.table for t in plan.tables}
    return select_rows(plan.subset, tables, source, batch_size, plan.seed, stop)


def estimate_rows(plan: Plan, source: Connector) -> None:
    """Fill each table's ``estimated_rows`` from counts the source makes (for the plan preview).

    Drawn tables get their exact target; following tables at most their filtered or capped
    count; referenced tables at most their size (what is referenced is known only by reading);
    generated tables the rows they will make, which subsetting never touches.
    """
    for table_plan in plan.tables:
        if table_plan.generation is not None:
            table_plan.rows = f"generated: {table_plan.generation.describe()}"
            table_plan.estimated_rows = table_plan.generation.target_rows(source.count(table_plan.table))
            continue
        subset = plan.subset.tables[table_plan.name] if plan.subset else None
        if subset is None or subset.role == "all":
            table_plan.estimated_rows = source.count(table_plan.table)
            continue
        rows = source.count(table_plan.table, where=subset.filter)
        table_plan.estimated_rows = round(subset.ratio * rows) if subset.capped else rows


def select_rows(
    subset: SubsetPlan,
    tables: dict[TableName, sa.Table],
    source: Connector,
    batch_size: int,
    seed: int,
    stop: Callable[[], bool],
) -> Selection:
    """Decide every subsetted table's rows from key columns alone; see the module docstring."""
    return _Selector(subset, tables, source, batch_size, seed, stop).run()


class _Selector:
    def __init__(
        self,
        subset: SubsetPlan,
        tables: dict[TableName, sa.Table],
        source: Connector,
        batch_size: int,
        seed: int,
        stop: Callable[[], bool],
    ) -> None:
        self.subset = subset
        self.tables = tables
        self.source = source
        self.batch_size = batch_size
        self.seed = seed
        self.stop = stop
        self.selection = Selection()
        self.types = {name: source.arrow_schema(table) for name, table in tables.items()}
        for ref in subset.references:
            self.selection.integer_refs[ref] = _integer_keys(
                [self.types[ref.table].field(c).type for c in ref.columns]
                + [self.types[ref.parent].field(c).type for c in ref.parent_columns]
            )

    def run(self) -> Selection:
        for name, table in self.subset.tables.items():
            if table.filter is not None:
                # Counting runs the filter once: a condition the database refuses fails here,
                # in one line, before anything is written.
                self.source.count(self.tables[name], where=table.filter)
        order = list(self.subset.tables)
        roles = {name: t.role for name, t in self.subset.tables.items()}
        for name in order:
            if roles[name] == "driving":
                self._driving(name)
        for name in reversed(order):
            if roles[name] == "referenced":
                self._referenced(name)
        for name in order:
            if roles[name] == "following":
                self._following(name)
        return self.selection

    # Reading keys

    def _identity(self, name: TableName) -> _Key:
        table = self.tables[name]
        primary = tuple(c.name for c in table.primary_key.columns)
        columns = primary or tuple(c.name for c in table.columns)
        return _Key(columns, _integer_keys([self.types[name].field(c).type for c in columns]), not primary)

    def _frame(self, name: TableName) -> pa.Table:
        """The table's key columns (identity, both sides of its references), filter applied."""
        table = self.tables[name]
        wanted = set(self._identity(name).columns)
        for ref in self.subset.references:
            if ref.table == name:
                wanted.update(ref.columns)
            if ref.parent == name:
                wanted.update(ref.parent_columns)
        columns = [c for c in table.columns if c.name in wanted]
        projection = sa.Table(
            table.name, sa.MetaData(), *[sa.Column(c.name, c.type) for c in columns], schema=table.schema
        )
        projection.info.update(table.info)
        batches = []
        for batch in self.source.read(projection, max(self.batch_size, 50_000), where=self.subset.tables[name].filter):
            if self.stop():
                raise RunStopped(f"stopped while subsetting {name}")
            batches.append(batch)
        schema = self.source.arrow_schema(projection)
        return pa.Table.from_batches(batches, schema=schema)

    def _hashes(self, name: TableName, frame: pa.Table) -> np.ndarray:
        columns = [frame.column(c) for c in self._identity(name).columns]
        return hash_columns(columns, stream_key(self.seed, f"subset:{name}"))

    def _keep(self, name: TableName, frame: pa.Table, mask: np.ndarray) -> None:
        kept = frame.filter(pa.array(mask))
        identity = self._identity(name)
        self.selection.kept_frames[name] = kept
        self.selection.tables[name] = TableRows(
            name,
            where=self.subset.tables[name].filter,
            identity=identity,
            kept=identity.of(kept).combine_chunks().unique(),
            expected=kept.num_rows,
        )

    # Roles

    def _driving(self, name: TableName) -> None:
        frame = self._frame(name)
        candidates = self._closed(name, frame, np.ones(frame.num_rows, dtype=bool))
        target = round(self.subset.tables[name].ratio * frame.num_rows)
        self._keep(name, frame, self._draw(name, frame, candidates, target))

    def _referenced(self, name: TableName) -> None:
        frame = self._frame(name)
        mask = np.zeros(frame.num_rows, dtype=bool)
        for ref in self.subset.children(name):
            child = self.selection.kept_frames.get(ref.table)
            if child is None:
                continue  # a following child: it follows, it does not pull
            wanted = self.selection.reference_key(ref).of(child).combine_chunks().drop_null().unique()
            mask |= _member(_Key(ref.parent_columns, self.selection.integer_refs[ref]).of(frame), wanted, False)
        self._keep(name, frame, self._close_upward(name, frame, mask))

    def _following(self, name: TableName) -> None:
        table = self.subset.tables[name]
        checks = [
            (self.selection.reference_key(ref), keys)
            for ref in self.subset.parents(name)
            if (keys := self.selection.parent_keys(ref)) is not None
        ]
        needed_later = self.subset.children(name) or any(
            r.parent == name for r in self.subset.ignored
        )  # children check against its keys; restored cycle references too
        if not (needed_later or table.capped or self.subset.self_references(name)):
            self.selection.tables[name] = TableRows(name, where=table.filter, checks=checks)
            return
        frame = self._frame(name)
        mask = np.ones(frame.num_rows, dtype=bool)
        for key, keys in checks:
            mask &= _member(key.of(frame), keys, nulls_pass=True)
        mask = self._closed(name, frame, mask)
        if table.capped:
            mask = self._draw(name, frame, mask, round(table.ratio * frame.num_rows))
        self._keep(name, frame, mask)

    # Drawing rows and closing self-references

    def _draw(self, name: TableName, frame: pa.Table, candidates: np.ndarray, target: int) -> np.ndarray:
        """``target`` candidates with the smallest hashes, their self-referenced rows included."""
        indices = np.flatnonzero(candidates)
        if target >= len(indices):
            return candidates
        ranked = indices[np.argsort(self._hashes(name, frame)[indices], kind="stable")]
        if not self.subset.self_references(name):
            mask = np.zeros(frame.num_rows, dtype=bool)
            mask[ranked[:target]] = True
            return mask
        # The closure of a longer prefix is never smaller: the longest prefix that fits the target,
        # or one row more when that lands nearer to it.
        low, high = 0, target
        while low < high:
            middle = (low + high + 1) // 2
            if self._close_upward(name, frame, self._prefix(frame, ranked, middle)).sum() <= target:
                low = middle
            else:
                high = middle - 1
        below = self._close_upward(name, frame, self._prefix(frame, ranked, low))
        above = self._close_upward(name, frame, self._prefix(frame, ranked, low + 1))
        return above if above.sum() - target < target - below.sum() else below

    @staticmethod
    def _prefix(frame: pa.Table, ranked: np.ndarray, length: int) -> np.ndarray:
        mask = np.zeros(frame.num_rows, dtype=bool)
        mask[ranked[:length]] = True
        return mask

    def _parent_rows(self, name: TableName, frame: pa.Table) -> list[np.ndarray]:
        """Per self-reference, each row's parent row index; -1 for none, -2 for one not in the frame."""
        rows = []
        for ref in self.subset.self_references(name):
            integer = self.selection.integer_refs[ref]
            child = _Key(ref.columns, integer).of(frame)
            position = pc.index_in(child, value_set=_Key(ref.parent_columns, integer).of(frame))
            index = np.asarray(position.fill_null(-2).to_numpy(zero_copy_only=False), dtype=np.int64)
            index[_mask(child.is_null())] = -1
            rows.append(index)
        return rows

    def _closed(self, name: TableName, frame: pa.Table, mask: np.ndarray) -> np.ndarray:
        """The rows of ``mask`` whose self-referenced rows (transitively) are in ``mask`` too."""
        mask = mask.copy()
        for index in (parents := self._parent_rows(name, frame)):
            mask &= index != -2
        changed = bool(parents)
        while changed:
            before = int(mask.sum())
            for index in parents:
                has_parent = index >= 0
                mask[has_parent] &= mask[index[has_parent]]
            changed = int(mask.sum()) != before
        return mask

    def _close_upward(self, name: TableName, frame: pa.Table, mask: np.ndarray) -> np.ndarray:
        """``mask`` with every row its rows self-reference added, transitively."""
        mask = mask.copy()
        parents = self._parent_rows(name, frame)
        frontier = mask.copy()
        while parents and frontier.any():
            added = np.zeros_like(mask)
            for index in parents:
                wanted = index[frontier & (index >= 0)]
                added[wanted] = True
            frontier = added & ~mask
            mask |= frontier
        return mask
