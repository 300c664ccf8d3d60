"""``governor run``: start a workflow run through the External API, as a CI pipeline would.

It is a plain client of the server (``--url``, ``--key``), so it works against any Governor
server. The run's JSON goes to stdout for scripts; the progress display goes to stderr. With
``--wait`` the exit code says how the run ended: 0 only for COMPLETED.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer

from governor.cli.common import console, fail, load_settings
from governor.store.models import MAX_ID

POLL_SECONDS = 0.5
TERMINAL = ("COMPLETED", "FAILED", "STOPPED")


class ApiClient:
    """The few External API calls this command makes; any failure ends it with one line."""

    def __init__(self, url: str, key: str) -> None:
        self._http = httpx.Client(
            base_url=f"{url.rstrip('/')}/external/api/v1", headers={"X-Access-Key": key}, timeout=30
        )

    def call(self, method: str, path: str, **params: Any) -> Any:
        try:
            response = self._http.request(method, path, params=params or None)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the Governor server at {self._http.base_url}: {exc}") from None
        if response.is_error:
            try:
                message = response.json()["message"]
            except (ValueError, KeyError, TypeError):
                message = response.reason_phrase
            raise fail(f"the server answered {response.status_code}: {message}")
        return response.json()


def follow_run(client: ApiClient, run: dict[str, Any]) -> dict[str, Any]:
    """Show the run's log lines and status until it ends; return its final state."""
    run_id = run["workflow_run_id"]
    last_line = 0
    started = time.monotonic()
    with console.status("") as status:
        while True:
            for line in client.call("GET", f"/workflow-run/{run_id}/logs", after=last_line):
                last_line = line["id"]
                style = "red" if line["level"] == "ERROR" else "dim"
                console.print(f"[{style}]{line['at']}[/] {line['message']}", highlight=False)
            if run["workflow_run_status"] in TERMINAL:
                return run
            elapsed = time.monotonic() - started
            status.update(f"run {run_id}: {run['workflow_run_status']} ({elapsed:.0f} s)")
            time.sleep(POLL_SECONDS)
            run = client.call("GET", f"/workflow-run/{run_id}")


def run(
    workflow_id: Annotated[int, typer.Argument(help="The workflow to run", min=1, max=MAX_ID)],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run until it ends; exit 0 only if COMPLETED")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(help="The server [env GOVERNOR_URL; http://GOVERNOR_HOST:GOVERNOR_PORT]", envvar="GOVERNOR_URL"),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="Access key <key_id>:<secret> [env GOVERNOR_ACCESS_KEY]", envvar="GOVERNOR_ACCESS_KEY"),
    ] = None,
) -> None:
    """Run a workflow on a Governor server and print the run as JSON."""
    if not key:
        raise fail("an access key is needed: --key or GOVERNOR_ACCESS_KEY")
    if url is None:
        settings = load_settings()
        url = f"http://{settings.host}:{settings.port}"
    client = ApiClient(url, key)
    result = client.call("POST", f"/workflow/{workflow_id}/run")
    if wait:
        try:
            result = follow_run(client, result)
        except KeyboardInterrupt:
            console.print(
                f"run {result['workflow_run_id']} goes on on the server; stop it with "
                f"POST /external/api/v1/workflow/{workflow_id}/stop"
            )
            raise typer.Exit(130) from None
    typer.echo(json.dumps(result, indent=2))
    if wait and result["workflow_run_status"] != "COMPLETED":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
