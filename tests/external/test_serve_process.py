"""``governor serve`` as a real process: the seed's curl commands, ``governor run``, and a restart
after SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from governor.cli.serve import _listen
from governor.runs.service import SERVER_STOPPED
from governor.settings import Settings
from tests.runs.conftest import Workflows, keep_config
from tests.servers import free_port
from tests.service.conftest import Caller

GOVERNOR = shutil.which("governor")


class Serve:
    """One ``governor serve`` process on the test's home and metadata database."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GOVERNOR_HOME": str(settings.home),
            "GOVERNOR_DATABASE_URL": settings.effective_database_url,
            "GOVERNOR_PORT": str(self.port),
            "GOVERNOR_WORKERS": "1",
        }
        self.env.pop("GOVERNOR_SECRET_KEY", None)  # the home's generated key, as the store fixture made it
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, key: str) -> None:
        assert GOVERNOR is not None, "the governor command is not installed"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([GOVERNOR, "serve"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"governor serve exited:\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/external/api/v1/healthy", headers={"X-Access-Key": key}).is_success:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"governor serve did not answer:\n{self.log.read_text()}"
            time.sleep(0.1)

    def signal(self, number: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(number)
        return self.process.wait(timeout=60)


@contextmanager
def serving(settings: Settings, tmp_path: Path, key: str) -> Iterator[Serve]:
    serve = Serve(settings, tmp_path / "serve.log")
    serve.start(key)
    try:
        yield serve
    finally:
        if serve.process is not None and serve.process.poll() is None:
            serve.signal(signal.SIGKILL)


def curl(*args: str) -> Any:
    """Run a curl command as the seed writes it; its standard output parsed as JSON."""
    result = subprocess.run(["curl", *args], capture_output=True, check=True, timeout=60)
    return json.loads(result.stdout)


def governor_run(*args: str) -> subprocess.CompletedProcess[str]:
    assert GOVERNOR is not None
    return subprocess.run([GOVERNOR, "run", *args], capture_output=True, text=True, timeout=120)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def test_seed_curl_flow_and_governor_run(
    settings: Settings, store: Any, workflows: Workflows, caller: Caller, tmp_path: Path
) -> None:
    store.dispose()  # the server process owns the store now
    workflow_id = workflows.simple()
    broken = workflows.simple(keep_config() + "tables:\n  - table_name_with_schema: missing_table\n")
    key = caller.key
    with serving(settings, tmp_path, key) as serve:
        base = serve.url
        assert curl("-X", "GET", f"{base}/external/api/v1/healthy", "-H", f"X-Access-Key: {key}") == "OK"

        started = curl("-X", "POST", f"{base}/external/api/v1/workflow/{workflow_id}/run", "-H", f"X-Access-Key: {key}")
        run_id = started["workflow_run_id"]
        assert started["workflow_run_status"] in ("QUEUED", "RUNNING")
        assert (started["end_date"], started["error_message"], started["user_id"]) == (None, None, caller.user_id)

        def finished() -> Any:
            run = curl("-X", "GET", f"{base}/external/api/v1/workflow-run/{run_id}", "-H", f"X-Access-Key: {key}")
            return run if run["workflow_run_status"] == "COMPLETED" else None

        run = _wait(finished, 60, "the run did not complete")
        assert run["end_date"] is not None and run["error_message"] is None
        listed = curl("-X", "GET", f"{base}/external/api/v1/workflow/{workflow_id}/runs", "-H", f"X-Access-Key: {key}")
        assert listed == [run]

        waited = governor_run(str(workflow_id), "--wait", "--url", base, "--key", key)
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout)["workflow_run_status"] == "COMPLETED"
        assert "completed: 1 tables" in waited.stderr

        failed = governor_run(str(broken), "--wait", "--url", base, "--key", key)
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["workflow_run_status"] == "FAILED"

        queued = governor_run(str(workflow_id), "--url", base, "--key", key)
        assert queued.returncode == 0
        assert json.loads(queued.stdout)["workflow_run_status"] in ("QUEUED", "RUNNING")

        refused = governor_run(str(workflow_id), "--url", base, "--key", "nope:nope")
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr.strip() == "error: the server answered 401: access key is unknown, expired or revoked"

        second = subprocess.run([GOVERNOR, "serve"], env=serve.env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"another governor serve is already running with the home {settings.home}" in second.stderr
        assert "Traceback" not in second.stderr

        assert serve.signal(signal.SIGTERM) == 0


def test_restart_after_sigkill_fails_the_running_run_and_runs_the_queued_one(
    settings: Settings, store: Any, workflows: Workflows, caller: Caller, tmp_path: Path
) -> None:
    store.dispose()
    target = workflows.data_source(workflows.database(None))
    slow = workflows.workflow(workflows.data_source(workflows.database(slow=True)), target, keep_config(1))
    quick = workflows.workflow(workflows.data_source(workflows.database()), target)
    headers = {"X-Access-Key": caller.key}

    with serving(settings, tmp_path, caller.key) as serve:
        api = httpx.Client(base_url=serve.url, headers=headers, timeout=30)
        running = api.post(f"/external/api/v1/workflow/{slow}/run").json()["workflow_run_id"]
        worker = _wait(lambda: api.get(f"/api/v1/runs/{running}").json()["worker_id"], 60, "the run did not start")
        queued = api.post(f"/external/api/v1/workflow/{quick}/run").json()
        assert queued["workflow_run_status"] == "QUEUED"
        assert serve.signal(signal.SIGKILL) == -signal.SIGKILL

    # The worker does not outlive its server: it must not go on writing the target.
    _wait(lambda: _gone(int(worker.rsplit(":", 1)[1])), 15, "the worker outlived its server")
    assert workflows.run(running).status == "RUNNING"

    with serving(settings, tmp_path, caller.key) as serve:
        api = httpx.Client(base_url=serve.url + "/external/api/v1", headers=headers, timeout=30)
        failed = api.get(f"/workflow-run/{running}").json()
        assert (failed["workflow_run_status"], failed["error_message"]) == ("FAILED", SERVER_STOPPED)
        assert failed["end_date"] is not None

        def completed() -> bool:
            run = api.get(f"/workflow-run/{queued['workflow_run_id']}").json()
            assert run["workflow_run_status"] in ("QUEUED", "RUNNING", "COMPLETED"), run
            return run["workflow_run_status"] == "COMPLETED"

        _wait(completed, 60, "the queued run did not complete after the restart")
        assert serve.signal(signal.SIGTERM) == 0


def test_accepted_connections_have_tcp_nodelay() -> None:
    """Without it every response waits ~40 ms for the client's delayed ACK."""
    listener = _listen("127.0.0.1", free_port())
    with listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
