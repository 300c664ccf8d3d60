"""Distributed executor: a run's Procrastinate job, the worker registry, Procrastinate's own schema.

Procrastinate keeps its queue in the metadata database (PostgreSQL only), so its schema is part of
ours: applied here, once, from the installed Procrastinate, so that the server and every
``governor worker`` find it whichever starts first. A later Procrastinate release that changes
its schema needs a revision applying its migration scripts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workflow_runs", sa.Column("job_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        installed = bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar()
        if installed is None:
            # The driver's own execute: the schema is many statements and has no parameters.
            bind.connection.driver_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_column("workflow_runs", "job_id")
