"""Many clients at once on one workflow: nothing acknowledged is lost, the target stays whole."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from governor.engine.runner import run_workflow
from tests.external.conftest import LiveServer
from tests.runs.conftest import MASKING_CONFIG, SMALL_ROWS, Workflows, read_people
from tests.service.conftest import Caller

CLIENTS = 50


def test_fifty_concurrent_runs_of_one_workflow(live: LiveServer, workflows: Workflows, caller: Caller) -> None:
    source, target = workflows.database(), workflows.database(None)
    workflow_id = workflows.workflow(workflows.data_source(source), workflows.data_source(target), MASKING_CONFIG)

    def start(_: int) -> int:
        with live.client(caller.key) as client:
            response = client.post(f"/workflow/{workflow_id}/run")
            assert response.status_code == 200, response.text
            return response.json()["workflow_run_id"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        run_ids = list(pool.map(start, range(CLIENTS)))
    assert len(set(run_ids)) == CLIENTS

    with live.client(caller.key) as client:
        deadline = time.monotonic() + 240
        while True:
            runs = client.get(f"/workflow/{workflow_id}/runs").json()
            if all(run["workflow_run_status"] in ("COMPLETED", "FAILED", "STOPPED") for run in runs):
                break
            assert time.monotonic() < deadline, "runs did not all end"
            time.sleep(0.2)
    assert sorted(run["workflow_run_id"] for run in runs) == sorted(run_ids)
    assert {run["workflow_run_status"] for run in runs} == {"COMPLETED"}
    # Serialized on their shared target: no two ran at the same time.
    spans = sorted((datetime.fromisoformat(run["start_date"]), datetime.fromisoformat(run["end_date"])) for run in runs)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))

    # The target holds exactly what one run of this deterministic config writes.
    reference = workflows.database(None)
    run_workflow(MASKING_CONFIG, source, reference)
    assert len(read_people(target)) == SMALL_ROWS
    assert read_people(target) == read_people(reference)
