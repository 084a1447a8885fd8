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


def test_a_database_of_the_last_release_migrates_forward(tmp_path, pg_url) -> None:  # type: ignore[no-untyped-def]
    """A job stored by the schema before job kinds (revision 0002) is an adaptation after
    the upgrade, and the store reads it like a new one."""
    import json

    from sqlalchemy import text

    from jobs import store
    from jobs.db.session import session_scope

    for url in (f"sqlite:///{tmp_path / 'old.sqlite'}", pg_url):
        if not url.startswith("sqlite"):
            command.downgrade(alembic_config(url), "0002")
        else:
            command.upgrade(alembic_config(url), "0002")
        job_id = "ab" * 16
        params = {"source_text": "photo", "target_text": "sketch", "generator": "random-64"}
        with get_engine(url).begin() as conn:
            conn.execute(text("DELETE FROM job_events"))
            conn.execute(text("DELETE FROM jobs"))
            conn.execute(
                text(
                    "INSERT INTO jobs (id, status, params, step, total_steps, losses, "
                    "selected_layers, sample_steps, cancel_requested, attempt, created_at, "
                    "queued_at, owner) VALUES (:id, 'succeeded', :params, 300, 300, '{}', "
                    "'[]', '[]', false, 1, :t, :t, '')"
                ),
                {"id": job_id, "params": json.dumps(params), "t": "2026-11-28 10:00:00"},
            )
        migrate(url)
        with session_scope(url) as session:
            job = store.get_job(session, job_id=job_id)
            assert (job.kind, job.status, job.params["target_text"]) == (
                "adapt",
                "succeeded",
                "sketch",
            )


def test_rows_earlier_versions_let_in_are_repaired(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A lone surrogate in the params and NaN losses (what SQLite kept before 0004) become
    escaped text and null, so the row can be served as JSON."""
    import json

    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    command.upgrade(alembic_config(url), "0003")
    params = {"source_text": "photo", "target_text": "sk\ud800etch", "generator": "random-64"}
    with get_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, kind, status, params, step, total_steps, losses, "
                "selected_layers, sample_steps, cancel_requested, attempt, created_at, "
                "queued_at, owner) VALUES (:id, 'adapt', 'failed', :params, 2, 300, :losses, "
                "'[]', '[]', false, 1, :t, :t, '')"
            ),
            {
                "id": "cd" * 16,
                "params": json.dumps(params),
                "losses": '{"total": NaN, "direction": 0.5}',
                "t": "2026-11-28 10:00:00",
            },
        )
    migrate(url)
    with get_engine(url).connect() as conn:
        row = conn.execute(text("SELECT params, losses FROM jobs")).one()
    assert json.loads(row.params)["target_text"] == "sk\\ud800etch"
    assert json.loads(row.losses) == {"total": None, "direction": 0.5}


def test_0009_adds_error_details_to_failed_jobs_of_0008(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A job that failed before error_details existed keeps its message and has no
    details; the downgrade drops the column again."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'e.sqlite'}"
    command.upgrade(alembic_config(url), "0008")
    with get_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, status, kind, params, step, total_steps, losses, "
                "selected_layers, sample_steps, scores, cancel_requested, attempt, "
                "created_at, queued_at, owner, error_code, error_message) VALUES ('f1', "
                "'failed', 'adapt', '{}', 0, 1, '{}', '[]', '[]', '{}', 0, 1, :t, :t, '', "
                "'model_unavailable', 'no copy')"
            ),
            {"t": "2026-12-01 10:00:00"},
        )
    command.upgrade(alembic_config(url), "0009")
    with get_engine(url).connect() as conn:
        row = conn.execute(text("SELECT error_message, error_details FROM jobs")).one()
    assert tuple(row) == ("no copy", None)
    command.downgrade(alembic_config(url), "0008")
    columns = {c["name"] for c in inspect(get_engine(url)).get_columns("jobs")}
    assert "error_details" not in columns and "error_message" in columns
