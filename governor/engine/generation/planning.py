"""What planning decides for generated tables, before anything is read.

A generated table gets its row target and the keys it must keep unique; ``foreign_key_generator``
transformations become references (so tables load in the right order); and tables that are copied
or masked but reference a generated table get their foreign key columns re-pointed at generated
rows, since the source's keys no longer exist in the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import sqlalchemy as sa

from governor.engine.config import Mode, TransformerParams, WorkflowConfig
from governor.engine.plan import ColumnTransform, TablePlan, derive_seed
from governor.engine.schema import Reference, Schema, TableName
from governor.engine.transformers import ColumnContext, TransformContext, build
from governor.engine.transformers.foreign_keys import ForeignKeyGenerator
from governor.engine.transformers.sequences import RowCounter


@dataclass(frozen=True)
class GenerationSpec:
    """How many rows a generated table gets and the schema facts its generator must honour."""

    target_ratio: float
    target_row_number: int | None
    use_text_column_heuristics: bool
    references: tuple[Reference, ...]  # from this table to its parents
    unique_keys: tuple[tuple[str, ...], ...]  # primary key, unique constraints and unique indexes

    def target_rows(self, source_rows: int) -> int:
        if self.target_row_number is not None:
            return self.target_row_number
        return round(source_rows * self.target_ratio)

    def describe(self) -> str:
        if self.target_row_number is not None:
            return f"{self.target_row_number} rows"
        return f"{self.target_ratio:g} x source rows"


def unique_keys(schema: Schema, name: TableName) -> tuple[tuple[str, ...], ...]:
    table = schema.tables[name]
    position = {name: index for index, name in enumerate(table.columns.keys())}
    # Constraints and indexes are sets: order them by their columns' positions, for the same choices every run.
    others = [tuple(c.name for c in con.columns) for con in table.constraints if isinstance(con, sa.UniqueConstraint)]
    others += [tuple(c.name for c in index.columns) for index in table.indexes if index.unique]
    others.sort(key=lambda key: [position[c] for c in key])
    keys = [tuple(c.name for c in table.primary_key.columns), *others]
    return tuple(dict.fromkeys(key for key in keys if key))


def references_from(schema: Schema, name: TableName) -> tuple[Reference, ...]:
    """The table's references in the order of their columns (reflection gives them as a set)."""
    position = {column: index for index, column in enumerate(schema.tables[name].columns.keys())}
    found = [ref for ref in schema.references if ref.table == name]
    return tuple(sorted(found, key=lambda ref: ([position[c] for c in ref.columns], str(ref.parent))))


def plan_generation(
    config: WorkflowConfig,
    schema: Schema,
    plans: dict[TableName, TablePlan],
    transforms_by_column: dict[tuple[TableName, str], ColumnTransform],
    seed: int,
) -> list[str]:
    """Attach a ``GenerationSpec`` to every generated table; wire references to generated rows."""
    problems = _foreign_key_generators(schema, plans)
    configured = {schema.resolve(entry.table_name_with_schema): entry for entry in config.tables}
    default = config.default_config
    for name, plan in plans.items():
        if plan.mode is not Mode.GENERATION:
            continue
        entry = configured.get(name)
        ratio, rows = default.target_ratio, default.target_row_number
        if entry is not None and (entry.target_ratio, entry.target_row_number) != (None, None):
            ratio, rows = entry.target_ratio or default.target_ratio, entry.target_row_number  # the table's own target
        heuristics = next(
            choice
            for choice in (
                entry.use_text_column_heuristics if entry is not None else None,
                default.use_text_column_heuristics,
                config.use_text_column_heuristics,
            )
            if choice is not None
        )
        plan.generation = GenerationSpec(
            target_ratio=ratio,
            target_row_number=rows,
            use_text_column_heuristics=heuristics,
            references=references_from(schema, name),
            unique_keys=unique_keys(schema, name),
        )
        problems += _shared_columns(plan.name, plan.generation)
    problems += _recounted_keys(schema, plans)
    if not problems:
        problems += _repoint_loaded_children(schema, plans, transforms_by_column, seed)
    return problems


def _foreign_key_generators(schema: Schema, plans: dict[TableName, TablePlan]) -> list[str]:
    """Each configured ``foreign_key_generator`` is a reference too (unless the schema declares it)."""
    problems = []
    for name, plan in plans.items():
        for transform in plan.transforms:
            if not isinstance(transform.transformer, ForeignKeyGenerator):
                continue
            params = transform.transformer.params
            parent = schema.resolve(params.referred_name())
            if parent is None:
                problems.append(
                    f"{transform.origin}.params.referred_table: {schema.unknown_table(params.referred_name())}"
                )
                continue
            missing = [f for f in params.referred_fields if f not in schema.tables[parent].columns]
            if missing:
                problems.append(f"{transform.origin}.params.referred_fields: no column {missing[0]!r} in {parent}")
                continue
            reference = Reference(name, transform.columns, parent, tuple(params.referred_fields), virtual=True)
            if not any(
                (r.table, r.columns, r.parent, r.parent_columns)
                == (name, reference.columns, parent, reference.parent_columns)
                for r in schema.references
            ):
                schema.references.append(reference)
    return problems


def _recounted_keys(schema: Schema, plans: dict[TableName, TablePlan]) -> list[str]:
    """Sequences on keys that generated rows reference (or that generated tables have), refused.

    Generated children get their parents' keys by computing those rows again (generated parents)
    or by transforming the parent's rows again (loaded ones); a sequence counts on from the rows it
    has already numbered, so the second pass hands out other numbers and every reference breaks.
    """
    problems = []
    for ref in schema.references:
        if Mode.GENERATION not in (plans[ref.table].mode, plans[ref.parent].mode):
            continue
        for transform in plans[ref.parent].transforms:
            if isinstance(transform.transformer, RowCounter) and set(ref.parent_columns) & set(transform.columns):
                problems.append(
                    f"{transform.origin}: {transform.type} numbers {ref.parent}({', '.join(transform.columns)}), "
                    f"which generated rows reference through {ref}; use unique_hashing, or leave a generated key "
                    f"unconfigured (it is numbered)"
                )
    return list(dict.fromkeys(problems))


def _shared_columns(name: TableName, spec: GenerationSpec) -> list[str]:
    """A generated row links each of its columns to one parent: two references sharing one cannot both hold."""
    return [
        f"{name}: generating it would break one of {first} and {second}, which share columns; generate it in "
        f"another mode, or leave one of the two references out"
        for first, second in combinations(spec.references, 2)
        if set(first.columns) & set(second.columns)
    ]


def _repoint_loaded_children(
    schema: Schema,
    plans: dict[TableName, TablePlan],
    transforms_by_column: dict[tuple[TableName, str], ColumnTransform],
    seed: int,
) -> list[str]:
    """A copied or masked table referencing a generated one picks generated keys instead of its own."""
    problems = []
    for ref in schema.references:
        child, parent = plans[ref.table], plans[ref.parent]
        if parent.mode is not Mode.GENERATION or child.mode is Mode.GENERATION:
            continue
        configured = {
            transforms_by_column[(ref.table, c)] for c in ref.columns if (ref.table, c) in transforms_by_column
        }
        if any(not isinstance(t.transformer, ForeignKeyGenerator) for t in configured):
            origin = next(iter(configured)).origin
            problems.append(
                f"{origin}: {ref.table}({', '.join(ref.columns)}) references the generated table {ref.parent}; "
                f"its values are picked from the generated rows (foreign_key_generator), not transformed"
            )
            continue
        if configured:
            continue
        params = TransformerParams(
            type=ForeignKeyGenerator.name,
            referred_table=ref.parent.name,
            referred_schema=ref.parent.schema,
            referred_fields=list(ref.parent_columns),
        )
        contexts = tuple(
            ColumnContext(
                name=c,
                type=child.arrow_schema.field(c).type,
                nullable=bool(child.table.columns[c].nullable),
            )
            for c in ref.columns
        )
        transformer = build(
            params, TransformContext(derive_seed(seed, f"{ref.table}.{'.'.join(ref.columns)}"), contexts)
        )
        transform = ColumnTransform(ref.columns, transformer, f"picks generated rows of {ref.parent}")
        child.transforms.append(transform)
        for column in ref.columns:
            transforms_by_column[(ref.table, column)] = transform
        if child.mode is Mode.KEEP:
            child.mode = Mode.MASKING
    return problems
