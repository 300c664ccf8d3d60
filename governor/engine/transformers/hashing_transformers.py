"""Hashing transformers: ``format_preserving_hashing`` and ``unique_hashing``.

Both map each value by a keyed function of the value alone, so a key hashed in a parent table and
in the columns referencing it maps the same way everywhere.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from governor.engine.errors import SchemaError
from governor.engine.hashing import (
    derive,
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
    join,
    require_columns,
    strings_from_buffers,
    strings_from_matrix,
)
from governor.engine.transformers.base import ColumnContext, TransformContext, Transformer

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


def random_units(hashes: np.ndarray, offsets: np.ndarray, unit: type[np.unsignedinteger] = np.uint8) -> np.ndarray:
    """``offsets[i + 1] - offsets[i]`` pseudo-random ``unit`` integers for value i, from its hash.

    Mixing works on 64-bit words, each cut into 8 / size-of-unit units: so 8 bytes, or 2 uint32, per word.
    """
    per_word = 8 // np.dtype(unit).itemsize
    lengths = np.diff(offsets)
    word_counts = (lengths + per_word - 1) // per_word
    word_index = positions_in_runs(word_counts)
    with np.errstate(over="ignore"):
        words = mix64(np.repeat(hashes, word_counts) ^ (word_index.astype(np.uint64) * _GOLDEN))
    word_offsets = np.concatenate(([0], np.cumsum(word_counts)))
    shift = np.repeat(per_word * word_offsets[:-1] - offsets[:-1], lengths)
    return words.view(unit)[np.arange(int(offsets[-1]), dtype=np.int64) + shift]


def random_bytes(hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """One pseudo-random byte per data byte of a string array, from each value's hash."""
    return random_units(hashes, offsets)


# Unicode assigns letters and digits only below plane 4; code points past it are never replaced.
_CODE_POINT_LIMIT = 0x40000

# Blocks whose letters map among themselves. Any other letter stays within its aligned window of
# 128 code points, which is one block or part of one for nearly every script. Neither ever spans
# two UTF-8 lengths: a replacement keeps its character's byte length, so it is written back in place.
_BLOCKS = (
    (0x0080, 0x0180),  # Latin-1 Supplement and Latin Extended-A
    (0x0370, 0x0400),  # Greek and Coptic
    (0x0400, 0x0500),  # Cyrillic
    (0x0590, 0x0600),  # Hebrew
    (0x0600, 0x0700),  # Arabic
    (0x3040, 0x30A0),  # Hiragana
    (0x30A0, 0x3100),  # Katakana
    (0x4E00, 0xA000),  # CJK Unified Ideographs
    (0xAC00, 0xD7A4),  # Hangul Syllables
)

_CODE_POINT_STREAM = stream_key(0, "format_preserving_hashing:code_points")


class _CodePointClasses(NamedTuple):
    """Every code point below the limit in one class, each class laid out twice in a row in ``cycles``.

    Indexed by code point: its ``position`` in the first copy of its class and the class's
    ``size``; the code point k places further on is ``cycles[position + k]`` for any k below
    ``size``, with no wrapping to compute. Code points that are kept are classes of their own.
    """

    cycles: np.ndarray
    position: np.ndarray
    size: np.ndarray


@functools.cache
def _code_point_classes() -> _CodePointClasses:
    """Letters by block (or window) and by upper case, lower case or other letter; digits by their set of ten.

    Built on first use from ``unicodedata`` (about 0.1 s once per process), so that all-ASCII runs
    never pay for it.
    """
    code_points = np.arange(_CODE_POINT_LIMIT)
    categories = np.array(list(map(unicodedata.category, map(chr, code_points.tolist()))))
    blocks = code_points >> 7
    for index, (start, end) in enumerate(_BLOCKS):
        blocks[start:end] = (_CODE_POINT_LIMIT >> 7) + index
    case = np.select([categories == "Lu", categories == "Ll", np.char.startswith(categories, "L")], [0, 1, 2], -1)
    keys = np.where(case >= 0, blocks << 2 | case, -1)
    digits = np.flatnonzero(categories == "Nd")
    keys[digits] = (digits - [unicodedata.decimal(chr(digit)) for digit in digits]) << 2 | 3
    keys[:0x80] = -1  # ASCII goes through the byte table
    keys = np.where(keys >= 0, keys, -1 - code_points)
    order = np.argsort(keys, kind="stable")
    _, starts, sizes = np.unique(keys[order], return_index=True, return_counts=True)
    rank = positions_in_runs(2 * sizes)
    cycles = order[np.repeat(starts, 2 * sizes) + rank % np.repeat(sizes, 2 * sizes)]
    position = np.empty(_CODE_POINT_LIMIT, dtype=np.int32)
    position[order] = 2 * np.repeat(starts, sizes) + positions_in_runs(sizes)
    size = np.empty(_CODE_POINT_LIMIT, dtype=np.int32)
    size[order] = np.repeat(sizes, sizes)
    return _CodePointClasses(cycles.astype(np.uint32), position, size)


def _replace_non_ascii(output: np.ndarray, offsets: np.ndarray, hashes: np.ndarray) -> None:
    """Replace, in place, the non-ASCII letters and digits of UTF-8 ``output`` by others of their class.

    Only the values holding a non-ASCII character are decoded, in one call, into code points; each
    letter or digit moves by 1 + (a random below its class size - 1) within its class, as ASCII
    does in the byte table, so it differs from the original unless its class has a single member.
    """
    strings = strings_from_buffers(offsets, output)
    rows = np.logical_not(pc.string_is_ascii(strings).to_numpy(zero_copy_only=False))
    selected = strings.filter(rows)
    characters = pc.utf8_length(selected).to_numpy(zero_copy_only=False).astype(np.int64)
    text = string_buffers(selected)[1].tobytes().decode("utf-8")
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    character_offsets = np.concatenate(([0], np.cumsum(characters)))
    randoms = random_units(derive(hashes[rows], _CODE_POINT_STREAM), character_offsets, np.uint32)
    classes = _code_point_classes()
    looked_up = np.minimum(code_points, _CODE_POINT_LIMIT - 1)
    steps = 1 + ((randoms.astype(np.int64) * (classes.size[looked_up] - 1)) >> 32)  # multiply-shift, as in below()
    moved = classes.cycles[classes.position[looked_up] + steps]
    replaced = np.where(code_points < _CODE_POINT_LIMIT, moved, code_points)
    output[np.repeat(rows, np.diff(offsets))] = np.frombuffer(
        replaced.tobytes().decode("utf-32-le").encode("utf-8"), dtype=np.uint8
    )


def scramble_text(hashes: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """UTF-8 ``data`` with every letter and digit replaced by another of its class, from each value's hash.

    All-ASCII batches, the common case, cost one table lookup per byte; only the values holding
    other characters take the slower path through code points.
    """
    output = _REPLACEMENT[(data.astype(np.int32) << 8) | random_bytes(hashes, offsets)]
    if not _is_ascii(data):
        _replace_non_ascii(output, offsets, hashes)
    return output


def _is_ascii(data: np.ndarray) -> bool:
    return not data.size or int(data.max()) < 0x80


def _character_positions(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per byte, the index of its character in its value; per value, its length in characters.

    Characters are counted by their UTF-8 lead bytes, so that a filter never splits one; in ASCII
    they are the bytes, and counting is skipped.
    """
    lengths = np.diff(offsets)
    if _is_ascii(data):
        return positions_in_runs(lengths), lengths
    counted = np.cumsum((data & 0xC0) != 0x80)
    before = np.concatenate(([0], counted))[offsets]
    return counted - 1 - np.repeat(before[:-1], lengths), np.diff(before)


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
    """Replaces every digit by a digit and every letter by a letter of the same case and script; keeps the rest.

    Each replaced character differs from the original one, so any value with at least one letter or
    digit (in the filtered part) never maps to itself, and no letter of any script survives in its
    place. ASCII stays ASCII. Other letters stay upper case, lower case or caseless within their
    block (Latin-1 Supplement with Latin Extended-A, Greek, Cyrillic, Hebrew, Arabic, Hiragana,
    Katakana, Hangul syllables, CJK Unified Ideographs) or elsewhere within their aligned window of
    128 code points, so that a masked name still reads as one of its language; digits stay within
    their set of ten (Arabic-Indic, fullwidth, ...). Letters alone in their class, a handful of
    obscure ones such as U+2183, are kept. Combining marks (accents written apart, Indic vowel
    signs), punctuation, spaces, symbols and emoji are kept: they carry little of the value, and
    marks stay attached to a replaced letter. Lengths in characters and in UTF-8 bytes both stay.
    The filter counts characters.
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
        output = scramble_text(hash_array(column, self.context.seed), offsets, data)
        position_filter: PositionFilter | None = self.params.filter
        if position_filter is not None:
            positions, characters = _character_positions(offsets, data)
            if position_filter.type == "first":
                hashed = positions < position_filter.n
            else:
                hashed = positions >= np.repeat(characters, np.diff(offsets)) - position_filter.n
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


# Decimal text without the trailing zeros of its fraction: "1.50" and "1.5" are one number, mapped alike.
_DECIMAL_PARTS = r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*?)0*)?$"
_DECIMAL_DIGITS = 18
# Numbers of k digits not ending in 0, as indices 9 * (u // 10) + u % 10 - 1: [9 * 10**(k - 2), 9 * 10**(k - 1)).
_NOT_ENDING_IN_ZERO = [9 * 10**p for p in range(_DECIMAL_DIGITS)]


def _derange_decimal_text(column: pa.Array, spec: ColumnContext, seed: int) -> pa.Array:
    """Decimal text keeps its sign, digit count and decimals, so it fits the column that held it.

    A fraction's last digit must stay non-zero, or "2.30" would be 2.3, which a value of one decimal
    may map to: fractions are deranged among the numbers of their digit count that do not end in 0.
    """
    parts = pc.extract_regex(column, _DECIMAL_PARTS)
    fraction = pc.struct_field(parts, "fraction")
    try:
        if parts.null_count != column.null_count:
            raise pa.ArrowInvalid("not decimal digits")
        unscaled = pc.cast(join(pc.struct_field(parts, "whole"), fraction), pa.uint64()).fill_null(0)
        unscaled = unscaled.to_numpy(zero_copy_only=False)
        if (unscaled >= np.uint64(10**_DECIMAL_DIGITS)).any():
            raise pa.ArrowInvalid("too many digits")
    except pa.ArrowInvalid:
        raise SchemaError(
            f"unique_hashing maps numbers of up to {_DECIMAL_DIGITS} digits; column {spec.name!r} holds another value"
        ) from None
    scale = pc.utf8_length(fraction).fill_null(0).to_numpy(zero_copy_only=False)
    fractional = scale > 0
    mapped = derange_magnitudes(unscaled, seed, [1, *_BOUNDARIES])
    ending = unscaled[fractional] % np.uint64(10)
    index = unscaled[fractional] // np.uint64(10) * np.uint64(9) + ending - np.uint64(1)
    index = derange_magnitudes(index, seed, _NOT_ENDING_IN_ZERO)
    mapped[fractional] = index // np.uint64(9) * np.uint64(10) + index % np.uint64(9) + np.uint64(1)
    power = np.power(np.uint64(10), scale.astype(np.uint64))
    mask = column.is_null().to_numpy(zero_copy_only=False)
    whole = pc.cast(pa.array(mapped // power, mask=mask), pa.string())
    decimals = pc.utf8_slice_codeunits(pc.cast(pa.array(mapped % power + power), pa.string()), 1)
    text = pc.if_else(pa.array(fractional), join(whole, ".", decimals), whole)
    signs = pc.if_else(pc.equal(pc.struct_field(parts, "sign"), "-"), "-", "")
    return as_column_type(join(signs, text), spec.type)


def _unique_kind(kind: pa.DataType) -> bool:
    return is_integer(kind) or is_text(kind) or pa.types.is_binary(kind) or is_small_decimal(kind)


@register
class UniqueHashing(Transformer):
    """Maps distinct values to distinct values, so unique and key columns stay unique.

    Integers and decimals (up to 18 digits, SQL numerics read as decimal text included) go through a
    keyed bijection that keeps sign and size class and has no fixed points. Text becomes an
    11-character base-62 token of a 64-bit keyed hash, binary the hash's 8 bytes: distinct in
    practice (a collision among a million values has a probability near 3e-8).
    """

    name = "unique_hashing"
    free_text = True

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, _unique_kind, "integer, decimal (up to 18 digits), text or binary")

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        return [self._map(column, spec) for column, spec in zip(columns, self.context.columns, strict=True)]

    def _map(self, column: pa.Array, spec: ColumnContext) -> pa.Array:
        seed, kind = self.context.seed, spec.type
        if spec.decimal_text:
            return _derange_decimal_text(column, spec, seed)
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
