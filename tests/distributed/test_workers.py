"""``governor serve`` and ``governor worker`` processes on one PostgreSQL metadata database:
draining, stop across processes, a worker killed mid-run, retries, and worker groups."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from governor.settings import Settings
from governor.store.datasources import connection_url, create_data_source
from governor.store.db import Store
from governor.store.models import DataSource, RunStatus, WorkflowRun
from tests.distributed.conftest import LOST_AFTER, Cluster, run_logs, run_status, wait_until
from tests.runs.conftest import SMALL_ROWS, Workflows, keep_config, read_people

TERMINAL = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED)


def _runs(store: Store, run_ids: list[int]) -> dict[int, WorkflowRun]:
    with store.session() as session:
        runs = session.scalars(sa.select(WorkflowRun).where(WorkflowRun.id.in_(run_ids))).all()
        return {run.id: run for run in runs}


def _jobs(store: Store) -> dict[str, int]:
    """Procrastinate's jobs by status."""
    with store.session() as session:
        rows = session.execute(sa.text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status"))
        return {status: count for status, count in rows}


def _running_with_progress(store: Store, run_id: int) -> bool:
    with store.session() as session:
        run = session.get_one(WorkflowRun, run_id)
        return run.status == RunStatus.RUNNING and run.rows_done > 0


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (the fork server and the engine processes of a worker)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def test_two_workers_drain_100_queued_runs_each_exactly_once(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    workflow_ids = [workflows.simple() for _ in range(10)]
    cluster.serve()
    run_ids = [cluster.run(workflow_ids[number % 10]) for number in range(100)]
    assert _jobs(store) == {"todo": 100}
    first = cluster.worker("worker-a", "--concurrency", "2")
    second = cluster.worker("worker-b", "--concurrency", "2")

    def drained() -> bool:
        return all(run.status in TERMINAL for run in _runs(store, run_ids).values())

    wait_until(drained, 300, "the workers did not end every run")
    runs = _runs(store, run_ids)
    assert {run.status for run in runs.values()} == {RunStatus.COMPLETED}
    for run_id in run_ids:
        assert sum(line.startswith("started on worker") for line in run_logs(store, run_id)) == 1, run_id
    worker_ids = {entry["worker_id"] for entry in cluster.workers() if entry["pid"] in (first.pid, second.pid)}
    assert {run.worker_id for run in runs.values()} == worker_ids and len(worker_ids) == 2
    # Every job succeeded and was deleted (just after its run ended): none waits, none is lost.
    wait_until(lambda: _jobs(store) == {}, 10, "jobs were left")
    with store.session() as session:
        targets = {session.get_one(DataSource, run.target_id) for run in runs.values()}
        urls = [connection_url(target, workflows.settings) for target in targets]
    assert len(urls) == 10 and all(len(read_people(url)) == SMALL_ROWS for url in urls)


def test_stop_from_the_api_while_another_process_runs_the_workflow(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    slow = workflows.simple(keep_config(batch_size=1), slow=True)
    quick = workflows.simple()
    cluster.serve()
    waiting = cluster.run(quick)
    with cluster.client() as client:
        stopped = client.post(f"/workflow/{quick}/stop").json()
    assert (stopped["workflow_run_id"], stopped["workflow_run_status"]) == (waiting, "STOPPED")
    assert _jobs(store) == {"cancelled": 1}  # Procrastinate's job was cancelled with the run

    worker = cluster.worker("worker")
    run_id = cluster.run(slow)
    wait_until(lambda: _running_with_progress(store, run_id), 60, "the slow run did not start")
    assert [entry["current_runs"] for entry in cluster.workers()] == [[run_id]]
    with cluster.client() as client:
        response = client.post(f"/workflow/{slow}/stop").json()
    assert response["workflow_run_status"] in ("STOPPING", "STOPPED")
    asked = time.monotonic()
    wait_until(lambda: run_status(store, run_id) == RunStatus.STOPPED, 10, "the run did not stop")
    assert time.monotonic() - asked < 5
    assert any(line.startswith("stopped") for line in run_logs(store, run_id))
    assert run_status(store, waiting) == RunStatus.STOPPED  # a cancelled job never runs

    after = cluster.run(quick)  # the worker goes on taking runs
    wait_until(lambda: run_status(store, after) == RunStatus.COMPLETED, 60, "the next run did not complete")
    worker.assert_alive()


def test_a_worker_killed_mid_run_is_noticed_and_its_run_fails_within_the_bound(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    slow = workflows.simple(keep_config(batch_size=1), slow=True)
    cluster.worker_timeout = LOST_AFTER
    cluster.serve()
    doomed = cluster.worker("doomed")
    run_id = cluster.run(slow)
    wait_until(lambda: _running_with_progress(store, run_id), 60, "the slow run did not start")
    engines = _descendants(doomed.pid)
    assert engines

    assert doomed.signal(signal.SIGKILL) == -signal.SIGKILL
    killed = time.monotonic()
    wait_until(lambda: run_status(store, run_id) == RunStatus.FAILED, LOST_AFTER + 10, "the run did not fail")
    noticed = time.monotonic() - killed
    assert noticed < LOST_AFTER + 2, noticed  # the bound, plus slack for the test's polling on a busy machine
    run = _runs(store, [run_id])[run_id]
    assert run.error_message is not None and "was lost: no heartbeat for" in run.error_message
    assert run.worker_id is not None and run.worker_id in run.error_message
    # The worker's engine died with it: nothing goes on writing the target.
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in engines), 5, "an engine outlived its worker")
    assert _jobs(store) == {"failed": 1}
    assert cluster.workers() == []  # the lost worker is forgotten


def test_a_run_whose_worker_is_lost_starts_again_when_the_workflow_asks_for_retries(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    retried = workflows.simple(keep_config(batch_size=1) + "worker_lost_retries: 1\n", rows=20_000)
    cluster.worker_timeout = LOST_AFTER
    cluster.serve()
    doomed = cluster.worker("doomed")
    run_id = cluster.run(retried)
    wait_until(lambda: run_status(store, run_id) == RunStatus.RUNNING, 60, "the run did not start")
    doomed.signal(signal.SIGKILL)  # long before its 20,000 one-row batches are written
    survivor = cluster.worker("survivor")

    wait_until(lambda: run_status(store, run_id) == RunStatus.COMPLETED, 60, "the retried run did not complete")
    logs = run_logs(store, run_id)
    assert sum(line.startswith("started on worker") for line in logs) == 2
    assert any("was lost" in line and "starting it again (retry 1 of 1)" in line for line in logs)
    survivor_id = next(entry["worker_id"] for entry in cluster.workers() if entry["pid"] == survivor.pid)
    assert _runs(store, [run_id])[run_id].worker_id == survivor_id
    # The lost attempt's job stays failed, for the record; the retry's job succeeded and is gone.
    wait_until(lambda: _jobs(store) == {"failed": 1}, 10, "the retried job was left")


def test_a_worker_paused_past_the_bound_then_resumed_never_touches_the_run_it_lost(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    """A paused VM or a healed partition: the lost worker and its engine come back after the run
    was started again elsewhere. They must neither end the run nor go on writing its target."""
    retried = workflows.simple(keep_config(batch_size=1) + "worker_lost_retries: 1\n", slow=True)
    cluster.worker_timeout = LOST_AFTER
    cluster.serve()
    paused = cluster.worker("paused")
    run_id = cluster.run(retried)
    wait_until(lambda: _running_with_progress(store, run_id), 60, "the slow run did not start")
    frozen = [paused.pid, *_descendants(paused.pid)]
    engine = int(re.findall(rf"run {run_id}: started in engine process (\d+)", paused.output())[-1])
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    survivor = cluster.worker("survivor")
    survivor_id = next(entry["worker_id"] for entry in cluster.workers() if entry["pid"] == survivor.pid)
    wait_until(lambda: _runs(store, [run_id])[run_id].worker_id == survivor_id, 30, "the survivor took the run")
    for pid in frozen:
        os.kill(pid, signal.SIGCONT)

    wait_until(lambda: run_status(store, run_id) in TERMINAL, 120, "the retried run did not end")
    run = _runs(store, [run_id])[run_id]
    assert (run.status, run.worker_id, run.error_message) == (RunStatus.COMPLETED, survivor_id, None)
    wait_until(lambda: not _alive(engine), 10, "the lost attempt's engine went on")
    logs = run_logs(store, run_id)
    assert sum(line.startswith("started on worker") for line in logs) == 2
    assert logs[-1].startswith("completed: 1 tables")


def test_runs_go_only_to_workers_listening_on_their_data_sources_worker_group(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    def source(group: str, rows: int | None) -> int:
        with store.session() as session:
            url = workflows.database(rows)
            name = f"{group}-{Path(url).stem}"
            return create_data_source(session, workflows.settings, name, url, worker_group=group).id

    everywhere = workflows.simple()
    eu = workflows.workflow(source("eu", SMALL_ROWS), workflows.data_source(workflows.database(None)))
    asia = workflows.workflow(source("asia", SMALL_ROWS), source("asia", None))
    split = workflows.workflow(source("eu", SMALL_ROWS), source("us", None))
    cluster.serve()
    default_worker = cluster.worker("default-worker")
    eu_worker = cluster.worker("eu-worker", "--queues", "eu")
    ids = {entry["pid"]: entry["worker_id"] for entry in cluster.workers()}

    default_runs = [cluster.run(everywhere) for _ in range(3)]
    eu_runs = [cluster.run(eu) for _ in range(3)]
    unserved = cluster.run(asia)
    with cluster.client() as client:
        refused = client.post(f"/workflow/{split}/run")
    assert refused.status_code == 409
    assert "source is in worker group 'eu' and its target in 'us'" in refused.json()["message"]

    def done() -> bool:
        return all(run.status == RunStatus.COMPLETED for run in _runs(store, default_runs + eu_runs).values())

    wait_until(done, 60, "the runs did not complete")
    runs = _runs(store, default_runs + eu_runs)
    assert {runs[run_id].worker_id for run_id in default_runs} == {ids[default_worker.pid]}
    assert {runs[run_id].worker_id for run_id in eu_runs} == {ids[eu_worker.pid]}
    assert run_status(store, unserved) == RunStatus.QUEUED  # no worker listens on 'asia'
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WorkflowRun)) == 7  # the refused run is not

    listed = {entry["worker_id"]: entry for entry in cluster.workers()}
    assert listed[ids[default_worker.pid]]["queues"] == ["default"]
    assert listed[ids[eu_worker.pid]]["queues"] == ["eu"]
    for entry in listed.values():
        assert entry["current_runs"] == [] and entry["last_heartbeat"].endswith("Z") and entry["host"]

    assert eu_worker.signal(signal.SIGTERM) == 0  # a graceful end unregisters the worker
    assert [entry["worker_id"] for entry in cluster.workers()] == [ids[default_worker.pid]]
    eu_worker_log = eu_worker.output()
    assert "Traceback" not in eu_worker_log


def test_a_worker_told_to_stop_mid_run_fails_its_run_after_a_grace_period_and_exits_cleanly(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    slow = workflows.simple(keep_config(batch_size=1), slow=True)
    cluster.serve()
    leaving = cluster.worker("leaving")
    run_id = cluster.run(slow)
    wait_until(lambda: _running_with_progress(store, run_id), 60, "the slow run did not start")
    engines = _descendants(leaving.pid)

    assert leaving.signal(signal.SIGTERM) == 0
    run = _runs(store, [run_id])[run_id]
    assert run.status == RunStatus.FAILED
    assert run.error_message == f"the Governor worker {run.worker_id} stopped during the run"
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in engines), 5, "an engine outlived its worker")
    assert cluster.workers() == []
    assert "Traceback" not in leaving.output()


def test_a_worker_whose_database_goes_away_for_a_while_goes_on_taking_runs(
    cluster: Cluster, workflows: Workflows, store: Store, settings: Settings
) -> None:
    """A PostgreSQL outage, as the worker sees it: its connections are gone and new ones are refused.
    Procrastinate's pool waits 30 s for a connection, then its heartbeat fails and it stops its
    queue worker (and waits 30 s more to unregister it); the governor worker starts it again and
    goes on once the database is back. About a minute of outage, then."""
    quick = workflows.simple()
    cluster.worker_timeout = LOST_AFTER  # heartbeats every 0.5 s: the outage is noticed at once
    cluster.serve()
    survivor = cluster.worker("survivor")
    metadata = sa.make_url(settings.effective_database_url)
    admin = sa.create_engine(metadata.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = sa.text(metadata.database or "")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": str(name)},
            )
            wait_until(lambda: "starting it again" in survivor.output(), 120, "the worker's queue did not stop")
            connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()

    run_id = cluster.run(quick)
    wait_until(lambda: run_status(store, run_id) == RunStatus.COMPLETED, 60, "the worker took no new run")
    survivor.assert_alive()


def test_a_worker_told_to_stop_mid_run_leaves_it_to_another_when_the_workflow_asks_for_retries(
    cluster: Cluster, workflows: Workflows, store: Store
) -> None:
    retried = workflows.simple(keep_config(batch_size=1) + "worker_lost_retries: 1\n", slow=True)
    cluster.serve()
    leaving = cluster.worker("leaving")
    run_id = cluster.run(retried)
    wait_until(lambda: _running_with_progress(store, run_id), 60, "the slow run did not start")
    assert leaving.signal(signal.SIGTERM) == 0
    assert run_status(store, run_id) == RunStatus.QUEUED

    cluster.worker("taking over")
    wait_until(lambda: run_status(store, run_id) == RunStatus.COMPLETED, 120, "the run did not complete elsewhere")
    logs = run_logs(store, run_id)
    assert any("stopped during the run; starting it again (retry 1 of 1)" in line for line in logs)
    assert sum(line.startswith("started on worker") for line in logs) == 2
