"""The plan: what a run will do to each table, decided and checked before anything is written.

Planning is where config meets schema. Every table and column the config names must exist, every
masked key must carry its masking to the columns that reference it, and under STRICT every column
must be accounted for; all of it fails here, with config paths, rather than halfway through a load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from governor.engine.config import Mode, SafetyMode, Transformation, WorkflowConfig
from governor.engine.cycles import CycleResolution, resolve_cycles
from governor.engine.errors import ConfigError, SchemaError
from governor.engine.schema import Schema, TableName
from governor.engine.subset import SubsetPlan, plan_subset
from governor.engine.transformers import ColumnContext, TransformContext, Transformer, build
from governor.engine.transformers.arrays import is_integer, is_text
from governor.engine.transformers.defaults import server_default_sql

if TYPE_CHECKING:
    from governor.engine.generation.planning import GenerationSpec


def derive_seed(global_seed: int, origin: str) -> int:
    """A 64-bit seed per configured column, stable across processes and Python versions."""
    digest = hashlib.blake2b(f"{global_seed}:{origin}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class ColumnTransform:
    """One transformer applied to some columns of a table."""

    columns: tuple[str, ...]
    transformer: Transformer
    origin: str  # where it was configured: the config path, or the key it was propagated from

    @property
    def type(self) -> str:
        return self.transformer.name


@dataclass
class TablePlan:
    name: TableName
    table: sa.Table
    mode: Mode
    arrow_schema: pa.Schema
    transforms: list[ColumnTransform] = field(default_factory=list)
    generation: GenerationSpec | None = None  # GENERATION tables: row target and keys (governor.engine.generation)
    rows: str = "all rows"  # how subsetting chooses its rows (governor.engine.subset)
    estimated_rows: int | None = None  # set by subset.estimate_rows when the source is counted
    cycle_breaks: list[str] = field(default_factory=list)  # references loaded NULL (governor.engine.cycles)

    def describe(self) -> dict[str, Any]:
        columns = {c.name: "keep" for c in self.table.columns}
        for transform in self.transforms:
            for column in transform.columns:
                columns[column] = f"{transform.type} ({transform.origin})"
        return {
            "table": str(self.name),
            "mode": self.mode.value,
            "rows": self.rows,
            "estimated_rows": self.estimated_rows,
            "cycle_breaks": self.cycle_breaks,
            "columns": columns,
        }


@dataclass
class Plan:
    tables: list[TablePlan]
    seed: int
    cycles: CycleResolution | None = None
    subset: SubsetPlan | None = None

    def describe(self) -> list[dict[str, Any]]:
        return [t.describe() for t in self.tables]


@dataclass
class _Configured:
    """A transformation as configured on one table, before it is bound to columns."""

    path: str
    table: TableName
    transformation: Transformation
    mode: Mode


def build_plan(
    config: WorkflowConfig,
    schema: Schema,
    arrow_schema: Callable[[sa.Table], pa.Schema],
    seed: int,
) -> Plan:
    """Check the config against the schema and decide every table's work, parents first."""
    problems: list[str] = []
    table_modes: dict[TableName, Mode] = {name: config.default_config.mode for name in schema.tables}
    configured: list[_Configured] = []
    seen_tables: dict[TableName, str] = {}

    for t, entry in enumerate(config.tables):
        path = f"tables[{t}]"
        name = schema.resolve(entry.table_name_with_schema)
        if name is None:
            problems.append(f"{path}.table_name_with_schema: {schema.unknown_table(entry.table_name_with_schema)}")
            continue
        if name in seen_tables:
            problems.append(f"{path}.table_name_with_schema: {name} is already configured at {seen_tables[name]}")
            continue
        seen_tables[name] = path
        table_mode = entry.mode or config.default_config.mode
        table_modes[name] = table_mode
        for i, transformation in enumerate(entry.transformations):
            configured.append(
                _Configured(f"{path}.transformations[{i}]", name, transformation, transformation.mode or table_mode)
            )

    plans = {
        name: TablePlan(name, table, table_modes[name], arrow_schema(table)) for name, table in schema.tables.items()
    }
    transforms_by_column: dict[tuple[TableName, str], ColumnTransform] = {}
    kept: set[tuple[TableName, str]] = set()
    problems += _bind(configured, schema, plans, transforms_by_column, kept, seed)
    if not problems:
        problems += _propagate_keys(schema, plans, transforms_by_column)
    if not problems:
        from governor.engine.generation.planning import plan_generation  # generation builds on this module

        problems += plan_generation(config, schema, plans, transforms_by_column, seed)
    if not problems and config.safety_mode is SafetyMode.STRICT:
        problems += _strict_check(schema, plans, table_modes, set(transforms_by_column) | kept)
    if problems:
        raise ConfigError(problems)

    cycles = resolve_cycles(config, schema)
    # Generated rows pick their parents' keys as the parents load, which a reference loaded NULL breaks.
    generated_breaks = [
        f"{b.origin}: {b.reference} breaks a cycle through a GENERATION table, which generation does not support; "
        f"copy or mask the tables of the cycle"
        for b in cycles.breaks
        if Mode.GENERATION in (plans[b.reference.table].mode, plans[b.reference.parent].mode)
    ]
    if generated_breaks:
        raise ConfigError(generated_breaks)
    subset = plan_subset(config, schema, table_modes, cycles.order, {b.reference for b in cycles.breaks})
    for name, plan in plans.items():
        plan.cycle_breaks = [b.describe() for b in cycles.broken(name)]
        if subset is not None:
            plan.rows = subset.tables[name].describe()
    return Plan([plans[name] for name in cycles.order], seed, cycles, subset)


def _bind(
    configured: list[_Configured],
    schema: Schema,
    plans: dict[TableName, TablePlan],
    transforms_by_column: dict[tuple[TableName, str], ColumnTransform],
    kept: set[tuple[TableName, str]],
    seed: int,
) -> list[str]:
    """Turn configured transformations into transformer instances on real columns.

    Columns whose transformation resolves to KEEP are copied as is and recorded in ``kept``:
    naming them is an explicit decision, which STRICT accepts.
    """
    problems = []
    for item in configured:
        plan = plans[item.table]
        columns = item.transformation.columns
        missing = [
            f"{item.path}.columns[{i}]: no column {c!r} in {item.table}"
            for i, c in enumerate(columns)
            if c not in plan.table.columns
        ]
        if missing:
            problems += missing
            continue
        duplicated = [c for c in columns if (item.table, c) in transforms_by_column or (item.table, c) in kept]
        if duplicated:
            problems.append(
                f"{item.path}.columns: {', '.join(duplicated)} already transformed by another transformation"
            )
            continue
        if item.mode is Mode.KEEP:
            kept.update((item.table, c) for c in columns)
            continue
        row_coherent = _is_row_coherent(item.transformation)
        groups = [tuple(columns)] if row_coherent else [(c,) for c in columns]
        for group in groups:
            origin = item.path if row_coherent else f"{item.path} on {group[0]}"
            try:
                transformer = _instantiate(
                    item.transformation, schema, plan, group, derive_seed(seed, f"{item.table}.{'.'.join(group)}")
                )
            except SchemaError as exc:  # the transformer refuses its columns: one problem among all the others
                problems.append(f"{origin}: {exc}")
                continue
            if item.mode is Mode.MASKING and transformer.collides:
                problems += [
                    f"{origin}: {transformer.name} can map distinct values of the unique column {c.name!r} to one; "
                    f"mask unique and key columns with unique_hashing"
                    for c in transformer.context.columns
                    if c.unique
                ]
            if transformer.free_text:
                problems += [
                    f"{origin}: {transformer.name} writes text that column {c!r} ({plan.table.columns[c].type}) "
                    f"refuses; use a transformer that makes values of its type (uuid_generator for a uuid)"
                    for c in group
                    if isinstance(plan.table.columns[c].type, sa.Uuid | sa.JSON)
                ]
            transform = ColumnTransform(group, transformer, origin)
            plan.transforms.append(transform)
            for column in group:
                transforms_by_column[(item.table, column)] = transform
    return problems


def _is_row_coherent(transformation: Transformation) -> bool:
    from governor.engine.transformers import REGISTRY

    return REGISTRY[transformation.params.type].row_coherent


def _instantiate(
    transformation: Transformation, schema: Schema, plan: TablePlan, columns: tuple[str, ...], seed: int
) -> Transformer:
    unique = schema.unique_columns(plan.name)
    table = {
        c.name: ColumnContext(
            name=c.name,
            type=plan.arrow_schema.field(c.name).type,
            unique=c.name in unique,
            nullable=bool(c.nullable),
            default=server_default_sql(c),
            sql_type=c.type,
        )
        for c in plan.table.columns
    }
    context = TransformContext(seed=seed, columns=tuple(table[c] for c in columns), table=tuple(table.values()))
    return build(transformation.params, context)


def _propagate_keys(
    schema: Schema,
    plans: dict[TableName, TablePlan],
    transforms_by_column: dict[tuple[TableName, str], ColumnTransform],
) -> list[str]:
    """Mask every column that references a masked key with the same function, so joins still match.

    Referencing columns are never configured on their own: masking only the child side of a
    foreign key would leave it pointing at nothing.
    """
    problems = []
    for ref in schema.references:
        for column in ref.columns:
            transform = transforms_by_column.get((ref.table, column))
            if transform is not None and transform.type != "foreign_key_generator":
                problems.append(
                    f"{transform.origin}: {ref.table}.{column} references {ref.parent}; configure the masking on "
                    f"the referenced column, and the columns referencing it follow"
                )
    if problems:
        return problems

    pending = [key for key in transforms_by_column if schema.references_to(key[0])]
    while pending:
        parent, parent_column = pending.pop()
        source = transforms_by_column[(parent, parent_column)]
        for ref in schema.references_to(parent):
            if parent_column not in ref.parent_columns:
                continue
            if Mode.GENERATION in (plans[parent].mode, plans[ref.table].mode):
                continue  # generated rows reference parent keys as loaded (governor.engine.generation)
            if source.transformer.row_coherent or not source.transformer.maps_values:
                problems.append(
                    f"{source.origin}: {parent}.{parent_column} is referenced by {ref.table}; mask keys with a "
                    f"transformer that maps each value on its own, column by column (e.g. unique_hashing)"
                )
                continue
            child_column = ref.columns[ref.parent_columns.index(parent_column)]
            if (ref.table, child_column) in transforms_by_column:
                continue  # already propagated (a column can be reached by several paths)
            plan = plans[ref.table]
            parent_type = plans[parent].arrow_schema.field(parent_column).type
            child_type = plan.arrow_schema.field(child_column).type
            if _value_domain(parent_type) != _value_domain(child_type):
                problems.append(
                    f"{source.origin}: {ref.table}.{child_column} ({child_type}) references {parent}.{parent_column} "
                    f"({parent_type}); masked as different types, their values would no longer match. Give both "
                    f"sides of the reference the same type"
                )
                continue
            try:
                transformer = type(source.transformer)(
                    source.transformer.params,
                    TransformContext(
                        seed=source.transformer.context.seed,
                        columns=(
                            ColumnContext(
                                name=child_column,
                                type=child_type,
                                unique=child_column in schema.unique_columns(ref.table),
                                nullable=bool(plan.table.columns[child_column].nullable),
                                sql_type=plan.table.columns[child_column].type,
                            ),
                        ),
                    ),
                )
            except SchemaError as exc:
                problems.append(f"{source.origin}: following {parent}.{parent_column} to {ref.table}: {exc}")
                continue
            child = ColumnTransform((child_column,), transformer, f"same as {parent}.{parent_column}")
            if plan.mode is Mode.KEEP:
                plan.mode = Mode.MASKING
            plan.transforms.append(child)
            transforms_by_column[(ref.table, child_column)] = child
            pending.append((ref.table, child_column))
    return problems


def _value_domain(kind: pa.DataType) -> str:
    """What a key-masking transformer maps a value as: equal domains map equal values alike.

    Integers of any width share one domain (their masking keeps size classes); so do the text types.
    """
    if is_integer(kind):
        return "integer"
    if is_text(kind):
        return "text"
    return str(kind)


def _strict_check(
    schema: Schema,
    plans: dict[TableName, TablePlan],
    modes: dict[TableName, Mode],
    accounted: set[tuple[TableName, str]],
) -> list[str]:
    """STRICT: in tables the user masks, every non-key column must be transformed or declared passthrough.

    ``modes`` are the user's: a table left in KEEP whose foreign keys follow a masked parent (planned
    as MASKING for that) still copies the rest of its columns as the user asked.
    """
    problems = []
    for name, plan in plans.items():
        if modes[name] is not Mode.MASKING:
            continue
        keys = schema.key_columns(name)
        unconfigured = [c.name for c in plan.table.columns if c.name not in keys and (name, c.name) not in accounted]
        if unconfigured:
            problems.append(
                f"safety_mode: STRICT refuses {name}: columns {', '.join(unconfigured)} are neither transformed "
                f"nor declared passthrough"
            )
    return problems


def check_not_same_database(source_url: str, target_url: str) -> None:
    """Refuse to write into the database being read: a masking run there would destroy the source."""
    source, target = sa.make_url(source_url), sa.make_url(target_url)
    same = (source.get_backend_name(), source.host, source.port, source.database) == (
        target.get_backend_name(),
        target.host,
        target.port,
        target.database,
    )
    if same and source.database not in (None, "", ":memory:"):
        raise SchemaError("the target is the source database; refusing to write into the database being read")
