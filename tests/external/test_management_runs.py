"""The management API's runs routes over real HTTP: details, filtered pages, stop, logs, report."""

from __future__ import annotations

import time

import httpx

from tests.external.conftest import LiveServer
from tests.runs.conftest import MASKING_CONFIG, SMALL_ROWS, Workflows, keep_config
from tests.service.conftest import Caller


def _management(live: LiveServer, caller: Caller) -> httpx.Client:
    return httpx.Client(base_url=live.url + "/api/v1", headers={"X-Access-Key": caller.key}, timeout=60)


def test_run_details_pages_logs_and_report(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    workflow_id = workflows.simple(MASKING_CONFIG)
    with live.client(caller.key) as external, _management(live, caller) as api:
        done = external.post(f"/workflow/{workflow_id}/runsync").json()
        broken = workflows.simple(keep_config() + "tables:\n  - table_name_with_schema: absent\n")
        failed = external.post(f"/workflow/{broken}/runsync").json()

        run = api.get(f"/runs/{done['workflow_run_id']}").json()
        assert run["status"] == "COMPLETED" and run["workflow_id"] == workflow_id
        assert (run["workflow_version"], run["user_id"], run["error_message"]) == (1, caller.user_id, None)
        assert run["progress"] == {"tables_total": 1, "tables_done": 1, "rows_done": SMALL_ROWS}
        assert run["worker_id"] and run["heartbeat_at"]

        report = api.get(f"/runs/{done['workflow_run_id']}/report").json()
        assert report["status"] == "COMPLETED"
        assert [(t["table"], t["mode"], t["rows_written"]) for t in report["tables"]] == [
            ("main.people", "MASKING", SMALL_ROWS)
        ]
        assert "seed" not in report
        assert api.get(f"/runs/{failed['workflow_run_id']}/report").json()["tables"] == []

        logs = api.get(f"/runs/{done['workflow_run_id']}/logs").json()
        assert logs == external.get(f"/workflow-run/{done['workflow_run_id']}/logs").json()

        page = api.get("/runs", params={"limit": 1}).json()
        assert [r["id"] for r in page["items"]] == [failed["workflow_run_id"]]
        assert (page["limit"], page["offset"]) == (1, 0)
        second = api.get("/runs", params={"limit": 1, "offset": 1}).json()
        assert [r["id"] for r in second["items"]] == [done["workflow_run_id"]]
        only_failed = api.get("/runs", params=[("status", "FAILED")]).json()["items"]
        assert [r["id"] for r in only_failed] == [failed["workflow_run_id"]]
        both = api.get("/runs", params=[("status", "FAILED"), ("status", "COMPLETED")]).json()["items"]
        assert len(both) == 2
        of_workflow = api.get("/runs", params={"workflow_id": workflow_id}).json()["items"]
        assert [r["id"] for r in of_workflow] == [done["workflow_run_id"]]

        for bad in ({"status": "DONE"}, {"limit": 0}, {"limit": 501}, {"offset": -1}, {"workflow_id": "x"}):
            assert api.get("/runs", params=bad).status_code == 422
        assert api.get("/runs/123456").status_code == 404
        assert api.get("/runs", headers={"X-Access-Key": "nope"}).status_code == 401


def test_stop_a_run_by_id(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    workflow_id = workflows.simple(keep_config(1), slow=True)
    with live.client(caller.key) as external, _management(live, caller) as api:
        run_id = external.post(f"/workflow/{workflow_id}/run").json()["workflow_run_id"]
        deadline = time.monotonic() + 30
        while api.get(f"/runs/{run_id}").json()["status"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stopping = api.post(f"/runs/{run_id}/stop").json()
        assert (stopping["status"], stopping["stop_requested"]) == ("STOPPING", True)
        while api.get(f"/runs/{run_id}").json()["status"] == "STOPPING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert api.get(f"/runs/{run_id}").json()["status"] == "STOPPED"
        conflict = api.post(f"/runs/{run_id}/stop")
        assert conflict.status_code == 409
        assert conflict.json() == {"message": f"workflow run {run_id} has already ended (STOPPED)"}
