"""Failures of store operations that a user caused, worded to be shown as they are.

The management API maps them to HTTP statuses (404, 409, 422) and the admin CLI prints them as
one line, so both front ends word the same problem the same way.
"""

from __future__ import annotations


class StoreError(Exception):
    """A request the store refuses; ``str(error)`` is the message for the user."""


class NotFound(StoreError):
    """The named user, key, data source or workflow does not exist."""


class Conflict(StoreError):
    """The request clashes with the current state (a name taken, a key already revoked)."""


class Invalid(StoreError):
    """The request's input is wrong; ``problems`` holds one ``field: message`` line each."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(problems))
