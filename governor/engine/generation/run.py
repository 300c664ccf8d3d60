"""Generation during a run: learn each generated table from the source, then stream its new rows.

Tables load parents first, so when a table is generated (or a copied table's foreign keys are
re-pointed) the tables it references are already in the target; their keys come from their
generator (generated parents) or are read once (copied and masked parents).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from governor.engine.config import Mode
from governor.engine.connectors.base import Connector
from governor.engine.errors import EngineError
from governor.engine.generation.links import LoadedKeys, ParentKeys
from governor.engine.generation.planning import GenerationSpec
from governor.engine.generation.profile import ColumnProfile, FanOut, profile_table
from governor.engine.generation.table import GeneratedKeys, TableGenerator
from governor.engine.plan import Plan, TablePlan
from governor.engine.schema import TableName
from governor.engine.subset import Selection
from governor.engine.transformers.foreign_keys import ForeignKeyGenerator
from governor.engine.transformers.generators import CategoricalGenerator

BatchTransform = Callable[[TablePlan, pa.RecordBatch], pa.RecordBatch]


class Generation:
    """The generators and parent keys of one run.

    ``transform`` is the runner's batch transformation, applied to a copied or masked parent's
    rows so that children reference its keys as they were loaded.
    """

    def __init__(
        self, plan: Plan, source: Connector, batch_size: int, transform: BatchTransform, selection: Selection
    ) -> None:
        self.tables = {table.name: table for table in plan.tables}
        self.selection = selection  # the subset's rows: children reference only the parent rows kept
        self.seed = plan.seed
        self.source, self.batch_size, self.transform = source, batch_size, transform
        self.generators: dict[TableName, TableGenerator] = {}
        self.loaded: dict[tuple[TableName, tuple[str, ...]], LoadedKeys] = {}
        self.source_rows: dict[TableName, int] = {}

    def rows(self, plan: TablePlan) -> int:
        """How many rows a generated table gets."""
        return self._spec(plan).target_rows(self._count(plan.name))

    def batches(self, plan: TablePlan) -> Iterator[pa.RecordBatch]:
        generator = self._generator(plan)
        for start in range(0, generator.rows, self.batch_size):
            yield generator.batch(np.arange(start, min(start + self.batch_size, generator.rows), dtype=np.int64))

    def bind(self, plan: TablePlan) -> None:
        """Give a copied or masked table's late-bound transformers what they need before its rows flow."""
        if plan.mode is Mode.GENERATION:
            return
        for transform in plan.transforms:
            if isinstance(transform.transformer, ForeignKeyGenerator):
                parent = self._resolve(transform.transformer.params.referred_name())
                transform.transformer.bind(self.keys(parent, tuple(transform.transformer.params.referred_fields)))
        learned = [
            t.transformer
            for t in plan.transforms
            if isinstance(t.transformer, CategoricalGenerator) and t.transformer.learned
        ]
        if learned:
            columns = {c.name: ColumnProfile(c.type, count_categories=True) for c in plan.arrow_schema}
            profile = profile_table(self.source.read(plan.table, self.batch_size), columns, {}, self.seed)
            for transformer in learned:
                transformer.learn([profile.columns[c.name].categories() for c in transformer.context.columns])

    def keys(self, parent: TableName, columns: tuple[str, ...]) -> ParentKeys:
        """The keys children of ``parent`` may reference: its rows as loaded in the target."""
        plan = self.tables[parent]
        if plan.mode is Mode.GENERATION:
            return GeneratedKeys(self._generator(plan), columns)
        if (parent, columns) not in self.loaded:
            parts: list[list[pa.Array]] = [[] for _ in columns]
            rows = self.selection.rows(parent)
            for batch in self.source.read(plan.table, self.batch_size, where=rows.where):
                loaded = self.transform(plan, rows.keep(batch))
                for part, column in zip(parts, columns, strict=True):
                    part.append(loaded.column(column))
            self.loaded[(parent, columns)] = LoadedKeys(
                [
                    pa.concat_arrays(part) if part else pa.nulls(0, plan.arrow_schema.field(column).type)
                    for part, column in zip(parts, columns, strict=True)
                ]
            )
        return self.loaded[(parent, columns)]

    def _generator(self, plan: TablePlan) -> TableGenerator:
        if plan.name not in self.generators:
            spec = self._spec(plan)
            single = {key[0] for key in spec.unique_keys if len(key) == 1}
            columns = {f.name: ColumnProfile(f.type, count_categories=f.name not in single) for f in plan.arrow_schema}
            fan_outs = {ref: FanOut(self._count(ref.parent)) for ref in spec.references}
            profile = profile_table(self.source.read(plan.table, self.batch_size), columns, fan_outs, self.seed)
            parents = {
                ref: self.keys(ref.parent, ref.parent_columns) for ref in spec.references if not ref.self_reference
            }
            self.generators[plan.name] = TableGenerator(plan, spec, profile, self.rows(plan), parents, self.seed)
        return self.generators[plan.name]

    def _count(self, name: TableName) -> int:
        if name not in self.source_rows:
            self.source_rows[name] = self.source.count(self.tables[name].table)
        return self.source_rows[name]

    def _resolve(self, name: str) -> TableName:
        """The planned table a ``foreign_key_generator`` names (planning checked that it exists)."""
        schema, _, table = name.rpartition(".")
        matches = [t for t in self.tables if t.name == table and (not schema or t.schema in (schema, None))]
        return matches[0]

    @staticmethod
    def _spec(plan: TablePlan) -> GenerationSpec:
        if plan.generation is None:
            raise EngineError(f"{plan.name} is not planned for generation")
        return plan.generation
