"""What the service asks of an executor: run queued runs somewhere, and let them be stopped.

The store is the source of truth: a run is QUEUED in the store before ``submit`` is called, and
a stop is persisted (the run's stop flag) before ``stop`` is called, so an executor that misses a
call still finds the work to do in the store.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext

from sqlalchemy.orm import Session

from governor.engine.connectors import CONNECTOR_MODULES

_ENGINE_MODULE = "governor.runs.worker"


def engine_processes() -> ForkServerContext:
    """Where both executors start a run's engine process: a fork server that has imported the
    engine already, started now, so that every run (the first one too) costs a fork."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([_ENGINE_MODULE, *CONNECTOR_MODULES])
    forkserver.ensure_running()
    return context


class Executor(ABC):
    @abstractmethod
    def start(self) -> None:
        """Begin taking queued runs, including those queued before this process started."""

    def enqueue(self, session: Session, run_id: int) -> None:  # noqa: B027 - a hook, not every executor needs it
        """The run was just written in ``session``'s transaction, not yet committed.

        An executor whose queue lives in the metadata database adds the run's job here, so that
        both are committed together or not at all (Procrastinate's defer).
        """

    @abstractmethod
    def submit(self, run_id: int) -> None:
        """A run was queued: take it as soon as a worker and its target are free."""

    def stop(self, run_id: int) -> None:  # noqa: B027 - a hook, not every executor needs it
        """A stop of the run was persisted.

        Workers of every executor read the run's stop flag between batches, so this is only a
        hook for executors that must also tell a remote worker (Procrastinate's abort).
        """

    @abstractmethod
    def shutdown(self) -> None:
        """Stop taking runs and end the running ones; they are FAILED as the server stopped."""
