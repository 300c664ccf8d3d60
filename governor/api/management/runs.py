"""Workflow runs in the management API: details with progress, lists, stop, logs, per-table report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from governor.api.auth import CurrentKey
from governor.api.deps import MAX_ID, IdPath, SessionDep, StoreDep
from governor.api.external import ApiRunLogLine, ExecutorDep
from governor.runs import service
from governor.store.models import RunStatus, WorkflowRun, WorkflowVersion

router = APIRouter(tags=["runs"])


class RunProgress(BaseModel):
    tables_total: int
    tables_done: int
    rows_done: int


class RunOut(BaseModel):
    id: int
    workflow_id: int
    workflow_version: int
    target_id: int
    user_id: int
    status: RunStatus
    created_at: datetime
    start_date: datetime
    end_date: datetime | None
    error_message: str | None
    stop_requested: bool
    worker_id: str | None
    heartbeat_at: datetime | None
    progress: RunProgress

    @classmethod
    def of(cls, run: WorkflowRun, version: int) -> RunOut:
        return cls(
            id=run.id,
            workflow_id=run.workflow_id,
            workflow_version=version,
            target_id=run.target_id,
            user_id=run.user_id,
            status=run.status,
            created_at=run.created_at,
            start_date=run.start_date,
            end_date=run.end_date,
            error_message=run.error_message,
            stop_requested=run.stop_requested,
            worker_id=run.worker_id,
            heartbeat_at=run.heartbeat_at,
            progress=RunProgress(tables_total=run.tables_total, tables_done=run.tables_done, rows_done=run.rows_done),
        )


class RunPage(BaseModel):
    items: list[RunOut]
    limit: int
    offset: int


class TableReportOut(BaseModel):
    table: str
    mode: str
    rows_read: int
    rows_written: int
    seconds: float


class RunReportOut(BaseModel):
    """Per-table figures of a completed run; empty until the run completes.

    The run's seed stays in the store: with it, masked values of guessable inputs could be
    reversed by trying them.
    """

    run_id: int
    status: RunStatus
    tables: list[TableReportOut]


def _outs(session: Session, runs: list[WorkflowRun]) -> list[RunOut]:
    """Runs with their config version numbers, fetched in one query."""
    ids = {run.workflow_version_id for run in runs}
    query = sa.select(WorkflowVersion.id, WorkflowVersion.version).where(WorkflowVersion.id.in_(ids))
    numbers: dict[int, int] = {row.id: row.version for row in session.execute(query)}
    return [RunOut.of(run, numbers[run.workflow_version_id]) for run in runs]


def _out(session: Session, run: WorkflowRun) -> RunOut:
    return _outs(session, [run])[0]


@router.get("/runs", response_model=RunPage, summary="Runs, newest first")
def list_all(
    key: CurrentKey,
    session: SessionDep,
    workflow_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[list[RunStatus], Query(description="Only runs in these states (repeatable)")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> RunPage:
    runs = service.list_runs(session, workflow_id, status, limit, offset)
    return RunPage(items=_outs(session, runs), limit=limit, offset=offset)


@router.get("/runs/{run_id}", response_model=RunOut)
def read(run_id: IdPath, key: CurrentKey, session: SessionDep) -> RunOut:
    return _out(session, service.get_run(session, run_id))


@router.post("/runs/{run_id}/stop", response_model=RunOut, summary="Stop a queued or running run")
def stop(run_id: IdPath, key: CurrentKey, store: StoreDep, executor: ExecutorDep) -> RunOut:
    with store.session() as session:
        run = _out(session, service.stop_run(session, run_id))
    if executor is not None:
        executor.stop(run_id)
    return run


@router.get("/runs/{run_id}/logs", response_model=list[ApiRunLogLine])
def logs(
    run_id: IdPath,
    key: CurrentKey,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Only lines after this line id")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[ApiRunLogLine]:
    return [ApiRunLogLine.of(line) for line in service.list_logs(session, run_id, after, limit)]


@router.get("/runs/{run_id}/report", response_model=RunReportOut)
def report(run_id: IdPath, key: CurrentKey, session: SessionDep) -> RunReportOut:
    run = service.get_run(session, run_id)
    tables = (run.report or {}).get("tables", [])
    return RunReportOut(run_id=run.id, status=run.status, tables=[TableReportOut(**table) for table in tables])
