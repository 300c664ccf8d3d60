"""The metadata Governor keeps: users, access keys, data sources, workflows and their runs.

The same models serve SQLite (embedded default) and PostgreSQL (production); Alembic migrations
in ``governor/store/migrations`` create them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# int64 ids everywhere, as the External API promises; SQLite only autoincrements INTEGER keys.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MAX_ID = 2**63 - 1


def as_id(text: str) -> int | None:
    """The id ``text`` spells, or None if it spells none an int64 column can hold.

    For the CLI's "id or name" arguments: a longer number cannot be an id (the database would
    overflow), and ``str.isdigit`` alone also takes digits such as "²" that ``int`` refuses.
    """
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        return int(text)
    return None


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timestamps stored and returned as timezone-aware UTC, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: sa.JSON}


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED)


class Access(StrEnum):
    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(sa.Enum(Role, native_enum=False, length=16), default=Role.MEMBER)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessKey(Base):
    """An API key; the secret is never stored, only its hash."""

    __tablename__ = "access_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(128))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(lazy="joined")


class DataSource(Base):
    """A database workflows read or write; the URL (with its credentials) is encrypted at rest."""

    __tablename__ = "data_sources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    url_encrypted: Mapped[str] = mapped_column(sa.Text)
    url_display: Mapped[str] = mapped_column(sa.Text)
    access: Mapped[Access] = mapped_column(
        sa.Enum(Access, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Access.READ_WRITE,
    )
    worker_group: Mapped[str] = mapped_column(sa.String(100), default="default")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("data_sources.id"))
    target_id: Mapped[int] = mapped_column(sa.ForeignKey("data_sources.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    source: Mapped[DataSource] = relationship(foreign_keys=[source_id], lazy="joined")
    target: Mapped[DataSource] = relationship(foreign_keys=[target_id], lazy="joined")
    versions: Mapped[list[WorkflowVersion]] = relationship(
        back_populates="workflow", order_by="WorkflowVersion.version", lazy="selectin"
    )

    @property
    def current(self) -> WorkflowVersion:
        return self.versions[-1]


class WorkflowVersion(Base):
    """Every saved change of a workflow's config: who, when, what (the activity log)."""

    __tablename__ = "workflow_versions"
    __table_args__ = (sa.UniqueConstraint("workflow_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(sa.ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int]
    config_yaml: Mapped[str] = mapped_column(sa.Text)
    # What this save changed ("created", "config, target"): a version is kept for every change.
    summary: Mapped[str] = mapped_column(sa.String(200), default="")
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workflow: Mapped[Workflow] = relationship(back_populates="versions")


class WorkflowRun(Base):
    __tablename__ = "workflow_runs"
    __table_args__ = (sa.Index("ix_workflow_runs_workflow_id_id", "workflow_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(sa.ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version_id: Mapped[int] = mapped_column(sa.ForeignKey("workflow_versions.id"))
    target_id: Mapped[int] = mapped_column(sa.ForeignKey("data_sources.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[RunStatus] = mapped_column(sa.Enum(RunStatus, native_enum=False, length=16), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_date: Mapped[datetime] = mapped_column(default=utcnow)
    end_date: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    stop_requested: Mapped[bool] = mapped_column(default=False)
    worker_id: Mapped[str | None] = mapped_column(sa.String(200))
    heartbeat_at: Mapped[datetime | None]
    tables_total: Mapped[int] = mapped_column(default=0)
    tables_done: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    report: Mapped[dict[str, Any] | None]
    # The run's Procrastinate job, when the distributed executor queued it (GOVERNOR_EXECUTOR=procrastinate).
    job_id: Mapped[int | None] = mapped_column(sa.BigInteger)


class RunLog(Base):
    __tablename__ = "run_logs"
    __table_args__ = (sa.Index("ix_run_logs_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(sa.String(10), default="INFO")
    message: Mapped[str] = mapped_column(sa.Text)


class Worker(Base):
    """A ``governor worker`` process, registered while it runs (the distributed executor)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    queues: Mapped[list[str]] = mapped_column(sa.JSON)
    concurrency: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(default=utcnow)
