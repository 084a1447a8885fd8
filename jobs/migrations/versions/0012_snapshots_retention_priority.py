"""Snapshots, retention and priority (issue 24): the steps a job kept its generator at
(snapshot_steps), when its resumable state and its results were removed by retention
(resumable_expired_at, files_expired_at), the bytes its run directory holds (disk_bytes,
the per-token quota's figure) and its queue priority (priority; higher runs first)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("snapshot_steps", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("resumable_expired_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("files_expired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disk_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_jobs_status_priority_queued_at", ["status", "priority", "queued_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_status_priority_queued_at")
        for name in (
            "priority",
            "disk_bytes",
            "files_expired_at",
            "resumable_expired_at",
            "snapshot_steps",
        ):
            batch.drop_column(name)
