"""The life cycle of workflow runs (ARCHITECTURE §2), shared by the APIs, the CLI and the executors.

Every transition is a compare-and-set ``UPDATE ... WHERE status IN (...)``, committed by the
caller before anyone is told about it. The API (stop), the dispatcher (start) and the worker
processes (finish) therefore never overwrite each other's decisions, on SQLite as on PostgreSQL,
without holding row locks across processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governor.store.errors import Conflict, NotFound
from governor.store.models import RunLog, RunStatus, WorkflowRun, utcnow
from governor.store.workflows import get_workflow

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.STOPPING)
STARTED = (RunStatus.RUNNING, RunStatus.STOPPING)
SERVER_STOPPED = "the Governor server stopped during the run; start the run again"


def get_run(session: Session, run_id: int) -> WorkflowRun:
    run = session.get(WorkflowRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"workflow run {run_id} not found")
    return run


def add_log(session: Session, run_id: int, message: str, level: str = "INFO") -> None:
    session.add(RunLog(run_id=run_id, message=message, level=level, at=utcnow()))


def create_run(session: Session, workflow_id: int, user_id: int) -> WorkflowRun:
    """Queue a run of the workflow's current config version, on behalf of ``user_id``."""
    workflow = get_workflow(session, workflow_id)
    version = workflow.current
    run = WorkflowRun(
        workflow_id=workflow.id,
        workflow_version_id=version.id,
        target_id=workflow.target_id,
        user_id=user_id,
        status=RunStatus.QUEUED,
        start_date=utcnow(),
    )
    session.add(run)
    session.flush()
    add_log(session, run.id, f"queued by user {user_id} (config version {version.version})")
    return run


def _transition(
    session: Session, run_id: int, current: Iterable[RunStatus], of_job: int | None = None, **values: Any
) -> bool:
    """Apply ``values`` if the run is still in one of the ``current`` states; True if it was.

    ``of_job`` fences a distributed run's attempt: a write from a worker that was declared lost
    (its job replaced by a new one) matches nothing, whatever it believes.
    """
    statement = (
        sa.update(WorkflowRun)
        .where(WorkflowRun.id == run_id, WorkflowRun.status.in_(list(current)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if of_job is not None:
        statement = statement.where(WorkflowRun.job_id == of_job)
    return session.execute(statement).rowcount == 1


def stop_run(session: Session, run_id: int) -> WorkflowRun:
    """QUEUED -> STOPPED at once; RUNNING -> STOPPING (the worker stops within a batch).

    A run already STOPPING is returned as is; a finished run is a conflict.
    """
    if _transition(
        session, run_id, [RunStatus.QUEUED], status=RunStatus.STOPPED, stop_requested=True, end_date=utcnow()
    ):
        add_log(session, run_id, "stopped before it started")
    elif _transition(session, run_id, [RunStatus.RUNNING], status=RunStatus.STOPPING, stop_requested=True):
        add_log(session, run_id, "stop requested; stopping after the current batch")
    else:
        run = get_run(session, run_id)
        if run.status != RunStatus.STOPPING:
            raise Conflict(f"workflow run {run_id} has already ended ({run.status.value})")
    return get_run(session, run_id)


def stop_workflow(session: Session, workflow_id: int) -> WorkflowRun:
    """Stop every active run of the workflow and return the oldest of them.

    Runs of one workflow share its target and so run one at a time, oldest first: the oldest
    active run is the one running (now STOPPING) when one is, the one the client is waiting for,
    and the one whose worker the executor must be told about. Raises ``Conflict`` when nothing
    is queued or running.
    """
    get_workflow(session, workflow_id)
    active = session.scalars(
        sa.select(WorkflowRun.id)
        .where(WorkflowRun.workflow_id == workflow_id, WorkflowRun.status.in_(ACTIVE))
        .order_by(WorkflowRun.id)
    ).all()
    stopped = []
    for run_id in active:
        try:
            stopped.append(stop_run(session, run_id))
        except Conflict:
            continue  # it ended between the select and the stop
    if not stopped:
        raise Conflict(f"workflow {workflow_id} has no queued or running run to stop")
    return stopped[0]


def list_runs(
    session: Session,
    workflow_id: int | None = None,
    statuses: Sequence[RunStatus] = (),
    limit: int | None = None,
    offset: int = 0,
) -> list[WorkflowRun]:
    """Runs newest first, optionally of one workflow and in some states."""
    query = sa.select(WorkflowRun).order_by(WorkflowRun.id.desc()).offset(offset).limit(limit)
    if workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == workflow_id)
    if statuses:
        query = query.where(WorkflowRun.status.in_(list(statuses)))
    return list(session.scalars(query))


def list_logs(session: Session, run_id: int, after: int = 0, limit: int = 1000) -> list[RunLog]:
    """Log lines of a run in order; ``after`` (a line id) lets a client follow the log."""
    get_run(session, run_id)
    query = sa.select(RunLog).where(RunLog.run_id == run_id, RunLog.id > after).order_by(RunLog.id).limit(limit)
    return list(session.scalars(query))


def claim_runs(session: Session, slots: int) -> list[int]:
    """Start up to ``slots`` queued runs, oldest first, never two writing the same target.

    Only the executor's dispatcher calls this; the compare-and-set keeps a run stopped meanwhile
    by the API from starting.
    """
    if slots <= 0:
        return []
    busy = set(session.scalars(sa.select(WorkflowRun.target_id).where(WorkflowRun.status.in_(STARTED))))
    queued = session.execute(
        sa.select(WorkflowRun.id, WorkflowRun.target_id)
        .where(WorkflowRun.status == RunStatus.QUEUED)
        .order_by(WorkflowRun.id)
    ).all()
    claimed: list[int] = []
    for run_id, target_id in queued:
        if len(claimed) == slots:
            break
        if target_id in busy:
            continue
        if start_run(session, run_id):
            busy.add(target_id)
            claimed.append(run_id)
    return claimed


def start_run(session: Session, run_id: int, worker_id: str | None = None, job_id: int | None = None) -> bool:
    """QUEUED -> RUNNING; False if the run is no longer queued (stopped meanwhile, or taken), or
    no longer the attempt of job ``job_id``."""
    now = utcnow()
    values = {"status": RunStatus.RUNNING, "start_date": now, "heartbeat_at": now, "worker_id": worker_id}
    if not _transition(session, run_id, [RunStatus.QUEUED], job_id, **values):
        return False
    add_log(session, run_id, f"started on worker {worker_id}" if worker_id else "started")
    return True


@dataclass(frozen=True)
class Progress:
    """Tables and rows done so far; the field names are the run's columns."""

    tables_total: int
    tables_done: int
    rows_done: int


def heartbeat(session: Session, run_id: int, worker_id: str, progress: Progress, job_id: int | None = None) -> bool:
    """Record that the worker is alive, and its progress; False if the run is not its any more."""
    return _transition(session, run_id, STARTED, job_id, heartbeat_at=utcnow(), worker_id=worker_id, **asdict(progress))


def stop_requested(session: Session, run_id: int, job_id: int | None = None) -> bool:
    """Whether the run should stop: asked to, or no longer one this worker may run (ended, or
    taken over by another attempt than job ``job_id``)."""
    status, requested, current_job = session.execute(
        sa.select(WorkflowRun.status, WorkflowRun.stop_requested, WorkflowRun.job_id).where(WorkflowRun.id == run_id)
    ).one()
    return requested or status not in STARTED or (job_id is not None and current_job != job_id)


def finish_run(
    session: Session,
    run_id: int,
    status: RunStatus,
    error_message: str | None = None,
    report: dict[str, Any] | None = None,
    progress: Progress | None = None,
    job_id: int | None = None,
) -> bool:
    """Move a started run to a terminal state; False if it had already ended (e.g. reconciled) or
    is no longer the attempt of job ``job_id``.

    A run asked to stop ends STOPPED even if the engine got to the end, as the state machine says
    (STOPPING only leads to STOPPED), unless it failed: a failure is still reported as one.
    """
    values: dict[str, Any] = {"end_date": utcnow(), "error_message": error_message}
    if report is not None:
        values["report"] = report
    if progress is not None:
        values.update(asdict(progress))
    if status == RunStatus.COMPLETED:
        if _transition(session, run_id, [RunStatus.RUNNING], job_id, status=status, **values):
            return True
        status = RunStatus.STOPPED
    return _transition(session, run_id, STARTED, job_id, status=status, **values)


def fail_started_runs(
    session: Session, message: str, run_ids: Sequence[int] | None = None, job_id: int | None = None
) -> list[int]:
    """End RUNNING/STOPPING runs (all, or those given, of job ``job_id`` if given) as FAILED.

    At start-up this reconciles what a dead server left behind: no worker of this server can
    still be running them.
    """
    return _fail(session, message, STARTED, run_ids, job_id)


def fail_queued_run(session: Session, run_id: int, message: str) -> bool:
    """QUEUED -> FAILED, for a run that no worker can ever take (say, its data sources' groups)."""
    return bool(_fail(session, message, [RunStatus.QUEUED], [run_id]))


def _fail(
    session: Session,
    message: str,
    current: Sequence[RunStatus],
    run_ids: Sequence[int] | None = None,
    job_id: int | None = None,
) -> list[int]:
    query = sa.select(WorkflowRun.id).where(WorkflowRun.status.in_(current))
    if run_ids is not None:
        query = query.where(WorkflowRun.id.in_(list(run_ids)))
    failed = []
    for run_id in session.scalars(query).all():
        values = {"status": RunStatus.FAILED, "error_message": message, "end_date": utcnow()}
        if _transition(session, run_id, current, job_id, **values):
            add_log(session, run_id, message, level="ERROR")
            failed.append(run_id)
    return failed


def requeue_run(session: Session, run_id: int, message: str) -> bool:
    """RUNNING -> QUEUED, for a run whose worker was lost and whose workflow asks for retries.

    The one transition back: the run starts again from the beginning, on whichever worker takes it.
    A run asked to stop meanwhile (STOPPING) is not started again.
    """
    progress = asdict(Progress(tables_total=0, tables_done=0, rows_done=0))
    if not _transition(
        session, run_id, [RunStatus.RUNNING], status=RunStatus.QUEUED, worker_id=None, heartbeat_at=None, **progress
    ):
        return False
    add_log(session, run_id, message, level="WARNING")
    return True
