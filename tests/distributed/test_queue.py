"""The distributed executor's side in the server, on a real PostgreSQL store: a run and its
Procrastinate job in one transaction, worker groups as queues, adoption of job-less runs; the
commands' one-line refusals; the Compose file."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from governor.api.external import queue_run
from governor.cli.main import COMMAND_MODULES
from governor.runs import service
from governor.runs.distributed import REAPER_LOCK_ID, DistributedExecutor, Timing, queue_of, reap
from governor.settings import Settings
from governor.store.datasources import create_data_source
from governor.store.db import Store, stuck_transaction_seconds
from governor.store.errors import Conflict
from governor.store.models import RunStatus
from tests.distributed.conftest import GOVERNOR
from tests.runs.conftest import Workflows, keep_config

ROOT = Path(__file__).resolve().parents[2]


def _count(store: Store, table: str) -> int:
    with store.session() as session:
        return session.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def _jobs(store: Store) -> list[dict[str, Any]]:
    with store.session() as session:
        rows = session.execute(
            sa.text("SELECT id, queue_name, lock, args, status::text AS status FROM procrastinate_jobs ORDER BY id")
        )
        return [dict(row._mapping) for row in rows]


def _grouped_source(workflows: Workflows, store: Store, group: str, rows: int | None) -> int:
    url = workflows.database(rows)
    with store.session() as session:
        return create_data_source(session, workflows.settings, Path(url).stem, url, worker_group=group).id


def test_a_run_and_its_job_are_committed_together_or_not_at_all(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    executor = DistributedExecutor(settings, store)
    workflow_id = workflows.simple()
    with pytest.raises(RuntimeError), store.session() as session:
        run = service.create_run(session, workflow_id, workflows.user_id)
        executor.enqueue(session, run.id)
        raise RuntimeError("the request failed before its commit")
    assert (_count(store, "workflow_runs"), _count(store, "procrastinate_jobs")) == (0, 0)

    response = queue_run(store, executor, workflow_id, workflows.user_id)
    run = workflows.run(response.workflow_run_id)
    assert (run.status, response.workflow_run_status) == (RunStatus.QUEUED, RunStatus.QUEUED)
    assert _jobs(store) == [
        {
            "id": run.job_id,
            "queue_name": "default",
            "lock": f"governor-target-{run.target_id}",
            "args": {"run_id": run.id, "attempt": 0},
            "status": "todo",
        }
    ]

    split = workflows.workflow(
        _grouped_source(workflows, store, "eu", 10), _grouped_source(workflows, store, "us", None)
    )
    with pytest.raises(Conflict, match="source is in worker group 'eu' and its target in 'us'"):
        queue_run(store, executor, split, workflows.user_id)
    assert (_count(store, "workflow_runs"), _count(store, "procrastinate_jobs")) == (1, 1)


def test_worker_groups_are_queues_even_when_their_names_are_long(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    long_group = "data-centre-frankfurt-" + "x" * 60  # longer than PostgreSQL's channel names allow
    assert len(queue_of(long_group).encode()) <= 40
    assert queue_of(long_group) != queue_of(long_group + "y") and queue_of("eu") == "eu"
    executor = DistributedExecutor(settings, store)
    grouped = workflows.workflow(
        _grouped_source(workflows, store, long_group, 10), workflows.data_source(workflows.database(None))
    )
    queue_run(store, executor, grouped, workflows.user_id)
    assert [job["queue_name"] for job in _jobs(store)] == [queue_of(long_group)]


def test_runs_queued_without_a_job_get_one_when_the_distributed_server_starts(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    workflow_id = workflows.simple()
    orphan = queue_run(store, None, workflow_id, workflows.user_id).workflow_run_id
    assert workflows.run(orphan).job_id is None
    executor = DistributedExecutor(settings, store)
    executor.start()
    executor.shutdown()
    job_id = workflows.run(orphan).job_id
    assert [job["id"] for job in _jobs(store)] == [job_id] and job_id is not None


def test_a_job_less_run_that_no_worker_can_take_fails_when_the_distributed_server_starts(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    eu, us = _grouped_source(workflows, store, "eu", 10), _grouped_source(workflows, store, "us", None)
    split = workflows.workflow(eu, us)
    orphan = queue_run(store, None, split, workflows.user_id).workflow_run_id
    executor = DistributedExecutor(settings, store)
    executor.start()
    executor.shutdown()
    run = workflows.run(orphan)
    assert run.status == RunStatus.FAILED and run.job_id is None and _jobs(store) == []
    assert "no worker can run this workflow" in (run.error_message or "")


def _take_jobs(store: Store, run_ids: list[int], started: bool) -> int:
    """Mark the runs' jobs taken by a new Procrastinate worker (and the runs started by it, as a
    ``governor worker`` does), then make that worker silent; returns its id."""
    with store.session() as session:
        worker_id = session.scalar(sa.text("SELECT procrastinate_register_worker_v1()"))
        for run_id in run_ids:
            session.execute(
                sa.text(
                    "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker "
                    "WHERE id = (SELECT job_id FROM workflow_runs WHERE id = :run)"
                ),
                {"worker": worker_id, "run": run_id},
            )
            if started:
                job_id = session.scalar(sa.text("SELECT job_id FROM workflow_runs WHERE id = :run"), {"run": run_id})
                assert service.start_run(session, run_id, f"worker-{worker_id}", job_id)
        session.execute(
            sa.text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' WHERE id = :id"),
            {"id": worker_id},
        )
    return worker_id


def test_a_run_whose_lost_worker_had_not_started_it_is_queued_again_with_a_new_job(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    executor = DistributedExecutor(settings, store)
    run_id = queue_run(store, executor, workflows.simple(), workflows.user_id).workflow_run_id
    first_job = workflows.run(run_id).job_id
    _take_jobs(store, [run_id], started=False)
    reap(store, Timing(settings.worker_timeout))

    run = workflows.run(run_id)
    assert run.status == RunStatus.QUEUED and run.job_id not in (None, first_job)
    assert [(job["id"], job["status"]) for job in _jobs(store)] == [(first_job, "failed"), (run.job_id, "todo")]
    with store.session() as session:  # the lost worker, back, cannot start the run any more
        assert not service.start_run(session, run_id, "the lost worker", first_job)


def test_a_lost_worker_that_comes_back_cannot_touch_the_run_it_lost(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    """Fencing: the retried run belongs to its new job; the old attempt's writes match nothing."""
    executor = DistributedExecutor(settings, store)
    workflow_id = workflows.simple(keep_config() + "worker_lost_retries: 1\n")
    run_id = queue_run(store, executor, workflow_id, workflows.user_id).workflow_run_id
    lost_job = workflows.run(run_id).job_id
    assert lost_job is not None
    _take_jobs(store, [run_id], started=True)
    reap(store, Timing(settings.worker_timeout))
    retry_job = workflows.run(run_id).job_id
    assert workflows.run(run_id).status == RunStatus.QUEUED and retry_job != lost_job
    with store.session() as session:
        assert service.start_run(session, run_id, "the survivor", retry_job)

    progress = service.Progress(tables_total=1, tables_done=1, rows_done=99)
    with store.session() as session:
        assert service.stop_requested(session, run_id, lost_job)
        assert not service.stop_requested(session, run_id, retry_job)
        assert not service.heartbeat(session, run_id, "the lost worker", progress, lost_job)
        assert not service.finish_run(session, run_id, RunStatus.COMPLETED, job_id=lost_job)
        assert service.fail_started_runs(session, "the lost worker's engine exited", [run_id], lost_job) == []
    run = workflows.run(run_id)
    assert (run.status, run.worker_id, run.rows_done) == (RunStatus.RUNNING, "the survivor", 0)
    with store.session() as session:
        assert service.finish_run(session, run_id, RunStatus.COMPLETED, job_id=retry_job)
    assert workflows.run(run_id).status == RunStatus.COMPLETED


def test_the_reaper_settles_runs_of_silent_workers_and_runs_whose_job_ended(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    """Jobs taken as a Procrastinate worker takes them, without a worker process: the reaper alone."""
    executor = DistributedExecutor(settings, store)
    timing = Timing(settings.worker_timeout)
    alive, silent, ended = (
        queue_run(store, executor, workflows.simple(), workflows.user_id).workflow_run_id for _ in range(3)
    )
    with store.session() as session:
        worker_ids = [session.scalar(sa.text("SELECT procrastinate_register_worker_v1()")) for _ in range(2)]
        for run_id, worker_id in ((alive, worker_ids[0]), (silent, worker_ids[1]), (ended, worker_ids[0])):
            session.execute(
                sa.text(
                    "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker "
                    "WHERE id = (SELECT job_id FROM workflow_runs WHERE id = :run)"
                ),
                {"worker": worker_id, "run": run_id},
            )
            assert service.start_run(session, run_id, f"worker-{worker_id}")
        session.execute(
            sa.text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' WHERE id = :id"),
            {"id": worker_ids[1]},
        )
        session.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id"),
            {"id": workflows.run(ended).job_id},
        )
    reap(store, timing)

    assert workflows.run(alive).status == RunStatus.RUNNING
    lost = workflows.run(silent)
    assert lost.status == RunStatus.FAILED
    assert lost.error_message == f"the Governor worker worker-{worker_ids[1]} running this run was lost: " + (
        f"no heartbeat for {timing.stalled_after:g} s"
    )
    orphan = workflows.run(ended)
    assert orphan.status == RunStatus.FAILED and "ended its job without ending the run" in (orphan.error_message or "")
    assert [job["status"] for job in _jobs(store)] == ["doing", "failed", "failed"]
    reap(store, timing)  # a second pass finds nothing more to do
    assert workflows.run(alive).status == RunStatus.RUNNING


def _governor(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    assert GOVERNOR is not None
    return subprocess.run([GOVERNOR, *argv], env=env, capture_output=True, text=True, timeout=60)


def _clean_env(home: Path, **values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GOVERNOR_")}
    return {**env, "GOVERNOR_HOME": str(home), **values}


def test_the_commands_refuse_what_cannot_work_in_one_line(tmp_path: Path, settings: Settings) -> None:
    needs_postgresql = (
        "error: the procrastinate executor (governor worker) needs PostgreSQL metadata: "
        "set GOVERNOR_DATABASE_URL to a postgresql:// URL"
    )
    sqlite_home = tmp_path / "sqlite-home"
    keyless = _clean_env(tmp_path / "new-home", GOVERNOR_DATABASE_URL=settings.effective_database_url)
    refusals = [
        (_governor(_clean_env(sqlite_home), "worker"), needs_postgresql),
        (_governor(_clean_env(sqlite_home, GOVERNOR_EXECUTOR="procrastinate"), "serve"), needs_postgresql),
        (
            _governor(keyless, "worker"),
            "error: no secret key to read data source credentials: set GOVERNOR_SECRET_KEY to the server's",
        ),
        (_governor(_clean_env(sqlite_home), "worker", "--queues", "eu,"), "error: --queues: worker group names"),
    ]
    for result, message in refusals:
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().startswith(message), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "new-home" / "secret.key").exists()  # a worker never invents a key


def test_the_compose_file_parses_and_its_commands_and_variables_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "server", "worker"} <= set(services)
    assert services["server"]["ports"] == ["8081:8081"]
    assert services["worker"]["deploy"]["replicas"] >= 1 and "ports" not in services["worker"]
    for name in ("server", "worker"):
        service_ = services[name]
        assert service_["build"] == "." and (ROOT / "Dockerfile").is_file()
        program, command, *options = service_["command"]
        assert program == "governor" and command in COMMAND_MODULES
        shown = _governor(dict(os.environ), command, *options, "--help")  # unknown options fail here
        assert shown.returncode == 0, shown.stderr
        environment = service_["environment"]
        assert environment["GOVERNOR_EXECUTOR"] == "procrastinate"
        assert environment["GOVERNOR_DATABASE_URL"].startswith("postgresql://")
        for variable in environment:
            assert variable.removeprefix("GOVERNOR_").lower() in Settings.model_fields, variable
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            assert all((ROOT / source).exists() for source in line.split()[1:-1]), line


def test_a_frozen_process_holding_the_reaper_lock_does_not_stop_the_reaping(
    settings: Settings, store: Store, workflows: Workflows
) -> None:
    """A worker paused (or cut off) in the middle of its own reaping pass holds the reaper's lock:
    PostgreSQL ends its transaction after ``stuck_transaction_seconds``, and the others go on."""
    quick = settings.model_copy(update={"worker_timeout": 5.0})
    executor = DistributedExecutor(quick, store)
    run_id = queue_run(store, executor, workflows.simple(), workflows.user_id).workflow_run_id
    _take_jobs(store, [run_id], started=True)
    frozen = Store(quick.effective_database_url, stuck_transaction_seconds(quick))
    started = time.monotonic()
    try:
        with frozen.engine.connect() as connection:
            assert connection.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(REAPER_LOCK_ID)))
            while workflows.run(run_id).status != RunStatus.FAILED:
                assert time.monotonic() - started < stuck_transaction_seconds(quick) + 10, "no reaping"
                reap(store, Timing(quick.worker_timeout))
                time.sleep(0.25)
    except sa.exc.DBAPIError as exc:  # the frozen transaction's connection, ended by the server
        assert "idle-in-transaction timeout" in str(exc)
    finally:
        frozen.dispose()
    assert "was lost" in (workflows.run(run_id).error_message or "")
