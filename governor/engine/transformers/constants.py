"""Transformers that ignore the input values: keep them, blank them, or replace them by one constant.

Following TDK, a constant fills every row, NULL rows included; ``null_generator`` empties a column.
The constant is converted to the column's type once, when the transformer is built, so that a
constant that cannot fit the column fails the run before anything is written.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from governor.engine.errors import SchemaError
from governor.engine.transformers import register
from governor.engine.transformers.arrays import is_numeric, is_text, require_columns
from governor.engine.transformers.base import TransformContext, Transformer


@register
class Passthrough(Transformer):
    """Keeps the values as they are; under STRICT safety it marks a column as deliberately unmasked."""

    name = "passthrough"

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return columns


@register
class NullGenerator(Transformer):
    name = "null_generator"

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        for column in context.columns:
            if not column.nullable:
                raise SchemaError(f"null_generator cannot empty column {column.name!r}: it is NOT NULL")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [pa.nulls(len(column), spec.type) for column, spec in zip(columns, self.context.columns, strict=True)]


class _ConstantTransformer(Transformer):
    """Broadcasts one scalar, converted to each column's type at build time."""

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self._scalars: list[pa.Scalar] = []
        for column in context.columns:
            try:
                self._scalars.append(self.scalar_for(column.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError) as exc:
                value = getattr(params, "value", None)
                raise SchemaError(
                    f"{self.name}: value {value!r} does not fit column {column.name!r} ({column.type}): "
                    + str(exc).splitlines()[0]
                ) from None

    @abstractmethod
    def scalar_for(self, kind: pa.DataType) -> pa.Scalar:
        """The constant as a scalar of the column's type; raises an Arrow error when it cannot be."""

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [pa.repeat(scalar, len(column)) for scalar, column in zip(self._scalars, columns, strict=True)]


class StringValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str


@register
class ConstantString(_ConstantTransformer):
    name = "constant_string"
    Params = StringValue

    def scalar_for(self, kind: pa.DataType) -> pa.Scalar:
        return pa.scalar(self.params.value, pa.string()).cast(kind)


class NumericValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: Decimal


@register
class ConstantNumeric(_ConstantTransformer):
    name = "constant_numeric"
    Params = NumericValue

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        require_columns(self.name, context, is_numeric, "numeric", decimal_text=True)
        super().__init__(params, context)

    def scalar_for(self, kind: pa.DataType) -> pa.Scalar:
        value: Decimal = self.params.value
        if is_text(kind):  # a SQL numeric read as decimal text: plain digits, which every database parses
            return pa.scalar(format(value, "f"), kind)
        if pa.types.is_floating(kind):
            return pa.scalar(float(value), kind)
        if pa.types.is_integer(kind):
            if value != value.to_integral_value():
                raise pa.ArrowInvalid("not a whole number")
            return pa.scalar(int(value), pa.int64()).cast(kind)
        return pa.scalar(value).cast(kind)


class DateValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: date | datetime


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@register
class ConstantDate(_ConstantTransformer):
    name = "constant_date"
    Params = DateValue

    def scalar_for(self, kind: pa.DataType) -> pa.Scalar:
        value: date | datetime = self.params.value
        if is_text(kind):
            return pa.scalar(value.isoformat(), kind)
        if pa.types.is_date32(kind):
            return pa.scalar(value.date() if isinstance(value, datetime) else value, kind)
        if pa.types.is_timestamp(kind):
            moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
            moment = _as_utc(moment)
            return pa.scalar(moment if kind.tz else moment.replace(tzinfo=None), kind)
        raise pa.ArrowTypeError(f"constant_date works on date, timestamp and text columns, not {kind}")


class BooleanValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: bool


@register
class ConstantBoolean(_ConstantTransformer):
    name = "constant_boolean"
    Params = BooleanValue

    def scalar_for(self, kind: pa.DataType) -> pa.Scalar:
        if not (pa.types.is_boolean(kind) or is_text(kind) or pa.types.is_integer(kind)):
            raise pa.ArrowTypeError(f"constant_boolean works on boolean columns, not {kind}")
        return pa.scalar(self.params.value, pa.bool_()).cast(kind)
