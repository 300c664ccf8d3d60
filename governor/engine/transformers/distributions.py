"""``continuous_generator``: numbers drawn from a normal or a uniform distribution, per input value.

TDK's parameters: ``mean`` and ``std`` give a normal distribution, kept within ``min``/``max`` when
those are given too (values outside are drawn again, so the shape inside the bounds stays
normal); ``min`` and ``max`` alone give a uniform one. ``round`` keeps that many decimal digits
(integer columns get whole numbers, decimal columns at most their scale). Learning the
parameters from the source data is left to the learned generators; here they are given.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from governor.engine.errors import SchemaError
from governor.engine.hashing import derive, hash_array, stream_key, uniform
from governor.engine.transformers import register
from governor.engine.transformers.arrays import is_numeric, keep_nulls, require_columns
from governor.engine.transformers.base import TransformContext, Transformer

_REDRAWS = 16  # a normal draw lands outside [min, max] at most this many times before it is clipped


class ContinuousParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: float | None = None
    std: float | None = Field(default=None, gt=0)
    min: float | None = None
    max: float | None = None
    round: int | None = Field(default=None, ge=0, le=15)

    @model_validator(mode="after")
    def _distribution(self) -> ContinuousParams:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together (a normal distribution)")
        if self.mean is None and (self.min is None or self.max is None):
            raise ValueError("give mean and std (normal), or min and max (uniform)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


def _normal(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Standard normal draws from two uniform streams (Box-Muller)."""
    return np.sqrt(-2.0 * np.log1p(-first)) * np.cos(2.0 * np.pi * second)


@register
class ContinuousGenerator(Transformer):
    """A number per input value (same value, same number under one seed), in the column's type."""

    name = "continuous_generator"
    Params = ContinuousParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_numeric, "numeric")
        self.key = stream_key(context.seed, self.name)

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [
            self._generate(column, spec.type, spec.name)
            for column, spec in zip(columns, self.context.columns, strict=True)
        ]

    def draw(self, hashes: np.ndarray) -> np.ndarray:
        params: ContinuousParams = self.params  # type: ignore[assignment]
        low = -np.inf if params.min is None else params.min
        high = np.inf if params.max is None else params.max
        if params.mean is None or params.std is None:
            return low + uniform(derive(hashes, self.key)) * (high - low)
        values = np.empty(len(hashes))
        pending = np.arange(len(hashes))
        for attempt in range(_REDRAWS):
            first, second = (derive(hashes[pending], self.key + 2 * attempt + k) for k in (0, 1))
            values[pending] = params.mean + params.std * _normal(uniform(first), uniform(second))
            pending = pending[(values[pending] < low) | (values[pending] > high)]
            if not pending.size:
                break
        return np.clip(values, low, high)

    def _generate(self, column: pa.Array, kind: pa.DataType, name: str) -> pa.Array:
        values = self.draw(hash_array(column, self.context.seed))
        digits: int | None = 0 if pa.types.is_integer(kind) else self.params.round  # type: ignore[attr-defined]
        if pa.types.is_decimal(kind):
            digits = kind.scale if digits is None else min(digits, kind.scale)
        if digits is not None:
            values = np.round(values, digits)
        try:
            result = pa.array(values.astype(np.int64) if pa.types.is_integer(kind) else values).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(
                f"continuous_generator: values do not fit column {name!r} ({kind}): {str(exc).splitlines()[0]}"
            ) from None
        return keep_nulls(result, column)
