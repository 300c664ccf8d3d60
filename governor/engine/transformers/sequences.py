"""``int_sequence_generator`` and ``string_sequence_generator``: number the rows of a table.

A sequence is not a function of the value but of the row's place: the transformer counts the
non-NULL rows it has seen, batch after batch, in the order the table is read, so a run numbers
the rows ``start_from, start_from + step, ...`` in load order (NULL stays NULL and takes no
number). The values are unique within a run. Because a number says nothing about the value it
replaces, a sequence cannot mask a key that other columns reference (``maps_values`` is False).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from governor.engine.errors import SchemaError
from governor.engine.transformers import register
from governor.engine.transformers.arrays import as_column_type, is_numeric, is_text, join, require_columns
from governor.engine.transformers.base import TransformContext, Transformer


class RowCounter(Transformer):
    """Hands out ``start_from + k * step`` to the k-th non-NULL row it sees."""

    maps_values = False

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self.next = params.start_from  # type: ignore[attr-defined]

    def numbers(self, column: pa.Array) -> np.ndarray:
        """The numbers of the column's rows (arbitrary where the row is NULL), advancing the count."""
        valid = np.ones(len(column), dtype=bool) if column.null_count == 0 else column.is_valid().to_numpy(False)
        ordinals = np.cumsum(valid, dtype=np.int64) - 1
        step: int = self.params.step  # type: ignore[attr-defined]
        numbers = self.next + step * ordinals
        self.next += step * int(valid.sum())
        return numbers

    def fit(self, values: pa.Array, kind: pa.DataType, name: str) -> pa.Array:
        try:
            return values.cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(
                f"{self.name}: the sequence does not fit column {name!r} ({kind}): {str(exc).splitlines()[0]}"
            ) from None


class IntSequenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start_from: int = 1
    step: int = 1

    @field_validator("step")
    @classmethod
    def _moves(cls, step: int) -> int:
        if step == 0:
            raise ValueError("step must not be 0")
        return step


@register
class IntSequenceGenerator(RowCounter):
    """1, 2, 3, ... (or ``start_from`` by ``step``) in numeric or text columns."""

    name = "int_sequence_generator"
    Params = IntSequenceParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, lambda kind: is_numeric(kind) or is_text(kind), "numeric or text")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [
            self.fit(pa.array(self.numbers(column), mask=column.is_null().to_numpy(False)), spec.type, spec.name)
            for column, spec in zip(columns, self.context.columns, strict=True)
        ]


class StringSequenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prefix: str = ""
    suffix: str = ""
    start_from: int = Field(default=1, ge=0)
    step: int = Field(default=1, ge=1)
    digits: int = Field(default=0, ge=0, le=30)  # zero-pad the number to at least this many digits


@register
class StringSequenceGenerator(RowCounter):
    """``prefix`` + the row's number, zero-padded to ``digits`` + ``suffix``: ``INV-000001``, ..."""

    name = "string_sequence_generator"
    Params = StringSequenceParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_text, "text")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        params: StringSequenceParams = self.params  # type: ignore[assignment]
        results = []
        for column, spec in zip(columns, self.context.columns, strict=True):
            digits = pc.cast(pa.array(self.numbers(column), mask=column.is_null().to_numpy(False)), pa.string())
            if params.digits:
                digits = pc.utf8_lpad(digits, params.digits, "0")
            results.append(as_column_type(join(params.prefix, digits, params.suffix), spec.type))
        return results
