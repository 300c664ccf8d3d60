"""The External API (``/external/api/v1``): the seed's contract, plus stop, runsync, logs and workers.

Shapes and field names are exactly those of ``spec/governor-external-api.yaml``; what newer
Governor versions added never changes them. Every route needs a valid ``X-Access-Key``; the key's
user is the run's ``user_id``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from governor.api.auth import CurrentKey, current_key
from governor.api.deps import MAX_ID, StoreDep
from governor.runs import service
from governor.runs.distributed import list_workers
from governor.runs.executor import Executor
from governor.store.db import Store
from governor.store.models import RunLog, RunStatus, Worker, WorkflowRun
from governor.store.workflows import get_workflow

router = APIRouter(dependencies=[Depends(current_key)])

# The seed's ids are any int64: one that names nothing is 404, one outside int64 is bad input (422).
Int64Path = Annotated[int, Path(ge=-(2**63), le=MAX_ID)]

# How often runsync looks at the run: a client waiting on it gets the end within this.
RUNSYNC_POLL_SECONDS = 0.2


class ApiWorkflowRunResponse(BaseModel):
    workflow_run_id: int
    workflow_run_status: RunStatus
    start_date: datetime
    end_date: datetime | None
    user_id: int
    error_message: str | None

    @classmethod
    def of(cls, run: WorkflowRun) -> ApiWorkflowRunResponse:
        return cls(
            workflow_run_id=run.id,
            workflow_run_status=run.status,
            start_date=run.start_date,
            end_date=run.end_date,
            user_id=run.user_id,
            error_message=run.error_message,
        )


class ApiRunLogLine(BaseModel):
    id: int
    at: datetime
    level: str
    message: str

    @classmethod
    def of(cls, line: RunLog) -> ApiRunLogLine:
        return cls(id=line.id, at=line.at, level=line.level, message=line.message)


class ApiWorker(BaseModel):
    """A ``governor worker`` process (distributed executor) and the runs it is running."""

    worker_id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    last_heartbeat: datetime
    current_runs: list[int]

    @classmethod
    def of(cls, worker: Worker, current_runs: list[int]) -> ApiWorker:
        return cls(
            worker_id=worker.id,
            host=worker.host,
            pid=worker.pid,
            queues=worker.queues,
            concurrency=worker.concurrency,
            started_at=worker.started_at,
            last_heartbeat=worker.last_heartbeat,
            current_runs=current_runs,
        )


def get_executor(request: Request) -> Executor | None:
    """The app's executor; None in an app that only manages (runs then wait QUEUED)."""
    return request.app.state.executor


ExecutorDep = Annotated[Executor | None, Depends(get_executor)]


def queue_run(store: Store, executor: Executor | None, workflow_id: int, user_id: int) -> ApiWorkflowRunResponse:
    """Queue a run (committed before anyone hears of it, with its job if the executor keeps one)
    and hand it to the executor."""
    with store.session() as session:
        run = service.create_run(session, workflow_id, user_id)
        if executor is not None:
            executor.enqueue(session, run.id)
        response = ApiWorkflowRunResponse.of(run)
    if executor is not None:
        executor.submit(response.workflow_run_id)
    return response


def fetch_run(store: Store, run_id: int) -> ApiWorkflowRunResponse:
    with store.session() as session:
        return ApiWorkflowRunResponse.of(service.get_run(session, run_id))


@router.get("/healthy", operation_id="getExternalHealth", tags=["external_health"])
def healthy() -> str:
    return "OK"


@router.post("/workflow/{workflow_id}/run", operation_id="runWorkflow", tags=["external_workflow_run"])
def run_workflow(
    store: StoreDep, executor: ExecutorDep, workflow_id: Int64Path, key: CurrentKey
) -> ApiWorkflowRunResponse:
    """Queue a run of the workflow; it starts as soon as a worker and its target are free."""
    return queue_run(store, executor, workflow_id, key.user_id)


@router.get("/workflow-run/{id}", operation_id="getWorkflowRun", tags=["external_workflow_run"])
def get_workflow_run(store: StoreDep, id: Int64Path) -> ApiWorkflowRunResponse:
    return fetch_run(store, id)


@router.get("/workflow/{workflow_id}/runs", operation_id="listWorkflowRuns", tags=["external_workflow_run"])
def list_workflow_runs(store: StoreDep, workflow_id: Int64Path) -> list[ApiWorkflowRunResponse]:
    """All runs of the workflow, newest first."""
    with store.session() as session:
        get_workflow(session, workflow_id)
        return [ApiWorkflowRunResponse.of(run) for run in service.list_runs(session, workflow_id)]


@router.post("/workflow/{workflow_id}/stop", operation_id="stopWorkflow", tags=["external_workflow_run"])
def stop_workflow(store: StoreDep, executor: ExecutorDep, workflow_id: Int64Path) -> ApiWorkflowRunResponse:
    """Stop the workflow's active runs and return the oldest (the running one, if any); 409 when none is active."""
    with store.session() as session:
        response = ApiWorkflowRunResponse.of(service.stop_workflow(session, workflow_id))
    if executor is not None:
        executor.stop(response.workflow_run_id)
    return response


@router.post("/workflow/{workflow_id}/runsync", operation_id="runWorkflowSync", tags=["external_workflow_run"])
async def run_workflow_sync(
    request: Request, store: StoreDep, executor: ExecutorDep, workflow_id: Int64Path, key: CurrentKey
) -> ApiWorkflowRunResponse:
    """Queue a run and answer when it has ended (COMPLETED, FAILED or STOPPED)."""
    response = await run_in_threadpool(queue_run, store, executor, workflow_id, key.user_id)
    while not response.workflow_run_status.terminal:
        if await request.is_disconnected():
            break
        await asyncio.sleep(RUNSYNC_POLL_SECONDS)
        response = await run_in_threadpool(fetch_run, store, response.workflow_run_id)
    return response


@router.get("/workflow-run/{id}/logs", operation_id="getWorkflowRunLogs", tags=["external_workflow_run"])
def get_workflow_run_logs(
    store: StoreDep,
    id: Int64Path,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Only lines after this line id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[ApiRunLogLine]:
    """The run's log lines in order; pass the last ``id`` seen as ``after`` to follow it."""
    with store.session() as session:
        return [ApiRunLogLine.of(line) for line in service.list_logs(session, id, after, limit)]


@router.get("/workers", operation_id="listWorkers", tags=["external_workers"])
def get_workers(store: StoreDep) -> list[ApiWorker]:
    """The running ``governor worker`` processes (GOVERNOR_EXECUTOR=procrastinate), oldest first;
    a worker silent for GOVERNOR_WORKER_TIMEOUT is dropped, its runs failed or queued again."""
    with store.session() as session:
        return [ApiWorker.of(worker, runs) for worker, runs in list_workers(session)]
