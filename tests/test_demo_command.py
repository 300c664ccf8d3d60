"""``governor demo`` as a new user runs it: a fresh home, a real server process, the External API."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.servers import free_port


def demo_command(port: int) -> list[str]:
    return [sys.executable, "-m", "governor", "demo", "--no-serve", "--port", str(port)]


def demo_environment(home: Path) -> dict[str, str]:
    return {**os.environ, "GOVERNOR_HOME": str(home), "COLUMNS": "200"}


def demo(home: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        demo_command(port),
        capture_output=True,
        text=True,
        env=demo_environment(home),
        timeout=180,
        check=False,
    )


def run_json(stdout: str) -> dict[str, object]:
    start = stdout.index("{\n")
    return json.loads(stdout[start : stdout.index("\n}", start) + 2])


def test_demo_runs_the_workflow_through_the_api_and_reuses_its_setup(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = demo(home, free_port())
    assert first.returncode == 0, first.stderr
    run = run_json(first.stdout)
    assert run["workflow_run_status"] == "COMPLETED" and run["error_message"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", str(run["end_date"]))
    # The home holds the metadata and the secret key: only its owner may enter it.
    assert stat.S_IMODE(home.stat().st_mode) == 0o700

    # The seed's curl commands, filled in with a key that works.
    key = re.search(r"X-Access-Key: ([0-9a-f]+:[A-Za-z0-9_-]+)'", first.stderr)
    assert key is not None, first.stderr
    assert "/external/api/v1/workflow-run/" in first.stderr

    # The target really holds masked people, and every order still has its customer.
    source = sa.create_engine(f"sqlite:///{home / 'demo' / 'source.sqlite'}")
    target = sa.create_engine(f"sqlite:///{home / 'demo' / 'target.sqlite'}")
    query = "SELECT id, first_name, last_name, email FROM customers ORDER BY id"
    with source.connect() as before, target.connect() as after:
        original = before.exec_driver_sql(query).all()
        masked = after.exec_driver_sql(query).all()
        orphans = after.exec_driver_sql(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"
        ).scalar_one()
    assert len(masked) == len(original) >= 1000 and orphans == 0
    assert all(m[3] != o[3] for m, o in zip(masked, original, strict=True))

    second = demo(home, free_port())
    assert second.returncode == 0, second.stderr
    assert run_json(second.stdout)["workflow_run_id"] == int(str(run["workflow_run_id"])) + 1
    assert key.group(1) in second.stderr  # the same key, kept in the home


def test_ctrl_c_before_the_run_is_queued_stops_the_server_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        demo_command(port), env=demo_environment(tmp_path / "home"), stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    try:
        # The server was just started and is not answering yet: the demo waits for it.
        while not (line := process.stderr.readline()).startswith("server log:"):
            assert line, "the demo ended before it started its server"
        process.send_signal(signal.SIGINT)
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 1
    finally:
        process.kill()
    assert "Traceback" not in stderr and "interrupted before the demo's run was queued" in stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the demo's server is still serving"
