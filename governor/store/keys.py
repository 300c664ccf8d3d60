"""Access keys: issued once as ``<key_id>:<secret>``, stored only as a hash of the secret.

Secrets are 256 random bits, so one SHA-256 is enough to make a leaked table useless (a slow
password hash protects guessable secrets, which these are not) and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governor.store.errors import Conflict, Invalid, NotFound
from governor.store.models import AccessKey, User, utcnow

_SECRET_BYTES = 32
# last_used_at is written at most this often per key, so that busy clients do not turn every
# request into a write on the same row.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Compared against when the key id is unknown, so both failures cost the same.
_UNKNOWN_KEY_HASH = _hash(secrets.token_urlsafe(_SECRET_BYTES))


def create_key(session: Session, user: User, name: str, expires_at: datetime | None = None) -> tuple[AccessKey, str]:
    """A new key for ``user``; the returned ``<key_id>:<secret>`` is never shown again.

    ``expires_at`` is kept in UTC at once, so that the key returned says what its lists will say,
    and so that a time that is no datetime in UTC (beyond year 9999) is bad input, not a crash.
    """
    if expires_at is not None:
        try:
            expires_at = expires_at.astimezone(UTC)
        except OverflowError:
            raise Invalid("expires_at: must be before year 10000 in UTC") from None
        if expires_at <= utcnow():
            raise Invalid("expires_at: must be in the future")
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    key = AccessKey(
        key_id=secrets.token_hex(8),
        secret_hash=_hash(secret),
        user=user,
        name=name,
        expires_at=expires_at,
        revoked=False,
    )
    session.add(key)
    session.flush()
    return key, f"{key.key_id}:{secret}"


def verify_key(session: Session, presented: str) -> AccessKey | None:
    """The key ``presented`` stands for, if it is valid now: known, unrevoked, unexpired, of an
    active user. Records the use."""
    key_id, _, secret = presented.strip().partition(":")
    key = session.scalar(sa.select(AccessKey).where(AccessKey.key_id == key_id)) if secret else None
    expected = key.secret_hash if key is not None else _UNKNOWN_KEY_HASH
    matches = hmac.compare_digest(_hash(secret), expected)
    if key is None or not matches or key.revoked or not key.user.active:
        return None
    now = utcnow()
    if key.expires_at is not None and key.expires_at <= now:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
    return key


def get_key(session: Session, key_id: str) -> AccessKey:
    key = session.scalar(sa.select(AccessKey).where(AccessKey.key_id == key_id))
    if key is None:
        raise NotFound(f"access key {key_id!r} not found")
    return key


def list_keys(session: Session, user_id: int | None = None) -> list[AccessKey]:
    query = sa.select(AccessKey).order_by(AccessKey.id)
    if user_id is not None:
        query = query.where(AccessKey.user_id == user_id)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: str) -> AccessKey:
    """Revoke for good (a revoked key stays listed, for the record)."""
    key = get_key(session, key_id)
    if key.revoked:
        raise Conflict(f"access key {key_id!r} is already revoked")
    key.revoked = True
    return key
