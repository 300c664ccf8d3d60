"""Users: who may call Governor, and with which global role."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governor.store.errors import Conflict, Invalid, NotFound
from governor.store.models import Role, User, as_id

# Deliberately loose: the address is an identifier here, not a mailbox Governor writes to.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def create_user(session: Session, email: str, name: str, role: Role = Role.MEMBER) -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise Invalid(f"email: {email!r} is not an email address")
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email!r} already exists")
    user = User(email=email, name=name.strip() or email, role=role, active=True)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def find_user(session: Session, id_or_email: str) -> User:
    """A user by id or email, as the CLI accepts either."""
    user_id = as_id(id_or_email)
    if user_id is not None:
        return get_user(session, user_id)
    user = session.scalar(sa.select(User).where(User.email == id_or_email.strip().lower()))
    if user is None:
        raise NotFound(f"user {id_or_email!r} not found")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).order_by(User.id)))


def has_users(session: Session) -> bool:
    return session.scalar(sa.select(sa.exists().select_from(User))) or False
