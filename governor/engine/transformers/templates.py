"""Row-coherent generators driven by TDK's ``column_templates``: one fake entity per row, many columns.

Each configured column gets a template such as ``${first_name}`` or ``${first_name}.${last_name}@corp``;
every template of a row is filled from the same fake, chosen by a hash of the whole input row, so a
row always maps to the same fake under one seed. Subclasses only say how to build the variables.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from governor.engine.hashing import derive, hash_columns, stream_key
from governor.engine.transformers.arrays import (
    as_column_type,
    is_text,
    join,
    keep_nulls,
    redraw_equal,
    require_columns,
)
from governor.engine.transformers.base import TransformContext, Transformer

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")

Part = tuple[bool, str]  # (is_placeholder, text or variable name)


def parse_template(template: str) -> list[Part]:
    parts: list[Part] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > cursor:
            parts.append((False, template[cursor : match.start()]))
        parts.append((True, match.group(1)))
        cursor = match.end()
    if cursor < len(template):
        parts.append((False, template[cursor:]))
    return parts


def template_checker(known: tuple[str, ...]) -> Callable[[str], str]:
    """A pydantic validator refusing placeholders outside ``known``."""

    def check(template: str) -> str:
        unknown = [name for is_variable, name in parse_template(template) if is_variable and name not in known]
        if unknown:
            raise ValueError(f"unknown placeholder ${{{unknown[0]}}}; known: {', '.join(known)}")
        return template

    return check


class TemplateGenerator(Transformer):
    """Fills each column's template from one fake per row; subclasses build the variables.

    ``depends`` lists, per variable, the variables it is built from, so that ``needed`` holds
    everything a subclass has to build and nothing more.
    """

    row_coherent = True
    salt: ClassVar[str]
    depends: ClassVar[dict[str, set[str]]] = {}

    @classmethod
    def check_columns(cls, params: BaseModel, column_count: int) -> str | None:
        templates = params.column_templates  # type: ignore[attr-defined]
        if len(templates) != column_count:
            return f"column_templates has {len(templates)} entries but {column_count} columns are listed"
        return None

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_text, "text")
        self.templates = [parse_template(template) for template in params.column_templates]  # type: ignore[attr-defined]
        needed = {name for parts in self.templates for is_variable, name in parts if is_variable}
        pending = list(needed)
        while pending:
            for dependency in self.depends.get(pending.pop(), set()) - needed:
                needed.add(dependency)
                pending.append(dependency)
        self.needed = needed
        self.key = stream_key(context.seed, self.salt)

    def uses_in_unique_column(self, variables: set[str]) -> bool:
        """Whether a column declared unique has a template with one of ``variables``."""
        return any(
            spec.unique and any(is_variable and name in variables for is_variable, name in parts)
            for spec, parts in zip(self.context.columns, self.templates, strict=True)
        )

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        hashes = derive(hash_columns(columns, self.context.seed), self.key)
        outputs = redraw_equal(self._render, hashes, columns)
        return [
            as_column_type(keep_nulls(output, column), spec.type)
            for output, column, spec in zip(outputs, columns, self.context.columns, strict=True)
        ]

    def _render(self, hashes: np.ndarray) -> list[pa.Array]:
        variables = self.variables(hashes)
        return [
            join(*[variables[text] if is_variable else text for is_variable, text in parts])
            if any(is_variable for is_variable, _ in parts)
            else pa.repeat(pa.scalar("".join(text for _, text in parts), pa.string()), len(hashes))
            for parts in self.templates
        ]

    @abstractmethod
    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        """The arrays of at least the variables in ``self.needed``, one value per hash."""
