"""Repair job rows that earlier versions let in: lone surrogates in text, NaN/inf numbers

Before revision 0004's release the API stored a prompt holding a lone UTF-16 surrogate
(JSON's "\\ud800"), and a worker could record a NaN loss (SQLite keeps `NaN` in JSON text).
Neither can be sent as JSON, so such a row made every job list fail. Surrogates become
their escaped text ("\\ud800" as six characters), non-finite numbers become null.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("params", "losses", "selected_layers")


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_repaired(str(k)): _repaired(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repaired(v) for v in value]
    return value


def upgrade() -> None:
    jobs = sa.table("jobs", sa.column("id", sa.String), *(sa.column(c, sa.JSON) for c in _COLUMNS))
    conn = op.get_bind()
    rows = conn.execute(sa.select(jobs.c.id, *(jobs.c[c] for c in _COLUMNS))).all()
    for row in rows:
        changes = {}
        for column in _COLUMNS:
            value = getattr(row, column)
            fixed = _repaired(value)
            if fixed != value:
                changes[column] = fixed
        if changes:
            conn.execute(sa.update(jobs).where(jobs.c.id == row.id).values(**changes))


def downgrade() -> None:
    pass  # the repaired values are valid at every revision
