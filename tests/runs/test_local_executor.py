"""The local executor with real worker processes, real SQLite data sources and the real engine."""

from __future__ import annotations

import os
import signal

from governor.runs import service
from governor.runs.local import LocalExecutor
from governor.settings import Settings
from governor.store.db import Store
from governor.store.models import RunStatus
from tests.runs.conftest import (
    MASKING_CONFIG,
    SMALL_ROWS,
    Workflows,
    keep_config,
    read_people,
    wait_for,
    wait_status,
)

TERMINAL = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED)


def _submit(workflows: Workflows, executor: LocalExecutor, workflow_id: int) -> int:
    with workflows.store.session() as session:
        run_id = service.create_run(session, workflow_id, workflows.user_id).id
    executor.submit(run_id)
    return run_id


def _logs(workflows: Workflows, run_id: int) -> list[str]:
    with workflows.store.session() as session:
        return [line.message for line in service.list_logs(session, run_id)]


def _worker_pid(workflows: Workflows, run_id: int) -> int:
    wait_for(lambda: workflows.run(run_id).worker_id is not None)
    worker_id = workflows.run(run_id).worker_id
    assert worker_id is not None
    return int(worker_id.rsplit(":", 1)[1])


def test_a_run_completes_with_logs_progress_and_report(workflows: Workflows, executor: LocalExecutor) -> None:
    source, target = workflows.database(), workflows.database(None)
    workflow_id = workflows.workflow(workflows.data_source(source), workflows.data_source(target), MASKING_CONFIG)
    run_id = _submit(workflows, executor, workflow_id)

    run = wait_status(workflows, run_id, *TERMINAL)
    assert (run.status, run.error_message) == (RunStatus.COMPLETED, None)
    assert run.end_date is not None and run.end_date >= run.start_date >= run.created_at
    assert (run.tables_total, run.tables_done, run.rows_done) == (1, 1, SMALL_ROWS)
    assert run.report is not None
    [table] = run.report["tables"]
    assert (table["table"], table["mode"], table["rows_read"], table["rows_written"]) == (
        "main.people",
        "MASKING",
        SMALL_ROWS,
        SMALL_ROWS,
    )
    logs = _logs(workflows, run_id)
    assert logs[:2] == [f"queued by user {workflows.user_id} (config version 1)", "started"]
    assert f"main.people: {SMALL_ROWS} rows written" in logs
    assert logs[-1].startswith(f"completed: 1 tables, {SMALL_ROWS} rows written in ")

    original, masked = read_people(source), read_people(target)
    assert [row[0] for row in masked] == [row[0] for row in original]
    assert [row[2] for row in masked] == [row[2] for row in original]  # not configured: passed through
    assert all(m[1] != o[1] for m, o in zip(masked, original, strict=True))


def test_engine_errors_fail_the_run_with_the_engine_message(workflows: Workflows, executor: LocalExecutor) -> None:
    config = keep_config() + "tables:\n  - table_name_with_schema: no_such_table\n"
    run_id = _submit(workflows, executor, workflows.simple(config))
    run = wait_status(workflows, run_id, *TERMINAL)
    assert run.status == RunStatus.FAILED
    assert run.error_message is not None and "no_such_table" in run.error_message
    assert not run.error_message.startswith("internal error")
    assert _logs(workflows, run_id)[-1] == f"failed: {run.error_message}"


def test_stop_while_running_ends_stopped_within_a_batch(workflows: Workflows, executor: LocalExecutor) -> None:
    target = workflows.database(None)
    workflow_id = workflows.workflow(
        workflows.data_source(workflows.database(slow=True)), workflows.data_source(target), keep_config(1)
    )
    run_id = _submit(workflows, executor, workflow_id)
    wait_for(lambda: workflows.run(run_id).rows_done > 0)
    with workflows.store.session() as session:
        assert service.stop_run(session, run_id).status == RunStatus.STOPPING
    executor.stop(run_id)

    run = wait_status(workflows, run_id, *TERMINAL, timeout=20)
    assert (run.status, run.error_message) == (RunStatus.STOPPED, None)
    # A stopped run still reports how far each table got.
    [people] = run.report["tables"]
    assert people["table"] == "main.people" and people["rows_read"] > 0 and people["rows_written"] == 0
    logs = _logs(workflows, run_id)
    assert "stop requested; stopping after the current batch" in logs
    assert logs[-1] == "stopped: stopped while loading main.people"


def test_runs_writing_one_target_wait_for_each_other(workflows: Workflows, executor: LocalExecutor) -> None:
    target = workflows.data_source(workflows.database(None))
    first = workflows.workflow(workflows.data_source(workflows.database()), target)
    second = workflows.workflow(workflows.data_source(workflows.database()), target)
    elsewhere = workflows.simple()
    runs = [_submit(workflows, executor, w) for w in (first, second, elsewhere)]
    for run_id in runs:
        assert wait_status(workflows, run_id, *TERMINAL).status == RunStatus.COMPLETED
    one, two, other = (workflows.run(run_id) for run_id in runs)
    assert one.end_date is not None and two.start_date >= one.end_date
    assert other.start_date < one.end_date  # another target does not wait


def test_a_killed_worker_fails_its_run_and_the_next_run_goes_on(workflows: Workflows, executor: LocalExecutor) -> None:
    target = workflows.data_source(workflows.database(None))
    slow = workflows.workflow(workflows.data_source(workflows.database(slow=True)), target, keep_config(1))
    quick = workflows.workflow(workflows.data_source(workflows.database()), target)
    killed, after = _submit(workflows, executor, slow), _submit(workflows, executor, quick)
    os.kill(_worker_pid(workflows, killed), signal.SIGKILL)

    run = wait_status(workflows, killed, *TERMINAL)
    assert run.status == RunStatus.FAILED
    assert run.error_message == "the worker process running this run was killed by signal 9"
    assert wait_status(workflows, after, *TERMINAL).status == RunStatus.COMPLETED


def test_queued_runs_start_when_the_executor_starts_and_shutdown_fails_running_ones(
    workflows: Workflows, settings: Settings, store: Store
) -> None:
    slow = workflows.simple(keep_config(1), slow=True)
    quick = workflows.simple()
    with store.session() as session:
        slow_run = service.create_run(session, slow, workflows.user_id).id
        quick_run = service.create_run(session, quick, workflows.user_id).id
    executor = LocalExecutor(settings, store)
    executor.start()
    try:
        assert wait_status(workflows, quick_run, *TERMINAL).status == RunStatus.COMPLETED
        wait_for(lambda: workflows.run(slow_run).rows_done > 0)
    finally:
        executor.shutdown()
    run = workflows.run(slow_run)
    assert (run.status, run.error_message) == (RunStatus.FAILED, service.SERVER_STOPPED)
