"""Row conditions in SQL's syntax (``status = 'VIP' AND country IN ('US', 'CA')``), evaluated per batch.

A condition compiles once into a tree of Arrow kernel calls over whole columns: comparisons
(``= == != <> < <= > >=``) between columns and literals, ``IS [NOT] NULL``, ``[NOT] IN (...)``,
``[NOT] LIKE``, ``AND``, ``OR``, ``NOT`` and parentheses, with SQL's three-valued logic; a row
whose condition is NULL does not match. Literals are numbers, 'quoted strings' (cast to the
column's type, so dates compare as dates), TRUE, FALSE and NULL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from governor.engine.errors import SchemaError


class ConditionError(ValueError):
    """A condition that does not parse."""


_TOKEN = re.compile(
    r"\s*(?:(?P<number>[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)|(?P<string>'(?:[^']|'')*')"
    r"|(?P<quoted>\"(?:[^\"]|\"\")+\")|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><>|!=|==|<=|>=|[=<>(),]))"
)
_COMPARISONS: dict[str, Callable[..., Any]] = {
    "=": pc.equal,
    "==": pc.equal,
    "!=": pc.not_equal,
    "<>": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}

Columns = dict[str, pa.Array]
Evaluate = Callable[[Columns], Any]  # an Arrow array, or a Python literal for literal operands


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, quoted, word, op
    text: str


def _tokens(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ConditionError(f"cannot read the condition at {text[position:].strip()[:20]!r}")
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def _typed(value: Any, like: pa.Array) -> pa.Scalar:
    """A literal as a scalar of the column's type, so that ``'2020-01-01'`` compares with a date."""
    try:
        return pa.scalar(value).cast(like.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(f"condition: {value!r} cannot be compared with a {like.type} column: {exc}") from None


def _compare(function: Callable[..., Any], left: Any, right: Any) -> Any:
    if isinstance(left, pa.Array) and not isinstance(right, pa.Array):
        right = _typed(right, left)
    elif isinstance(right, pa.Array) and not isinstance(left, pa.Array):
        left = _typed(left, right)
    return function(left, right)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.columns: set[str] = set()

    def peek(self, *words: str) -> bool:
        if self.position >= len(self.tokens):
            return False
        token = self.tokens[self.position]
        return token.text.upper() in words if token.kind in ("word", "op") else False

    def take(self, *words: str) -> bool:
        if self.peek(*words):
            self.position += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.take(word):
            found = self.tokens[self.position].text if self.position < len(self.tokens) else "the end"
            raise ConditionError(f"expected {word} but found {found}")

    def parse(self) -> Evaluate:
        tree = self.disjunction()
        if self.position < len(self.tokens):
            raise ConditionError(f"unexpected {self.tokens[self.position].text!r}")
        return tree

    def disjunction(self) -> Evaluate:
        left = self.conjunction()
        while self.take("OR"):
            left = _binary(pc.or_kleene, left, self.conjunction())
        return left

    def conjunction(self) -> Evaluate:
        left = self.negation()
        while self.take("AND"):
            left = _binary(pc.and_kleene, left, self.negation())
        return left

    def negation(self) -> Evaluate:
        if self.take("NOT"):
            inner = self.negation()
            return lambda columns: pc.invert(inner(columns))
        return self.predicate()

    def predicate(self) -> Evaluate:
        if self.take("("):
            inner = self.disjunction()
            self.expect(")")
            return inner
        left = self.operand()
        if self.take("IS"):
            negated = self.take("NOT")
            self.expect("NULL")
            check = pc.is_valid if negated else pc.is_null
            return lambda columns: check(left(columns))
        negated = self.take("NOT")
        if self.take("IN"):
            return self.membership(left, negated)
        if self.take("LIKE"):
            pattern = self.operand()
            like = lambda columns: pc.match_like(left(columns), pattern(columns))  # noqa: E731
            return (lambda columns: pc.invert(like(columns))) if negated else like
        if negated:
            raise ConditionError("NOT must be followed by IN or LIKE here")
        for symbol, function in _COMPARISONS.items():
            if self.take(symbol):
                right = self.operand()
                return lambda columns: _compare(function, left(columns), right(columns))
        if self.position < len(self.tokens):
            raise ConditionError(f"expected a comparison after the operand, found {self.tokens[self.position].text!r}")
        return left  # a boolean column on its own

    def membership(self, left: Evaluate, negated: bool) -> Evaluate:
        self.expect("(")
        values = [self.literal()]
        while self.take(","):
            values.append(self.literal())
        self.expect(")")

        def member(columns: Columns) -> Any:
            array = left(columns)
            found = pc.is_in(array, value_set=pa.array(values).cast(array.type))
            return pc.and_kleene(pc.is_valid(array), pc.invert(found) if negated else found)

        return member

    def literal(self) -> Any:
        if self.position >= len(self.tokens):
            raise ConditionError("expected a value but the condition ended")
        token = self.tokens[self.position]
        self.position += 1
        if token.kind == "number":
            return float(token.text) if any(mark in token.text for mark in ".eE") else int(token.text)
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "word" and token.text.upper() in ("TRUE", "FALSE"):
            return token.text.upper() == "TRUE"
        if token.kind == "word" and token.text.upper() == "NULL":
            return None
        raise ConditionError(f"expected a value but found {token.text!r}")

    def operand(self) -> Evaluate:
        if self.position < len(self.tokens):
            token = self.tokens[self.position]
            reserved = token.text.upper() in ("TRUE", "FALSE", "NULL", "AND", "OR", "NOT", "IN", "IS", "LIKE")
            if token.kind == "quoted" or (token.kind == "word" and not reserved):
                self.position += 1
                name = token.text[1:-1].replace('""', '"') if token.kind == "quoted" else token.text
                self.columns.add(name)
                return lambda columns: columns[name]
        value = self.literal()
        return lambda columns: value


def _binary(function: Callable[..., Any], left: Evaluate, right: Evaluate) -> Evaluate:
    return lambda columns: function(left(columns), right(columns))


@dataclass(frozen=True)
class Condition:
    text: str
    evaluate: Evaluate
    columns: frozenset[str]

    def matches(self, columns: Columns, rows: int) -> np.ndarray:
        """Where the condition is TRUE (NULL counts as no match), as a numpy bool array."""
        result = self.evaluate(columns)
        if not isinstance(result, pa.Array):
            return np.full(rows, bool(result))
        if not pa.types.is_boolean(result.type):
            raise SchemaError(f"condition {self.text!r} is not true or false but {result.type}")
        return pc.fill_null(result, False).to_numpy(zero_copy_only=False)


def compile_condition(text: str) -> Condition:
    """Parse a condition; raises ConditionError naming what is wrong."""
    parser = _Parser(text)
    evaluate = parser.parse()
    return Condition(text, evaluate, frozenset(parser.columns))
