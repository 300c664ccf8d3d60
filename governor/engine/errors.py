"""Errors the engine raises for problems a user can act on.

Every error carries a message meant to be shown as is, in one line, by the CLI, the API and the
run log; anything else escaping the engine is a bug.
"""

from typing import Any


class EngineError(Exception):
    """A problem with the config, the databases or the data that the user can fix.

    ``report`` is what the run did before it ended (a ``RunReport``, set by the runner), so a
    failed or stopped run still tells which tables were loaded.
    """

    report: Any = None


class ConfigError(EngineError):
    """The workflow config is invalid; ``problems`` holds one ``path: message`` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class SchemaError(EngineError):
    """The config and the database schema disagree, or the schema cannot be loaded as asked."""


class ConnectionFailed(EngineError):
    """A database could not be reached or opened."""


class RunStopped(EngineError):
    """The run was asked to stop and stopped between two batches."""
