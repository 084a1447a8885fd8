"""Alembic migrations build exactly the schema of jobs/db/models.py, up and down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from jobs.db.models import Base
from jobs.db.session import alembic_config, get_engine, migrate


def test_head_matches_the_models_and_downgrades(tmp_path, pg_url) -> None:  # type: ignore[no-untyped-def]
    for url in (f"sqlite:///{tmp_path / 'm.sqlite'}", pg_url):
        migrate(url)
        migrate(url)  # idempotent
        with get_engine(url).connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == [], url
        if url.startswith("sqlite"):
            command.downgrade(alembic_config(url), "base")
            tables = set(inspect(get_engine(url)).get_table_names())
            assert tables <= {"alembic_version"}
            migrate(url)
