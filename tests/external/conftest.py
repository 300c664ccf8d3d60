"""Fixtures of the External API tests: the real app under uvicorn on a free loopback port, with
the local executor and its worker processes, and callers holding good and bad keys."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn

from governor.api.app import create_app
from governor.runs.local import LocalExecutor
from governor.settings import Settings
from governor.store.db import Store
from governor.store.keys import create_key, revoke_key
from governor.store.models import utcnow
from governor.store.users import get_user
from tests.runs import conftest as run_fixtures
from tests.service.conftest import Caller

metadata_url = run_fixtures.metadata_url
store = run_fixtures.store
make_caller = run_fixtures.make_caller
settings = run_fixtures.settings
slow_source_template = run_fixtures.slow_source_template
workflows = run_fixtures.workflows

API = "/external/api/v1"


@dataclass(frozen=True)
class LiveServer:
    url: str

    def client(self, key: str | None) -> httpx.Client:
        headers = {"X-Access-Key": key} if key is not None else {}
        return httpx.Client(base_url=self.url + API, headers=headers, timeout=60)


@pytest.fixture
def live(settings: Settings, store: Store) -> Iterator[LiveServer]:
    """``governor serve`` in-process: the same app, executor and uvicorn, on a thread."""
    executor = LocalExecutor(settings, store)
    executor.start()
    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store, executor), log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    finally:
        server.should_exit = True
        thread.join()
        executor.shutdown()
        listener.close()


@pytest.fixture
def caller(workflows: run_fixtures.Workflows, store: Store) -> Caller:
    """The owner of the ``workflows`` fixture's user, with a fresh good key."""
    with store.session() as session:
        user = get_user(session, workflows.user_id)
        _, presented = create_key(session, user, "caller")
        return Caller(user.id, user.email, presented)


@pytest.fixture
def bad_keys(caller: Caller, store: Store, make_caller: Callable[..., Caller]) -> dict[str, str | None]:
    """Keys that must all get 401: none, unknown, malformed, expired, revoked, of an inactive user."""
    with store.session() as session:
        user = get_user(session, caller.user_id)
        expired, expired_key = create_key(session, user, "expired", expires_at=utcnow() + timedelta(hours=1))
        expired.expires_at = utcnow() - timedelta(seconds=1)
        _, revoked_key = create_key(session, user, "revoked")
    with store.session() as session:
        revoke_key(session, revoked_key.split(":")[0])
    inactive = make_caller("gone@example.org")
    with store.session() as session:
        get_user(session, inactive.user_id).active = False
    key_id = caller.key.split(":")[0]
    return {
        "missing": None,
        "unknown": "0123456789abcdef:" + "x" * 43,
        "wrong secret": f"{key_id}:{'y' * 43}",
        "malformed": "not a key",
        "expired": expired_key,
        "revoked": revoked_key,
        "inactive user": inactive.key,
    }
