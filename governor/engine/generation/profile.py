"""Learning a source table in one streaming pass: what its generated rows should look like.

Per column: the NULL rate; the exact frequencies of its values while it has few distinct ones
(categories); its range and a uniform sample of its values (quantiles of numbers and dates, shapes
and lengths of text); per reference, how many children each parent row has (the fan-out).
Memory stays bounded: a sample of fixed size per column, at most a few hundred categories, and
one count per referenced parent key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from governor.engine.generation.values import as_numbers, is_numeric_kind
from governor.engine.hashing import derive, hash_columns, stream_key
from governor.engine.schema import Reference
from governor.engine.transformers.arrays import is_text

CATEGORY_LIMIT = 256  # distinct values counted exactly; beyond, a column is not categorical
FEW_CATEGORIES = 20  # this many distinct values always make a category column...
CATEGORY_SHARE = 0.1  # ...more only when they are at most this share of the values
SAMPLE_SIZE = 4096


@dataclass
class ColumnProfile:
    kind: pa.DataType
    count_categories: bool
    rows: int = 0
    nulls: int = 0
    counts: dict[Any, int] | None = field(default_factory=dict)  # None once too many distinct values
    sample: pa.Array | None = None
    sample_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    low: float | None = None
    high: float | None = None
    longest: int = 0

    def add(self, column: pa.Array, hashes: np.ndarray) -> None:
        self.rows += len(column)
        self.nulls += column.null_count
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        values = column.filter(pa.array(valid)) if column.null_count else column
        if not len(values):
            return
        self._count(values)
        if is_numeric_kind(self.kind):
            numbers = as_numbers(values)
            low, high = float(numbers.min()), float(numbers.max())
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)
        elif is_text(self.kind):
            self.longest = max(self.longest, int(pc.max(pc.utf8_length(values)).as_py()))
        self._sample(values, hashes[valid])

    def _count(self, values: pa.Array) -> None:
        if self.counts is None or not self.count_categories:
            return
        frequencies = pc.value_counts(values)
        if len(frequencies) > CATEGORY_LIMIT:
            self.counts = None
            return
        for value, count in zip(
            frequencies.field("values").to_pylist(), frequencies.field("counts").to_pylist(), strict=True
        ):
            self.counts[value] = self.counts.get(value, 0) + count
        if len(self.counts) > CATEGORY_LIMIT:
            self.counts = None

    def _sample(self, values: pa.Array, hashes: np.ndarray) -> None:
        """Keep the values of the rows with the smallest hashes: a uniform sample without replacement."""
        if self.sample is not None:
            values = pa.concat_arrays([self.sample, values])
            hashes = np.concatenate([self.sample_hashes, hashes])
        if len(hashes) > SAMPLE_SIZE:
            keep = np.argpartition(hashes, SAMPLE_SIZE)[:SAMPLE_SIZE]
            values, hashes = values.take(pa.array(keep)), hashes[keep]
        self.sample, self.sample_hashes = values, hashes

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def empty(self) -> bool:
        return self.sample is None

    @property
    def categorical(self) -> bool:
        if self.counts is None or not self.count_categories or not self.counts:
            return False
        distinct = len(self.counts)
        return distinct <= FEW_CATEGORIES or distinct <= CATEGORY_SHARE * (self.rows - self.nulls)

    def categories(self) -> tuple[pa.Array, np.ndarray]:
        """Values and their counts: exact for category columns, else as often as in the sample."""
        if self.counts:
            return pa.array(list(self.counts), self.kind), np.array(list(self.counts.values()), dtype=np.float64)
        if self.sample is None:
            return pa.nulls(0, self.kind), np.zeros(0)
        frequencies = pc.value_counts(self.sample)
        return frequencies.field("values"), frequencies.field("counts").to_numpy().astype(np.float64)


@dataclass
class FanOut:
    """How many child rows reference each parent row in the source."""

    parent_rows: int
    parts: list[pa.StructArray] = field(default_factory=list)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(0))  # parents having k children, k = index
    children_per_referenced_parent: float = 1.0

    def add(self, columns: list[pa.Array]) -> None:
        valid = np.ones(len(columns[0]), dtype=bool)
        for column in columns:
            valid &= column.is_valid().to_numpy(zero_copy_only=False)
        if valid.any():
            keys = hash_columns([column.filter(pa.array(valid)) for column in columns], 0)
            self.parts.append(pc.value_counts(pa.array(keys)))

    def finish(self) -> None:
        if not self.parts:
            return
        counts_by_key = pa.Table.from_arrays(
            [
                pa.concat_arrays([part.field("values") for part in self.parts]),
                pa.concat_arrays([part.field("counts") for part in self.parts]),
            ],
            names=["key", "children"],
        )
        counts = counts_by_key.group_by("key").aggregate([("children", "sum")]).column("children_sum").to_numpy()
        self.parts = []
        self.histogram = np.bincount(counts).astype(np.float64)
        self.histogram[0] = max(self.parent_rows - len(counts), 0)
        self.children_per_referenced_parent = float(counts.sum()) / len(counts)


@dataclass
class TableProfile:
    rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    fan_outs: dict[Reference, FanOut] = field(default_factory=dict)


def profile_table(
    batches: Iterable[pa.RecordBatch],
    columns: dict[str, ColumnProfile],
    fan_outs: dict[Reference, FanOut],
    seed: int,
) -> TableProfile:
    """Stream the source batches once through the column profiles and fan-outs given."""
    key = stream_key(seed, "profile sample")
    profile = TableProfile(columns=columns, fan_outs=fan_outs)
    for batch in batches:
        positions = np.arange(profile.rows, profile.rows + batch.num_rows, dtype=np.uint64)
        hashes = derive(positions, key)
        profile.rows += batch.num_rows
        for name, column_profile in columns.items():
            column_profile.add(batch.column(name), hashes)
        for reference, fan_out in fan_outs.items():
            fan_out.add([batch.column(name) for name in reference.columns])
    for fan_out in fan_outs.values():
        fan_out.finish()
    return profile
