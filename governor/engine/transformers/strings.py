"""Text transformers: ``redaction`` and ``formatted_string_generator``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from governor.engine.errors import SchemaError
from governor.engine.hashing import hash_array, stream_key
from governor.engine.transformers import register
from governor.engine.transformers.arrays import (
    as_column_type,
    is_text,
    join,
    keep_nulls,
    redraw_equal,
    require_columns,
)
from governor.engine.transformers.base import TransformContext, Transformer
from governor.engine.transformers.regex_generation import Node, PatternError, compile_pattern


class RedactionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    keep_left: int = Field(default=0, ge=0)
    keep_right: int = Field(default=0, ge=0)
    char: str = Field(default="x", min_length=1, max_length=1)


@register
class Redaction(Transformer):
    """Replaces every character but the first ``keep_left`` and last ``keep_right`` by ``char``.

    Lengths are kept. A value too short to hide anything once those are kept is redacted whole,
    so that no value passes through unmasked.
    """

    name = "redaction"
    collides = True
    free_text = True
    Params = RedactionParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_text, "text")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [
            as_column_type(self._redact(column), spec.type)
            for column, spec in zip(columns, self.context.columns, strict=True)
        ]

    def _redact(self, column: pa.Array) -> pa.Array:
        left, right, char = self.params.keep_left, self.params.keep_right, self.params.char
        text = column.cast(pa.string())
        lengths = pc.utf8_length(text).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        hidden = lengths - left - right
        whole = hidden <= 0
        kept_left = np.where(whole, 0, left)
        kept_right = np.where(whole, 0, right)
        middle = pc.binary_repeat(pa.scalar(char), pa.array(np.where(whole, lengths, hidden)))
        head = pc.utf8_slice_codeunits(text, 0, left) if left else ""
        tail = pc.utf8_slice_codeunits(text, -right) if right else ""
        if left:
            head = pc.if_else(pa.array(kept_left > 0), head, "")
        if right:
            tail = pc.if_else(pa.array(kept_right > 0), tail, "")
        return keep_nulls(join(head, middle, tail), column)


class FormattedStringParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _generable(cls, pattern: str) -> str:
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        return pattern


@register
class FormattedStringGenerator(Transformer):
    """Strings matching the regex ``pattern``, drawn per input value; cast to non-text columns."""

    name = "formatted_string_generator"
    collides = True
    Params = FormattedStringParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self.generator: Node = compile_pattern(params.pattern, stream_key(context.seed, self.name) & 0xFFFF_FFFF)

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [
            self._generate(column, spec.type, spec.name)
            for column, spec in zip(columns, self.context.columns, strict=True)
        ]

    def _generate(self, column: pa.Array, kind: pa.DataType, column_name: str) -> pa.Array:
        def render(hashes: np.ndarray) -> list[pa.Array]:
            strings = self.generator.render(hashes)
            if is_text(kind):
                return [as_column_type(strings, kind)]
            try:
                return [strings.cast(kind)]
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"formatted_string_generator: pattern {self.params.pattern!r} makes values that are not "
                    f"{kind} for column {column_name!r}: {str(exc).splitlines()[0]}"
                ) from None

        (result,) = redraw_equal(render, hash_array(column, self.context.seed), [column])
        return keep_nulls(result, column)
