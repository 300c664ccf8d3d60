"""format_preserving_hashing on non-ASCII text: no letter or digit of any script survives in its place."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pyarrow as pa
import pytest
from faker import Faker

from governor.engine.config import TransformerParams
from governor.engine.transformers import ColumnContext, TransformContext, build

# The blocks whose letters the transformer promises to map among themselves; letters elsewhere stay
# within their aligned window of 128 code points.
BLOCKS = {
    "Latin-1 Supplement and Latin Extended-A": range(0x0080, 0x0180),
    "Greek and Coptic": range(0x0370, 0x0400),
    "Cyrillic": range(0x0400, 0x0500),
    "Hebrew": range(0x0590, 0x0600),
    "Arabic": range(0x0600, 0x0700),
    "Hiragana": range(0x3040, 0x30A0),
    "Katakana": range(0x30A0, 0x3100),
    "CJK Unified Ideographs": range(0x4E00, 0xA000),
    "Hangul Syllables": range(0xAC00, 0xD7A4),
}


def mask(values: list[str | None], seed: int = 7, kind: pa.DataType = pa.string(), **options) -> pa.Array:
    column = pa.array(values, kind)
    context = TransformContext(seed=seed, columns=(ColumnContext("c", kind),))
    (masked,) = build(TransformerParams(type="format_preserving_hashing", **options), context).apply([column])
    masked.validate(full=True)
    return masked


def kind_of(character: str) -> tuple | None:
    """What a character may become: None if it is kept, else the class its replacement must share."""
    category = unicodedata.category(character)
    if category == "Nd":
        return ("digit of the set starting at", ord(character) - unicodedata.decimal(character))
    if category.startswith("L"):
        block = next((name for name, span in BLOCKS.items() if ord(character) in span), ord(character) >> 7)
        return (category if category in ("Lu", "Ll") else "other letter", block)
    return None


def assert_replaced_in_class(before: str, after: str) -> None:
    assert len(after) == len(before) and len(after.encode()) == len(before.encode()), (before, after)
    for a, b in zip(before, after, strict=True):
        if kind_of(a) is None:
            assert b == a, (before, after)  # marks, punctuation, spaces, symbols, emoji
        else:
            assert b != a and kind_of(b) == kind_of(a), (before, after, a, b)


LOCALES = [
    "zh_CN", "ja_JP", "ko_KR", "ru_RU", "el_GR", "he_IL", "ar_AA", "hi_IN", "th_TH",
    "pl_PL", "cs_CZ", "de_DE", "fr_FR", "es_ES", "tr_TR", "vi_VN",
]  # fmt: skip


@pytest.mark.parametrize("locale", LOCALES)
def test_names_and_addresses_lose_every_letter_and_digit(locale: str) -> None:
    fake = Faker(locale)
    fake.seed_instance(20240601)
    pool = [fake.name() for _ in range(300)] + [fake.address() for _ in range(200)]
    values = [None if i % 97 == 0 else pool[(i * 7919) % len(pool)] for i in range(2_000)]
    assert any(not value.isascii() for value in pool)
    masked = mask(values).to_pylist()
    for before, after in zip(values, masked, strict=True):
        if before is None:
            assert after is None
        else:
            assert_replaced_in_class(before, after)
    assert len(set(masked)) == len(set(values))  # nothing here collides, though collisions are allowed


@pytest.mark.parametrize(
    "value",
    [
        "张伟",
        "José Łódź-Świętokrzyska",
        "Müller-Straße 12, 10115 Berlin 🇩🇪",
        "東京都港区六本木1-2-3 カタカナー ひらがな",
        "Ελληνικά και English",
        "Иван Петрович, кв. 42",
        "שלום עולם",
        "شارع ٣٤٥ ۱۲",
        "\uff11\uff12\uff13\uff0d\uff14\uff15 \uff21\uff22",  # fullwidth digits, hyphen and capitals
        "Nguyễn Văn Ánh, Jose\u0301 n\u0303",  # combining marks stay on the replaced letter
        "𠮷野家 👩‍👩‍👧 tag\U000e0067 private\U000f0000",
        "नमस्ते दुनिया",
    ],
)
def test_mixed_strings_keep_marks_punctuation_and_emoji(value: str) -> None:
    assert_replaced_in_class(value, mask([value])[0].as_py())


def test_every_letter_and_digit_changes_unless_alone_in_its_class() -> None:
    """All letters and digits beyond ASCII, one per value. A class of one (nine obscure letters in
    Unicode 14, such as U+2183 ROMAN NUMERAL REVERSED ONE HUNDRED) has nothing to move to: only
    those survive. Classes of two swap their members."""
    characters = [chr(code) for code in range(0x80, 0x40000) if kind_of(chr(code)) is not None]
    masked = mask(characters).to_pylist()
    class_sizes = Counter(map(kind_of, characters))
    survivors = [a for a, b in zip(characters, masked, strict=True) if a == b]
    assert all(class_sizes[kind_of(a)] == 1 for a in survivors) and len(survivors) < 20
    for a, b in zip(characters, masked, strict=True):
        assert kind_of(b) == kind_of(a) and len(b.encode()) == len(a.encode()), (a, b)


def test_nulls_stay_and_the_column_type_is_kept() -> None:
    masked = mask(["张伟", None, "Łódź", None, ""], kind=pa.large_string())
    assert masked.type == pa.large_string() and masked.null_count == 2
    values = masked.to_pylist()
    assert values[1] is None and values[3] is None and values[4] == ""
    assert_replaced_in_class("张伟", values[0])
    assert_replaced_in_class("Łódź", values[2])


def test_same_seed_same_output_other_seed_other_output() -> None:
    fake = Faker(["zh_CN", "ru_RU", "pl_PL", "ja_JP"])
    fake.seed_instance(3)
    pool = [fake.name() for _ in range(500)]
    values = [pool[(i * 31) % len(pool)] for i in range(2_000)]
    first = mask(values)
    assert mask(values).equals(first)
    halves = [mask(values[start : start + 1_000]) for start in (0, 1_000)]
    assert pa.concat_arrays(halves).equals(first)  # per value, so every batch agrees
    assert len(dict(zip(values, first.to_pylist(), strict=True))) == len(set(values))
    other = mask(values, seed=8).to_pylist()
    assert sum(a != b for a, b in zip(first.to_pylist(), other, strict=True)) > 0.99 * len(values)


def test_filter_counts_characters_not_bytes() -> None:
    last = mask(["Łódź", "张伟", "Иван", "ab"], filter={"type": "last", "n": 2}).to_pylist()
    assert [value[:-2] for value in last] == ["Łó", "", "Ив", ""]
    for before, after in zip(["dź", "张伟", "ан", "ab"], last, strict=True):
        assert_replaced_in_class(before, after[-2:])
    first = mask(["Łódź", "张伟"], filter={"type": "first", "n": 1}).to_pylist()
    assert [value[1:] for value in first] == ["ódź", "伟"]
    assert first[0][0] != "Ł" and first[1][0] != "张"
