"""Seeded, vectorized 64-bit hashing of whole Arrow arrays: the root of every transformer's randomness.

Masking must map a value the same way in every batch, process and run (so that a masked key still
joins), yet differently under another seed. Python's ``hash()`` is salted per process and works one
value at a time, so instead every value is reduced to 64 bits with numpy over the array's buffers,
and every random choice a transformer makes is a pure function of that hash.

Integers of any width hash alike (an ``int32`` key and the ``int64`` column referencing it mask the
same way), and for integers the hash is a bijection, so distinct keys never share a hash.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection on uint64 whose output bits all depend on all input bits."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def mix_scalar(value: int) -> int:
    return int(mix64(np.array([value & 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64))[0])


def stream_key(seed: int, name: str) -> int:
    """A 64-bit key for one named use of randomness under one seed (computed once, not per value)."""
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def derive(hashes: np.ndarray, key: int) -> np.ndarray:
    """An independent-looking 64-bit stream from the same per-value hashes."""
    with np.errstate(over="ignore"):
        return mix64(hashes ^ np.uint64(mix_scalar(key)))


def combine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One hash for a pair of hashes, order-sensitive (a row hashed from several columns)."""
    with np.errstate(over="ignore"):
        return mix64(first * _GOLDEN + second)


def uniform(hashes: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) from the top 53 bits."""
    return (hashes >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def below(hashes: np.ndarray, bound: int | np.ndarray) -> np.ndarray:
    """Integers in [0, bound) (bound < 2**32) by multiply-shift of the top 32 bits, as int64."""
    high = (hashes >> np.uint64(32)).astype(np.int64)
    return (high * np.asarray(bound, dtype=np.int64)) >> 32


def string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, starting at 0, one more than values) and data bytes of a string/binary array."""
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offset_type = np.int64 if large else np.int32
    n = len(array)
    offsets_buf, data_buf = array.buffers()[1], array.buffers()[2]
    if offsets_buf is None:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(offsets_buf, dtype=offset_type)[array.offset : array.offset + n + 1].astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)[start:end]
        if data_buf is not None and end > start
        else (np.zeros(0, dtype=np.uint8))
    )
    return offsets - start, data


def _byte_table() -> np.ndarray:
    with np.errstate(over="ignore"):
        return mix64(np.arange(256 * 256, dtype=np.uint64) * _GOLDEN + np.uint64(0x5EED))


_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64)


def positions_in_runs(run_lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... within each run of a ragged layout, e.g. [2, 0, 3] -> [0, 1, 0, 1, 2] (int64)."""
    total = int(run_lengths.sum())
    steps = np.ones(total, dtype=np.int64)
    nonempty = run_lengths[run_lengths > 0]
    if total == 0:
        return steps
    starts = np.cumsum(nonempty)[:-1]
    steps[0] = 0
    steps[starts] = 1 - nonempty[:-1]
    return np.cumsum(steps)


def _mixed_word(words: np.ndarray, index: np.ndarray | np.uint64) -> np.ndarray:
    """One 8-byte word of a value, mixed with its position in the value."""
    words = (words ^ (index * _GOLDEN)) * _M1
    return (words ^ (words >> _S31)) * _M2


def _hash_bytes(array: pa.Array, key: np.uint64) -> np.ndarray:
    """Hash each value's bytes eight at a time: unaligned 64-bit reads over the data buffer.

    A value's hash sums its mixed words. When the values have similar lengths (names, emails,
    phones) the k-th words of all values are summed in one pass per k; otherwise every word is laid
    out in one ragged array. Both compute the same function.
    """
    offsets, data = string_buffers(array)
    lengths = np.diff(offsets)
    word_counts = (lengths + 7) >> 3
    padded = np.concatenate((data, np.zeros(8, dtype=np.uint8)))
    windows = np.ndarray(shape=(len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    width = int(word_counts.max()) if len(word_counts) else 0
    with np.errstate(over="ignore"):
        if width * len(word_counts) <= 3 * int(word_counts.sum()):
            per_value = np.zeros(len(lengths), dtype=np.uint64)
            for index in range(width):
                remaining = lengths - 8 * index
                words = windows[np.minimum(offsets[:-1] + 8 * index, len(data))] & _BYTE_MASKS[np.clip(remaining, 0, 8)]
                per_value += _mixed_word(words, np.uint64(index)) * (remaining > 0)
        else:
            word_index = positions_in_runs(word_counts)
            starts = np.repeat(offsets[:-1], word_counts) + (word_index << 3)
            remaining = np.minimum(np.repeat(lengths, word_counts) - (word_index << 3), 8)
            words = _mixed_word(windows[starts] & _BYTE_MASKS[remaining], word_index.astype(np.uint64))
            sums = np.concatenate(([np.uint64(0)], np.cumsum(words, dtype=np.uint64)))
            word_offsets = np.concatenate(([0], np.cumsum(word_counts)))
            per_value = sums[word_offsets[1:]] - sums[word_offsets[:-1]]
        return mix64(mix64(per_value + lengths.astype(np.uint64) * _M1) + key)


def _integer_view(array: pa.Array) -> np.ndarray:
    """The values of a fixed-width array as uint64 words (nulls hold arbitrary values)."""
    kind = array.type
    if pa.types.is_boolean(kind):
        return pc.cast(array, pa.uint8()).fill_null(0).to_numpy().astype(np.uint64)
    if pa.types.is_floating(kind):
        values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        values = np.where(values == 0.0, 0.0, values)  # -0.0 and 0.0 are one value
        return values.view(np.uint64)
    if pa.types.is_temporal(kind):
        width = kind.bit_width
        storage = pa.int32() if width == 32 else pa.int64()
        array = array.view(storage)
    return array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)


def _decimal_words(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    width = array.type.byte_width // 8
    words = np.frombuffer(array.buffers()[1], dtype=np.uint64)
    words = words[array.offset * width : (array.offset + len(array)) * width].reshape(-1, width)
    return words[:, 0], words[:, width - 1]


def hash_array(array: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """A uint64 hash per value, deterministic for (seed, value); the hash of a NULL is meaningless."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    key = np.uint64(mix_scalar(seed))
    kind = array.type
    if pa.types.is_dictionary(kind):
        return hash_array(array.dictionary_decode(), seed)
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or (pa.types.is_large_binary(kind))
    ):
        return _hash_bytes(array, key)
    if pa.types.is_fixed_size_binary(kind):
        return _hash_bytes(array.cast(pa.binary()), key)
    with np.errstate(over="ignore"):
        if pa.types.is_decimal(kind):
            low, high = _decimal_words(array)
            return mix64(mix64(low + key) ^ high)
        if pa.types.is_null(kind):
            return np.zeros(len(array), dtype=np.uint64)
        return mix64(_integer_view(array) + key)


def hash_columns(columns: list[pa.Array], seed: int) -> np.ndarray:
    """One hash per row over several columns, so that a whole row maps to one coherent fake."""
    result = hash_array(columns[0], seed)
    for column in columns[1:]:
        result = combine(result, hash_array(column, seed))
    return result
