"""One workflow run, executed in a worker process: the engine, its events, heartbeats and stop.

This module is what a worker process imports (the local executor preloads it in its fork server,
so that starting a run costs a fork, not an interpreter start-up). It owns no scheduling: the run
arrives RUNNING, and this code moves it to a terminal state, writing its log lines, progress and
per-table report to the store on the way.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection

from governor.engine.errors import EngineError, RunStopped
from governor.engine.runner import RunEvent, RunReport, run_workflow
from governor.runs import service
from governor.runs.logformat import configure_logging
from governor.runs.service import Progress
from governor.settings import Settings
from governor.store.crypto import UndecryptableError, redact
from governor.store.datasources import connection_url
from governor.store.db import Store, stuck_transaction_seconds
from governor.store.models import DataSource, RunStatus, WorkflowVersion

logger = logging.getLogger(__name__)

# The engine asks between every two batches; the store is read at most this often.
STOP_CHECK_SECONDS = 0.2
HEARTBEAT_SECONDS = 1.0


class _Job:
    """The state of one run inside its worker process, shared by the engine and the heartbeat."""

    def __init__(self, store: Store, run_id: int, worker_id: str | None = None, job_id: int | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.job_id = job_id
        self.progress = Progress(tables_total=0, tables_done=0, rows_done=0)
        self._rows_before_table = 0
        self._stop = False
        self._stop_checked = 0.0

    def log(self, message: str, level: str = "INFO") -> None:
        with self.store.session() as session:
            service.add_log(session, self.run_id, redact(message), level)

    def on_event(self, event: RunEvent) -> None:
        if event.kind == "plan":
            self.progress = replace(self.progress, tables_total=event.total or 0)
            self.log(event.message)
        elif event.kind == "table_started":
            self.log(f"{event.table}: started ({event.total} rows)")
        elif event.kind == "rows":
            self.progress = replace(self.progress, rows_done=self._rows_before_table + event.rows)
        elif event.kind == "table_finished":
            self._rows_before_table += event.rows
            self.progress = replace(
                self.progress, tables_done=self.progress.tables_done + 1, rows_done=self._rows_before_table
            )
            self.log(f"{event.table}: {event.rows} rows written")
        else:
            self.log(event.message)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._stop_checked >= STOP_CHECK_SECONDS:
            self._stop_checked = now
            with self.store.session() as session:
                self._stop = service.stop_requested(session, self.run_id, self.job_id)
        return self._stop

    def beat(self) -> None:
        with self.store.session() as session:
            service.heartbeat(session, self.run_id, self.worker_id, self.progress, self.job_id)


def _watch(job: _Job, lifeline: Connection, done: threading.Event, cut_off_after: float | None) -> None:
    """Heartbeats while the run goes on; exit at once if the process that started us is gone.

    ``lifeline`` is the reading end of a pipe whose only writer is that process: when it dies,
    the pipe reads as closed. An engine whose server or worker died must not go on writing the
    target: the run is failed or started again elsewhere, and the next run may take the target.
    For the same reason, an engine that cannot reach the metadata database for ``cut_off_after``
    seconds exits: by then its worker is being declared lost.
    """
    last_beat = last_good_beat = time.monotonic()
    while not done.is_set():
        if lifeline.poll(STOP_CHECK_SECONDS):
            logger.error("run %s: the process that started this one is gone; it exits", job.run_id)
            os._exit(1)
        now = time.monotonic()
        if now - last_beat >= HEARTBEAT_SECONDS:
            last_beat = now
            try:
                job.beat()
                last_good_beat = time.monotonic()
            except Exception:
                logger.exception("run %s: heartbeat failed", job.run_id)
                if cut_off_after is not None and time.monotonic() - last_good_beat >= cut_off_after:
                    logger.error(
                        "run %s: no heartbeat reached the metadata database for %g s; it exits",
                        job.run_id,
                        cut_off_after,
                    )
                    os._exit(1)


@dataclass(frozen=True)
class _Outcome:
    status: RunStatus
    error: str | None = None
    report: RunReport | None = None
    note: str = ""


def _completed(report: RunReport, seconds: float) -> _Outcome:
    rows = sum(table.rows_written for table in report.tables)
    note = f"completed: {len(report.tables)} tables, {rows} rows written in {seconds:.1f} s"
    return _Outcome(RunStatus.COMPLETED, report=report, note=note)


def _failed(error: str, report: RunReport | None = None) -> _Outcome:
    return _Outcome(RunStatus.FAILED, error=error, report=report, note=f"failed: {error}")


def _run(job: _Job, settings: Settings) -> _Outcome:
    """Run the engine and say how the run ended."""
    started = time.monotonic()
    with job.store.session() as session:
        run = service.get_run(session, job.run_id)
        version = session.get_one(WorkflowVersion, run.workflow_version_id)
        source = session.get_one(DataSource, version.workflow.source_id)
        target = session.get_one(DataSource, run.target_id)
        config_yaml = version.config_yaml
        try:
            source_url = connection_url(source, settings)
            target_url = connection_url(target, settings)
        except UndecryptableError as exc:
            return _failed(str(exc))
    job.log(f"source {source.name} ({source.url_display}), target {target.name} ({target.url_display})")
    try:
        report = run_workflow(config_yaml, source_url, target_url, job.on_event, job.should_stop)
    except RunStopped as exc:
        return _Outcome(RunStatus.STOPPED, report=exc.report, note=f"stopped: {exc}")
    except EngineError as exc:
        return _failed(redact(str(exc)), exc.report)
    except Exception as exc:
        logger.exception("run %s: internal error", job.run_id)
        return _failed(redact(f"internal error: {type(exc).__name__}: {exc}"))
    return _completed(report, time.monotonic() - started)


def execute(
    run_id: int, settings: Settings, lifeline: Connection, worker_id: str | None = None, job_id: int | None = None
) -> None:
    """The worker process's entry point: take the RUNNING run to a terminal state.

    ``worker_id`` and ``job_id`` name the ``governor worker`` that started this process and the
    Procrastinate job of this attempt (distributed executor): every write is fenced by the job, and
    the engine exits when cut off from the metadata database for half the dead-worker bound. By
    default the run shows this process's host and pid.
    """
    configure_logging(settings)
    store = Store(settings.effective_database_url, stuck_transaction_seconds(settings))
    job = _Job(store, run_id, worker_id, job_id)
    job.beat()  # the run shows its worker from the start
    done = threading.Event()
    cut_off_after = settings.worker_timeout / 2 if job_id is not None else None
    watcher = threading.Thread(target=_watch, args=(job, lifeline, done, cut_off_after), daemon=True)
    watcher.start()
    try:
        outcome = _run(job, settings)
        report = outcome.report.to_dict() if outcome.report is not None else None
        with store.session() as session:
            if service.finish_run(session, run_id, outcome.status, outcome.error, report, job.progress, job_id):
                ended = service.get_run(session, run_id).status
                note = outcome.note if ended == outcome.status else f"stopped after the last batch; {outcome.note}"
                service.add_log(session, run_id, note, "ERROR" if ended == RunStatus.FAILED else "INFO")
    finally:
        done.set()
        watcher.join()
        store.dispose()
