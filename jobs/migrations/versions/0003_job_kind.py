"""jobs.kind: the kind of GPU work a job is (adapt; later invert, render, ...)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every job before this revision was an adaptation.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(32), nullable=False, server_default="adapt"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("kind")
