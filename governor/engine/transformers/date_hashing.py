"""``date_time_unique_hashing``: dates and timestamps mapped one-to-one, so unique stays unique.

Time is cut into 365-day windows from the epoch; every value moves to another instant of its own
window by a keyed permutation without fixed points (``derange_magnitudes``), turned by a keyed
amount per window so that windows do not all move alike. Distinct values stay distinct, no
value keeps itself, and every value stays within a year of where it was, so ages and periods
keep their rough shape. Like ``unique_hashing`` it maps values, so it can mask keys.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from governor.engine.hashing import mix64, mix_scalar, stream_key
from governor.engine.transformers import register
from governor.engine.transformers.arrays import require_columns, validity_buffer
from governor.engine.transformers.base import TransformContext, Transformer
from governor.engine.transformers.hashing_transformers import derange_magnitudes

_WINDOW_DAYS = 365
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _is_temporal(kind: pa.DataType) -> bool:
    return pa.types.is_date32(kind) or pa.types.is_date64(kind) or pa.types.is_timestamp(kind)


def _window(kind: pa.DataType) -> int:
    """The window's length in the type's own unit (days, milliseconds, ...)."""
    if pa.types.is_date32(kind):
        return _WINDOW_DAYS
    unit = "ms" if pa.types.is_date64(kind) else kind.unit
    return _WINDOW_DAYS * _PER_DAY[unit]


@register
class DateTimeUniqueHashing(Transformer):
    name = "date_time_unique_hashing"

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, _is_temporal, "date or timestamp")
        self.turn_key = np.uint64(mix_scalar(stream_key(context.seed, self.name)))

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [self._map(column, spec.type) for column, spec in zip(columns, self.context.columns, strict=True)]

    def _map(self, column: pa.Array, kind: pa.DataType) -> pa.Array:
        storage = pa.int32() if pa.types.is_date32(kind) else pa.int64()
        values = column.view(storage).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        window = _window(kind)
        windows = np.floor_divide(values, window)
        with np.errstate(over="ignore"):
            turn = (mix64(windows.view(np.uint64) ^ self.turn_key) % np.uint64(window)).astype(np.int64)
        turned = (values - windows * window + turn) % window
        moved = derange_magnitudes(turned.view(np.uint64), self.context.seed, [window]).view(np.int64)
        result = windows * window + (moved - turn) % window
        data = result.astype(np.int32) if storage == pa.int32() else result
        return pa.Array.from_buffers(
            kind, len(column), [validity_buffer(column), pa.py_buffer(data)], null_count=column.null_count
        )
