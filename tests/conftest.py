"""Fixtures shared by the whole suite: real database servers and fresh databases.

With pytest-xdist every worker is its own process with its own session, so the session-scoped
``postgres`` server is one per worker and workers never share databases.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import MariaDBServer, PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


_database_numbers = itertools.count(1)


@pytest.fixture
def pg_url_factory(postgres: PostgresServer) -> Iterator[Callable[[], str]]:
    """Call it for the SQLAlchemy URL of a new, empty database; all are dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"test_{next(_database_numbers)}"
        created.append(name)
        return postgres.create_database(name)

    yield make
    for name in created:
        postgres.drop_database(name)


@pytest.fixture
def sqlite_url_factory(tmp_path: Path) -> Callable[[], str]:
    """Call it for the SQLAlchemy URL of a new SQLite file under the test's tmp_path."""
    numbers = itertools.count(1)

    def make() -> str:
        return f"sqlite:///{tmp_path / f'db_{next(numbers)}.sqlite'}"

    return make


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """Started on first use, so only the tests that need MariaDB pay its start-up."""
    with MariaDBServer() as server:
        yield server


@pytest.fixture
def mysql_url_factory(mariadb: MariaDBServer) -> Iterator[Callable[[], str]]:
    """Call it for the SQLAlchemy URL of a new, empty MariaDB database; all are dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"test_{next(_database_numbers)}"
        created.append(name)
        return mariadb.create_database(name)

    yield make
    for name in created:
        mariadb.drop_database(name)
