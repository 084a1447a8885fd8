"""Sweeps: one job per combination of a grid; jobs know their sweep and place in it, and
keep their objective scores by step

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, server_default=""),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("grid", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sweeps_owner_created_at", "sweeps", ["owner", "created_at"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("sweep_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("scores", sa.JSON(), nullable=False, server_default="{}"))
    op.create_index("ix_jobs_sweep_id", "jobs", ["sweep_id", "sweep_index"])


def downgrade() -> None:
    op.drop_index("ix_jobs_sweep_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("scores")
        batch.drop_column("sweep_index")
        batch.drop_column("sweep_id")
    op.drop_index("ix_sweeps_owner_created_at", table_name="sweeps")
    op.drop_table("sweeps")
