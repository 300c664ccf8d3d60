"""Database URLs as users give them, and errors about them that never show a password."""

from __future__ import annotations

import re

import sqlalchemy as sa

from governor.engine.errors import ConnectionFailed

_PASSWORD_IN_URL = re.compile(r"(://[^/@:]*:)[^@/]*@")


def mask_url(url: str) -> str:
    """The URL with its password and its password-like query parameters replaced by ``***``.

    This is the one masking rule of Governor (the store's display URLs and its log redaction use
    it too). It works on the text rather than on SQLAlchemy's parse so that a URL that does not
    parse (a bad port, an unclosed ``[``) is masked alike, and so that a password holding an
    unescaped ``@`` is masked whole: SQLAlchemy ends it at the first ``@``, here it runs to the
    last one. A query holding an ``@`` therefore shows less than it could, never more.
    """
    secret_words = ("password", "secret", "token", "key")
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, location = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if at and colon:
        rest = f"{user}:***@{location}"
    base, question, query = rest.partition("?")
    if question:
        parameters = (parameter.partition("=") for parameter in query.split("&"))
        query = "&".join(
            f"{name}=***" if equals and any(word in name.lower() for word in secret_words) else name + equals + value
            for name, equals, value in parameters
        )
    return f"{scheme}{separator}{base}{question}{query}"


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
