"""The ``governor`` command: one Typer app; each command group lives in its own module.

A command's module is imported only when that command runs: ``governor transform`` in a CI
job should not pay for loading the web server, nor ``governor run`` for the data engine.
"""

from __future__ import annotations

import importlib

import click
import typer
from typer.core import TyperGroup

# Command name -> the module whose ``register(app)`` defines it, in the order ``--help`` lists them.
COMMAND_MODULES = {
    "demo": "governor.cli.demo",
    "serve": "governor.cli.serve",
    "worker": "governor.cli.worker",
    "run": "governor.cli.run",
    "transform": "governor.cli.transform",
    "users": "governor.cli.admin",
    "keys": "governor.cli.admin",
    "datasources": "governor.cli.admin",
    "workflows": "governor.cli.admin",
}


class LazyCommands(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        holder = typer.Typer()
        importlib.import_module(module).register(holder)
        return typer.main.get_group(holder).get_command(ctx, cmd_name)


app = typer.Typer(
    name="governor",
    cls=LazyCommands,
    help="Governor: test-data workflows (mask, subset, generate) and the service that runs them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Governor: test-data workflows (mask, subset, generate) and the service that runs them."""
