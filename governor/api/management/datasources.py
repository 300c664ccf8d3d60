"""Data sources: created with their URL (encrypted at rest), shown with the password masked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from governor.api.auth import CurrentKey
from governor.api.deps import IdPath, SessionDep, SettingsDep
from governor.api.management.schemas import ConnectionTestOut, DataSourceOut
from governor.store.datasources import create_data_source, get_data_source, list_data_sources, test_connection
from governor.store.models import Access

router = APIRouter(tags=["data sources"])


class DataSourceCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    url: Annotated[
        str,
        Field(min_length=1, max_length=4000, description="e.g. postgresql://user:pass@host:5432/db; never shown again"),
    ]
    access: Access = Access.READ_WRITE
    worker_group: Annotated[str, Field(min_length=1, max_length=100)] = "default"


@router.post("/datasources", response_model=DataSourceOut, status_code=201)
def create(body: DataSourceCreate, key: CurrentKey, session: SessionDep, settings: SettingsDep) -> DataSourceOut:
    source = create_data_source(
        session, settings, body.name, body.url, body.access, body.worker_group, created_by=key.user
    )
    return DataSourceOut.of(source)


@router.get("/datasources", response_model=list[DataSourceOut])
def list_all(key: CurrentKey, session: SessionDep) -> list[DataSourceOut]:
    return [DataSourceOut.of(source) for source in list_data_sources(session)]


@router.get("/datasources/{source_id}", response_model=DataSourceOut)
def read(source_id: IdPath, key: CurrentKey, session: SessionDep) -> DataSourceOut:
    return DataSourceOut.of(get_data_source(session, source_id))


@router.post(
    "/datasources/{source_id}/test",
    response_model=ConnectionTestOut,
    summary="Connect once and say whether it worked",
)
def test(source_id: IdPath, key: CurrentKey, session: SessionDep, settings: SettingsDep) -> ConnectionTestOut:
    problem = test_connection(get_data_source(session, source_id), settings)
    return ConnectionTestOut(ok=problem is None, message=problem or "connected")
