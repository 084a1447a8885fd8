"""Retention and quotas over HTTP: /healthz states them; a job whose files a gc pass
removed keeps its record, says files_expired, and its file routes, continue and renders
answer 410 with a code instead of 404; a token over its disk quota is refused with 403
naming the figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.main import create_app
from jobs import gc, store
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir

API = "/api/v1"
ALICE = "alice-secret-token-0001"
AUTH = {"Authorization": f"Bearer {ALICE}"}
ADAPT = {"source_text": "photo", "target_text": "sketch", "generator": "random-64"}


def test_healthz_says_everything_is_kept_by_default(client: Any) -> None:
    body = client.get(f"{API}/healthz").json()
    assert body["retention"] == {
        "resumable_hours": None, "results_hours": None, "disk_quota_mb": None,
    }  # fmt: skip


def test_expired_files_answer_410_and_the_quota_403(
    settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = settings.model_copy(
        update={"api_tokens": f"alice:{ALICE}", "retain_resumable_hours": 1,
                "retain_results_hours": 2, "disk_quota_mb": 1}
    )  # fmt: skip
    configured = Settings.model_validate(configured.model_dump())
    with TestClient(create_app(configured, queue=queue)) as client:
        assert client.get(f"{API}/healthz").json()["retention"] == {
            "resumable_hours": 1, "results_hours": 2, "disk_quota_mb": 1,
        }  # fmt: skip
        old = client.post(f"{API}/jobs", json=ADAPT, headers=AUTH).json()["id"]
        root = settings.jobs_dir / old
        (root / rundir.SAMPLES_DIR).mkdir(parents=True)
        for name in (rundir.ADAPTED, rundir.RESUME, rundir.PARAMS, "samples/step_000001.png"):
            (root / name).write_bytes(b"x" * 100)
        finished = store.utcnow() - timedelta(hours=3)
        with session_scope(settings.db_url) as s:
            s.execute(
                update(Job).where(Job.id == old)
                .values(status="succeeded", finished_at=finished, sample_steps=[1], step=1)
            )  # fmt: skip
        assert client.get(f"{API}/jobs/{old}/checkpoint", headers=AUTH).status_code == 200
        report = gc.collect(configured.db_url, configured.jobs_dir, configured.retention)
        assert [(r.job_id, r.what) for r in report.removals] == [(old, "results")]

        view = client.get(f"{API}/jobs/{old}", headers=AUTH).json()
        assert view["files_expired"] is True and view["resumable_expired"] is True
        assert view["status"] == "succeeded" and view["checkpoint_url"] is None
        assert view["samples"] == []
        for path in ("checkpoint", "samples/1.png"):
            r = client.get(f"{API}/jobs/{old}/{path}", headers=AUTH)
            assert r.status_code == 410 and r.json()["code"] == "files_expired", path
            assert old in r.json()["detail"]
        r = client.post(f"{API}/jobs/{old}/continue", json={"steps": 1}, headers=AUTH)
        assert r.status_code == 410 and r.json()["code"] == "resumable_expired"
        r = client.post(f"{API}/jobs/{old}/renders", json={"seeds": [1]}, headers=AUTH)
        assert r.status_code == 410 and r.json()["code"] == "files_expired", r.text
        assert old in r.json()["detail"]

        # A pass marks a job while a render of it is being submitted: the render, committed
        # after the mark, sees it, cancels itself and answers 410
        fresh = client.post(f"{API}/jobs", json=ADAPT, headers=AUTH).json()["id"]
        with session_scope(settings.db_url) as s:
            s.execute(update(Job).where(Job.id == fresh).values(status="succeeded"))
        create = store.create_job

        def marked_meanwhile(*args: Any, **kwargs: Any) -> Job:
            with session_scope(settings.db_url) as s:
                s.execute(
                    update(Job).where(Job.id == fresh).values(files_expired_at=store.utcnow())
                )
            return create(*args, **kwargs)

        monkeypatch.setattr(store, "create_job", marked_meanwhile)
        r = client.post(f"{API}/jobs/{fresh}/renders", json={"seeds": [1]}, headers=AUTH)
        monkeypatch.setattr(store, "create_job", create)
        assert r.status_code == 410 and r.json()["code"] == "files_expired", r.text
        with session_scope(settings.db_url) as s:
            (render,) = s.query(Job).filter(Job.kind == "render").all()
            assert render.status == "canceled" and render.params["job_id"] == fresh

        # The quota: 1 MB, and alice's jobs hold 1.5 MB
        with session_scope(settings.db_url) as s:
            s.execute(update(Job).where(Job.id == old).values(disk_bytes=1_500_000))
        r = client.post(f"{API}/jobs", json=ADAPT, headers=AUTH)
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["code"] == "quota_exceeded" and "2 MB of the 1 MB" in body["detail"]
        assert body["used_bytes"] == 1_500_000 and body["quota_bytes"] == 1_000_000
        with session_scope(settings.db_url) as s:
            assert s.query(Job).count() == 3  # old, fresh, the canceled render: no more
