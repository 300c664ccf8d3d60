"""``foreign_key_generator``: values that reference rows of another table, as loaded in the target.

The transformer cannot know the referenced keys when it is built: they exist only once the parent
table has been generated or loaded. The engine binds the parent's keys (``bind``) before the
child's rows flow; each row then picks a parent row by the hash of its input, so the same input
always references the same parent under one seed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from governor.engine.errors import EngineError
from governor.engine.hashing import derive, hash_columns, stream_key
from governor.engine.transformers import register
from governor.engine.transformers.arrays import keep_nulls
from governor.engine.transformers.base import TransformContext, Transformer


class ParentKeys(Protocol):
    """The key columns of the rows a parent table holds in the target."""

    def pick(self, hashes: np.ndarray) -> list[pa.Array]:
        """One parent row per hash (following the parent's learned fan-out): its key values."""
        ...


class ForeignKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    referred_table: str = Field(min_length=1)
    referred_schema: str | None = None
    referred_fields: list[str] = Field(min_length=1)

    def referred_name(self) -> str:
        return f"{self.referred_schema}.{self.referred_table}" if self.referred_schema else self.referred_table


@register
class ForeignKeyGenerator(Transformer):
    """Each row references an existing row of ``referred_table``: composite keys are taken together."""

    name = "foreign_key_generator"
    Params = ForeignKeyParams
    row_coherent = True

    @classmethod
    def check_columns(cls, params: BaseModel, column_count: int) -> str | None:
        fields = len(params.referred_fields)  # type: ignore[attr-defined]
        if fields != column_count:
            return f"referred_fields has {fields} entries but {column_count} columns are listed"
        return None

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self.key = stream_key(context.seed, self.name)
        self.parent: ParentKeys | None = None

    def bind(self, parent: ParentKeys) -> None:
        self.parent = parent

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        if self.parent is None:
            raise EngineError(f"foreign_key_generator: the keys of {self.params.referred_name()} are not loaded yet")
        keys = self.parent.pick(derive(hash_columns(columns, self.context.seed), self.key))
        return [
            keep_nulls(key.cast(spec.type), column)
            for key, column, spec in zip(keys, columns, self.context.columns, strict=True)
        ]
