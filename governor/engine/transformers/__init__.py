"""The registry of named transformers (``params.type`` in a config) and how to build them."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from governor.engine.config import TransformerParams, error_message, format_path
from governor.engine.transformers.base import ColumnContext, TransformContext, Transformer

REGISTRY: dict[str, type[Transformer]] = {}

T = TypeVar("T", bound=type[Transformer])


def register(cls: T) -> T:
    REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    # Importing the modules registers their transformers.
    from governor.engine.transformers import (  # noqa: F401
        conditional,
        constants,
        date_hashing,
        dates,
        defaults,
        distributions,
        finance,
        foreign_keys,
        generators,
        hashing_transformers,
        json_pointer,
        numbers,
        people,
        sequences,
        strings,
    )


def validate_params(params: TransformerParams, column_count: int, path: str) -> list[str]:
    """Problems with one transformation's params, each prefixed with its config path."""
    _load_all()
    cls = REGISTRY.get(params.type)
    if cls is None:
        known = ", ".join(sorted(REGISTRY))
        return [f"{path}.type: unknown transformer {params.type!r}; known: {known}"]
    try:
        typed = cls.Params.model_validate(params.options())
    except ValidationError as exc:
        return [
            (f"{path}.{format_path(tuple(item['loc']))}: " if item["loc"] else f"{path}: ")
            + error_message(item, unknown="unknown parameter")
            for item in exc.errors()
        ]
    problem = cls.check_columns(typed, column_count)
    return [f"{path}: {problem}"] if problem else []


def build(params: TransformerParams, context: TransformContext) -> Transformer:
    """A transformer instance for validated params."""
    _load_all()
    cls = REGISTRY[params.type]
    return cls(cls.Params.model_validate(params.options()), context)


__all__ = ["REGISTRY", "ColumnContext", "TransformContext", "Transformer", "build", "register", "validate_params"]
