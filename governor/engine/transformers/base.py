"""What every transformer is: a named, typed-params object that maps whole Arrow column batches.

Transformers never see one value at a time: the engine's budget (masking at most twice the cost
of a plain COPY) leaves no room for per-value Python work in the hot path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ColumnContext:
    """What a transformer knows about one column it works on."""

    name: str
    type: pa.DataType
    unique: bool = False
    nullable: bool = True
    default: str | None = None  # the SQL text of the column's database default, if it has one
    sql_type: sa.types.TypeEngine | None = None  # the reflected type, where the Arrow type alone misleads

    @property
    def decimal_text(self) -> bool:
        """A SQL numeric read as text: numeric without a precision (or one past decimal128's) is read
        as its exact decimal text, which numeric transformers parse and write back as numbers."""
        return pa.types.is_string(self.type) and isinstance(self.sql_type, sa.Numeric)


@dataclass(frozen=True)
class TransformContext:
    """Where a transformer instance works.

    ``seed`` is derived from the config's ``global_seed`` and the column the transformation was
    configured on, so that a key masked in a parent table and propagated to its referencing
    columns maps every value the same way in each of them.
    """

    seed: int
    columns: tuple[ColumnContext, ...]
    table: tuple[ColumnContext, ...] = ()  # every column of the table, for transformers that read others


class Transformer(ABC):
    """Base of every transformer.

    ``row_coherent`` transformers take all their configured columns together and produce
    values that belong to one another (first name, last name and email of one fake person);
    the others are applied to each configured column on its own, one instance per column.

    ``maps_values`` says that the output for a value depends only on that value and the seed: only
    such transformers can mask a key, since every column referencing it must map the same way.
    ``reads`` names other columns of the table whose source values ``apply`` receives after its
    own columns (a condition's columns, say); they are read, never written.

    ``collides`` says that distinct values can map to one (short codes hashed character by
    character, values drawn from a pattern): such a transformer would break a unique column.
    ``free_text`` says that it writes text of its own shape into text columns, which a database
    storing a uuid or JSON in them (as text, in Arrow) refuses.
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    row_coherent: ClassVar[bool] = False
    maps_values: ClassVar[bool] = True
    collides: ClassVar[bool] = False
    free_text: ClassVar[bool] = False
    reads: tuple[str, ...] = ()

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        self.params = params
        self.context = context

    @classmethod
    def check_columns(cls, params: BaseModel, column_count: int) -> str | None:
        """A problem with how many columns the transformation names, or None."""
        return None

    @abstractmethod
    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        """Map one batch of each column to a batch of the same length and of the column's type."""
