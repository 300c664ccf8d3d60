"""The distributed executor: runs execute on ``governor worker`` processes of any machine, through
Procrastinate's queue in the PostgreSQL metadata database (``GOVERNOR_EXECUTOR=procrastinate``).

- The server writes a run and its Procrastinate job in one transaction (``enqueue``): no
  acknowledged run without a job, no job without its run.
- A run's queue is the worker group of its data sources; only workers listening on that queue
  take it. ``default`` means "any worker reaches it", so a run goes to the one group of its
  source and target that is not ``default``; two different groups cannot be served.
- The job's Procrastinate lock is the run's target: runs writing one target run one after the
  other, whichever machines take them.
- Stop: the run's state says it (the engine reads it between batches), and Procrastinate's
  abort tells the worker (a job still waiting is cancelled at once).
- Dead workers: workers heartbeat; a reaper, in the server and in every worker, takes the jobs of
  workers silent for ``GOVERNOR_WORKER_TIMEOUT`` and ends their runs FAILED, or QUEUED again while
  the workflow's ``worker_lost_retries`` allow.
- Attempts: each attempt at a run is a job of its own (the reaper defers a new one to start a run
  again), and the run remembers its current job. Every write a worker makes to a run is fenced by
  its job, so a worker declared lost that comes back (a paused VM, a healed partition) can neither
  end nor heartbeat the run, and its engine stops at the next batch.

On a worker, each run's engine executes in a process of its own (``governor.runs.worker``), forked
from a fork server that preloaded the engine, and holding a lifeline pipe so that it dies with
its worker: a lost worker never leaves an engine writing a target that the next run may take.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

import procrastinate
import psycopg
import sqlalchemy as sa
from procrastinate import sql as procrastinate_sql
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Job
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from governor.engine.config import parse_config
from governor.engine.errors import ConfigError
from governor.runs import service
from governor.runs.executor import Executor, engine_processes
from governor.settings import Settings
from governor.store.db import Store
from governor.store.errors import Conflict
from governor.store.models import DataSource, RunStatus, Worker, Workflow, WorkflowRun, WorkflowVersion

logger = logging.getLogger(__name__)

TASK_NAME = "governor.execute_run"
DEFAULT_GROUP = "default"
# Procrastinate notifies a queue on the channel "procrastinate_queue_v1#<queue>", and PostgreSQL
# refuses channel names of 64 bytes or more: longer worker groups get a shortened, hashed queue.
_MAX_QUEUE_BYTES = 40
# Any constant: one reaper at a time per metadata database.
REAPER_LOCK_ID = 0x60BE_4A0C
# Jobs that wait for a target (Procrastinate's lock) are looked for this often, as their release
# sends no notification; new jobs are heard of at once (LISTEN/NOTIFY).
FETCH_POLL_SECONDS = 0.5
ABORT_POLL_SECONDS = 1.0
# How often a worker thread looks at its engine process and at abort requests.
WATCH_SECONDS = 0.2
# On SIGTERM, running runs get this long to end before their engines are terminated.
SHUTDOWN_GRACE_SECONDS = 5.0
# A queue worker that stopped by itself (its database went away) starts again after this.
RESTART_SECONDS = 2.0
# Procrastinate's queries run on our own connections (inside our transactions) through this.
_SQL = procrastinate.SyncPsycopgConnector()
_JOBS = sa.table("procrastinate_jobs", sa.column("id"), sa.column("status"))


class DistributedUnavailable(Exception):
    """The settings cannot run the distributed executor (one line, for the user)."""


def check_settings(settings: Settings) -> None:
    if sa.make_url(settings.effective_database_url).get_backend_name() != "postgresql":
        raise DistributedUnavailable(
            "the procrastinate executor (governor worker) needs PostgreSQL metadata: "
            "set GOVERNOR_DATABASE_URL to a postgresql:// URL"
        )


@dataclass(frozen=True)
class Timing:
    """Every interval of the dead-worker detection, from ``GOVERNOR_WORKER_TIMEOUT``.

    A worker is declared lost when silent for ``stalled_after``; reapers look every
    ``reap_every``, so a lost worker is noticed within ``timeout`` of its last heartbeat.
    """

    timeout: float

    @property
    def heartbeat(self) -> float:
        return self.timeout / 10

    @property
    def reap_every(self) -> float:
        return self.timeout / 10

    @property
    def stalled_after(self) -> float:
        return self.timeout - self.reap_every


def queue_of(worker_group: str) -> str:
    """The Procrastinate queue of a worker group."""
    raw = worker_group.encode()
    if len(raw) <= _MAX_QUEUE_BYTES:
        return worker_group
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return f"{raw[:31].decode(errors='ignore')}~{digest}"


def run_group(source: DataSource, target: DataSource) -> str:
    """The worker group whose workers may run a workflow from ``source`` to ``target``."""
    groups = {source.worker_group, target.worker_group} - {DEFAULT_GROUP}
    if len(groups) > 1:
        raise Conflict(
            f"no worker can run this workflow: its source is in worker group {source.worker_group!r} "
            f"and its target in {target.worker_group!r}; put both in one group (or one in 'default')"
        )
    return groups.pop() if groups else DEFAULT_GROUP


def target_lock(target_id: int) -> str:
    return f"governor-target-{target_id}"


def _conninfo(settings: Settings) -> str:
    """libpq's form of the metadata URL (SQLAlchemy's names a driver libpq does not know)."""
    url = sa.make_url(settings.effective_database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _driver_connection(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under the session, inside the session's transaction."""
    return session.connection().connection.driver_connection  # type: ignore[return-value]


def make_app(connector: procrastinate.PsycopgConnector | procrastinate.SyncPsycopgConnector) -> procrastinate.App:
    app = procrastinate.App(connector=connector)
    app.task(name=TASK_NAME, pass_context=True)(_run_job)
    return app


# --- server side -------------------------------------------------------------------------------


def enqueue_run(session: Session, run_id: int, attempt: int = 0) -> int:
    """Defer a job for the run in the session's transaction and make it the run's current one.

    ``attempt`` counts the starts after lost workers, for ``worker_lost_retries``.
    """
    run = service.get_run(session, run_id)
    workflow = session.get_one(Workflow, run.workflow_id)
    target = session.get_one(DataSource, run.target_id)
    queue = queue_of(run_group(workflow.source, target))
    deferrer = _QUEUE.configure_task(
        TASK_NAME, queue=queue, lock=target_lock(target.id), connection=_driver_connection(session)
    )
    job_id = deferrer.defer(run_id=run_id, attempt=attempt)
    session.execute(sa.update(WorkflowRun).where(WorkflowRun.id == run_id).values(job_id=job_id))
    return job_id


def abort_run(session: Session, run_id: int) -> None:
    """Cancel the run's job if it still waits, or ask its worker to abort it."""
    job_id = session.scalar(sa.select(WorkflowRun.job_id).where(WorkflowRun.id == run_id))
    if job_id is not None:
        _QUEUE.job_manager.cancel_job_by_id(job_id, abort=True, connection=_driver_connection(session))


def _lost_message(worker_id: str | None, timing: Timing) -> str:
    return (
        f"the Governor worker {worker_id or '(unknown)'} running this run was lost: "
        f"no heartbeat for {timing.stalled_after:g} s"
    )


def _retries(session: Session, run: WorkflowRun) -> int:
    config_yaml = session.scalar(
        sa.select(WorkflowVersion.config_yaml).where(WorkflowVersion.id == run.workflow_version_id)
    )
    try:
        return parse_config(config_yaml or "").worker_lost_retries
    except ConfigError:
        return 0


def _reap_job(session: Session, job: Job, timing: Timing) -> None:
    """Settle the job of a lost worker, and end its run, or queue the run again with a new job.

    A run the lost worker had not started yet is queued again as it was; a started one only while
    the workflow's ``worker_lost_retries`` allow, from the beginning.
    """
    _SQL.execute_query_one_with_connection(
        _driver_connection(session),
        query=procrastinate_sql.queries["finish_job"],
        job_id=job.id,
        status="failed",
        delete_job=False,
    )
    run = session.get(WorkflowRun, job.task_kwargs.get("run_id"), populate_existing=True)
    if run is None or run.job_id != job.id:
        return  # the job of an attempt the run has left behind
    attempt = int(job.task_kwargs.get("attempt", 0))
    lost = _lost_message(run.worker_id, timing)
    if run.status == RunStatus.QUEUED:
        enqueue_run(session, run.id, attempt)
        service.add_log(session, run.id, f"{lost} before it started the run; queued again", level="WARNING")
        logger.warning("run %s: %s before it started the run; queued again", run.id, lost)
        return
    start_again_or_fail(session, run, attempt, lost)


def start_again_or_fail(session: Session, run: WorkflowRun, attempt: int, reason: str) -> None:
    """A started run its worker can no longer go on with: queued again with a new job while the
    workflow's ``worker_lost_retries`` allow (from the beginning, on any worker), else FAILED."""
    retries = _retries(session, run)
    again = f"{reason}; starting it again (retry {attempt + 1} of {retries})"
    if attempt < retries and service.requeue_run(session, run.id, again):
        enqueue_run(session, run.id, attempt + 1)
        logger.warning("run %s: %s", run.id, again)
    elif service.fail_started_runs(session, reason, [run.id], run.job_id):
        logger.error("run %s: %s", run.id, reason)


def _fail_runs_without_job(session: Session) -> None:
    """Runs still started whose job has ended: their task failed before it could end them.

    A job is ``doing`` from before its task starts its run until after the task has ended it,
    and a lost worker's run and job are settled together, so this never races a live worker.
    """
    doing = sa.exists().where(_JOBS.c.id == WorkflowRun.job_id, sa.cast(_JOBS.c.status, sa.Text) == "doing")
    orphans = session.scalars(
        sa.select(WorkflowRun.id).where(
            WorkflowRun.status.in_(service.STARTED), WorkflowRun.job_id.is_not(None), ~doing
        )
    ).all()
    message = "the Governor worker running this run ended its job without ending the run; start the run again"
    for run_id in service.fail_started_runs(session, message, orphans):
        logger.error("run %s: %s", run_id, message)


def reap(store: Store, timing: Timing) -> None:
    """One pass of the dead-worker detection, in one transaction, by one process at a time."""
    with store.session() as session:
        if not session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(REAPER_LOCK_ID))):
            return
        rows = _SQL.execute_query_all_with_connection(
            _driver_connection(session),
            query=procrastinate_sql.queries["select_stalled_jobs_by_heartbeat"],
            queue=None,
            task_name=TASK_NAME,
            seconds_since_heartbeat=timing.stalled_after,
        )
        for row in rows:
            _reap_job(session, Job.from_row(row), timing)
        _fail_runs_without_job(session)
        silent_since = sa.func.now() - timedelta(seconds=timing.stalled_after)
        session.execute(sa.delete(Worker).where(Worker.last_heartbeat < silent_since))


class DistributedExecutor(Executor):
    """The server's side: queue, stop, and reap; the runs execute on ``governor worker``s."""

    def __init__(self, settings: Settings, store: Store) -> None:
        check_settings(settings)
        self._store = store
        self._timing = Timing(settings.worker_timeout)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Queue the runs left QUEUED without a job (by a server with another executor), then reap."""
        with self._store.session() as session:
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(REAPER_LOCK_ID)))
            orphans = session.scalars(
                sa.select(WorkflowRun.id)
                .where(WorkflowRun.status == RunStatus.QUEUED, WorkflowRun.job_id.is_(None))
                .order_by(WorkflowRun.id)
            ).all()
            for run_id in orphans:
                try:
                    enqueue_run(session, run_id)
                except Conflict as exc:
                    service.fail_queued_run(session, run_id, str(exc))
        if orphans:
            logger.info("runs %s were queued without a job: now queued for the workers", list(orphans))
        self._thread = threading.Thread(target=self._reap_loop, name="governor-reaper", daemon=True)
        self._thread.start()

    def enqueue(self, session: Session, run_id: int) -> None:
        enqueue_run(session, run_id)

    def submit(self, run_id: int) -> None:
        """Nothing to do: workers hear of the committed job from PostgreSQL (LISTEN/NOTIFY)."""

    def stop(self, run_id: int) -> None:
        try:
            with self._store.session() as session:
                abort_run(session, run_id)
        except Exception:
            # The stop is persisted on the run: the engine reads it between batches anyway.
            logger.exception("run %s: could not abort its job; the worker stops it by the run's state", run_id)

    def shutdown(self) -> None:
        """Stop reaping; runs go on on their workers."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join()

    def _reap_loop(self) -> None:
        while not self._closing.wait(self._timing.reap_every):
            try:
                reap(self._store, self._timing)
            except Exception:
                logger.exception("reaper: could not look for lost workers; retrying")


# --- worker side -------------------------------------------------------------------------------


def list_workers(session: Session) -> list[tuple[Worker, list[int]]]:
    """Registered workers, oldest first, each with the runs it is running."""
    workers = session.scalars(sa.select(Worker).order_by(Worker.started_at, Worker.id)).all()
    running: dict[str, list[int]] = {}
    for run_id, worker_id in session.execute(
        sa.select(WorkflowRun.id, WorkflowRun.worker_id)
        .where(WorkflowRun.status.in_(service.STARTED), WorkflowRun.worker_id.is_not(None))
        .order_by(WorkflowRun.id)
    ):
        running.setdefault(worker_id, []).append(run_id)
    return [(worker, running.get(worker.id, [])) for worker in workers]


class _Runtime:
    """One ``governor worker`` process: its identity, its store, and the runs it executes."""

    def __init__(self, settings: Settings, store: Store, groups: Sequence[str], concurrency: int) -> None:
        self.settings = settings
        self.store = store
        self.groups = list(groups)
        self.concurrency = concurrency
        self.timing = Timing(settings.worker_timeout)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        self._processes = engine_processes()

    def beat(self) -> None:
        """Say this worker is alive (registering it again if a reaper forgot it)."""
        with self.store.session() as session:
            values = {
                "id": self.worker_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": self.groups,
                "concurrency": self.concurrency,
                "last_heartbeat": sa.func.now(),
            }
            statement = pg_insert(Worker).values(**values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=[Worker.id], set_={"last_heartbeat": statement.excluded.last_heartbeat}
                )
            )

    def unregister(self) -> None:
        with self.store.session() as session:
            session.execute(sa.delete(Worker).where(Worker.id == self.worker_id))

    async def keep_alive(self) -> None:
        """Heartbeat in the workers table and reap lost workers' runs, until cancelled."""
        while True:
            await asyncio.sleep(self.timing.heartbeat)
            try:
                await asyncio.to_thread(self.beat)
                await asyncio.to_thread(reap, self.store, self.timing)
            except Exception:
                logger.exception("worker %s: heartbeat or reaper failed; retrying", self.worker_id)

    def execute(self, context: JobContext, run_id: int) -> None:
        """Take the run from QUEUED to a terminal state in an engine process (a worker thread)."""
        job_id = context.job.id
        assert job_id is not None
        with self.store.session() as session:
            if not service.start_run(session, run_id, self.worker_id, job_id):
                status = service.get_run(session, run_id).status.value
                logger.info("run %s: %s, not queued for this job any more; nothing to do", run_id, status)
                return
        lifeline, keep = self._processes.Pipe(duplex=False)
        process = self._processes.Process(
            target=_execute_engine,
            args=(run_id, self.settings, lifeline, self.worker_id, job_id),
            name=f"governor-run-{run_id}",
        )
        try:
            process.start()
        except Exception as exc:
            keep.close()
            self._fail(run_id, job_id, f"could not start an engine process: {exc}")
            return
        finally:
            lifeline.close()
        logger.info("run %s: started in engine process %s", run_id, process.pid)
        try:
            shutdown = self._watch(context, run_id, process)
        finally:
            # Whatever failed here, the job ends with this task: its engine must not outlive it.
            if process.exitcode is None:
                process.terminate()
                process.join()
            keep.close()
        if shutdown:
            self._leave(run_id, job_id, int(context.job.task_kwargs.get("attempt", 0)))
        else:  # the engine ends its run itself; if it could not, the run ends here
            self._fail(run_id, job_id, f"the engine process of this run {_exit_reason(process.exitcode)}")

    def _leave(self, run_id: int, job_id: int, attempt: int) -> None:
        """This worker stops during the run: another worker starts it again if the workflow allows."""
        with self.store.session() as session:
            run = service.get_run(session, run_id)
            if run.job_id == job_id and run.status in service.STARTED:
                reason = f"the Governor worker {self.worker_id} stopped during the run"
                start_again_or_fail(session, run, attempt, reason)

    def _watch(self, context: JobContext, run_id: int, process: multiprocessing.process.BaseProcess) -> bool:
        """Wait for the engine; pass on an abort as a stop. True if the worker shut down meanwhile."""
        stop_asked = False
        while True:
            process.join(WATCH_SECONDS)
            if process.exitcode is not None:
                return False
            reason = context.abort_reason()
            if reason == AbortReason.SHUTDOWN:
                return True
            if reason == AbortReason.USER_REQUEST and not stop_asked:
                stop_asked = True
                self._request_stop(run_id)

    def _request_stop(self, run_id: int) -> None:
        """An abort not sent by Governor's own stop (which persisted it first): persist it now."""
        try:
            with self.store.session() as session:
                service.stop_run(session, run_id)
        except Conflict:
            pass  # it has just ended

    def _fail(self, run_id: int, job_id: int, message: str) -> None:
        with self.store.session() as session:
            if service.fail_started_runs(session, message, [run_id], job_id):
                logger.error("run %s: %s", run_id, message)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by signal {-exitcode}"
    return f"ended without finishing the run (exit code {exitcode})"


def _execute_engine(run_id: int, settings: Settings, lifeline: Connection, worker_id: str, job_id: int) -> None:
    """Import the engine's runner lazily: only the engine process needs it."""
    from governor.runs.worker import execute

    execute(run_id, settings, lifeline, worker_id, job_id)


def _run_job(context: JobContext, run_id: int, attempt: int = 0) -> None:
    """The Procrastinate task: a sync task, so Procrastinate runs it in a thread of the worker.

    ``attempt`` is the reaper's to read (``worker_lost_retries``); the run is the same whatever it is.
    """
    runtime: _Runtime = context.additional_context["governor"]
    runtime.execute(context, run_id)


# The server and the reapers pass their own connection (their transaction) to every call, so this
# app never opens a pool of its own.
_QUEUE = make_app(_SQL)


async def _work(app: procrastinate.App, runtime: _Runtime, signalled: asyncio.Event) -> None:
    """Run Procrastinate's worker until a signal; start it again whenever it stops by itself.

    Procrastinate stops its worker when one of its side tasks (heartbeat, LISTEN) loses the
    database, as a PostgreSQL restart or failover does: a worker machine must not go idle for that.
    Its running runs were failed as stopped; new ones are taken as soon as the database is back.
    """
    while not signalled.is_set():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=[queue_of(group) for group in runtime.groups],
                concurrency=runtime.concurrency,
                name=runtime.worker_id,
                additional_context={"governor": runtime},
                fetch_job_polling_interval=FETCH_POLL_SECONDS,
                abort_job_polling_interval=ABORT_POLL_SECONDS,
                shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
                update_heartbeat_interval=runtime.timing.heartbeat,
                stalled_worker_timeout=runtime.timing.stalled_after,
                delete_jobs="successful",
                install_signal_handlers=False,
            ),
            name="procrastinate-worker",
        )
        waiting = asyncio.create_task(signalled.wait())
        await asyncio.wait({worker, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if signalled.is_set():
            worker.cancel()  # Procrastinate's graceful shutdown: running runs get their grace period
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            return
        reason = " ".join(str(worker.exception() or "a side task lost the metadata database").split())
        logger.error("worker %s: its queue worker stopped (%s); starting it again", runtime.worker_id, reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signalled.wait(), RESTART_SECONDS)


async def _serve(runtime: _Runtime) -> None:
    loop = asyncio.get_running_loop()
    # Each running run holds a thread (the task), and heartbeats and reaping need one more.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=runtime.concurrency + 4))
    signalled = asyncio.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, signalled.set)
    await asyncio.to_thread(runtime.beat)
    connector = procrastinate.PsycopgConnector(conninfo=_conninfo(runtime.settings))
    app = make_app(connector)
    alive = asyncio.create_task(runtime.keep_alive(), name="governor-keep-alive")
    try:
        async with app.open_async():
            await _work(app, runtime, signalled)
    finally:
        alive.cancel()
        await asyncio.to_thread(runtime.unregister)


def run_worker(settings: Settings, store: Store, groups: Sequence[str], concurrency: int) -> str:
    """Execute runs of the given worker groups until SIGINT or SIGTERM; returns the worker's id."""
    check_settings(settings)
    runtime = _Runtime(settings, store, groups, concurrency)
    logger.info(
        "Governor worker %s: worker groups %s, %s runs at once", runtime.worker_id, ", ".join(groups), concurrency
    )
    asyncio.run(_serve(runtime))
    return runtime.worker_id
