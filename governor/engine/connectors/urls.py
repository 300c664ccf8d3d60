"""Database URLs as users give them, and errors about them that never show a password."""

from __future__ import annotations

import re

import sqlalchemy as sa

from governor.engine.errors import ConnectionFailed

_PASSWORD_IN_URL = re.compile(r"(://[^/@:]*:)[^@/]*@")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, even when it does not parse."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _PASSWORD_IN_URL.sub(r"\1***@", url)


def first_line(exc: BaseException) -> str:
    """The driver's own reason, on one line, without SQLAlchemy's decorations."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def connection_failed(url: str, exc: BaseException) -> ConnectionFailed:
    """A one-line ``ConnectionFailed`` naming the database (masked) and the reason."""
    reason = first_line(exc)
    parsed_password = _password(url)
    if parsed_password:
        reason = reason.replace(parsed_password, "***")
    return ConnectionFailed(f"cannot connect to {mask_url(url)}: {reason}")


def _password(url: str) -> str | None:
    try:
        return sa.engine.make_url(url).password
    except sa.exc.ArgumentError:
        match = _PASSWORD_IN_URL.search(url)
        return match.group(0)[len(match.group(1)) : -1] if match else None
