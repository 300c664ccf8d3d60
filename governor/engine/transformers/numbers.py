"""``noising``: numbers moved by a random relative or absolute amount, dates and timestamps shifted.

The noise is drawn per input value (same value, same noise under one seed). A value never comes
out unchanged: whole numbers and decimals that round back to the original move one unit away, and
dates and timestamps always shift by at least one day or one microsecond. The one exception is
zero under RELATIVE noise: a relative change of zero is zero.

A SQL numeric read as decimal text (``ColumnContext.decimal_text``) is noised as a float64, since
noise makes exactness moot, then rounded to as many decimals as the value had and written back as
decimal text; NaN and infinities stay as they are.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from governor.engine.errors import SchemaError
from governor.engine.hashing import derive, hash_array, stream_key, uniform
from governor.engine.transformers import register
from governor.engine.transformers.arrays import (
    as_column_type,
    decimal_from_unscaled,
    decimal_unscaled,
    is_small_decimal,
    require_columns,
)
from governor.engine.transformers.base import ColumnContext, TransformContext, Transformer

_DAY_US = 86_400_000_000
_MAX_DECIMALS = 15  # past this many decimals a float64 no longer tells them apart


def _parse_decimal_text(name: str, column: pa.Array, spec: ColumnContext) -> pa.Array:
    """Decimal text as float64; SQLite lets any text into a NUMERIC column, which fails here, named."""
    try:
        return pc.cast(column, pa.float64())
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{name}: column {spec.name!r} holds a value that is not a number: {exc}") from None


def _decimals(values: np.ndarray) -> np.ndarray:
    """The fewest decimals that give each value back, or -1 where even ``_MAX_DECIMALS`` do not."""
    decimals = np.full(len(values), -1, dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        for count in range(_MAX_DECIMALS, -1, -1):
            decimals[np.rint(values * 10.0**count) / 10.0**count == values] = count
    return decimals


class NoisingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    noise_type: Literal["RELATIVE", "ABSOLUTE"] = "RELATIVE"
    scale: float = Field(default=0.1, gt=0)
    max_shift_days: float = Field(default=30, gt=0)


def _noisable(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or is_small_decimal(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_timestamp(kind)
    )


def _away_from(
    original: np.ndarray, moved: np.ndarray, step: np.ndarray, movable: np.ndarray, low: int, high: int
) -> np.ndarray:
    """``moved`` kept in [low, high], and one step away from ``original`` where it landed back on it."""
    moved = np.clip(moved, low, high)
    stuck = movable & (moved == original)
    moved = np.where(stuck, original + step, moved)
    return np.where(stuck & ((moved < low) | (moved > high)), original - step, moved)


@register
class Noising(Transformer):
    """Numbers: ``x * (1 + scale * u)`` (RELATIVE) or ``x + scale * u`` (ABSOLUTE), u in [-1, 1).
    Dates and timestamps: shifted by up to ``max_shift_days`` either way."""

    name = "noising"
    Params = NoisingParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        what = "integer, float, decimal (up to 18 digits), date or timestamp"
        require_columns(self.name, context, _noisable, what, decimal_text=True)
        self.key = stream_key(context.seed, self.name)

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [self._noise(column, spec) for column, spec in zip(columns, self.context.columns, strict=True)]

    def _noise(self, column: pa.Array, spec: ColumnContext) -> pa.Array:
        kind = spec.type
        draws = 2.0 * uniform(derive(hash_array(column, self.context.seed), self.key)) - 1.0
        step = np.where(draws >= 0, 1, -1).astype(np.int64)
        mask = column.is_null().to_numpy(zero_copy_only=False)
        if spec.decimal_text:
            return self._noise_text(column, spec, draws, step, mask)
        if pa.types.is_date32(kind) or pa.types.is_timestamp(kind):
            unit = 1 if pa.types.is_date32(kind) else _DAY_US
            values = column.view(pa.int32() if pa.types.is_date32(kind) else pa.int64())
            values = values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            shift = np.rint(draws * self.params.max_shift_days * unit).astype(np.int64)
            shift = np.where(shift == 0, step, shift)
            shifted = values + shift
            storage = pa.array(shifted.astype(np.int32) if unit == 1 else shifted, mask=mask)
            return storage.view(kind)
        if pa.types.is_floating(kind):
            values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
            return pa.array(self._moved(values, draws), type=kind, mask=mask)
        if pa.types.is_decimal(kind):
            values = decimal_unscaled(column)
            unit = 10**kind.scale
            limit = 10**kind.precision - 1
            moved = np.rint(self._moved(values.astype(np.float64), draws, unit)).astype(np.int64)
            return decimal_from_unscaled(
                _away_from(values, moved, step, self._movable(values), -limit, limit), kind, column
            )
        info = np.iinfo(kind.to_pandas_dtype())
        values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        # The largest float64 not above the type's maximum (int64's maximum is not a float64).
        upper = float(np.nextafter(np.float64(info.max), 0.0)) if info.bits == 64 else float(info.max)
        moved = np.rint(np.clip(self._moved(values.astype(np.float64), draws), float(info.min), upper))
        moved = moved.astype(np.int64)
        result = _away_from(values, moved, step, self._movable(values), int(info.min), int(info.max))
        return pa.array(result, type=kind, mask=mask)

    def _noise_text(
        self, column: pa.Array, spec: ColumnContext, draws: np.ndarray, step: np.ndarray, mask: np.ndarray
    ) -> pa.Array:
        values = _parse_decimal_text(self.name, column, spec).fill_null(0).to_numpy(zero_copy_only=False)
        decimals = _decimals(values)
        rounded = decimals >= 0
        scale = 10.0 ** np.where(rounded, decimals, 0)  # exact, so dividing by it rounds right
        with np.errstate(invalid="ignore", over="ignore"):
            moved = self._moved(values, draws)
            moved = np.where(rounded, np.rint(moved * scale) / scale, moved)
            stuck = rounded & self._movable(values) & (moved == values)
            moved = np.where(stuck, (np.rint(values * scale) + step) / scale, moved)
        text = pc.cast(pa.array(moved, mask=mask), pa.string())
        return as_column_type(pc.if_else(pa.array(np.isfinite(values)), text, column), spec.type)

    def _moved(self, values: np.ndarray, draws: np.ndarray, unit: float = 1.0) -> np.ndarray:
        if self.params.noise_type == "RELATIVE":
            return values * (1.0 + self.params.scale * draws)
        return values + self.params.scale * unit * draws

    def _movable(self, values: np.ndarray) -> np.ndarray:
        if self.params.noise_type == "RELATIVE":
            return values != 0
        return np.ones(len(values), dtype=bool)
