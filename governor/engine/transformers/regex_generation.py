"""Generating whole batches of strings that match a regular expression.

The pattern is parsed once by Python's own regex parser (so its syntax is exactly Python's) and
compiled into a tree of nodes; each node renders one string per row for the whole batch with numpy
and Arrow kernels. Supported: literals, ``.``, classes and ranges (negated too), ``\\d \\w \\s``,
quantifiers (unbounded ones capped at eight extra repetitions), groups and alternation; anchors
are ignored. Back-references and look-arounds cannot be generated and are refused.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parser
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from governor.engine.hashing import below, derive, mix64, positions_in_runs
from governor.engine.transformers.arrays import join, strings_from_buffers

_UNBOUNDED_EXTRA = 8
_PRINTABLE = [chr(code) for code in range(32, 127)]
_DIGITS = [chr(code) for code in range(ord("0"), ord("9") + 1)]
_WORD = [*_DIGITS, *(chr(c) for c in range(ord("A"), ord("Z") + 1)), *(chr(c) for c in range(97, 123)), "_"]
_CATEGORIES = {
    sre.CATEGORY_DIGIT: _DIGITS,
    sre.CATEGORY_WORD: _WORD,
    sre.CATEGORY_SPACE: [" "],
    sre.CATEGORY_NOT_DIGIT: [c for c in _PRINTABLE if c not in _DIGITS],
    sre.CATEGORY_NOT_WORD: [c for c in _PRINTABLE if c not in _WORD],
    sre.CATEGORY_NOT_SPACE: [c for c in _PRINTABLE if c != " "],
}


class PatternError(ValueError):
    """The pattern is not a regex, or uses a construct that cannot be generated."""


class Node(ABC):
    @abstractmethod
    def render(self, hashes: np.ndarray) -> pa.Array:
        """One string per hash."""


@dataclass
class Literal(Node):
    text: str

    def render(self, hashes: np.ndarray) -> pa.Array:
        return pa.repeat(pa.scalar(self.text, pa.string()), len(hashes))


@dataclass
class CharacterRun(Node):
    """``minimum``..``maximum`` characters drawn from one alphabet: the hot path of most patterns."""

    alphabet: list[str]
    minimum: int
    maximum: int
    key: int

    def render(self, hashes: np.ndarray) -> pa.Array:
        counts = np.full(len(hashes), self.minimum, dtype=np.int64)
        if self.maximum > self.minimum:
            counts += below(derive(hashes, self.key), self.maximum - self.minimum + 1)
        index_in_row = positions_in_runs(counts)
        with np.errstate(over="ignore"):
            per_char = mix64(
                np.repeat(derive(hashes, self.key + 1), counts)
                ^ (index_in_row.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
            )
        chosen = below(per_char, len(self.alphabet))
        offsets = np.concatenate(([0], np.cumsum(counts)))
        if all(len(ch.encode()) == 1 for ch in self.alphabet):
            table = np.frombuffer("".join(self.alphabet).encode(), dtype=np.uint8)
            return strings_from_buffers(offsets, table[chosen])
        characters = pc.take(pa.array(self.alphabet, pa.string()), pa.array(chosen))
        return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), characters), "")


@dataclass
class Sequence(Node):
    parts: list[Node]

    def render(self, hashes: np.ndarray) -> pa.Array:
        return join(*[part.render(hashes) for part in self.parts])


@dataclass
class Choice(Node):
    options: list[Node]
    key: int

    def render(self, hashes: np.ndarray) -> pa.Array:
        picked = pa.array(below(derive(hashes, self.key), len(self.options)), pa.int64())
        return pc.choose(picked, *[option.render(hashes) for option in self.options])


@dataclass
class Repeat(Node):
    """A repeated group: render every possible repetition, then keep as many as drawn."""

    body: Node
    minimum: int
    maximum: int
    key: int

    def render(self, hashes: np.ndarray) -> pa.Array:
        counts = self.minimum + below(derive(hashes, self.key), self.maximum - self.minimum + 1)
        pieces = []
        for repetition in range(self.maximum):
            piece = self.body.render(derive(hashes, self.key + 1 + repetition))
            pieces.append(pc.if_else(pa.array(counts > repetition), piece, ""))
        if not pieces:
            return Literal("").render(hashes)
        return join(*pieces)


class _Compiler:
    def __init__(self, seed_key: int) -> None:
        self.next_key = seed_key

    def key(self, width: int = 1) -> int:
        key = self.next_key
        self.next_key += width
        return key

    def sequence(self, items: list[tuple[Any, Any]]) -> Node:
        nodes: list[Node] = []
        for op, av in items:
            node = self.item(op, av)
            if isinstance(node, Literal) and nodes and isinstance(nodes[-1], Literal):
                nodes[-1] = Literal(nodes[-1].text + node.text)
            elif node is not None:
                nodes.append(node)
        if len(nodes) == 1:
            return nodes[0]
        return Sequence(nodes) if nodes else Literal("")

    def alphabet(self, op: Any, av: Any) -> list[str] | None:
        if op is sre.LITERAL:
            return [chr(av)]
        if op is sre.NOT_LITERAL:
            return [c for c in _PRINTABLE if c != chr(av)]
        if op is sre.ANY:
            return [c for c in _WORD if c != "_"]
        if op is sre.IN:
            return self.character_set(av)
        return None

    def character_set(self, items: list[tuple[Any, Any]]) -> list[str]:
        negate = False
        chosen: list[str] = []
        for op, av in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                chosen.append(chr(av))
            elif op is sre.RANGE:
                chosen.extend(chr(code) for code in range(av[0], av[1] + 1))
            elif op is sre.CATEGORY:
                chosen.extend(_CATEGORIES[av])
            else:
                raise PatternError(f"unsupported construct in a character class: {op}")
        unique = list(dict.fromkeys(chosen))
        if negate:
            unique = [c for c in _PRINTABLE if c not in set(unique)]
        if not unique:
            raise PatternError("a character class matches no printable character")
        return unique

    def item(self, op: Any, av: Any) -> Node | None:
        if op is sre.AT:
            return None
        if op is sre.LITERAL:
            return Literal(chr(av))
        characters = self.alphabet(op, av)
        if characters is not None:
            return CharacterRun(characters, 1, 1, self.key(2))
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            minimum, maximum, body = av
            if maximum is sre.MAXREPEAT or maximum == sre.MAXREPEAT:
                maximum = minimum + _UNBOUNDED_EXTRA
            if len(body) == 1:
                characters = self.alphabet(*body[0])
                if characters is not None:
                    return CharacterRun(characters, minimum, maximum, self.key(2))
            return Repeat(self.sequence(list(body)), minimum, maximum, self.key(maximum + 1))
        if op is sre.SUBPATTERN:
            return self.sequence(list(av[-1]))
        if op is sre.ATOMIC_GROUP:
            return self.sequence(list(av))
        if op is sre.BRANCH:
            return Choice([self.sequence(list(option)) for option in av[1]], self.key())
        raise PatternError(f"cannot generate strings for the regex construct {str(op).lower()}")


def compile_pattern(pattern: str, seed_key: int = 0) -> Node:
    """A node tree generating strings that fully match ``pattern``; raises PatternError."""
    try:
        parsed = sre_parser.parse(pattern)
    except re.error as exc:
        raise PatternError(f"not a valid regular expression: {exc}") from None
    return _Compiler(seed_key).sequence(list(parsed))
