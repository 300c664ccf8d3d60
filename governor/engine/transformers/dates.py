"""``date_generator``: a date or timestamp drawn uniformly in [min, max] per input value."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, model_validator

from governor.engine.hashing import derive, hash_array, stream_key, uniform
from governor.engine.transformers import register
from governor.engine.transformers.arrays import (
    as_column_type,
    is_date_like,
    is_text,
    keep_nulls,
    redraw_equal,
    require_columns,
)
from governor.engine.transformers.base import TransformContext, Transformer

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000


def epoch_microseconds(moment: date | datetime) -> int:
    """Microseconds since 1970-01-01 UTC; naive datetimes and dates count as UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class DateRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: date | datetime = date(1950, 1, 1)
    max: date | datetime = date(2025, 12, 31)

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if epoch_microseconds(self.min) >= epoch_microseconds(self.max):
            raise ValueError("min must be before max")
        return self


@register
class DateGenerator(Transformer):
    """Dates for date and text columns (``YYYY-MM-DD``), microsecond timestamps for timestamp columns."""

    name = "date_generator"
    Params = DateRange

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_date_like, "date, timestamp or text")
        self.key = stream_key(context.seed, self.name)
        self.low_us = epoch_microseconds(params.min)
        self.high_us = epoch_microseconds(params.max)

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [self._generate(column, spec.type) for column, spec in zip(columns, self.context.columns, strict=True)]

    def _generate(self, column: pa.Array, kind: pa.DataType) -> pa.Array:
        def render(hashes: np.ndarray) -> list[pa.Array]:
            draws = uniform(derive(hashes, self.key))
            if pa.types.is_timestamp(kind):
                span = self.high_us - self.low_us + 1
                return [pa.array(self.low_us + (draws * span).astype(np.int64), kind)]
            low_day, high_day = self.low_us // _DAY_US, self.high_us // _DAY_US
            days = pa.array(
                (low_day + (draws * (high_day - low_day + 1)).astype(np.int64)).astype(np.int32), pa.date32()
            )
            return [as_column_type(pc.cast(days, pa.string()), kind) if is_text(kind) else days]

        (result,) = redraw_equal(render, hash_array(column, self.context.seed), [column])
        return keep_nulls(result, column)
