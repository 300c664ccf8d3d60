"""What the management API returns, and what the admin CLI prints with ``--json``.

These shapes decide what leaves the store: no model here has a field for a key's secret hash or
a data source's real URL, so no route can return them by accident.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from governor.store.models import Access, AccessKey, DataSource, Role, Workflow, WorkflowVersion


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(_Out):
    id: int
    email: str
    name: str
    role: Role
    active: bool
    created_at: datetime


class KeyOut(_Out):
    key_id: str
    name: str
    user_id: int
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class KeyCreated(KeyOut):
    key: str
    """``<key_id>:<secret>``: shown this once, never again."""

    @classmethod
    def of(cls, key: AccessKey, presented: str) -> KeyCreated:
        return cls(**KeyOut.model_validate(key).model_dump(), key=presented)


class DataSourceOut(BaseModel):
    id: int
    name: str
    kind: str
    url: str
    """The URL with its password masked."""
    access: Access
    worker_group: str
    created_at: datetime
    created_by: int | None

    @classmethod
    def of(cls, source: DataSource) -> DataSourceOut:
        return cls(
            id=source.id,
            name=source.name,
            kind=source.kind,
            url=source.url_display,
            access=source.access,
            worker_group=source.worker_group,
            created_at=source.created_at,
            created_by=source.created_by,
        )


class ConnectionTestOut(BaseModel):
    ok: bool
    message: str


class VersionOut(_Out):
    version: int
    summary: str
    config_yaml: str
    author_id: int | None
    created_at: datetime


class WorkflowOut(BaseModel):
    id: int
    name: str
    source_id: int
    target_id: int
    version: int
    config_yaml: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, workflow: Workflow) -> WorkflowOut:
        current: WorkflowVersion = workflow.current
        return cls(
            id=workflow.id,
            name=workflow.name,
            source_id=workflow.source_id,
            target_id=workflow.target_id,
            version=current.version,
            config_yaml=current.config_yaml,
            created_at=workflow.created_at,
            updated_at=workflow.updated_at,
        )


class ConfigValidOut(BaseModel):
    valid: bool
    tables: int
