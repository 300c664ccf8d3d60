"""Shared numpy/Arrow plumbing of the transformers: column kinds, building string arrays, NULLs.

Transformers build their output strings straight from numpy byte buffers or with Arrow kernels;
nothing here touches one value at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from governor.engine.errors import SchemaError
from governor.engine.hashing import derive
from governor.engine.transformers.base import TransformContext


def is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def is_integer(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind)


def is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def is_date_like(kind: pa.DataType) -> bool:
    return pa.types.is_date32(kind) or pa.types.is_timestamp(kind) or is_text(kind)


def require_columns(
    name: str,
    context: TransformContext,
    accepted: Callable[[pa.DataType], bool],
    what: str,
    decimal_text: bool = False,
) -> None:
    """Refuse, before any row is read, columns whose type the transformer cannot produce.

    ``decimal_text``: the transformer also takes SQL numerics read as their decimal text
    (``ColumnContext.decimal_text``), which the Arrow type alone shows as strings.
    """
    for column in context.columns:
        if not accepted(column.type) and not (decimal_text and column.decimal_text):
            raise SchemaError(f"{name} works on {what} columns; column {column.name!r} is {column.type}")


def validity_buffer(source: pa.Array) -> pa.Buffer | None:
    """The validity bitmap of ``source`` re-based to offset 0, or None when it has no NULLs."""
    if source.null_count == 0:
        return None
    if source.offset == 0 and source.buffers()[0] is not None:
        return source.buffers()[0]
    return pc.is_valid(source).buffers()[1]


def strings_from_buffers(offsets: np.ndarray, data: np.ndarray, like: pa.Array | None = None) -> pa.Array:
    """A string array from int64 offsets and bytes; NULL wherever ``like`` is NULL."""
    n = len(offsets) - 1
    validity = validity_buffer(like) if like is not None else None
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data))],
        null_count=like.null_count if validity is not None and like is not None else 0,
    )


def strings_from_matrix(matrix: np.ndarray, like: pa.Array | None = None) -> pa.Array:
    """A string array whose i-th value is the i-th row of a (rows, width) uint8 matrix."""
    rows, width = matrix.shape
    offsets = np.arange(rows + 1, dtype=np.int64) * width
    return strings_from_buffers(offsets, matrix.reshape(-1), like)


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays (and literal strings) element-wise."""
    arrays = [part for part in parts if not (isinstance(part, str) and part == "")]
    if len(arrays) == 1 and not isinstance(arrays[0], str):
        return arrays[0]
    return pc.binary_join_element_wise(*arrays, "")


def keep_nulls(result: pa.Array, source: pa.Array) -> pa.Array:
    """``result`` with NULL wherever ``source`` is NULL: masking never invents a value for a NULL."""
    if source.null_count == 0:
        return result
    return pc.if_else(pc.is_valid(source), result, pa.scalar(None, result.type))


def as_column_type(strings: pa.Array, kind: pa.DataType) -> pa.Array:
    """Generated text in the column's own string flavour (string or large_string)."""
    return strings if strings.type == kind else strings.cast(kind)


def equal_mask(first: pa.Array, second: pa.Array) -> np.ndarray:
    """Where two arrays hold the same non-NULL value, as a numpy bool array."""
    return pc.fill_null(pc.equal(first, second), False).to_numpy(zero_copy_only=False)


def redraw_equal(
    render: Callable[[np.ndarray], list[pa.Array]],
    hashes: np.ndarray,
    originals: list[pa.Array],
    rounds: int = 8,
) -> list[pa.Array]:
    """Render from the hashes, then re-render, with derived hashes, every row where an output equals
    its original: a masked value never keeps the original by chance. Deterministic, since the
    retries depend only on the hashes and the originals.

    Only the first round compares whole columns; each retry renders and compares just the rows that
    clashed, and the whole outputs are patched once per round that had clashes.
    """
    outputs = render(hashes)
    if rounds <= 1:
        return outputs
    clash = np.zeros(len(hashes), dtype=bool)
    for output, original in zip(outputs, originals, strict=True):
        clash |= equal_mask(output, original)
    if not clash.any():
        return outputs
    rows = np.flatnonzero(clash)
    indices = pa.array(rows)
    retry = redraw_equal(
        render, derive(hashes[rows], rounds), [original.take(indices) for original in originals], rounds - 1
    )
    mask = pa.array(clash)
    return [pc.replace_with_mask(output, mask, new) for output, new in zip(outputs, retry, strict=True)]


def digit_matrix(hashes: np.ndarray, layout: str, key: int) -> np.ndarray:
    """ASCII rows laid out like ``layout``: '#' a digit 0-9, 'N' a digit 2-9, anything else literal.

    The digits are the mixed-radix expansion of one derived 64-bit word per row (a further word
    once too little of a word's range is left), so the k-th digit depends only on (hashes, key)
    and the digit symbols before it: two layouts of one number with the same digit symbols agree.
    """
    matrix = np.empty((len(hashes), len(layout)), dtype=np.uint8)
    words, capacity, chunk = derive(hashes, key), 1 << 64, 0
    for position, symbol in enumerate(layout):
        if symbol not in "#N":
            matrix[:, position] = ord(symbol)
            continue
        low, count = (2, 8) if symbol == "N" else (0, 10)
        if capacity < count << 32:  # keep every digit's bias below 2**-32
            chunk += 1
            words, capacity = derive(hashes, key + chunk), 1 << 64
        matrix[:, position] = (words % np.uint64(count)).astype(np.uint8) + (low + ord("0"))
        words //= np.uint64(count)
        capacity //= count
    return matrix


def digit_strings(hashes: np.ndarray, layout: str, key: int) -> pa.Array:
    """``digit_matrix`` as strings."""
    return strings_from_matrix(digit_matrix(hashes, layout, key))


def strings_from_padded(matrix: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A string array whose i-th value is the first ``lengths[i]`` bytes of the matrix's i-th row."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return strings_from_buffers(offsets, matrix[np.arange(matrix.shape[1]) < lengths[:, None]])


_BASE32 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuv", dtype=np.uint8)
TOKEN_LENGTH = 13  # 13 * 5 bits >= 64


def base32_tokens(hashes: np.ndarray) -> np.ndarray:
    """Every bit of each 64-bit hash as 13 lower-case base-32 characters, a (rows, 13) uint8 matrix.

    Lower case and digits only, so tokens stay distinct where text is compared case-insensitively
    (email addresses).
    """
    shifts = np.arange(5 * (TOKEN_LENGTH - 1), -1, -5, dtype=np.uint64)
    return _BASE32[((hashes[:, None] >> shifts) & np.uint64(31)).astype(np.intp)]


def decimal_unscaled(array: pa.Array) -> np.ndarray:
    """The unscaled integers of a decimal array of precision <= 18, as int64 (NULL slots arbitrary)."""
    width = array.type.byte_width // 8
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)
    return words[array.offset * width : (array.offset + len(array)) * width].reshape(-1, width)[:, 0].copy()


def decimal_from_unscaled(values: np.ndarray, kind: pa.DataType, like: pa.Array) -> pa.Array:
    """A decimal array of ``kind`` from int64 unscaled values, NULL where ``like`` is NULL."""
    width = kind.byte_width // 8
    words = np.empty((len(values), width), dtype=np.int64)
    words[:, 0] = values
    words[:, 1:] = (values >> 63)[:, None]
    return pa.Array.from_buffers(
        kind, len(values), [validity_buffer(like), pa.py_buffer(words)], null_count=like.null_count
    )


def is_small_decimal(kind: pa.DataType) -> bool:
    return pa.types.is_decimal(kind) and kind.precision <= 18
