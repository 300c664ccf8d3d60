"""Fixtures of the service tests: a real store (SQLite or PostgreSQL), the app, users with keys.

``GOVERNOR_TEST_METADATA=postgresql`` puts the metadata on the test PostgreSQL server; the
default is a SQLite file, the embedded default. Everything else is the same in both runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from governor.api.app import create_app
from governor.settings import Settings
from governor.store.db import Store, open_store
from governor.store.keys import create_key
from governor.store.models import Role
from governor.store.users import create_user

METADATA = os.environ.get("GOVERNOR_TEST_METADATA", "sqlite")


@pytest.fixture
def metadata_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty metadata database of the kind the run asks for."""
    if METADATA == "sqlite":
        factory: Callable[[], str] = request.getfixturevalue("sqlite_url_factory")
    elif METADATA == "postgresql":
        factory = request.getfixturevalue("pg_url_factory")
    else:
        raise pytest.UsageError(f"GOVERNOR_TEST_METADATA must be sqlite or postgresql, not {METADATA!r}")
    return factory()


@pytest.fixture
def settings(tmp_path: Path, metadata_url: str) -> Settings:
    # Explicit values, so that a GOVERNOR_* variable of the developer's shell changes nothing.
    return Settings(home=tmp_path / "home", database_url=metadata_url, secret_key=None, workers=1)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    yield store
    store.dispose()


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    """The app without an executor: management and store behaviour, no runs executed."""
    with TestClient(create_app(settings, store, executor=None), raise_server_exceptions=False) as client:
        yield client


@dataclass(frozen=True)
class Caller:
    user_id: int
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Access-Key": self.key}


@pytest.fixture
def make_caller(store: Store) -> Callable[..., Caller]:
    """Create a user with a key in the store: ``make_caller("a@x.org", Role.ADMIN)``."""

    def make(email: str, role: Role = Role.MEMBER) -> Caller:
        with store.session() as session:
            user = create_user(session, email, email.split("@")[0], role)
            _, presented = create_key(session, user, "test")
            return Caller(user.id, user.email, presented)

    return make


@pytest.fixture
def admin(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("admin@example.org", Role.ADMIN)


@pytest.fixture
def member(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("member@example.org", Role.MEMBER)
