"""Fixtures of the distributed executor's tests: PostgreSQL metadata on the test server, and
``governor serve`` and ``governor worker`` as real processes, each with a home of its own (as on
separate machines), sharing the metadata database and the secret key.

The tests that kill a worker shorten the dead-worker bound (``LOST_AFTER``) to stay quick; the
others keep the default, so that a heartbeat late on a loaded machine never fails their runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from governor.settings import Settings
from governor.store.db import Store, open_store
from governor.store.models import RunLog, RunStatus, WorkflowRun
from tests.runs import conftest as run_fixtures
from tests.runs.conftest import Workflows
from tests.servers import free_port
from tests.service import conftest as service_fixtures
from tests.service.conftest import Caller

slow_source_template = run_fixtures.slow_source_template
make_caller = service_fixtures.make_caller

GOVERNOR = shutil.which("governor")
API = "/external/api/v1"
SECRET_KEY = "distributed-test-secret"
LOST_AFTER = 5.0
START_TIMEOUT = 60.0


@pytest.fixture
def settings(tmp_path: Path, pg_url_factory: Callable[[], str]) -> Settings:
    return Settings(
        home=tmp_path / "server-home",
        database_url=pg_url_factory(),
        secret_key=SECRET_KEY,
        executor="procrastinate",
        workers=1,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    yield store
    store.dispose()


@pytest.fixture
def workflows(
    store: Store, settings: Settings, tmp_path: Path, slow_source_template: Path, make_caller: Callable[..., Caller]
) -> Workflows:
    user = make_caller("owner@example.org")
    return Workflows(store, settings, tmp_path / "data", slow_source_template, user.user_id)


@pytest.fixture
def caller(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("ci@example.org")


class Process:
    """A ``governor`` command running in the background, its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        assert GOVERNOR is not None, "the governor command is not installed"
        self.log = log
        with log.open("ab") as output:
            self.popen = subprocess.Popen([GOVERNOR, *argv], env=env, stdout=output, stderr=output)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text()

    def assert_alive(self) -> None:
        assert self.popen.poll() is None, f"{self.log.name} exited:\n{self.output()}"

    def signal(self, number: signal.Signals, timeout: float = 60.0) -> int:
        self.popen.send_signal(number)
        return self.popen.wait(timeout=timeout)

    def end(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


class Cluster:
    """One server and any number of workers on the test's metadata database."""

    def __init__(self, settings: Settings, folder: Path, caller: Caller) -> None:
        self.settings = settings
        self.folder = folder
        self.caller = caller
        self.processes: list[Process] = []
        self.url = ""
        self.worker_timeout = settings.worker_timeout

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "GOVERNOR_HOME": str(home),
            "GOVERNOR_DATABASE_URL": self.settings.effective_database_url,
            "GOVERNOR_SECRET_KEY": SECRET_KEY,
            "GOVERNOR_EXECUTOR": "procrastinate",
            "GOVERNOR_WORKER_TIMEOUT": str(self.worker_timeout),
            "GOVERNOR_WORKERS": "1",
            **extra,
        }

    def _start(self, name: str, argv: list[str], **extra: str) -> Process:
        process = Process(argv, self.env(self.folder / f"{name}-home", **extra), self.folder / f"{name}.log")
        self.processes.append(process)
        return process

    def serve(self) -> Process:
        port = free_port()
        server = self._start("serve", ["serve"], GOVERNOR_PORT=str(port))
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            server.assert_alive()
            try:
                if self.client().get("/healthy").is_success:
                    return server
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"governor serve did not answer:\n{server.output()}"
            time.sleep(0.1)

    def worker(self, name: str, *argv: str) -> Process:
        """Start a worker and wait until it has registered."""
        worker = self._start(name, ["worker", *argv])
        deadline = time.monotonic() + START_TIMEOUT
        while not any(entry["pid"] == worker.pid for entry in self.workers()):
            worker.assert_alive()
            assert time.monotonic() < deadline, f"{name} did not register:\n{worker.output()}"
            time.sleep(0.1)
        return worker

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + API, headers=self.caller.headers, timeout=60)

    def workers(self) -> list[dict[str, Any]]:
        with self.client() as client:
            response = client.get("/workers")
        response.raise_for_status()
        return response.json()

    def run(self, workflow_id: int) -> int:
        with self.client() as client:
            response = client.post(f"/workflow/{workflow_id}/run")
        assert response.status_code == 200, response.text
        return response.json()["workflow_run_id"]

    def end(self) -> None:
        for process in self.processes:
            process.end()


@pytest.fixture
def cluster(settings: Settings, store: Store, tmp_path: Path, caller: Caller) -> Iterator[Cluster]:
    cluster = Cluster(settings, tmp_path, caller)
    try:
        yield cluster
    finally:
        cluster.end()


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)
    return value


def run_status(store: Store, run_id: int) -> RunStatus:
    with store.session() as session:
        run = session.get(WorkflowRun, run_id)
        assert run is not None
        return run.status


def run_logs(store: Store, run_id: int) -> list[str]:
    with store.session() as session:
        return list(session.scalars(sa.select(RunLog.message).where(RunLog.run_id == run_id).order_by(RunLog.id)))
