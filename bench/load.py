"""Load benchmark: ``governor serve`` on PostgreSQL metadata with ``governor worker`` processes
(``GOVERNOR_EXECUTOR=procrastinate``), under many concurrent External API clients.

    python bench/load.py [--runs 1000] [--clients 64] [--workers 2] [--workflows 16]

It starts its own throwaway PostgreSQL server (the tests' one, ``tests/servers.py``), a server and
the workers as real processes, creates short workflows (SQLite, a KEEP copy of a small table,
each to a target of its own), then ``--clients`` concurrent clients send ``--runs``
``POST /workflow/{id}/run`` between them, each reading the run back once with
``GET /workflow-run/{id}``; then it waits for every run to end, polling the same route. It prints
how many runs were accepted, completed, failed and lost (acknowledged but not ended, or run other
than exactly once: must be 0), and the p50/p99 latencies of both routes. Exit code 0 when nothing
was lost and every run completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from governor.settings import Settings
from governor.store.datasources import create_data_source
from governor.store.db import open_store
from governor.store.keys import create_key
from governor.store.models import Role, RunLog, RunStatus, WorkflowRun
from governor.store.users import create_user
from governor.store.workflows import create_workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import PostgresServer, free_port  # the repository root is importable only from here on

API = "/external/api/v1"
SECRET_KEY = "load-benchmark-secret"
ROWS = 100
CONFIG = "default_config:\n  mode: KEEP\ntable_truncation_mode: TRUNCATE\n"
WAIT_LIMIT_SECONDS = 1800.0
POLL_SECONDS = 0.25


@dataclass
class Latencies:
    post: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _people(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)")
        connection.executemany(
            "INSERT INTO people VALUES (?, ?, ?)", ((i, f"Person {i}", f"p{i}@example.org") for i in range(rows))
        )
    connection.close()


def prepare(settings: Settings, folder: Path, workflows: int) -> tuple[str, list[int]]:
    """A user with a key and ``workflows`` workflows, each from a small source to its own target."""
    store = open_store(settings)
    try:
        with store.session() as session:
            user = create_user(session, "load@example.org", "load", Role.ADMIN)
            _, key = create_key(session, user, "load benchmark")
            workflow_ids = []
            for number in range(workflows):
                source_path, target_path = folder / f"source_{number}.sqlite", folder / f"target_{number}.sqlite"
                _people(source_path, ROWS)
                source = create_data_source(session, settings, f"source-{number}", f"sqlite:///{source_path}")
                target = create_data_source(session, settings, f"target-{number}", f"sqlite:///{target_path}")
                session.flush()
                workflow = create_workflow(session, f"load-{number}", source.id, target.id, CONFIG, user)
                session.flush()
                workflow_ids.append(workflow.id)
        return key, workflow_ids
    finally:
        store.dispose()


@contextmanager
def processes(settings: Settings, folder: Path, workers: int, concurrency: int) -> Iterator[str]:
    """``governor serve`` and the workers, each with a home of its own; yields the server's URL."""
    governor = shutil.which("governor")
    assert governor is not None, "install Governor first: pip install -e ."
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "GOVERNOR_HOME": str(folder / f"{name}-home"),
            "GOVERNOR_DATABASE_URL": settings.effective_database_url,
            "GOVERNOR_SECRET_KEY": SECRET_KEY,
            "GOVERNOR_EXECUTOR": "procrastinate",
            "GOVERNOR_PORT": str(port),
            "GOVERNOR_WORKERS": str(concurrency),
            "GOVERNOR_LOG_LEVEL": "WARNING",
        }
        with (folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen([governor, *argv], env=env, stdout=log, stderr=log)
        started.append(process)
        return process

    try:
        start("serve", "serve")
        for number in range(workers):
            start(f"worker-{number}", "worker")
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_ready(client: httpx.AsyncClient, workers: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            answer = await client.get("/workers")
            if answer.is_success and len(answer.json()) == workers:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server or its workers did not start; see their logs")
        await asyncio.sleep(0.2)


async def timed(latencies: list[float], request: Awaitable[httpx.Response]) -> httpx.Response:
    started = time.perf_counter()
    response = await request
    latencies.append(time.perf_counter() - started)
    return response


async def read_run(client: httpx.AsyncClient, run_id: int, latencies: Latencies) -> str | None:
    """The run's status; None when the request failed (counted, and tried again later)."""
    try:
        response = await timed(latencies.get, client.get(f"/workflow-run/{run_id}"))
    except httpx.TransportError as exc:
        latencies.errors.append(f"GET: {type(exc).__name__}")
        return None
    if response.status_code != 200:
        latencies.errors.append(f"GET: {response.status_code}")
        return None
    return response.json()["workflow_run_status"]


async def send(
    client: httpx.AsyncClient, workflow_ids: list[int], numbers: range, latencies: Latencies, accepted: list[int]
) -> None:
    """One client: its share of the runs, each read back once."""
    for number in numbers:
        workflow_id = workflow_ids[number % len(workflow_ids)]
        try:
            response = await timed(latencies.post, client.post(f"/workflow/{workflow_id}/run"))
        except httpx.TransportError as exc:
            latencies.errors.append(f"POST: {type(exc).__name__}")
            continue
        if response.status_code != 200:
            latencies.errors.append(f"POST: {response.status_code}")
            continue
        run_id = response.json()["workflow_run_id"]
        accepted.append(run_id)
        await read_run(client, run_id, latencies)


async def follow(client: httpx.AsyncClient, pending: list[int], ended: dict[int, str], latencies: Latencies) -> None:
    """One client: poll runs of the shared pending list until each has ended."""
    while pending:
        run_id = pending.pop()
        status = await read_run(client, run_id, latencies)
        if status is not None and RunStatus(status).terminal:
            ended[run_id] = status
        else:
            pending.insert(0, run_id)
            await asyncio.sleep(POLL_SECONDS)


async def load(
    url: str, key: str, workflow_ids: list[int], args: argparse.Namespace
) -> tuple[list[int], dict[int, str], Latencies]:
    latencies = Latencies()
    accepted: list[int] = []
    ended: dict[int, str] = {}
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=url + API, headers={"X-Access-Key": key}, timeout=120, limits=limits
    ) as client:
        await wait_ready(client, args.workers)
        started = time.perf_counter()
        shares = [range(number, args.runs, args.clients) for number in range(args.clients)]
        await asyncio.gather(*(send(client, workflow_ids, share, latencies, accepted) for share in shares))
        sent = time.perf_counter() - started
        print(f"sent {len(accepted)} runs in {sent:.1f} s ({len(accepted) / sent:.0f} POST/s)")
        pending = list(accepted)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(follow(client, pending, ended, latencies) for _ in range(args.clients))),
                WAIT_LIMIT_SECONDS,
            )
        except TimeoutError:
            print(f"gave up waiting after {WAIT_LIMIT_SECONDS:.0f} s", file=sys.stderr)
        took = time.perf_counter() - started
        print(f"all runs ended {took:.1f} s after the first POST ({len(ended) / took:.1f} runs/s)")
    return accepted, ended, latencies


def starts_per_run(settings: Settings, run_ids: list[int]) -> dict[int, int]:
    """How many times each run was started by a worker, from its log lines."""
    engine = sa.create_engine(sa.make_url(settings.effective_database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(WorkflowRun.id, sa.func.count(RunLog.id))
                .outerjoin(RunLog, (RunLog.run_id == WorkflowRun.id) & RunLog.message.like("started on worker %"))
                .where(WorkflowRun.id.in_(run_ids))
                .group_by(WorkflowRun.id)
            )
            return {run_id: count for run_id, count in rows}
    finally:
        engine.dispose()


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms ({len(values)} requests)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="governor worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once per worker")
    parser.add_argument("--workflows", type=int, default=16, help="workflows, each with a target of its own")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="governor-load-"))
    good = False
    try:
        with PostgresServer() as server:
            settings = Settings(
                home=folder / "bench-home",
                database_url=server.create_database("governor"),
                secret_key=SECRET_KEY,
                executor="procrastinate",
            )
            print(
                f"PostgreSQL on 127.0.0.1:{server.port}, {os.cpu_count()} CPUs; {args.workers} workers x "
                f"{args.concurrency} runs at once; {args.runs} runs of {args.workflows} workflows "
                f"({ROWS}-row KEEP copies, SQLite) from {args.clients} concurrent clients"
            )
            key, workflow_ids = prepare(settings, folder, args.workflows)
            with processes(settings, folder, args.workers, args.concurrency) as url:
                accepted, ended, latencies = asyncio.run(load(url, key, workflow_ids, args))
            starts = starts_per_run(settings, accepted)
        good = report(accepted, ended, starts, latencies) and len(accepted) == args.runs
    finally:
        if good:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"the logs of the server and the workers are in {folder}", file=sys.stderr)
    return 0 if good else 1


def report(accepted: list[int], ended: dict[int, str], starts: dict[int, int], latencies: Latencies) -> bool:
    """Print the outcome; True when every accepted run completed exactly once."""
    completed = sum(status == "COMPLETED" for status in ended.values())
    failed = sum(status == "FAILED" for status in ended.values())
    lost = len(set(accepted) - set(ended)) + sum(count != 1 for count in starts.values())
    print(f"accepted {len(accepted)}, completed {completed}, failed {failed}, lost {lost}")
    print(f"POST /workflow/{{id}}/run   : {_percentiles(latencies.post)}")
    print(f"GET  /workflow-run/{{id}}    : {_percentiles(latencies.get)}")
    errors = Counter(latencies.errors)
    print("request errors: " + (", ".join(f"{what} x{count}" for what, count in errors.items()) or "none"))
    return lost == 0 and completed == len(accepted)


if __name__ == "__main__":
    sys.exit(main())
