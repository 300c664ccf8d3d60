"""Transformers inside transformers (``conditional_generator``, ``json_pointer_transformer``).

A nested ``params`` block has the shape of a transformation's ``params``; it is validated with the
parent's config (so a bad nested type fails the config, naming where it is) and built with a seed
of its own, derived from the parent's.
"""

from __future__ import annotations

import pyarrow as pa

from governor.engine.config import TransformerParams
from governor.engine.hashing import stream_key
from governor.engine.transformers import REGISTRY, build, validate_params
from governor.engine.transformers.base import ColumnContext, TransformContext, Transformer


def nested_problems(entries: list[tuple[str, TransformerParams]], column_count: int) -> str | None:
    """The problems of nested params, each prefixed with its path inside the parent's params."""
    problems = [problem for path, params in entries for problem in validate_params(params, column_count, path)]
    return "; ".join(problems) or None


def build_nested(params: TransformerParams, parent: TransformContext, salt: str) -> list[Transformer]:
    """The nested transformer for the parent's columns: one for all of them when it is row-coherent,
    else one per column (outputs then come column by column, in order)."""
    context = TransformContext(seed=stream_key(parent.seed, salt), columns=parent.columns, table=parent.table)
    if REGISTRY[params.type].row_coherent:
        return [build(params, context)]
    return [
        build(params, TransformContext(seed=context.seed, columns=(column,), table=parent.table))
        for column in parent.columns
    ]


def apply_nested(
    transformers: list[Transformer], columns: list[pa.Array], reads: dict[str, pa.Array]
) -> list[pa.Array]:
    """Apply what ``build_nested`` built to the parent's columns, handing each the columns it reads."""
    if transformers[0].row_coherent:
        (transformer,) = transformers
        return transformer.apply(columns + [reads[name] for name in transformer.reads])
    return [
        transformer.apply([column] + [reads[name] for name in transformer.reads])[0]
        for transformer, column in zip(transformers, columns, strict=True)
    ]


def value_context(name: str, kind: pa.DataType, seed: int, salt: str) -> TransformContext:
    """The context of a nested transformer working on values that are not a table column."""
    return TransformContext(seed=stream_key(seed, salt), columns=(ColumnContext(name, kind),))
