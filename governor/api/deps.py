"""Request dependencies shared by the API routers: the store, the settings, a session, ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from governor.settings import Settings
from governor.store.db import Store
from governor.store.models import MAX_ID


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response leaves (see ``SessionDep``)."""
    with get_store(request).session() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client that got 201
# always finds what it created, and a failing commit becomes an error response, not a lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]

# Ids are int64 in the store: larger ones are bad input (422), not a database overflow (500).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
