"""Photo jobs (inversions, edits): jobs listed by kind, and a cache key for work done once

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cache_key", sa.String(64), nullable=True))
    op.create_index("ix_jobs_kind_created_at", "jobs", ["kind", "created_at"])
    op.create_index("ix_jobs_cache_key", "jobs", ["cache_key"])


def downgrade() -> None:
    op.drop_index("ix_jobs_cache_key", table_name="jobs")
    op.drop_index("ix_jobs_kind_created_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cache_key")
