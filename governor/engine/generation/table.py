"""One generated table: every column of any row computed from its row number.

Foreign key columns come from links to parent rows; configured transformers get the row numbers
as their input values; the other columns are drawn from the learned profile (names and addresses
by column-name heuristics when asked). Then the table's unique keys are made to hold: a column of
each key that nothing else keeps unique becomes a sequence (numbers, dates) or gets the row number
as a suffix (text). Since a row is a pure function of its number, children recompute the keys of
the parent rows they reference instead of keeping them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from governor.engine.config import TransformerParams
from governor.engine.errors import SchemaError
from governor.engine.generation import heuristics
from governor.engine.generation.links import (
    Grouped,
    Link,
    NoParents,
    OneToOne,
    ParentKeys,
    RowBatch,
    Spread,
    Tree,
    Weighted,
    fan_out_weights,
)
from governor.engine.generation.planning import GenerationSpec
from governor.engine.generation.profile import ColumnProfile, TableProfile
from governor.engine.generation.values import (
    Categories,
    Quantiles,
    RandomBytes,
    SampledValues,
    ScrambledText,
    Uuids,
    Values,
    as_numbers,
    from_numbers,
    is_numeric_kind,
    row_values,
    type_bounds,
)
from governor.engine.hashing import derive, stream_key, uniform
from governor.engine.plan import TablePlan, derive_seed
from governor.engine.schema import Reference
from governor.engine.transformers import ColumnContext, TransformContext, Transformer, build
from governor.engine.transformers.arrays import as_column_type, is_text, join
from governor.engine.transformers.foreign_keys import ForeignKeyGenerator
from governor.engine.transformers.generators import CategoricalGenerator

# Configured transformers whose outputs are distinct for distinct row numbers.
UNIQUE_TRANSFORMERS = frozenset(
    {"unique_hashing", "uuid_generator", "int_sequence_generator", "string_sequence_generator"}
)


def with_nulls(array: pa.Array, null: np.ndarray) -> pa.Array:
    if not null.any():
        return array
    return pc.if_else(pa.array(~null), array, pa.scalar(None, array.type))


class Producer(ABC):
    """Computes some columns of a batch of rows."""

    columns: tuple[str, ...]

    @abstractmethod
    def produce(self, batch: RowBatch) -> list[pa.Array]: ...


class Nulls:
    """NULLs at a column's learned rate (never in NOT NULL columns)."""

    def __init__(self, rate: float, key: int) -> None:
        self.rate, self.key = rate, key

    def mask(self, hashes: np.ndarray) -> np.ndarray:
        if self.rate <= 0:
            return np.zeros(len(hashes), dtype=bool)
        return uniform(derive(hashes, self.key)) < self.rate


class LinkProducer(Producer):
    def __init__(
        self, reference: Reference, link: Link, keys: ParentKeys, kinds: list[pa.DataType], nullable: bool, nulls: Nulls
    ) -> None:
        self.columns = reference.columns
        self.link, self.keys, self.kinds, self.nullable, self.nulls = link, keys, kinds, nullable, nulls

    def produce(self, batch: RowBatch) -> list[pa.Array]:
        parents = self.link.parents(batch)
        if not self.nullable:  # a NOT NULL self-reference: the root references itself
            parents = np.where(parents < 0, batch.rows, parents)
        if self.keys.rows == 0:
            return [pa.nulls(len(parents), kind) for kind in self.kinds]
        missing = (parents < 0) | self.nulls.mask(batch.hashes)
        keys = self.keys.values(np.where(missing, 0, parents))
        return [with_nulls(key.cast(kind), missing) for key, kind in zip(keys, self.kinds, strict=True)]


class TransformProducer(Producer):
    """A transformer keyed by row number: its input values are the row numbers in each column's type."""

    def __init__(self, columns: tuple[str, ...], transformer: Transformer, nulls: list[Nulls]) -> None:
        self.columns, self.transformer, self.nulls = columns, transformer, nulls

    def produce(self, batch: RowBatch) -> list[pa.Array]:
        inputs = [row_values(spec.type, batch.rows) for spec in self.transformer.context.columns]
        outputs = self.transformer.apply(inputs)
        return [with_nulls(output, nulls.mask(batch.hashes)) for output, nulls in zip(outputs, self.nulls, strict=True)]


class LearnedProducer(Producer):
    def __init__(self, column: str, kind: pa.DataType, values: Values, key: int, nulls: Nulls) -> None:
        self.columns = (column,)
        self.kind, self.values, self.key, self.nulls = kind, values, key, nulls

    def produce(self, batch: RowBatch) -> list[pa.Array]:
        drawn = self.values.draw(derive(batch.hashes, self.key))
        drawn = as_column_type(drawn, self.kind) if is_text(self.kind) else drawn.cast(self.kind)
        return [with_nulls(drawn, self.nulls.mask(batch.hashes))]


class Fallback(Values):
    """Values for a column the source never filled: the row's hash in the column's type."""

    def __init__(self, kind: pa.DataType) -> None:
        self.kind = kind

    def draw(self, hashes: np.ndarray) -> pa.Array:
        return row_values(self.kind, (hashes >> np.uint64(2)).astype(np.int64))


class TableGenerator:
    def __init__(
        self,
        plan: TablePlan,
        spec: GenerationSpec,
        profile: TableProfile,
        rows: int,
        parents: Mapping[Reference, ParentKeys],
        seed: int,
    ) -> None:
        self.plan, self.rows, self.seed = plan, rows, seed
        self.kinds = {field.name: field.type for field in plan.arrow_schema}
        self.profile = profile
        self.key = stream_key(seed, f"generate {plan.name}")
        self.lengths = {
            c.name: c.type.length
            for c in plan.table.columns
            if is_text(self.kinds[c.name]) and isinstance(c.type, sa.String) and c.type.length
        }
        self.producers: list[Producer] = []
        self.unique: set[str] = set()  # columns whose values are distinct by construction
        self.configured: set[str] = set()
        self.grouped: Grouped | None = None
        self.grouped_columns: set[str] = set()
        self.pair_columns: set[str] | None = None  # a grouped and a spread reference sharing a unique key
        self._link(spec, parents)
        self._configure()
        self._learn(spec.use_text_column_heuristics)
        self.sequences: dict[str, bool] = {}  # column -> numbered within its group (else by row)
        self._keep_unique(spec)
        self.producer_of = {column: producer for producer in self.producers for column in producer.columns}

    # Deciding how each column is made

    def _nulls(self, column: str, origin: str) -> Nulls:
        nullable = bool(self.plan.table.columns[column].nullable)
        rate = self.profile.columns[column].null_rate if nullable else 0.0
        return Nulls(rate, stream_key(self.seed, f"{self.plan.name}.{column} nulls {origin}"))

    def _link(self, spec: GenerationSpec, parents: Mapping[Reference, ParentKeys]) -> None:
        references, taken = [], set()
        for ref in spec.references:
            if not taken & set(ref.columns):
                references.append(ref)
                taken |= set(ref.columns)
        one_to_one = {r for r in references if any(set(key) <= set(r.columns) for key in spec.unique_keys)}
        others = [r for r in references if not r.self_reference and r not in one_to_one]
        pair = next(
            (
                covered
                for key in spec.unique_keys
                if len(covered := [r for r in others if set(r.columns) <= set(key)]) >= 2
            ),
            None,
        )
        grouped = pair[0] if pair else next((r for r in others if self._not_null(r)), others[0] if others else None)
        spread = pair[1] if pair else None
        if pair:
            self.pair_columns = set(pair[0].columns) | set(pair[1].columns)
        ordered = sorted(references, key=lambda r: (r is not grouped, r is not spread))
        for ref in ordered:
            keys = parents[ref] if not ref.self_reference else GeneratedKeys(self, ref.parent_columns)
            key = stream_key(self.seed, f"{self.plan.name} link {ref}")
            weights_key = stream_key(self.seed, f"{self.plan.name} fan-out {ref}")
            fan_out = self.profile.fan_outs.get(ref)
            link: Link
            if keys.rows == 0 and not ref.self_reference:
                if self.rows and self._not_null(ref):
                    raise SchemaError(
                        f"cannot generate rows of {self.plan.name}: {ref.parent} has no rows to reference"
                    )
                link = NoParents()
            elif ref.self_reference:
                link = Tree(fan_out.children_per_referenced_parent if fan_out else 1.0)
            elif ref in one_to_one:
                link = OneToOne(keys.rows, self.rows)
            elif ref is grouped:
                self.grouped = Grouped(fan_out_weights(fan_out, keys.rows, weights_key), self.rows)
                self.grouped_columns = set(ref.columns)
                link = self.grouped
            elif ref is spread and self.grouped is not None:
                link = Spread(fan_out_weights(fan_out, keys.rows, weights_key), key, self.grouped.largest)
            else:
                link = Weighted(fan_out_weights(fan_out, keys.rows, weights_key), key)
            kinds = [self.kinds[c] for c in ref.columns]
            nullable = not self._not_null(ref)
            self.producers.append(LinkProducer(ref, link, keys, kinds, nullable, self._nulls(ref.columns[0], "link")))
            if ref in one_to_one:
                self.unique.update(ref.columns)

    def _not_null(self, ref: Reference) -> bool:
        return all(not self.plan.table.columns[c].nullable for c in ref.columns)

    def _configure(self) -> None:
        """Configured transformers, keyed by row number (foreign key generators are links already)."""
        linked = {c for p in self.producers for c in p.columns}
        for transform in self.plan.transforms:
            if isinstance(transform.transformer, ForeignKeyGenerator) or linked & set(transform.columns):
                continue
            if isinstance(transform.transformer, CategoricalGenerator) and transform.transformer.learned:
                transform.transformer.learn([self.profile.columns[c].categories() for c in transform.columns])
            nulls = [Nulls(0.0, 0) for _ in transform.columns]
            self.producers.append(TransformProducer(transform.columns, transform.transformer, nulls))
            self.configured.update(transform.columns)
            if transform.type in UNIQUE_TRANSFORMERS:
                self.unique.update(transform.columns)

    def _learn(self, use_heuristics: bool) -> None:
        made = {c for p in self.producers for c in p.columns}
        templates: dict[str, list[tuple[str, str]]] = {}
        for column in self.plan.table.columns:
            name, kind, profile = column.name, self.kinds[column.name], self.profile.columns[column.name]
            if name in made:
                continue
            if use_heuristics and is_text(kind) and isinstance(column.type, sa.String):
                found = heuristics.match(name, profile.longest)
                if found is not None:
                    templates.setdefault(found[0], []).append((name, found[1]))
                    continue
            values = self._values(column, kind, profile)
            key = stream_key(self.seed, f"{self.plan.name}.{name} values")
            self.producers.append(LearnedProducer(name, kind, values, key, self._nulls(name, "learned")))
            if isinstance(values, Uuids):
                self.unique.add(name)
        for generator, members in templates.items():
            columns = tuple(name for name, _ in members)
            params = TransformerParams(type=generator, column_templates=[template for _, template in members])
            contexts = tuple(ColumnContext(name=c, type=self.kinds[c]) for c in columns)
            context = TransformContext(derive_seed(self.seed, f"{self.plan.name}.{generator}"), contexts)
            nulls = [self._nulls(c, "heuristic") for c in columns]
            self.producers.append(TransformProducer(columns, build(params, context), nulls))

    @staticmethod
    def _values(column: sa.Column, kind: pa.DataType, profile: ColumnProfile) -> Values:
        if isinstance(column.type, sa.Uuid):
            return Uuids()
        if profile.empty:
            return Fallback(kind)
        assert profile.sample is not None
        if profile.categorical:
            return Categories(*profile.categories())
        if is_numeric_kind(kind):
            assert profile.low is not None and profile.high is not None
            return Quantiles(as_numbers(profile.sample), profile.low, profile.high, kind)
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return RandomBytes(profile.sample)
        if is_text(kind) and isinstance(column.type, sa.String) and not isinstance(column.type, sa.Enum):
            return ScrambledText(profile.sample)
        return SampledValues(profile.sample)

    def _keep_unique(self, spec: GenerationSpec) -> None:
        """Make one column of every unique key that nothing keeps unique yet distinct per row."""
        linked = {c for p in self.producers if isinstance(p, LinkProducer) for c in p.columns}
        for key in spec.unique_keys:
            columns = set(key)
            if columns & self.unique or (self.pair_columns is not None and self.pair_columns <= columns):
                continue
            in_group = bool(self.grouped_columns) and self.grouped_columns <= columns
            candidates = sorted(
                (c for c in key if c not in linked and (is_numeric_kind(self.kinds[c]) or is_text(self.kinds[c]))),
                key=lambda c: c in self.configured,
            )
            if not candidates:
                raise SchemaError(
                    f"cannot generate rows of {self.plan.name} that keep ({', '.join(key)}) unique: "
                    f"no number, date or text column in it to number"
                )
            column = candidates[0]
            self._check_sequence_fits(column, in_group)
            self.sequences[column] = in_group
            self.unique.add(column)

    def _check_sequence_fits(self, column: str, in_group: bool) -> None:
        kind = self.kinds[column]
        if not is_numeric_kind(kind):
            return
        last = self._sequence_start(column) + (self.grouped.largest if in_group and self.grouped else self.rows) - 1
        if last > type_bounds(kind)[1]:
            raise SchemaError(
                f"cannot generate {self.rows} rows of {self.plan.name}: numbering {column!r} would exceed its type"
            )

    def _sequence_start(self, column: str) -> float:
        low = self.profile.columns[column].low
        if low is not None:
            return low
        return 1.0 if pa.types.is_integer(self.kinds[column]) else 0.0

    # Generating

    def batch(self, rows: np.ndarray) -> pa.RecordBatch:
        columns = self.columns(rows, self.plan.arrow_schema.names)
        return pa.RecordBatch.from_arrays(columns, schema=self.plan.arrow_schema)

    def columns(self, rows: np.ndarray, names: list[str] | tuple[str, ...]) -> list[pa.Array]:
        """The given columns of the given rows."""
        batch = RowBatch(rows=rows, hashes=derive(rows.astype(np.uint64), self.key))
        if self.grouped is not None:
            self.grouped.locate(batch)
        computed: dict[str, pa.Array] = {}
        for producer in dict.fromkeys(self.producer_of[name] for name in names):
            computed.update(zip(producer.columns, producer.produce(batch), strict=True))
        return [self._finish(name, computed[name], batch) for name in names]

    def _finish(self, name: str, values: pa.Array, batch: RowBatch) -> pa.Array:
        kind = self.kinds[name]
        length = self.lengths.get(name)
        if name in self.sequences:
            in_group = self.sequences[name]
            index = batch.position if in_group and batch.position is not None else batch.rows
            if is_numeric_kind(kind):
                return from_numbers(self._sequence_start(name) + index.astype(np.float64), kind)
            return as_column_type(self._numbered(values, index, length), kind)
        if length is not None:
            return pc.utf8_slice_codeunits(values, 0, length)
        return values

    def _numbered(self, values: pa.Array, index: np.ndarray, length: int | None) -> pa.Array:
        """Text made distinct by its row number: ``name-12``, or ``local.12@domain`` for an email."""
        parts = pc.extract_regex(pc.fill_null(values.cast(pa.string()), ""), r"(?s)^(?P<head>.*?)(?P<tail>@[^@]*)?$")
        head, tail = parts.field("head"), parts.field("tail")
        separator = pc.if_else(pc.greater(pc.utf8_length(tail), 0), ".", "-")
        if length is not None:
            longest_tail = pc.max(pc.utf8_length(tail)).as_py() or 0
            room = length - 1 - len(str(max(self.rows - 1, 0))) - longest_tail
            if room < 0:
                raise SchemaError(f"cannot generate {self.rows} distinct values in a column of {length} characters")
            head = pc.utf8_slice_codeunits(head, 0, room)
        numbered = join(head, separator, pc.cast(pa.array(index), pa.string()), tail)
        return pc.if_else(pc.is_valid(values), numbered, pa.scalar(None, pa.string()))


class GeneratedKeys(ParentKeys):
    """Keys of a generated parent (or of the table itself), recomputed from the row numbers."""

    def __init__(self, generator: TableGenerator, columns: tuple[str, ...]) -> None:
        self.generator, self.key_columns = generator, columns
        self.rows = generator.rows

    def values(self, parent_rows: np.ndarray) -> list[pa.Array]:
        return self.generator.columns(parent_rows, self.key_columns)
