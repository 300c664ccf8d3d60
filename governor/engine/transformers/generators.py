"""Value generators drawn per input value: ``categorical_generator`` and ``uuid_generator``."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from governor.engine.errors import EngineError, SchemaError
from governor.engine.hashing import derive, hash_array, stream_key, uniform
from governor.engine.transformers import register
from governor.engine.transformers.arrays import (
    as_column_type,
    is_text,
    keep_nulls,
    redraw_equal,
    require_columns,
    strings_from_matrix,
)
from governor.engine.transformers.base import TransformContext, Transformer
from governor.engine.transformers.reference_data import take


class Categories(BaseModel):
    """TDK's ``categories``: ``values`` maps each category to its weight, or lists equally likely ones.

    With ``value_source: LEARNED`` the categories and their frequencies are those of the source
    column instead, learned by the engine before the table is loaded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str | None = None
    value_source: Literal["PROVIDED", "LEARNED"] = "PROVIDED"
    values: dict[Any, float] | list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _weights(self) -> Categories:
        if self.value_source == "LEARNED":
            if self.values is not None:
                raise ValueError("learned categories come from the source column; give no values")
            return self
        if self.values is None:
            raise ValueError("values are required unless value_source is LEARNED")
        if isinstance(self.values, dict) and (
            any(weight < 0 for weight in self.values.values()) or sum(self.values.values()) <= 0
        ):
            raise ValueError("weights must be non-negative and not all zero")
        return self


class CategoricalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    categories: Categories
    probabilities: list[float] | None = None

    @model_validator(mode="after")
    def _probabilities(self) -> CategoricalParams:
        if self.probabilities is None:
            return self
        if self.categories.values is None:
            raise ValueError("learned categories take their probabilities from the source column")
        if isinstance(self.categories.values, dict):
            raise ValueError("give weights either in categories.values or in probabilities, not both")
        if len(self.probabilities) != len(self.categories.values):
            raise ValueError(
                f"probabilities has {len(self.probabilities)} entries but there are "
                f"{len(self.categories.values)} categories"
            )
        if any(p < 0 for p in self.probabilities) or sum(self.probabilities) <= 0:
            raise ValueError("probabilities must be non-negative and not all zero")
        return self

    def weighted(self) -> tuple[list[str], np.ndarray]:
        values = self.categories.values or []
        if isinstance(values, dict):
            return [str(v) for v in values], np.array(list(values.values()), dtype=np.float64)
        weights = self.probabilities if self.probabilities is not None else [1.0] * len(values)
        return [str(v) for v in values], np.array(weights, dtype=np.float64)


@register
class CategoricalGenerator(Transformer):
    """Draws a category per input value with the given (or learned) weights.

    Categories are not re-drawn when they happen to equal the original value: that would bend the
    weights the user asked for.
    """

    name = "categorical_generator"
    Params = CategoricalParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self.key = stream_key(context.seed, self.name)
        self.learned = params.categories.value_source == "LEARNED"
        # Per column: the categories in the column's type and their cumulative probabilities.
        self.choices: list[tuple[pa.Array, np.ndarray] | None] = [None] * len(context.columns)
        if self.learned:
            return
        labels, weights = params.weighted()
        for index, column in enumerate(context.columns):
            try:
                values = pa.array(labels, pa.string()).cast(column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"categorical_generator: the categories do not fit column {column.name!r} ({column.type}): "
                    + str(exc).splitlines()[0]
                ) from None
            self.choices[index] = (values, np.cumsum(weights) / weights.sum())

    def learn(self, categories: list[tuple[pa.Array, np.ndarray]]) -> None:
        """Each column's source values and their counts (``value_source: LEARNED``)."""
        for index, (values, counts) in enumerate(categories):
            counts = np.asarray(counts, dtype=np.float64)
            if len(values) and counts.sum() > 0:
                self.choices[index] = (values, np.cumsum(counts) / counts.sum())
            else:  # a source column with no values: nothing to learn, so NULLs
                self.choices[index] = (pa.nulls(1, self.context.columns[index].type), np.ones(1))

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        results = []
        for column, choice, spec in zip(columns, self.choices, self.context.columns, strict=True):
            if choice is None:
                raise EngineError(f"categorical_generator: the categories of {spec.name!r} were not learned")
            values, cumulative = choice
            draws = uniform(derive(hash_array(column, self.context.seed), self.key))
            indices = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(values) - 1)
            results.append(keep_nulls(take(values, indices), column))
        return results


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES = (8, 13, 18, 23)


def uuid_bytes(hashes: np.ndarray, key: int) -> np.ndarray:
    """16 bytes per hash laid out as a version-4, RFC 4122 variant UUID."""
    raw = np.stack([derive(hashes, key), derive(hashes, key + 1)], axis=1).view(np.uint8).reshape(-1, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def uuid_text(raw: np.ndarray) -> np.ndarray:
    """The canonical 36-character form of each 16-byte row, as a uint8 matrix."""
    nibbles = np.empty((len(raw), 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    digits = _HEX[nibbles]
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    columns = [i for i in range(36) if i not in _DASHES]
    text[:, columns] = digits
    return text


@register
class UuidGenerator(Transformer):
    """A random-looking version-4 UUID per input value, as text (uuid columns arrive as text) or 16 bytes."""

    name = "uuid_generator"

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, lambda kind: is_text(kind) or pa.types.is_binary(kind), "text or binary")
        self.key = stream_key(context.seed, self.name)

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [self._generate(column, spec.type) for column, spec in zip(columns, self.context.columns, strict=True)]

    def _generate(self, column: pa.Array, kind: pa.DataType) -> pa.Array:
        def render(hashes: np.ndarray) -> list[pa.Array]:
            raw = uuid_bytes(hashes, self.key)
            if pa.types.is_binary(kind):
                return [strings_from_matrix(raw).view(pa.binary())]
            return [as_column_type(strings_from_matrix(uuid_text(raw)), kind)]

        (result,) = redraw_equal(render, hash_array(column, self.context.seed), [column])
        return keep_nulls(result, column)
