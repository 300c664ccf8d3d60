"""``default_value``: every row gets the column's database default, or a value the config gives.

The default is the SQL text the schema reflects (``'active'::character varying``, ``0``,
``true``). Only constant defaults can be written by the engine; a default that is computed per
row (``now()``, ``nextval(...)``) would need the database to evaluate it, so it fails the run
before anything is written, asking for a ``value`` instead.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from governor.engine.errors import SchemaError
from governor.engine.transformers import register
from governor.engine.transformers.base import ColumnContext, TransformContext, Transformer

_CAST = re.compile(r"^(.*?)(::[\w .\[\]\"()]+)+$", re.DOTALL)
_QUOTED = re.compile(r"^[A-Za-z]?'((?:[^']|'')*)'$", re.DOTALL)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def server_default_sql(column: sa.Column) -> str | None:
    """The SQL text of a reflected column's server default, or None."""
    default = column.server_default
    if not isinstance(default, sa.DefaultClause):
        return None
    argument = default.arg
    return argument if isinstance(argument, str) else str(getattr(argument, "text", argument))


def default_literal(sql: str) -> Any:
    """The Python value of a constant SQL default; raises ValueError for anything computed.

    Parentheses around the whole default (SQLite, MariaDB) and PostgreSQL's ``::type`` casts are
    peeled off; what remains must be a quoted string, a number, a boolean or NULL.
    """
    text = sql.strip()
    while True:
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
            continue
        cast = _CAST.match(text)
        if cast and not _QUOTED.match(text):
            text = cast.group(1).strip()
            continue
        break
    quoted = _QUOTED.match(text)
    if quoted:
        return quoted.group(1).replace("''", "'")
    if _NUMBER.match(text):
        return float(text) if any(mark in text for mark in ".eE") else int(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    raise ValueError(f"{sql!r} is computed by the database, not a constant")


class DefaultValueParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str | int | float | bool | None = None


def _scalar(value: Any, column: ColumnContext) -> pa.Scalar:
    """``value`` as a scalar of the column's type; text such as ``'2020-01-01'`` is parsed for its type."""
    if value is None:
        if not column.nullable:
            raise ValueError("the default is NULL but the column is NOT NULL")
        return pa.scalar(None, column.type)
    return pa.scalar(value).cast(column.type)


@register
class DefaultValue(Transformer):
    """Fills every row, NULL rows included, with the column's database default or ``value``."""

    name = "default_value"
    Params = DefaultValueParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        given = "value" in params.model_fields_set
        self.scalars: list[pa.Scalar] = []
        for column in context.columns:
            try:
                if not given and column.default is None:
                    raise ValueError("the column has no database default; give a value")
                value = params.value if given else default_literal(column.default)  # type: ignore[attr-defined, arg-type]
                self.scalars.append(_scalar(value, column))
            except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                reason = str(exc).splitlines()[0]
                raise SchemaError(f"default_value on column {column.name!r} ({column.type}): {reason}") from None

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [pa.repeat(scalar, len(column)) for scalar, column in zip(self.scalars, columns, strict=True)]
