"""Fixtures of the run tests: the service store (SQLite or PostgreSQL metadata, as
``GOVERNOR_TEST_METADATA`` says), SQLite data sources with a people table, and workflows on them.

The store fixtures are the service tests' own (``tests/service/conftest.py``), so both suites run
on the same metadata set-ups; only the settings differ: two local workers, as by default.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from governor.runs.local import LocalExecutor
from governor.settings import Settings
from governor.store.datasources import create_data_source
from governor.store.db import Store
from governor.store.models import RunStatus, WorkflowRun
from governor.store.workflows import create_workflow
from tests.service import conftest as service_fixtures
from tests.service.conftest import Caller

# The service tests' store fixtures, shared rather than copied.
metadata_url = service_fixtures.metadata_url
store = service_fixtures.store
make_caller = service_fixtures.make_caller

SMALL_ROWS = 300
# Loaded one row per batch, this table takes the engine several seconds: long enough to stop a
# run, or kill its server, while it is surely RUNNING.
SLOW_ROWS = 300_000


def keep_config(batch_size: int = 1000) -> str:
    return f"""
default_config:
  mode: KEEP
  insert_batch_size: {batch_size}
table_truncation_mode: TRUNCATE
"""


MASKING_CONFIG = """
default_config:
  mode: MASKING
table_truncation_mode: TRUNCATE
safety_mode: RELAXED
global_seed: 42
tables:
  - table_name_with_schema: people
    transformations:
      - columns: [name]
        params: {type: format_preserving_hashing}
"""


def write_people(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)")
        connection.executemany(
            "INSERT INTO people VALUES (?, ?, ?)", ((i, f"Person {i}", f"p{i}@example.org") for i in range(rows))
        )
    connection.close()


def read_people(url: str) -> list[tuple[int, str, str]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        rows = connection.execute("SELECT id, name, email FROM people ORDER BY id").fetchall()
    connection.close()
    return rows


@pytest.fixture(scope="session")
def slow_source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("templates") / "slow.sqlite"
    write_people(path, SLOW_ROWS)
    return path


@pytest.fixture
def settings(tmp_path: Path, metadata_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=metadata_url, secret_key=None, workers=2)


@dataclass
class Workflows:
    """Makes SQLite databases, data sources and workflows in the test's store and folder."""

    store: Store
    settings: Settings
    folder: Path
    slow_template: Path
    user_id: int

    def __post_init__(self) -> None:
        self._numbers = itertools.count(1)
        self.folder.mkdir(exist_ok=True)

    def database(self, rows: int | None = SMALL_ROWS, slow: bool = False) -> str:
        """A new SQLite database URL: a people source (``rows``, or the slow one) or, with
        ``rows=None``, an empty target."""
        path = self.folder / f"db_{next(self._numbers)}.sqlite"
        if slow:
            shutil.copyfile(self.slow_template, path)
        elif rows is not None:
            write_people(path, rows)
        return f"sqlite:///{path}"

    def data_source(self, url: str) -> int:
        with self.store.session() as session:
            return create_data_source(session, self.settings, f"ds{next(self._numbers)}", url).id

    def workflow(self, source_id: int, target_id: int, config: str | None = None) -> int:
        with self.store.session() as session:
            workflow = create_workflow(
                session, f"wf{next(self._numbers)}", source_id, target_id, config or keep_config(), None
            )
            session.flush()
            return workflow.id

    def simple(self, config: str | None = None, rows: int | None = SMALL_ROWS, slow: bool = False) -> int:
        """A workflow from a new people source to a new empty target."""
        return self.workflow(self.data_source(self.database(rows, slow)), self.data_source(self.database(None)), config)

    def run(self, run_id: int) -> WorkflowRun:
        with self.store.session() as session:
            run = session.get(WorkflowRun, run_id)
            assert run is not None
            return run


@pytest.fixture
def workflows(
    store: Store, settings: Settings, tmp_path: Path, slow_source_template: Path, make_caller: Callable[..., Caller]
) -> Workflows:
    user = make_caller("owner@example.org")
    return Workflows(store, settings, tmp_path / "data", slow_source_template, user.user_id)


@pytest.fixture
def executor(settings: Settings, store: Store) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(settings, store)
    executor.start()
    yield executor
    executor.shutdown()


def wait_for(check: Callable[[], bool], timeout: float = 60.0, interval: float = 0.05) -> None:
    """Poll until ``check()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_status(workflows: Workflows, run_id: int, *statuses: RunStatus, timeout: float = 60.0) -> WorkflowRun:
    wait_for(lambda: workflows.run(run_id).status in statuses, timeout)
    return workflows.run(run_id)
