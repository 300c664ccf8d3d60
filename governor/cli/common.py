"""What every ``governor`` command shares: where messages go, how a command fails, the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from governor.settings import Settings
from governor.store.crypto import redact

if TYPE_CHECKING:
    from governor.store.db import Store

# Messages and progress go to stderr, so that stdout carries only results (JSON for scripts).
console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print the one-line reason a command failed and give the exit to raise."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def load_settings(**overrides: Any) -> Settings:
    """Settings from ``GOVERNOR_*`` variables, with the command-line flags that were given on top."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"GOVERNOR_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise fail(f"bad configuration: {problems}") from None


def open_store_or_fail(settings: Settings) -> Store:
    """The configured store; a metadata database that cannot be used ends the command with one line.

    The store (and Alembic under it) is imported here, not above: ``governor transform`` needs none,
    and its start-up is part of every masking run's time.
    """
    from governor.store.db import UnusableDatabaseUrl, open_store

    try:
        return open_store(settings)
    except (UnusableDatabaseUrl, SQLAlchemyError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"cannot open the metadata store: {redact(reason)}") from None
