"""``conditional_generator``: a different transformer for the rows that meet a condition.

```yaml
params:
  type: conditional_generator
  conditions:
    - condition: "country = 'US' AND vip"
      params: {type: person_generator, column_templates: ["${email}"]}
    - condition: "email LIKE '%@corp.example'"
      params: {type: redaction, keep_right: 13}
  default: {type: format_preserving_hashing}
```

Like SQL's ``CASE WHEN``, a row takes the first condition it meets, and ``default`` when it meets
none (``default`` is required: leaving rows unmasked must be written down as ``passthrough``).
Conditions (see ``conditions``) may name any column of the table; they see the source values.
Rows are split by branch once per batch and each branch's transformer runs on its rows as a
whole; the outputs are put back in row order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from governor.engine.config import TransformerParams
from governor.engine.errors import SchemaError
from governor.engine.transformers import register
from governor.engine.transformers.base import TransformContext, Transformer
from governor.engine.transformers.conditions import compile_condition
from governor.engine.transformers.nested import apply_nested, build_nested, nested_problems


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    condition: str = Field(min_length=1)
    params: TransformerParams

    @field_validator("condition")
    @classmethod
    def _parses(cls, text: str) -> str:
        compile_condition(text)
        return text


class ConditionalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    conditions: list[Case] = Field(min_length=1)
    default: TransformerParams


@register
class ConditionalGenerator(Transformer):
    name = "conditional_generator"
    Params = ConditionalParams
    row_coherent = True

    @classmethod
    def check_columns(cls, params: BaseModel, column_count: int) -> str | None:
        typed: ConditionalParams = params  # type: ignore[assignment]
        entries = [(f"conditions[{i}].params", case.params) for i, case in enumerate(typed.conditions)]
        return nested_problems([*entries, ("default", typed.default)], column_count)

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        typed: ConditionalParams = params  # type: ignore[assignment]
        self.conditions = [compile_condition(case.condition) for case in typed.conditions]
        branch_params = [case.params for case in typed.conditions] + [typed.default]
        self.branches = [build_nested(p, context, f"{self.name}:{i}") for i, p in enumerate(branch_params)]
        own = [column.name for column in context.columns]
        known = {column.name for column in context.table or context.columns}
        needed = set().union(*(condition.columns for condition in self.conditions))
        needed |= {name for branch in self.branches for transformer in branch for name in transformer.reads}
        missing = sorted(needed - known)
        if missing:
            raise SchemaError(f"{self.name}: the conditions name {missing[0]!r}, which is not a column of the table")
        self.reads = tuple(sorted(needed - set(own)))

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        own = columns[: len(self.context.columns)]
        named = dict(zip([c.name for c in self.context.columns], own, strict=True))
        named |= dict(zip(self.reads, columns[len(own) :], strict=True))
        rows = len(own[0])
        choice = np.full(rows, len(self.conditions), dtype=np.int64)
        for index in range(len(self.conditions) - 1, -1, -1):
            choice[self.conditions[index].matches(named, rows)] = index
        counts = np.bincount(choice, minlength=len(self.branches))
        if counts.max(initial=0) == rows:  # one branch takes the whole batch
            return apply_nested(self.branches[int(choice[0])], own, named) if rows else own
        order = np.argsort(choice, kind="stable")
        pieces: list[list[pa.Array]] = [[] for _ in own]
        start = 0
        for index, count in enumerate(counts):
            if count:
                taken = pa.array(order[start : start + count])
                subset = {name: array.take(taken) for name, array in named.items()}
                outputs = apply_nested(self.branches[index], [subset[c.name] for c in self.context.columns], subset)
                for piece, output in zip(pieces, outputs, strict=True):
                    piece.append(output)
            start += count
        inverse = np.empty(rows, dtype=np.int64)
        inverse[order] = np.arange(rows)
        back = pa.array(inverse)
        return [pa.concat_arrays(piece).take(back) for piece in pieces]
