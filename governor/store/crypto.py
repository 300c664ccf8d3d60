"""Encryption at rest of data source URLs, which carry database credentials.

The key comes from ``GOVERNOR_SECRET_KEY`` or, when that is unset, from a key file generated in
the Governor home on first use (mode 0600), so that an embedded installation is safe without any
set-up. Any text works as a configured key: it is hashed into the 32 bytes Fernet needs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from governor.engine.connectors.urls import mask_url
from governor.settings import Settings

# A URL inside free text. Where it ends is a guess: a password may hold spaces and '@', so a
# "user:" is taken to be followed by a password that runs to the last '@' of the line (before
# any next URL), which may hide more of a message than the password. Punctuation ending the
# URL's word ("cannot connect to URL: reason") is taken to be the sentence's, not the URL's.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][\w+.-]*://(?:[^\s:/]*:(?:(?!://).)*@)?\S*?(?=[.,;:)\]'\"]*(?:\s|$))")


class UndecryptableError(Exception):
    """A stored URL cannot be decrypted: the secret key changed since it was saved."""


def _generated_key(path: Path) -> str:
    """Read the home's key file, creating it atomically (0600) if no process has yet."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        # link() fails if another process won the race; then both use the winner's key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink()
    return path.read_text().strip()


def _fernet(settings: Settings) -> Fernet:
    secret = settings.secret_key or _generated_key(settings.secret_key_file)
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def ensure_secret_key(settings: Settings) -> None:
    """Create the home's key file now (at start-up) rather than at the first data source."""
    _fernet(settings)


def encrypt(text: str, settings: Settings) -> str:
    return _fernet(settings).encrypt(text.encode()).decode()


def decrypt(token: str, settings: Settings) -> str:
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableError(
            "a stored data source URL cannot be decrypted: GOVERNOR_SECRET_KEY differs from the one it was saved with"
        ) from None


def parse_url(url: str) -> URL:
    """The database URL ``url`` names; ``ValueError`` worded for the user if it names none."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        # Not echoed: where the password is in a malformed URL cannot be told.
        raise ValueError("not a database URL (expected e.g. postgresql://user:pass@host:5432/db)") from None


def display_url(url: str) -> str:
    """The URL masked as ``mask_url`` does, safe to show; ``ValueError`` if it does not parse."""
    parse_url(url)
    return mask_url(url)


def redact(text: str) -> str:
    """Mask credentials of any URL inside free text (error messages on their way to a log)."""
    return _URL_IN_TEXT.sub(lambda found: mask_url(found.group()), text)
