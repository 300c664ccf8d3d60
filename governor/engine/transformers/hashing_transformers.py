"""Hashing transformers: ``format_preserving_hashing`` and ``unique_hashing``.

Both map each value by a keyed function of the value alone, so a key hashed in a parent table and
in the columns referencing it maps the same way everywhere.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from governor.engine.hashing import (
    hash_array,
    mix64,
    positions_in_runs,
    stream_key,
    string_buffers,
)
from governor.engine.transformers import register
from governor.engine.transformers.arrays import (
    as_column_type,
    decimal_from_unscaled,
    decimal_unscaled,
    is_integer,
    is_small_decimal,
    is_text,
    require_columns,
    strings_from_buffers,
    strings_from_matrix,
)
from governor.engine.transformers.base import TransformContext, Transformer

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _replacement_table() -> np.ndarray:
    """``table[byte << 8 | r]``: the replacement of ``byte`` for the random byte ``r``.

    Digits and ASCII letters move by 1 + (r scaled to class size - 1) within their class, so the
    result always differs from the original; every other byte maps to itself.
    """
    table = np.repeat(np.arange(256, dtype=np.uint8), 256)
    randoms = np.arange(256, dtype=np.int64)
    for start, count in ((ord("0"), 10), (ord("A"), 26), (ord("a"), 26)):
        for byte in range(start, start + count):
            steps = 1 + ((randoms * (count - 1)) >> 8)
            table[byte << 8 : (byte + 1) << 8] = start + (byte - start + steps) % count
    return table


_REPLACEMENT = _replacement_table()


def random_bytes(hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """One pseudo-random byte per data byte of a string array, from each value's hash.

    Mixing works on 64-bit words, eight bytes at a time: ceil(length / 8) words per value.
    """
    lengths = np.diff(offsets)
    word_counts = (lengths + 7) >> 3
    word_index = positions_in_runs(word_counts)
    with np.errstate(over="ignore"):
        words = mix64(np.repeat(hashes, word_counts) ^ (word_index.astype(np.uint64) * _GOLDEN))
    word_offsets = np.concatenate(([0], np.cumsum(word_counts)))
    shift = np.repeat(8 * word_offsets[:-1] - offsets[:-1], lengths)
    return words.view(np.uint8)[np.arange(int(offsets[-1]), dtype=np.int64) + shift]


class PositionFilter(BaseModel):
    """Hash only the first or the last ``n`` characters (TDK's ``filter``), keeping the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["first", "last"]
    n: int = Field(ge=1)


class FormatPreservingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    filter: PositionFilter | None = None


@register
class FormatPreservingHashing(Transformer):
    """Replaces every digit by a digit and every letter by a letter of the same case; keeps the rest.

    Each replaced character differs from the original one, so any value with at least one letter or
    digit (in the filtered part) never maps to itself. Bytes outside ASCII letters and digits,
    including every byte of a multi-byte UTF-8 character, are kept: length and punctuation stay.
    """

    name = "format_preserving_hashing"
    collides = True  # "A1" has only 9 x 25 other values to go to
    free_text = True
    Params = FormatPreservingParams

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_text, "text")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [
            as_column_type(self._hash(column), spec.type)
            for column, spec in zip(columns, self.context.columns, strict=True)
        ]

    def _hash(self, column: pa.Array) -> pa.Array:
        offsets, data = string_buffers(column)
        randoms = random_bytes(hash_array(column, self.context.seed), offsets)
        output = _REPLACEMENT[(data.astype(np.int32) << 8) | randoms]
        position_filter: PositionFilter | None = self.params.filter
        if position_filter is not None:
            lengths = np.diff(offsets)
            positions = positions_in_runs(lengths)
            if position_filter.type == "first":
                hashed = positions < position_filter.n
            else:
                hashed = positions >= np.repeat(lengths, lengths) - position_filter.n
            output = np.where(hashed, output, data)
        return strings_from_buffers(offsets, output, like=column)


class _BitPermutation:
    """A keyed bijection on ``bits``-bit integers: rounds of add, odd multiply and xorshift."""

    def __init__(self, bits: int, seed: int) -> None:
        self.mask = np.uint64((1 << bits) - 1)
        self.shift = np.uint64(max(1, (bits + 1) // 2))
        self.unshift_rounds = bits // max(1, (bits + 1) // 2) + 1
        self.rounds = []
        for index in range(3):
            add = stream_key(seed, f"unique_hashing:{bits}:add:{index}") & ((1 << bits) - 1)
            mul = (stream_key(seed, f"unique_hashing:{bits}:mul:{index}") | 1) & ((1 << bits) - 1)
            inverse = pow(mul, -1, 1 << bits) if bits > 0 else 1
            self.rounds.append((np.uint64(add), np.uint64(mul), np.uint64(inverse)))

    def forward(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            for add, mul, _ in self.rounds:
                x = ((x + add) & self.mask) * mul & self.mask
                x = x ^ (x >> self.shift)
        return x

    def inverse(self, y: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            for add, _, inverse in reversed(self.rounds):
                x = y
                for _ in range(self.unshift_rounds):
                    x = y ^ (x >> self.shift)
                y = ((x * inverse) & self.mask) - add & self.mask
        return y


def _walk(step: _BitPermutation, function: str, values: np.ndarray, low: int, high: int | None) -> np.ndarray:
    """Cycle walking: apply the permutation until the value falls back into [low, high)."""
    apply = getattr(step, function)
    result = apply(values)
    outside = np.flatnonzero((result < np.uint64(low)) | ((result >= np.uint64(high)) if high else False))
    while outside.size:
        result[outside] = apply(result[outside])
        moved = result[outside]
        outside = outside[(moved < np.uint64(low)) | ((moved >= np.uint64(high)) if high else False)]
    return result


# Values never leave their size class: each interval between consecutive boundaries (powers of two
# for the integer types, powers of ten for digit counts) is permuted onto itself, so a value fits
# every column type that held it, and keys of differing integer widths still map alike.
_BOUNDARIES = sorted({1 << bits for bits in (7, 8, 15, 16, 31, 32, 63)} | {10**p for p in range(1, 19)})


def derange_magnitudes(values: np.ndarray, seed: int, boundaries: list[int] = _BOUNDARIES) -> np.ndarray:
    """A bijection on uint64 magnitudes without fixed points that keeps each value's size class.

    Within a class [low, high), with Q the class's cycle-walked permutation, x maps to
    Q⁻¹(Q(x) + 1) (wrapping): a conjugate of a single cycle, so no value maps to itself.
    """
    result = np.empty_like(values)
    classes = np.searchsorted(np.array(boundaries, dtype=np.uint64), values, side="right")
    for index in np.unique(classes):
        members = np.flatnonzero(classes == index)
        low = 0 if index == 0 else boundaries[index - 1]
        high = boundaries[index] if index < len(boundaries) else None
        bits = (high - 1).bit_length() if high else 64
        permutation = _BitPermutation(bits, seed)
        position = _walk(permutation, "forward", values[members], low, high)
        with np.errstate(over="ignore"):
            position = position + np.uint64(1)
        if high:
            position[position == np.uint64(high)] = np.uint64(low)
        elif low:
            position[position == np.uint64(0)] = np.uint64(low)
        result[members] = _walk(permutation, "inverse", position, low, high)
    return result


def _signed_derange(values: np.ndarray, seed: int) -> np.ndarray:
    """Sign-preserving: negatives are deranged through their complement ~v, which is non-negative."""
    negative = values < 0
    magnitudes = np.where(negative, ~values, values).view(np.uint64)
    mapped = derange_magnitudes(magnitudes, seed).view(np.int64)
    return np.where(negative, ~mapped, mapped)


_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_TOKEN_LENGTH = 11  # 62**11 > 2**64


def _base62_tokens(hashes: np.ndarray) -> np.ndarray:
    digits = np.empty((len(hashes), _TOKEN_LENGTH), dtype=np.uint8)
    rest = hashes.copy()
    for index in range(_TOKEN_LENGTH - 1, -1, -1):
        digits[:, index] = _BASE62[(rest % np.uint64(62)).astype(np.int64)]
        rest //= np.uint64(62)
    return digits


def _unique_kind(kind: pa.DataType) -> bool:
    return is_integer(kind) or is_text(kind) or pa.types.is_binary(kind) or is_small_decimal(kind)


@register
class UniqueHashing(Transformer):
    """Maps distinct values to distinct values, so unique and key columns stay unique.

    Integers and decimals (up to 18 digits) go through a keyed bijection that keeps sign and size
    class and has no fixed points. Text becomes an 11-character base-62 token of a 64-bit keyed
    hash, binary the hash's 8 bytes: distinct in practice (a collision among a million values has
    a probability near 3e-8).
    """

    name = "unique_hashing"
    free_text = True

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, _unique_kind, "integer, decimal (up to 18 digits), text or binary")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [self._map(column, spec.type) for column, spec in zip(columns, self.context.columns, strict=True)]

    def _map(self, column: pa.Array, kind: pa.DataType) -> pa.Array:
        seed = self.context.seed
        if is_text(kind):
            tokens = strings_from_matrix(_base62_tokens(hash_array(column, seed)), like=column)
            return as_column_type(tokens, kind)
        if pa.types.is_binary(kind):
            raw = hash_array(column, seed).view(np.uint8).reshape(-1, 8)
            return strings_from_matrix(raw, like=column).view(pa.binary())
        if pa.types.is_decimal(kind):
            return self._map_decimal(column, kind)
        if pa.types.is_unsigned_integer(kind):
            values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.uint64)
            mapped = derange_magnitudes(values, seed)
        else:
            values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            mapped = _signed_derange(values, seed)
        return pa.array(mapped, type=kind, mask=column.is_null().to_numpy(zero_copy_only=False))

    def _map_decimal(self, column: pa.Array, kind: pa.DataType) -> pa.Array:
        # Decimals keep their sign on the magnitude (zero, alone in its class, stays zero): the
        # complement trick of the integers could push a value one past the column's precision.
        unscaled = decimal_unscaled(column)
        magnitudes = np.abs(unscaled).view(np.uint64)
        mapped = derange_magnitudes(magnitudes, self.context.seed, [1, *_BOUNDARIES]).view(np.int64)
        return decimal_from_unscaled(np.where(unscaled < 0, -mapped, mapped), kind, column)
