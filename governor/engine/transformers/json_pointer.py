"""``json_pointer_transformer``: transform the value at a JSON pointer inside a json/jsonb text column.

```yaml
params:
  type: json_pointer_transformer
  pointer: /customer/email                       # RFC 6901
  params: {type: format_preserving_hashing}
# or several values of one document:
  pointers:
    - {pointer: /name, params: {type: person_generator, column_templates: ["${full_name}"]}}
    - {pointer: /tags/0, params: {type: redaction}}
```

The rest of each document is kept: only documents holding a value at the pointer are rewritten
(with the same keys, in the same order, and ``json.dumps``'s spacing, which is PostgreSQL's
``jsonb`` output style); rows without it, non-JSON text and NULLs come out byte for byte.

Arrow has no JSON kernels, so finding and replacing the value is a per-row ``json.loads`` and
``json.dumps`` in Python; a vectorized substring test first skips every row that cannot hold the
pointer's last key. The values found are gathered into one Arrow array per JSON type (string,
integer, number, boolean) and the nested transformer maps each array at once, so masking is as
deterministic and consistent as it is on a column: the same value masks the same way. A nested
transformer that refuses the type of a value found fails the run with its own message.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, model_validator

from governor.engine.config import TransformerParams
from governor.engine.transformers import build, register
from governor.engine.transformers.arrays import as_column_type, is_text, require_columns
from governor.engine.transformers.base import TransformContext, Transformer
from governor.engine.transformers.nested import nested_problems, value_context

_ARROW_TYPES: dict[type, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901: ``/a/b~1c/0`` -> ``["a", "b/c", "0"]``; raises ValueError for a malformed pointer."""
    if pointer == "":
        raise ValueError("the pointer must name a value inside the document, e.g. /email")
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {pointer!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


class PointerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pointer: str
    params: TransformerParams

    @model_validator(mode="after")
    def _pointer(self) -> PointerParams:
        parse_pointer(self.pointer)
        return self


class JsonPointerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pointer: str | None = None
    params: TransformerParams | None = None
    pointers: list[PointerParams] = []

    @model_validator(mode="after")
    def _one_form(self) -> JsonPointerParams:
        single = self.pointer is not None or self.params is not None
        if single and (self.pointer is None or self.params is None):
            raise ValueError("give pointer and params together")
        if single == bool(self.pointers):
            raise ValueError("give either pointer and params, or pointers")
        if self.pointer is not None:
            parse_pointer(self.pointer)
        return self

    def entries(self) -> list[PointerParams]:
        if self.pointer is not None and self.params is not None:
            return [PointerParams(pointer=self.pointer, params=self.params)]
        return list(self.pointers)


def _container(document: Any, tokens: list[str]) -> tuple[Any, Any] | None:
    """The object or array holding the pointed-to value, and its key or index; None if absent."""
    for token in tokens[:-1]:
        found = _step(document, token)
        if found is None:
            return None
        document = document[found]
    last = _step(document, tokens[-1])
    return None if last is None else (document, last)


def _step(document: Any, token: str) -> Any:
    if isinstance(document, dict):
        return token if token in document else None
    if isinstance(document, list) and token.isdigit() and int(token) < len(document):
        return int(token)
    return None


class _Pointer:
    """One pointer of the transformer, with its nested transformers built per JSON value type."""

    def __init__(self, entry: PointerParams, column: str, seed: int) -> None:
        self.tokens = parse_pointer(entry.pointer)
        self.params = entry.params
        self.column = f"{column}{entry.pointer}"
        self.seed = seed
        self.by_type: dict[pa.DataType, Transformer] = {}

    def transformer(self, kind: pa.DataType) -> Transformer:
        if kind not in self.by_type:
            context = value_context(self.column, kind, self.seed, f"json_pointer:{self.column}")
            self.by_type[kind] = build(self.params, context)
        return self.by_type[kind]

    def rewrite(self, documents: list[Any]) -> list[bool]:
        """Transform the value at the pointer in every document in place; which documents changed."""
        places: dict[type, list[tuple[int, Any, Any]]] = {}
        for row, document in enumerate(documents):
            found = _container(document, self.tokens)
            if found is not None and type(found[0][found[1]]) in _ARROW_TYPES:
                places.setdefault(type(found[0][found[1]]), []).append((row, *found))
        changed = [False] * len(documents)
        for python_type, found in places.items():
            kind = _ARROW_TYPES[python_type]
            values = pa.array([container[key] for _, container, key in found], kind)
            (masked,) = self.transformer(kind).apply([values])
            for (row, container, key), value in zip(found, masked.to_pylist(), strict=True):
                container[key] = value
                changed[row] = True
        return changed


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None  # not JSON: kept as it is


@register
class JsonPointerTransformer(Transformer):
    name = "json_pointer_transformer"
    Params = JsonPointerParams

    @classmethod
    def check_columns(cls, params: BaseModel, column_count: int) -> str | None:
        entries = params.entries()  # type: ignore[attr-defined]
        return nested_problems([(f"pointers[{i}].params", entry.params) for i, entry in enumerate(entries)], 1)

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_text, "json or text")
        self.pointers = [
            [_Pointer(entry, column.name, context.seed) for entry in params.entries()]  # type: ignore[attr-defined]
            for column in context.columns
        ]

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [
            self._transform(column, pointers, spec.type)
            for column, pointers, spec in zip(columns, self.pointers, self.context.columns, strict=True)
        ]

    def _transform(self, column: pa.Array, pointers: list[_Pointer], kind: pa.DataType) -> pa.Array:
        text = column.cast(pa.string())
        candidates = np.zeros(len(column), dtype=bool)
        for pointer in pointers:
            last = pointer.tokens[-1]  # an object key is looked for quoted, as documents write it
            quoted = json.dumps(last, ensure_ascii=False)
            found = pc.is_valid(text) if last.isdigit() else pc.match_substring(text, quoted)
            candidates |= pc.fill_null(found, False).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(candidates)
        if not rows.size:
            return column
        documents = [_load(value) for value in text.take(pa.array(rows)).to_pylist()]
        changed = np.zeros(len(rows), dtype=bool)
        for pointer in pointers:
            changed |= pointer.rewrite(documents)
        if not changed.any():
            return column
        rewritten = pa.array(
            [json.dumps(document, ensure_ascii=False) for document, hit in zip(documents, changed, strict=True) if hit]
        )
        mask = np.zeros(len(column), dtype=bool)
        mask[rows[changed]] = True
        return as_column_type(pc.replace_with_mask(text, pa.array(mask), rewritten), kind)
