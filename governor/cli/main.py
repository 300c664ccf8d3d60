"""The ``governor`` command: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from governor.cli import admin, demo, run, serve, transform

app = typer.Typer(
    name="governor",
    help="Governor: test-data workflows (mask, subset, generate) and the service that runs them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

transform.register(app)
admin.register(app)
serve.register(app)
run.register(app)
demo.register(app)
