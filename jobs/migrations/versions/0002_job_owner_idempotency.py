"""jobs.owner (the submitting API token) and Idempotency-Key columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # batch: SQLite cannot ALTER much in place
        batch.add_column(sa.Column("owner", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("request_sha256", sa.String(64), nullable=True))
    op.create_index("ix_jobs_owner_created_at", "jobs", ["owner", "created_at"])
    # NULL keys are distinct on both SQLite and PostgreSQL: only keyed submissions collide.
    op.create_index(
        "ux_jobs_owner_idempotency_key", "jobs", ["owner", "idempotency_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_owner_idempotency_key", "jobs")
    op.drop_index("ix_jobs_owner_created_at", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("request_sha256")
        batch.drop_column("idempotency_key")
        batch.drop_column("owner")
