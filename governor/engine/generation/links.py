"""Which parent row each generated child row references, and the parents' keys.

Children reference rows the target really holds: the parent's generated rows (recomputed from
their row numbers, so only counts and weights of parents are kept, never their rows) or the keys
of a parent that was copied or masked (read once and kept: the only arrays held for a run).

A child's first reference is "grouped": every parent row gets a number of children drawn from
the source's fan-out (how many parents had 0, 1, 2... children), and each parent's children are
consecutive rows. A second reference that shares a unique key with the first ("spread") takes
consecutive distinct parents within each group, so the pair stays unique (an order never lists
one product twice). Other references draw parents weighted by the same fan-out, a reference that
is unique on its own gives every child its own parent, and a self-reference builds a tree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from governor.engine.errors import SchemaError
from governor.engine.generation.profile import FanOut
from governor.engine.hashing import below, derive, uniform


class ParentKeys(ABC):
    """The key columns of a parent's rows in the target, by row number."""

    rows: int

    @abstractmethod
    def values(self, parent_rows: np.ndarray) -> list[pa.Array]:
        """The key columns of the given parent rows."""

    def pick(self, hashes: np.ndarray) -> list[pa.Array]:
        """Keys of parent rows chosen by hash (what ``foreign_key_generator`` maps values with)."""
        if self.rows == 0:
            raise SchemaError("foreign_key_generator: the referenced table has no rows to reference")
        return self.values(below(hashes, self.rows))


class LoadedKeys(ParentKeys):
    """Keys of a parent that was copied or masked, as loaded."""

    def __init__(self, columns: list[pa.Array]) -> None:
        self.columns = columns
        self.rows = len(columns[0])

    def values(self, parent_rows: np.ndarray) -> list[pa.Array]:
        indices = pa.array(parent_rows)
        return [column.take(indices) for column in self.columns]


@dataclass
class RowBatch:
    """The generated rows of one batch and what their grouped reference decided for them."""

    rows: np.ndarray  # int64 row numbers
    hashes: np.ndarray  # uint64, one per row
    group: np.ndarray | None = None  # parent row of the grouped reference
    position: np.ndarray | None = None  # 0, 1, ... within the group


def fan_out_weights(fan_out: FanOut | None, parents: int, key: int) -> np.ndarray:
    """A number of children per parent row drawn from the source's fan-out; all ones if none was learned."""
    if fan_out is None or fan_out.histogram.sum() == 0:
        return np.ones(parents)
    cumulative = np.cumsum(fan_out.histogram) / fan_out.histogram.sum()
    draws = uniform(derive(np.arange(parents, dtype=np.uint64), key))
    weights = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(cumulative) - 1).astype(np.float64)
    return weights if weights.sum() > 0 else np.ones(parents)


class Link(ABC):
    """How one reference's parent rows are chosen for a batch of child rows."""

    @abstractmethod
    def parents(self, batch: RowBatch) -> np.ndarray:
        """A parent row number per child row (-1: no parent, NULL)."""


class Grouped(Link):
    def __init__(self, weights: np.ndarray, children: int) -> None:
        total = weights.sum()
        self.ends = np.rint(np.cumsum(weights) * (children / total)).astype(np.int64)
        self.starts = np.concatenate(([0], self.ends[:-1]))
        self.largest = int((self.ends - self.starts).max()) if len(self.ends) else 0

    def locate(self, batch: RowBatch) -> None:
        batch.group = np.minimum(np.searchsorted(self.ends, batch.rows, side="right"), len(self.ends) - 1)
        batch.position = batch.rows - self.starts[batch.group]

    def parents(self, batch: RowBatch) -> np.ndarray:
        assert batch.group is not None
        return batch.group


class Spread(Link):
    """Distinct parents within a group: consecutive ones from a weighted starting parent."""

    def __init__(self, weights: np.ndarray, key: int, largest_group: int) -> None:
        if largest_group > len(weights):
            raise SchemaError(
                f"a group of {largest_group} rows cannot reference {len(weights)} parent rows without repeating one"
            )
        self.cumulative = np.cumsum(weights) / weights.sum()
        self.key = key

    def parents(self, batch: RowBatch) -> np.ndarray:
        assert batch.group is not None and batch.position is not None
        draws = uniform(derive(batch.group.astype(np.uint64), self.key))
        first = np.minimum(np.searchsorted(self.cumulative, draws, side="right"), len(self.cumulative) - 1)
        return (first + batch.position) % len(self.cumulative)


class Weighted(Link):
    def __init__(self, weights: np.ndarray, key: int) -> None:
        self.cumulative = np.cumsum(weights) / weights.sum()
        self.key = key

    def parents(self, batch: RowBatch) -> np.ndarray:
        draws = uniform(derive(batch.hashes, self.key))
        return np.minimum(np.searchsorted(self.cumulative, draws, side="right"), len(self.cumulative) - 1)


class OneToOne(Link):
    """A reference unique on its own: each child row gets a parent row of its own, spread evenly."""

    def __init__(self, parents: int, children: int) -> None:
        if children > parents:
            raise SchemaError(f"{children} rows cannot each reference their own of {parents} parent rows")
        self.count, self.children = parents, max(children, 1)

    def parents(self, batch: RowBatch) -> np.ndarray:
        return batch.rows * self.count // self.children


class Tree(Link):
    """A self-reference: row r reports to an earlier row, ``children`` rows per parent, row 0 is the root."""

    def __init__(self, children_per_parent: float) -> None:
        self.children = max(1, round(children_per_parent))

    def parents(self, batch: RowBatch) -> np.ndarray:
        return np.where(batch.rows > 0, (batch.rows - 1) // self.children, -1)


class NoParents(Link):
    """A parent without rows: children of a nullable reference get NULL."""

    def parents(self, batch: RowBatch) -> np.ndarray:
        return np.full(len(batch.rows), -1, dtype=np.int64)
