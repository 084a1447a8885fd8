"""`nada gc`: --dry-run prints what would go and removes nothing; the pass itself removes
it (the clock set by --now); a bad --now is refused naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from cli.main import main
from jobs import storage, store
from jobs.db.models import Job
from jobs.db.session import migrate, session_scope
from jobs.settings import get_settings
from nada import rundir
from nada.params import AdaptParams


def test_gc_dry_run_then_for_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NADA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NADA_RETAIN_RESULTS_HOURS", "24")
    get_settings.cache_clear()
    settings = get_settings()
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        job_id = store.create_job(s, params=AdaptParams("photo", "sketch", steps=1)).id
        s.execute(
            update(Job).where(Job.id == job_id)
            .values(status="succeeded", finished_at=store.utcnow())
        )  # fmt: skip
    root = storage.job_dir(settings.jobs_dir, job_id)
    root.mkdir(parents=True)
    (root / rundir.ADAPTED).write_bytes(b"x" * 123_456)
    try:
        assert main(["gc", "--dry-run"]) == 0  # too young today
        assert "0 job(s), would free 0.0 MB" in capsys.readouterr().out
        assert main(["gc", "--dry-run", "--now", "2099-01-01T00:00Z"]) == 0
        out = capsys.readouterr().out
        assert f"{job_id}  results    0.1 MB" in out and "1 job(s), would free 0.1 MB" in out
        assert (root / rundir.ADAPTED).exists()
        assert main(["gc", "--now", "2099-01-01T00:00Z"]) == 0
        assert "1 job(s), freed 0.1 MB" in capsys.readouterr().out
        assert not (root / rundir.ADAPTED).exists()
        with pytest.raises(SystemExit) as refused:
            main(["gc", "--now", "tomorrow"])
        assert refused.value.code == 2 and "--now" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
