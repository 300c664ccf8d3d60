"""SQL text that users write into configs: table filters and target scripts.

A ``filter`` is spliced into the engine's own read statement (``... WHERE (<filter>)``, inside a
PostgreSQL ``COPY (...) TO STDOUT``), so it must stay one expression: a closing parenthesis, a
statement separator or a comment could otherwise end the engine's statement and start another
(``true)) TO PROGRAM '...' --``). The check below scans the text the way the databases do for
quoted strings and identifiers and refuses whatever could reach outside the parentheses; syntax
it does not understand (dollar quotes, backslash escapes, which differ between databases) is
refused rather than guessed at.

Scripts are split into statements so that every database runs them the same way, one statement
per call, inside one transaction.
"""

from __future__ import annotations

_QUOTES = {"'": "'", '"': '"', "`": "`"}


def check_condition(text: str) -> str | None:
    """Why ``text`` cannot be used as a filter, or None when it is one self-contained condition."""
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in _QUOTES:
            end = _closing_quote(text, i)
            if end < 0:
                return f"unterminated {char} quote"
            i = end + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return "a ')' closes a parenthesis it did not open"
        elif char == ";":
            return "';' is not allowed: a filter is one condition, not statements"
        elif text.startswith(("--", "/*"), i) or char == "#":
            return "comments are not allowed in a filter"
        elif char in "$\\":
            return f"{char!r} is not allowed outside quoted strings"
        i += 1
    if depth:
        return "a '(' is never closed"
    if not text.strip():
        return "the filter is empty"
    return None


def _closing_quote(text: str, start: int) -> int:
    """Index of the quote closing the one at ``start`` (a doubled quote is an escaped one), or -1."""
    quote = _QUOTES[text[start]]
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            return -1  # backslash escapes mean different things in different databases
        if text[i] == quote:
            if text.startswith(quote * 2, i):
                i += 2
                continue
            return i
        i += 1
    return -1


def split_statements(script: str) -> list[str]:
    """The statements of a script, split at semicolons outside quotes, comments and dollar quotes."""
    statements: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(script):
        char = script[i]
        end = i + 1
        if char in _QUOTES:
            end = _skip_quoted(script, i)
        elif script.startswith("--", i):
            newline = script.find("\n", i)
            end = len(script) if newline < 0 else newline
        elif script.startswith("/*", i):
            close = script.find("*/", i + 2)
            end = len(script) if close < 0 else close + 2
        elif char == "$":
            end = _skip_dollar_quoted(script, i)
        elif char == ";":
            statements.append("".join(current))
            current = []
            i += 1
            continue
        current.append(script[i:end])
        i = end
    statements.append("".join(current))
    return [statement.strip() for statement in statements if _has_code(statement)]


def _skip_quoted(script: str, start: int) -> int:
    quote = script[start]
    i = start + 1
    while i < len(script):
        if script[i] == "\\" and quote == "'":
            i += 2  # E'...' strings and MySQL: an escaped character never ends the string
            continue
        if script[i] == quote:
            if script.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return len(script)


def _skip_dollar_quoted(script: str, start: int) -> int:
    """PostgreSQL's ``$tag$ ... $tag$`` bodies (functions, DO blocks) hold semicolons of their own."""
    close = script.find("$", start + 1)
    tag = script[start : close + 1] if close > 0 else ""
    if not tag or not (tag[1:-1].replace("_", "a").isalnum() or tag == "$$"):
        return start + 1
    end = script.find(tag, close + 1)
    return len(script) if end < 0 else end + len(tag)


def _has_code(statement: str) -> bool:
    """False for statements that are only whitespace and comments."""
    lines = [line for line in statement.splitlines() if line.strip() and not line.strip().startswith("--")]
    text = "\n".join(lines).strip()
    while text.startswith("/*") and "*/" in text:
        text = text[text.index("*/") + 2 :].strip()
    return bool(text)
