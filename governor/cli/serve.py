"""``governor serve``: the server, its APIs and its worker processes, on one machine.

Start-up order matters: the home lock and the listening socket come first, so that a second
server on the same home or port fails before it touches anything; only then are runs left
RUNNING by a dead server failed (no live server can still be running them) and the executor
started, which picks up the runs that stayed QUEUED.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from governor.api.app import create_app
from governor.cli.common import fail, load_settings, open_store_or_fail
from governor.runs import service
from governor.runs.distributed import DistributedExecutor, DistributedUnavailable, check_settings
from governor.runs.executor import Executor
from governor.runs.local import LocalExecutor
from governor.runs.logformat import configure_logging
from governor.settings import Settings
from governor.store.db import Store

logger = logging.getLogger("governor.serve")


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One server per home: it alone may fail the runs it finds RUNNING at start-up."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(home / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise fail(f"another governor serve is already running with the home {home}") from None
        yield
    finally:
        os.close(descriptor)


# Longer than the idle timeout of the usual load balancers (60 s): a server that closes an idle
# connection first races the balancer's next request on it, which the client sees as a 502.
KEEP_ALIVE_SECONDS = 75


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, with TCP_NODELAY for the connections it accepts.

    ``socket.create_server`` leaves the protocol number 0, so asyncio does not recognize the
    accepted sockets as TCP and leaves Nagle's algorithm on: every response then waits for the
    client's delayed ACK (about 40 ms on Linux). Linux passes the listener's option to them.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((host, port), family=family, backlog=2048)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return listener
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _executor(settings: Settings, store: Store) -> Executor:
    """The executor the settings choose.

    The local one first fails the runs a dead server left RUNNING: only this server's processes
    ran them. Distributed runs belong to their workers; a reaper notices those that are lost.
    """
    if settings.executor == "procrastinate":
        return DistributedExecutor(settings, store)
    with store.session() as session:
        failed = service.fail_started_runs(session, service.SERVER_STOPPED)
    if failed:
        logger.warning("runs %s were running when the server stopped: now FAILED", failed)
    return LocalExecutor(settings, store)


class _Signalled(Exception):
    pass


def _raise_signalled(number: int, frame: FrameType | None) -> None:
    raise _Signalled


@contextmanager
def _signals_end_serving() -> Iterator[None]:
    """SIGINT or SIGTERM: a graceful end, exit code 0.

    uvicorn shuts down gracefully on them, then raises the signal again under the handler that
    was there before it; this handler turns it into a normal return, so that the executor is
    shut down (its running runs failed as "server stopped") instead of the process dying.
    """
    previous = {number: signal.signal(number, _raise_signalled) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Signalled:
        logger.info("Governor stopped")
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [env GOVERNOR_HOST; 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [env GOVERNOR_PORT; 8081]")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Runs executed at once, each in its own process [env GOVERNOR_WORKERS; 2]")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Governor home folder [env GOVERNOR_HOME; ~/.governor]")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR [env GOVERNOR_LOG_LEVEL]")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json [env GOVERNOR_LOG_FORMAT]")] = None,
) -> None:
    """Serve the External API and the management API, and execute workflow runs."""
    settings = load_settings(
        host=host, port=port, workers=workers, home=home, log_level=log_level, log_format=log_format
    )
    if settings.executor == "procrastinate":
        try:
            check_settings(settings)
        except DistributedUnavailable as exc:
            raise fail(str(exc)) from None
    configure_logging(settings)
    with _home_lock(settings.home):
        listener = _listen(settings.host, settings.port)
        store = open_store_or_fail(settings)
        executor = _executor(settings, store)
        executor.start()
        try:
            config = uvicorn.Config(
                create_app(settings, store, executor),
                log_config=None,
                log_level=settings.log_level.lower(),
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
            )
            logger.info(
                "Governor serving on http://%s:%s (home %s, %s)",
                settings.host,
                settings.port,
                settings.home,
                f"{settings.workers} workers" if settings.executor == "local" else "runs on governor worker processes",
            )
            with _signals_end_serving():
                uvicorn.Server(config).run(sockets=[listener])
        finally:
            executor.shutdown()
            store.dispose()
            listener.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
