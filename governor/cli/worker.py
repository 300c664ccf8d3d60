"""``governor worker``: execute the runs that ``governor serve`` queues with
``GOVERNOR_EXECUTOR=procrastinate``, on any machine that reaches the metadata database (PostgreSQL)
and the data sources. Start as many as needed, on as many machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from governor.cli.common import fail, load_settings, open_store_or_fail
from governor.runs.distributed import DEFAULT_GROUP, DistributedUnavailable, check_settings, run_worker
from governor.runs.logformat import configure_logging
from governor.settings import Settings


def _groups(queues: list[str] | None) -> list[str]:
    """``--queues a,b --queues c`` -> ``[a, b, c]``, each once, in order."""
    groups = [name.strip() for value in queues or [DEFAULT_GROUP] for name in value.split(",")]
    if not all(groups):
        raise fail("--queues: worker group names cannot be empty")
    return list(dict.fromkeys(groups))


def _check_secret_key(settings: Settings) -> None:
    """A worker must decrypt data source URLs with the server's key: a new key would be wrong."""
    if settings.secret_key is None and not settings.secret_key_file.is_file():
        raise fail(
            "no secret key to read data source credentials: set GOVERNOR_SECRET_KEY to the server's "
            f"(or run the worker with the server's GOVERNOR_HOME, which holds {settings.secret_key_file.name})"
        )


def worker(
    queues: Annotated[
        list[str] | None,
        typer.Option(help="Worker groups whose runs this worker takes; repeat or comma-separate [default]"),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Runs executed at once, each in its own process [env GOVERNOR_WORKERS; 2]"),
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Governor home folder [env GOVERNOR_HOME; ~/.governor]")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR [env GOVERNOR_LOG_LEVEL]")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json [env GOVERNOR_LOG_FORMAT]")] = None,
) -> None:
    """Execute queued workflow runs (GOVERNOR_EXECUTOR=procrastinate) until SIGINT or SIGTERM."""
    settings = load_settings(workers=concurrency, home=home, log_level=log_level, log_format=log_format)
    groups = _groups(queues)
    try:
        check_settings(settings)
    except DistributedUnavailable as exc:
        raise fail(str(exc)) from None
    _check_secret_key(settings)
    configure_logging(settings)
    store = open_store_or_fail(settings)
    try:
        run_worker(settings, store, groups, settings.workers)
    finally:
        store.dispose()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
