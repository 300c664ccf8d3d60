"""Every External API route over real HTTP: keys, ids, states, shapes (the seed's contract)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from governor.store.models import RunLog, RunStatus, WorkflowRun
from tests.external.conftest import LiveServer
from tests.runs.conftest import SMALL_ROWS, Workflows, keep_config
from tests.servers import free_port
from tests.service.conftest import Caller

RUN_FIELDS = {"workflow_run_id", "workflow_run_status", "start_date", "end_date", "user_id", "error_message"}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}
ROUTES = [
    ("GET", "/healthy"),
    ("POST", "/workflow/{workflow}/run"),
    ("GET", "/workflow-run/{run}"),
    ("GET", "/workflow/{workflow}/runs"),
    ("POST", "/workflow/{workflow}/stop"),
    ("POST", "/workflow/{workflow}/runsync"),
    ("GET", "/workflow-run/{run}/logs"),
]


def assert_run_shape(body: Any, caller: Caller) -> None:
    assert set(body) == RUN_FIELDS
    assert isinstance(body["workflow_run_id"], int)
    assert body["workflow_run_status"] in {s.value for s in RunStatus}
    assert RFC3339_UTC.match(body["start_date"]), body["start_date"]
    assert body["user_id"] == caller.user_id
    if body["workflow_run_status"] in TERMINAL:
        assert RFC3339_UTC.match(body["end_date"]), body["end_date"]
    else:
        assert body["end_date"] is None
    assert body["error_message"] is None or isinstance(body["error_message"], str)


def wait_terminal(client: httpx.Client, run_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/workflow-run/{run_id}").json()
        if body["workflow_run_status"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"run {run_id} still {body['workflow_run_status']}"
        time.sleep(0.05)


def test_healthy_is_the_json_string_ok(live: LiveServer, caller: Caller) -> None:
    response = live.client(caller.key).get("/healthy")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == '"OK"'


def test_every_route_refuses_bad_keys(
    live: LiveServer, workflows: Workflows, caller: Caller, bad_keys: dict[str, str | None]
) -> None:
    workflow_id = workflows.simple()
    with live.client(caller.key) as client:
        run_id = client.post(f"/workflow/{workflow_id}/run").json()["workflow_run_id"]
        wait_terminal(client, run_id)
    for kind, key in bad_keys.items():
        with live.client(key) as client:
            for method, path in ROUTES:
                response = client.request(method, path.format(workflow=workflow_id, run=run_id))
                assert response.status_code == 401, (kind, method, path)
                message = response.json()["message"]
                assert message in ("missing X-Access-Key header", "access key is unknown, expired or revoked")
                if key:
                    assert key.split(":")[-1] not in message
    with live.client(caller.key) as client:
        assert [r["workflow_run_id"] for r in client.get(f"/workflow/{workflow_id}/runs").json()] == [run_id]


def test_run_then_get_and_list_have_the_seed_shapes(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    workflow_id = workflows.simple()
    with live.client(caller.key) as client:
        started = client.post(f"/workflow/{workflow_id}/run")
        assert started.status_code == 200
        body = started.json()
        assert_run_shape(body, caller)
        assert body["workflow_run_status"] in ("QUEUED", "RUNNING")
        assert (body["end_date"], body["error_message"]) == (None, None)

        done = wait_terminal(client, body["workflow_run_id"])
        assert_run_shape(done, caller)
        assert (done["workflow_run_status"], done["error_message"]) == ("COMPLETED", None)
        assert done["end_date"] >= done["start_date"] >= body["start_date"]

        listed = client.get(f"/workflow/{workflow_id}/runs")
        assert listed.status_code == 200
        assert listed.json() == [done]


def test_list_is_newest_first_and_only_of_its_workflow(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    workflow_id, other = workflows.simple(), workflows.simple()
    with live.client(caller.key) as client:
        assert client.get(f"/workflow/{workflow_id}/runs").json() == []
        ids = [client.post(f"/workflow/{workflow_id}/run").json()["workflow_run_id"] for _ in range(3)]
        client.post(f"/workflow/{other}/run")
        listed = client.get(f"/workflow/{workflow_id}/runs").json()
        assert [run["workflow_run_id"] for run in listed] == ids[::-1]
        for run in listed:
            assert_run_shape(run, caller)
        for run_id in ids:
            wait_terminal(client, run_id)


@pytest.mark.parametrize(("method", "path"), ROUTES[1:])
def test_unknown_ids_are_404(live: LiveServer, caller: Caller, method: str, path: str) -> None:
    with live.client(caller.key) as client:
        for unknown in (987654, -1, 0, 2**63 - 1, -(2**63)):
            response = client.request(method, path.format(workflow=unknown, run=unknown))
            assert response.status_code == 404, (unknown, response.text)
            assert response.json()["message"] in (f"workflow {unknown} not found", f"workflow run {unknown} not found")


@pytest.mark.parametrize(("method", "path"), ROUTES[1:])
def test_malformed_and_out_of_range_ids_are_422(live: LiveServer, caller: Caller, method: str, path: str) -> None:
    with live.client(caller.key) as client:
        for bad in ("abc", "1.5", "1e3", str(2**63), str(-(2**63) - 1), "%00", "99999999999999999999999"):
            response = client.request(method, path.format(workflow=bad, run=bad))
            assert response.status_code == 422, (bad, response.text)
            assert isinstance(response.json()["message"], str)


def test_stop_in_each_state(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    target = workflows.data_source(workflows.database(None))
    slow = workflows.workflow(workflows.data_source(workflows.database(slow=True)), target, keep_config(1))
    waiting = workflows.workflow(workflows.data_source(workflows.database()), target)
    with live.client(caller.key) as client:
        nothing = client.post(f"/workflow/{slow}/stop")
        assert nothing.status_code == 409
        assert nothing.json() == {"message": f"workflow {slow} has no queued or running run to stop"}

        running = client.post(f"/workflow/{slow}/run").json()["workflow_run_id"]
        queued = client.post(f"/workflow/{waiting}/run").json()["workflow_run_id"]
        deadline = time.monotonic() + 30
        while client.get(f"/workflow-run/{running}").json()["workflow_run_status"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get(f"/workflow-run/{queued}").json()["workflow_run_status"] == "QUEUED"

        # QUEUED -> STOPPED at once, with its end date.
        stopped = client.post(f"/workflow/{waiting}/stop").json()
        assert_run_shape(stopped, caller)
        assert (stopped["workflow_run_id"], stopped["workflow_run_status"]) == (queued, "STOPPED")

        # RUNNING -> STOPPING, then STOPPED within a batch; the run queued behind it is STOPPED at
        # once, and the answer is the running one, the oldest.
        behind = client.post(f"/workflow/{slow}/run").json()["workflow_run_id"]
        stopping = client.post(f"/workflow/{slow}/stop").json()
        assert_run_shape(stopping, caller)
        assert (stopping["workflow_run_id"], stopping["workflow_run_status"]) == (running, "STOPPING")
        assert client.get(f"/workflow-run/{behind}").json()["workflow_run_status"] == "STOPPED"
        assert wait_terminal(client, running, timeout=20)["workflow_run_status"] == "STOPPED"

        # Nothing active any more: a conflict, for both workflows.
        for workflow_id in (slow, waiting):
            assert client.post(f"/workflow/{workflow_id}/stop").status_code == 409


def test_runsync_answers_when_the_run_has_ended(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    good = workflows.simple()
    broken = workflows.simple(keep_config() + "tables:\n  - table_name_with_schema: missing_table\n")
    with live.client(caller.key) as client:
        completed = client.post(f"/workflow/{good}/runsync")
        assert completed.status_code == 200
        body = completed.json()
        assert_run_shape(body, caller)
        assert (body["workflow_run_status"], body["error_message"]) == ("COMPLETED", None)

        failed = client.post(f"/workflow/{broken}/runsync").json()
        assert_run_shape(failed, caller)
        assert failed["workflow_run_status"] == "FAILED"
        assert "missing_table" in failed["error_message"]
        assert client.get(f"/workflow-run/{failed['workflow_run_id']}").json() == failed


def test_a_failed_run_never_shows_a_password_of_the_query_string(
    live: LiveServer, workflows: Workflows, caller: Caller
) -> None:
    source = workflows.data_source(f"postgresql://alice@127.0.0.1:{free_port()}/db?password=S3cretPW")
    workflow_id = workflows.workflow(source, workflows.data_source(workflows.database(None)))
    with live.client(caller.key) as client:
        failed = client.post(f"/workflow/{workflow_id}/runsync").json()
        logs = client.get(f"/workflow-run/{failed['workflow_run_id']}/logs").text
    assert failed["workflow_run_status"] == "FAILED"
    assert "password=***" in failed["error_message"] and "password=***" in logs
    assert "S3cretPW" not in failed["error_message"] + logs
    with workflows.store.engine.connect() as connection:
        stored = connection.execute(sa.select(RunLog.message, WorkflowRun.error_message).join(WorkflowRun)).all()
    assert stored and "S3cretPW" not in str(stored)


def test_logs_follow_the_run(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    with live.client(caller.key) as client:
        run = client.post(f"/workflow/{workflows.simple()}/runsync").json()
        response = client.get(f"/workflow-run/{run['workflow_run_id']}/logs")
        assert response.status_code == 200
        lines = response.json()
        assert [set(line) for line in lines] == [{"id", "at", "level", "message"}] * len(lines)
        assert all(RFC3339_UTC.match(line["at"]) for line in lines)
        messages = [line["message"] for line in lines]
        assert messages[:2] == [f"queued by user {caller.user_id} (config version 1)", "started"]
        assert f"main.people: {SMALL_ROWS} rows written" in messages
        assert messages[-1].startswith("completed: ")
        assert "password" not in " ".join(messages)

        tail = client.get(f"/workflow-run/{run['workflow_run_id']}/logs", params={"after": lines[-2]["id"]})
        assert tail.json() == lines[-1:]
        assert client.get(f"/workflow-run/{run['workflow_run_id']}/logs", params={"after": -1}).status_code == 422
