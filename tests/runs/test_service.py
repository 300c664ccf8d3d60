"""The run life cycle on a real store, without executing anything: transitions and their races."""

from __future__ import annotations

import pytest

from governor.runs import service
from governor.store.errors import Conflict, NotFound
from governor.store.models import RunLog, RunStatus
from tests.runs.conftest import Workflows


def _create(workflows: Workflows, workflow_id: int) -> int:
    with workflows.store.session() as session:
        return service.create_run(session, workflow_id, workflows.user_id).id


def _claim(workflows: Workflows, slots: int) -> list[int]:
    with workflows.store.session() as session:
        return service.claim_runs(session, slots)


def test_a_run_is_queued_with_its_version_target_and_user(workflows: Workflows) -> None:
    workflow_id = workflows.simple()
    run_id = _create(workflows, workflow_id)
    run = workflows.run(run_id)
    assert (run.status, run.user_id, run.end_date, run.error_message) == (
        RunStatus.QUEUED,
        workflows.user_id,
        None,
        None,
    )
    assert run.start_date is not None and run.start_date.tzinfo is not None
    with workflows.store.session() as session:
        assert [line.message for line in service.list_logs(session, run_id)] == [
            f"queued by user {workflows.user_id} (config version 1)"
        ]


def test_unknown_workflow_and_run_are_not_found(workflows: Workflows) -> None:
    with workflows.store.session() as session, pytest.raises(NotFound, match="workflow 999 not found"):
        service.create_run(session, 999, workflows.user_id)
    with workflows.store.session() as session, pytest.raises(NotFound, match="workflow run 999 not found"):
        service.get_run(session, 999)


def test_claim_starts_oldest_first_and_serializes_runs_on_one_target(workflows: Workflows) -> None:
    target = workflows.data_source(workflows.database(None))
    shared_a = workflows.workflow(workflows.data_source(workflows.database()), target)
    shared_b = workflows.workflow(workflows.data_source(workflows.database()), target)
    other = workflows.simple()
    first, second, third = _create(workflows, shared_a), _create(workflows, shared_b), _create(workflows, other)

    assert _claim(workflows, 5) == [first, third]
    assert workflows.run(second).status == RunStatus.QUEUED
    assert _claim(workflows, 5) == []

    with workflows.store.session() as session:
        assert service.finish_run(session, first, RunStatus.COMPLETED)
    assert _claim(workflows, 5) == [second]


def test_claim_respects_free_slots(workflows: Workflows) -> None:
    runs = [_create(workflows, workflows.simple()) for _ in range(3)]
    assert _claim(workflows, 0) == []
    assert _claim(workflows, 2) == runs[:2]
    assert _claim(workflows, 2) == runs[2:]


def test_stop_queued_is_immediate_and_stop_running_asks_the_worker(workflows: Workflows) -> None:
    workflow_id = workflows.simple()
    queued = _create(workflows, workflow_id)
    with workflows.store.session() as session:
        run = service.stop_run(session, queued)
        assert (run.status, run.end_date is not None) == (RunStatus.STOPPED, True)

    running = _create(workflows, workflow_id)
    assert _claim(workflows, 1) == [running]
    with workflows.store.session() as session:
        assert service.stop_run(session, running).status == RunStatus.STOPPING
        assert service.stop_requested(session, running)
        # Asking again changes nothing and is no error.
        assert service.stop_run(session, running).status == RunStatus.STOPPING
    with workflows.store.session() as session:
        # The engine got to the end anyway: a stopped run still ends STOPPED.
        assert service.finish_run(session, running, RunStatus.COMPLETED, report={"tables": []})
    assert workflows.run(running).status == RunStatus.STOPPED

    for ended in (queued, running):
        with workflows.store.session() as session, pytest.raises(Conflict, match="has already ended"):
            service.stop_run(session, ended)


def test_stop_workflow_stops_every_active_run_and_returns_the_running_one(workflows: Workflows) -> None:
    workflow_id = workflows.simple()
    with workflows.store.session() as session, pytest.raises(Conflict, match="no queued or running run"):
        service.stop_workflow(session, workflow_id)
    older, newer = _create(workflows, workflow_id), _create(workflows, workflow_id)
    _claim(workflows, 1)
    with workflows.store.session() as session:
        stopped = service.stop_workflow(session, workflow_id)
        assert (stopped.id, stopped.status) == (older, RunStatus.STOPPING)
    assert (workflows.run(older).status, workflows.run(newer).status) == (RunStatus.STOPPING, RunStatus.STOPPED)


def test_stop_workflow_of_queued_runs_only_returns_the_oldest(workflows: Workflows) -> None:
    workflow_id = workflows.simple()
    older, newer = _create(workflows, workflow_id), _create(workflows, workflow_id)
    with workflows.store.session() as session:
        assert service.stop_workflow(session, workflow_id).id == older
    assert (workflows.run(older).status, workflows.run(newer).status) == (RunStatus.STOPPED, RunStatus.STOPPED)


def test_a_finished_run_is_never_overwritten(workflows: Workflows) -> None:
    run_id = _create(workflows, workflows.simple())
    _claim(workflows, 1)
    with workflows.store.session() as session:
        assert service.fail_started_runs(session, service.SERVER_STOPPED) == [run_id]
    with workflows.store.session() as session:
        # The worker of the dead server reports late: too late.
        assert not service.finish_run(session, run_id, RunStatus.COMPLETED)
        assert service.stop_requested(session, run_id)
    run = workflows.run(run_id)
    assert (run.status, run.error_message) == (RunStatus.FAILED, service.SERVER_STOPPED)


def test_reconciliation_fails_started_runs_only(workflows: Workflows) -> None:
    running, stopping, queued = (_create(workflows, workflows.simple()) for _ in range(3))
    assert _claim(workflows, 2) == [running, stopping]
    with workflows.store.session() as session:
        service.stop_run(session, stopping)
    with workflows.store.session() as session:
        assert sorted(service.fail_started_runs(session, service.SERVER_STOPPED)) == [running, stopping]
    assert workflows.run(queued).status == RunStatus.QUEUED
    for run_id in (running, stopping):
        run = workflows.run(run_id)
        assert run.status == RunStatus.FAILED
        assert run.error_message == "the Governor server stopped during the run; start the run again"
        assert run.end_date is not None


def test_lists_are_newest_first_filtered_and_paged(workflows: Workflows) -> None:
    workflow_id = workflows.simple()
    runs = [_create(workflows, workflow_id) for _ in range(5)]
    _create(workflows, workflows.simple())
    _claim(workflows, 1)  # the oldest of workflow_id starts
    with workflows.store.session() as session:
        assert [r.id for r in service.list_runs(session, workflow_id)] == runs[::-1]
        assert [r.id for r in service.list_runs(session, workflow_id, limit=2, offset=1)] == runs[::-1][1:3]
        running = service.list_runs(session, workflow_id, [RunStatus.RUNNING])
        assert [r.id for r in running] == [runs[0]]
        service.add_log(session, runs[0], "second line")
    with workflows.store.session() as session:
        lines = service.list_logs(session, runs[0])
        assert [line.message for line in lines][-2:] == ["started", "second line"]
        assert service.list_logs(session, runs[0], after=lines[-2].id) == [lines[-1]]
        assert all(isinstance(line, RunLog) for line in lines)
