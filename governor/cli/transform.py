"""``governor transform``: run a workflow config straight from the command line, no server needed."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from governor.cli.common import console, fail
from governor.engine.config import WorkflowConfig, parse_config
from governor.engine.connectors.urls import first_line
from governor.engine.errors import EngineError
from governor.engine.plan import Plan
from governor.engine.preview import plan_document, preview_plan
from governor.engine.runner import RunEvent, RunReport, run_workflow


def _read_config(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise fail(f"cannot read config {path}: not UTF-8 text (byte {exc.start})") from None


def _show_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(plan_document(plan), indent=2))
        return
    table = Table(title="Plan (tables in load order)", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("table")
    table.add_column("mode")
    table.add_column("rows")
    table.add_column("estimated", justify="right")
    table.add_column("transformed columns")
    for position, item in enumerate(plan.describe(), start=1):
        columns = "\n".join(f"{c}: {what}" for c, what in item["columns"].items() if what != "keep") or "-"
        rows = "\n".join([item["rows"], *(f"cycle broken: {b}" for b in item["cycle_breaks"])])
        estimated = "-" if item["estimated_rows"] is None else f"{item['estimated_rows']:,}"
        table.add_row(str(position), item["table"], item["mode"], rows, estimated, columns)
    Console().print(table)


def register(app: typer.Typer) -> None:
    @app.command()
    def transform(
        config: Path = typer.Option(..., "--config", "-c", help="Workflow config (TDK-style YAML)."),
        source: str = typer.Option(..., "--source", help="Source database URL (only read)."),
        target: str = typer.Option("", "--target", help="Target database URL (written)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and write nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print the plan or the report as JSON."),
    ) -> None:
        """Read SOURCE, transform it as CONFIG says, and write TARGET."""
        if not (target or dry_run):
            raise fail("--target is required unless --dry-run is given")
        text = _read_config(config)
        try:
            workflow = parse_config(text)
            if dry_run:
                _show_plan(preview_plan(workflow, source), as_json)
                return
            report = _run_with_progress(workflow, source, target)
        except EngineError as exc:
            raise fail(str(exc)) from None
        except Exception as exc:  # a bug: still one line, not a traceback over the user's terminal
            raise fail(f"unexpected {type(exc).__name__}: {first_line(exc)}") from None
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        rows = sum(t.rows_written for t in report.tables)
        seconds = sum(t.seconds for t in report.tables)
        console.print(f"[green]done:[/] {len(report.tables)} tables, {rows:,} rows in {seconds:.1f} s")


def _run_with_progress(workflow: WorkflowConfig, source: str, target: str) -> RunReport:
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:

        def on_event(event: RunEvent) -> None:
            if event.kind == "table_started" and event.table:
                tasks[event.table] = progress.add_task(event.table, total=event.total)
            elif event.kind in ("rows", "table_finished") and event.table in tasks:
                progress.update(tasks[event.table], completed=event.rows)

        return run_workflow(workflow, source, target, on_event=on_event)
