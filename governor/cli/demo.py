"""``governor demo``: the whole product in one command, on the embedded default.

It sets up what a new user would (a source database, a target, a masking workflow, an admin and
an access key), starts ``governor serve`` as its own process, and triggers the run through the
External API exactly as a CI pipeline would. Run again, it reuses what the home already has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from governor.cli.common import console, fail, load_settings, open_store_or_fail
from governor.cli.run import ApiClient, follow_run
from governor.demo import DEMO_MASKING_CONFIG, build_demo_database
from governor.settings import Settings
from governor.store import datasources, keys, users, workflows
from governor.store.errors import NotFound
from governor.store.models import Access, Role

ADMIN_EMAIL = "admin@demo.governor.local"
WORKFLOW_NAME = "demo: mask customers and employees"
SERVER_START_SECONDS = 60.0
SAMPLE_COLUMNS = ("first_name", "last_name", "email", "phone")


@dataclass(frozen=True)
class DemoSetup:
    workflow_id: int
    key: str
    source_url: str
    target_url: str


def _key_file(settings: Settings) -> Path:
    return settings.home / "demo" / "access.key"


def prepare_demo(settings: Settings) -> DemoSetup:
    """Create (or find) the demo databases, admin, key, data sources and workflow.

    The store is opened first: it creates the home as every command does (0700, for it holds the
    metadata and the secret key), rather than as a parent of the demo's folder.
    """
    store = open_store_or_fail(settings)
    try:
        folder = settings.home / "demo"
        folder.mkdir(exist_ok=True, mode=0o700)
        source_url = f"sqlite:///{folder / 'source.sqlite'}"
        target_url = f"sqlite:///{folder / 'target.sqlite'}"
        with console.status("building the demo source database"):
            counts = build_demo_database(source_url)
        console.print(
            f"demo source: {sum(counts.values()):,} rows in {len(counts)} tables ({folder / 'source.sqlite'})"
        )
        with store.session() as session:
            try:
                admin = users.find_user(session, ADMIN_EMAIL)
            except NotFound:
                admin = users.create_user(session, ADMIN_EMAIL, "Demo admin", Role.ADMIN)
            source = _data_source(session, settings, "demo-source", source_url, Access.READ_ONLY)
            target = _data_source(session, settings, "demo-target", target_url, Access.READ_WRITE)
            workflow = next((w for w in workflows.list_workflows(session) if w.name == WORKFLOW_NAME), None)
            if workflow is None:
                workflow = workflows.create_workflow(
                    session, WORKFLOW_NAME, source.id, target.id, DEMO_MASKING_CONFIG, admin
                )
            key = _demo_key(session, settings, admin)
            return DemoSetup(workflow.id, key, source_url, target_url)
    finally:
        store.dispose()


def _data_source(session: Any, settings: Settings, name: str, url: str, access: Access) -> Any:
    try:
        return datasources.find_data_source(session, name)
    except NotFound:
        return datasources.create_data_source(session, settings, name, url, access)


def _demo_key(session: Any, settings: Settings, admin: Any) -> str:
    """The demo's key, kept in the home (mode 0600) so that a second demo can print it again."""
    path = _key_file(settings)
    if path.exists():
        presented = path.read_text().strip()
        if keys.verify_key(session, presented) is not None:
            return presented
    _, presented = keys.create_key(session, admin, "demo")
    path.write_text(presented + "\n")
    path.chmod(0o600)
    return presented


def _healthy(base_url: str, key: str) -> bool:
    try:
        response = httpx.get(f"{base_url}/external/api/v1/healthy", headers={"X-Access-Key": key}, timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _server_log(settings: Settings) -> Path:
    return settings.home / "demo" / "server.log"


def _start_server(settings: Settings) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "GOVERNOR_HOME": str(settings.home), "GOVERNOR_PORT": str(settings.port)}
    environment["GOVERNOR_HOST"] = settings.host
    with _server_log(settings).open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "governor", "serve"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    return server


def _wait_until_serving(server: subprocess.Popen[bytes], settings: Settings, base_url: str, key: str) -> None:
    log_path = _server_log(settings)
    deadline = time.monotonic() + SERVER_START_SECONDS
    with console.status(f"starting governor serve on {base_url}"):
        while not _healthy(base_url, key):
            if server.poll() is not None:
                raise fail(f"governor serve exited with code {server.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise fail(f"governor serve did not answer on {base_url} within {SERVER_START_SECONDS:.0f} s")
            time.sleep(0.2)


def _sample(url: str, table_name: str, ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Rows of the demo's people columns: the first five, or those with the given ids."""
    engine = sa.create_engine(url)
    try:
        table = sa.Table(table_name, sa.MetaData(), autoload_with=engine)
        query = sa.select(table.c.id, *(table.c[c] for c in SAMPLE_COLUMNS)).order_by(table.c.id)
        query = query.where(table.c.id.in_(ids)) if ids else query.limit(5)
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()


def _show_before_after(setup: DemoSetup) -> None:
    before = _sample(setup.source_url, "customers")
    after = {row["id"]: row for row in _sample(setup.target_url, "customers", [row["id"] for row in before])}
    table = Table(title="customers: source (before) and target (after masking)", show_lines=True)
    table.add_column("id", justify="right")
    for column in SAMPLE_COLUMNS:
        table.add_column(column)
    for row in before:
        masked = after.get(row["id"], {})
        table.add_row(
            str(row["id"]),
            *(f"{row[c]}\n[green]{masked.get(c, '-')}[/]" for c in SAMPLE_COLUMNS),
        )
    Console().print(table)


def _show_curl(base_url: str, setup: DemoSetup, run_id: int) -> None:
    host = base_url.removeprefix("http://")
    header = f"-H 'X-Access-Key: {setup.key}'"
    lines = [
        "Try the External API (the seed's examples, filled in):",
        f"curl -X GET {host}/external/api/v1/healthy {header}",
        f"curl -X POST {host}/external/api/v1/workflow/{setup.workflow_id}/run {header}",
        f"curl -X GET {host}/external/api/v1/workflow-run/{run_id} {header}",
        f"curl -X GET {host}/external/api/v1/workflow/{setup.workflow_id}/runs {header}",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


def demo(
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving after the run (Ctrl-C stops)")] = True,
    home: Annotated[Path | None, typer.Option(help="Governor home folder [env GOVERNOR_HOME; ~/.governor]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to serve on [env GOVERNOR_PORT; 8081]")] = None,
) -> None:
    """Build a demo database, a masking workflow and a key, serve, and run the workflow through the API."""
    settings = load_settings(home=home, port=port)
    setup = prepare_demo(settings)
    base_url = f"http://{settings.host}:{settings.port}"
    # Ctrl-C may come at any point: before the run is queued there is no run to report, and a
    # server this command started is stopped whenever it comes.
    server: subprocess.Popen[bytes] | None = None
    run: dict[str, Any] | None = None
    try:
        if not _healthy(base_url, setup.key):
            server = _start_server(settings)
            console.print(f"server log: {_server_log(settings)}")
            _wait_until_serving(server, settings, base_url, setup.key)
        client = ApiClient(base_url, setup.key)
        run = client.call("POST", f"/workflow/{setup.workflow_id}/run")
        console.print(f"run {run['workflow_run_id']} of workflow {setup.workflow_id} queued through the External API")
        run = follow_run(client, run)
        typer.echo(json.dumps(run, indent=2))
        if run["workflow_run_status"] == "COMPLETED":
            _show_before_after(setup)
        _show_curl(base_url, setup, run["workflow_run_id"])
        if serve and server is not None:
            console.print(f"Governor is serving on {base_url}; Ctrl-C stops it.")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
    if run is None:
        raise fail("interrupted before the demo's run was queued")
    if run["workflow_run_status"] != "COMPLETED":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
