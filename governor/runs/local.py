"""The embedded executor: runs execute in worker processes of the ``governor serve`` machine.

A dispatcher thread starts queued runs (oldest first, one at a time per target data source, at
most ``GOVERNOR_WORKERS`` at once), each in its own process forked from a fork server that has
already imported the engine: a crash of one run cannot take the server or other runs with it,
and starting a run costs a fork. The thread wakes when a run is submitted or a worker exits, and
polls the store every second for runs queued by anyone else. Each worker holds the reading end
of a pipe only this process writes to, so that it exits as soon as this process dies (the fork
server outlives it, so the worker's parent says nothing).

Only one executor may dispatch from a store at a time: the target-serialization check and the
start of a run are two statements, safe against the API's stops but not against a second
dispatcher.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from governor.runs import service
from governor.runs.executor import Executor, engine_processes
from governor.settings import Settings
from governor.store.db import Store

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 5.0


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by signal {-exitcode}"
    return f"ended unexpectedly (exit code {exitcode})"


@dataclass(frozen=True)
class _Worker:
    process: BaseProcess
    lifeline: Connection
    """The writing end of the worker's lifeline pipe: never written, closed when we are gone."""


class LocalExecutor(Executor):
    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._context = engine_processes()
        self._running: dict[int, _Worker] = {}
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="governor-dispatcher", daemon=True)
        self._thread.start()

    def submit(self, run_id: int) -> None:
        self._wake()

    def shutdown(self) -> None:
        self._closing.set()
        self._wake()
        if self._thread is not None:
            self._thread.join()
        for worker in self._running.values():
            worker.process.terminate()
        for worker in self._running.values():
            worker.process.join(SHUTDOWN_GRACE_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.lifeline.close()
        if self._running:
            with self._store.session() as session:
                service.fail_started_runs(session, service.SERVER_STOPPED, list(self._running))
        self._running.clear()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _wake(self) -> None:
        # A full pipe already holds wake-ups: the dispatcher will look anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"\0")

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self._reap()
                self._dispatch()
            except Exception:
                # The store may be briefly unreachable; queued runs are still there next time.
                logger.exception("dispatcher: could not start or reap runs; retrying")
            sentinels = [worker.process.sentinel for worker in self._running.values()]
            if self._wake_read in wait([self._wake_read, *sentinels], timeout=POLL_SECONDS):
                os.read(self._wake_read, 65536)

    def _reap(self) -> None:
        """Forget exited workers; a run its worker left unfinished ends FAILED."""
        for run_id, worker in list(self._running.items()):
            process = worker.process
            if process.exitcode is None:
                continue
            process.join()
            worker.lifeline.close()
            with self._store.session() as session:
                message = f"the worker process running this run {_exit_reason(process.exitcode)}"
                if service.fail_started_runs(session, message, [run_id]):
                    logger.error("run %s: %s", run_id, message)
            del self._running[run_id]

    def _dispatch(self) -> None:
        with self._store.session() as session:
            claimed = service.claim_runs(session, self._settings.workers - len(self._running))
        for run_id in claimed:
            # The worker holds the reading end; it sees the pipe close if this process dies.
            lifeline, keep = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_execute, args=(run_id, self._settings, lifeline), name=f"governor-run-{run_id}"
            )
            try:
                process.start()
            except Exception as exc:
                keep.close()
                with self._store.session() as session:
                    service.fail_started_runs(session, f"could not start a worker process: {exc}", [run_id])
                continue
            finally:
                lifeline.close()
            logger.info("run %s: started in worker process %s", run_id, process.pid)
            self._running[run_id] = _Worker(process, keep)


def _execute(run_id: int, settings: Settings, lifeline: Connection) -> None:
    """Import the worker lazily: the server process itself never needs the engine."""
    from governor.runs.worker import execute

    execute(run_id, settings, lifeline)
