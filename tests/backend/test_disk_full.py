"""A full or read-only data directory, for real: a 4 MiB tmpfs mounted as the data dir.

What an operator sees: /healthz names the fault, POST /jobs answers 507, a job that fills
the disk fails with `io` naming the data directory (not torch's writer), its failure is
recorded even with the job database on the same full disk, and everything works again
once there is room, without a restart. Workers are played by `worker.attempts.run_job` with
an engine that writes like the real one (checkpoints through torch's writer).

Mounting needs root (CI runs as root); elsewhere these tests skip, and
tests/worker/test_tasks.py covers the same faults with injected errors.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs import store
from jobs.db.session import get_engine, migrate, session_scope
from jobs.settings import Settings
from nada import rundir
from nada.params import AdaptParams
from tests.conftest import RecordingQueue

API = "/api/v1"
SIZE_MIB = 4
CHECKPOINT_FLOATS = 64 * 1024  # 256 KiB: what removing one intermediate checkpoint frees
JOB = {
    "source_text": "photo",
    "target_text": "sketch",
    "generator": "random-64",
    "steps": 4,
    "sample_every": 4,
    "checkpoint_every": 1,
}
FULL_JOB = "the data directory is full; the job's files could not be written"


class SmallDisk:
    """A tmpfs of SIZE_MIB at `path`: fill it, free it, make it read-only and writable."""

    def __init__(self, path: Path):
        self.path = path
        self.filler = path / ".filler"

    def fill(self) -> None:
        with open(self.filler, "ab", buffering=0) as f:
            for chunk in (1 << 16, 1 << 12, 1):  # down to the last byte
                try:
                    while f.write(b"\0" * chunk):
                        pass
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "disk"
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs", str(path)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        if subprocess.run(["umount", str(path)]).returncode:
            subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def disk_settings(settings: Settings, small_disk: SmallDisk) -> Settings:
    """The test's database (SQLite or PostgreSQL, off the small disk), its data dir on it."""
    return settings.model_copy(
        update={"data_dir": small_disk.path, "min_free_disk_mb": 0.5, "disk_check_seconds": 0}
    )


@pytest.fixture
def disk_client(disk_settings: Settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from backend.main import create_app

    app = create_app(disk_settings, queue=RecordingQueue(disk_settings))
    with TestClient(app) as client:
        yield client


class WritingEngine:
    """Stands in for worker.engine.run_adaptation and writes as it does: samples by
    nada.rundir, intermediate checkpoints and adapted.pt by torch's writer
    (worker.checkpoints.atomic_torch_save), which reports a full disk as a RuntimeError
    about stream positions. The working directory keeps every checkpoint, as the real
    engine's does; `hook(step)` runs after each step."""

    def __init__(self, hook: Callable[[int], None] | None = None):
        self.hook = hook

    def __call__(self, params, out_dir, *, device, on_progress, should_cancel, resume_from, models):  # type: ignore[no-untyped-def]
        import torch

        from worker.checkpoints import atomic_torch_save
        from worker.events import AdaptResult, Canceled, Progress

        total = params.steps
        start = rundir.step_of(resume_from) if resume_from else 0
        samples = []
        for step in range(start + 1, total + 1):
            if should_cancel():
                raise Canceled()
            on_progress(Progress("step", "training", step, total, losses={"total": 1 / step}))
            if step % params.sample_every == 0:
                png = rundir.write_bytes(rundir.sample_path(out_dir, step), b"png")
                samples.append(png)
                on_progress(Progress("sample", "training", step, total, path=png))
            if step % params.checkpoint_every == 0 and step < total:
                state = {"g_ema": torch.zeros(CHECKPOINT_FLOATS), "step": step}
                pt = atomic_torch_save(state, rundir.intermediate_checkpoint_path(out_dir, step))
                on_progress(Progress("checkpoint", "training", step, total, path=pt))
            if self.hook:
                self.hook(step)
        adapted = atomic_torch_save({"g_ema": torch.ones(16)}, rundir.adapted_path(out_dir))
        metrics = rundir.write_text(rundir.metrics_path(out_dir), "{}\n")
        return AdaptResult(adapted, tuple(samples), metrics, "0" * 64, total, 0.1)


def _run(settings: Settings, job_id: str, engine: Any) -> str:
    from worker.attempts import run_job

    return str(run_job(job_id, settings=settings, worker_id="w", engine=engine, models=object()))


def _fill_after(disk: SmallDisk, at: int) -> Callable[[int], None]:
    return lambda step: disk.fill() if step == at else None


def test_a_full_data_dir_is_reported_refuses_jobs_with_507_and_recovers(
    disk_client, small_disk: SmallDisk
) -> None:  # type: ignore[no-untyped-def]
    assert disk_client.get(f"{API}/healthz").json()["status"] == "ok"
    small_disk.fill()
    health = disk_client.get(f"{API}/healthz")
    assert health.status_code == 200 and health.json() == {
        "status": "degraded",
        "database": "ok",
        "broker": "ok",
        "version": health.json()["version"],
        "data_dir": "full",
        "reason": "the data directory is full",
        "retention": {"resumable_hours": None, "results_hours": None, "disk_quota_mb": None},
    }
    r = disk_client.post(f"{API}/jobs", json=JOB)
    assert r.status_code == 507, r.text
    assert r.json()["detail"].startswith("the data directory is full;")
    assert disk_client.get(f"{API}/jobs").json()["count"] == 0
    small_disk.free()  # no restart
    assert disk_client.get(f"{API}/healthz").json()["status"] == "ok"
    assert disk_client.post(f"{API}/jobs", json=JOB).status_code == 202


def test_a_read_only_data_dir_is_reported_refuses_jobs_and_recovers(
    disk_client, disk_settings: Settings, small_disk: SmallDisk
) -> None:  # type: ignore[no-untyped-def]
    queued = disk_client.post(f"{API}/jobs", json=JOB).json()["id"]
    small_disk.remount("ro")
    try:
        health = disk_client.get(f"{API}/healthz").json()
        assert (health["status"], health["data_dir"], health["reason"]) == (
            "degraded",
            "unwritable",
            "the data directory is not writable",
        )
        r = disk_client.post(f"{API}/jobs", json=JOB)
        assert r.status_code == 507 and "not writable" in r.json()["detail"]
        assert _run(disk_settings, queued, WritingEngine()) == "failed"  # engine not started
        job = disk_client.get(f"{API}/jobs/{queued}").json()
        assert job["error"] == {
            "code": "io",
            "message": "the data directory is not writable; the job's files could not be written",
            "details": None,  # a fault of the data directory has no operator text beyond it
        }
    finally:
        small_disk.remount("rw")
    assert "data_dir" not in disk_client.get(f"{API}/healthz").json()
    assert disk_client.post(f"{API}/jobs", json=JOB).status_code == 202


def test_a_job_that_fills_the_disk_fails_with_io_and_the_next_one_runs(
    disk_client, disk_settings: Settings, small_disk: SmallDisk
) -> None:  # type: ignore[no-untyped-def]
    job_id = disk_client.post(f"{API}/jobs", json=JOB).json()["id"]
    assert _run(disk_settings, job_id, WritingEngine(hook=_fill_after(small_disk, 1))) == "failed"
    job = disk_client.get(f"{API}/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["step"] == 2  # torch's writer failed at step 2
    assert job["error"] == {"code": "io", "message": FULL_JOB, "details": None}
    assert job["checkpoints"] == []  # the failed job's files are gone
    small_disk.free()
    again = disk_client.post(f"{API}/jobs", json=JOB)
    assert again.status_code == 202
    assert _run(disk_settings, again.json()["id"], WritingEngine()) == "succeeded"
    done = disk_client.get(f"{API}/jobs/{again.json()['id']}").json()
    assert done["status"] == "succeeded" and [s["step"] for s in done["samples"]] == [4]


def test_the_failure_is_recorded_with_the_job_database_on_the_full_disk(
    small_disk: SmallDisk,
) -> None:
    """`nada serve`'s embedded setup: SQLite in the data directory. The worker's final
    write needs space too; the failed attempt's own files give it back first."""
    settings = Settings(data_dir=small_disk.path, min_free_disk_mb=0.5, cancel_poll_seconds=0)
    migrate(settings.db_url)
    try:
        params = AdaptParams(**JOB)  # type: ignore[arg-type]
        with session_scope(settings.db_url) as s:
            job_id = store.create_job(s, params=params).id
        engine = WritingEngine(hook=_fill_after(small_disk, 2))
        assert _run(settings, job_id, engine) == "failed"  # not left 'running'
        with session_scope(settings.db_url) as s:
            job = store.get_job(s, job_id=job_id)
            assert (job.status, job.error_code, job.error_message) == ("failed", "io", FULL_JOB)
        small_disk.free()
        with session_scope(settings.db_url) as s:
            job_id = store.create_job(s, params=params).id
        assert _run(settings, job_id, WritingEngine()) == "succeeded"
    finally:
        get_engine(settings.db_url).dispose()  # the mount can go


def test_delete_frees_a_full_disk_with_the_job_database_on_it(small_disk: SmallDisk) -> None:
    """DELETE on a full disk, SQLite beside the files (`nada serve`): the job's files go
    first, which gives the database the room its write needs; the job and its queued
    render are gone, the filler is untouched, new jobs are taken again."""
    from fastapi.testclient import TestClient

    from backend.main import create_app
    from jobs.db.models import Job, JobStatus

    settings = Settings(data_dir=small_disk.path, min_free_disk_mb=0.5, disk_check_seconds=0)
    migrate(settings.db_url)
    try:
        with TestClient(create_app(settings, queue=RecordingQueue(settings))) as client:
            job_id = client.post(f"{API}/jobs", json=JOB).json()["id"]
            with session_scope(settings.db_url) as s:
                s.get(Job, job_id).status = JobStatus.succeeded  # type: ignore[union-attr]
            root = settings.jobs_dir / job_id
            rundir.write_bytes(rundir.adapted_path(root), b"\0" * 2**20)  # 1 MiB to free
            render = client.post(f"{API}/jobs/{job_id}/renders", json={"seeds": [1]})
            assert render.status_code == 202, render.text
            small_disk.fill()
            assert client.post(f"{API}/jobs", json=JOB).status_code == 507

            r = client.delete(f"{API}/jobs/{job_id}")
            assert r.status_code == 204, r.text
            assert client.get(f"{API}/jobs/{job_id}").status_code == 404
            assert not root.exists() and small_disk.filler.exists()
            canceled = client.get(f"{API}/renders/{render.json()['id']}").json()
            assert canceled["status"] == "canceled"
            assert client.post(f"{API}/jobs", json=JOB).status_code == 202  # room again
    finally:
        get_engine(settings.db_url).dispose()


def test_delete_on_a_full_disk_with_nothing_to_free_is_507(small_disk: SmallDisk) -> None:
    """A job with no files left frees nothing: the database's write cannot go in, and the
    answer says so (507, not 503 'retry'); once there is room, the same DELETE works."""
    from fastapi.testclient import TestClient

    from backend.main import create_app
    from jobs.db.models import Job, JobStatus

    settings = Settings(data_dir=small_disk.path, min_free_disk_mb=0.5, disk_check_seconds=0)
    migrate(settings.db_url)
    try:
        with TestClient(create_app(settings, queue=RecordingQueue(settings))) as client:
            job_id = client.post(f"{API}/jobs", json=JOB).json()["id"]
            with session_scope(settings.db_url) as s:
                s.get(Job, job_id).status = JobStatus.failed  # type: ignore[union-attr]
            rundir.remove_tree(settings.jobs_dir / job_id)
            small_disk.fill()
            r = client.delete(f"{API}/jobs/{job_id}")
            assert r.status_code == 507, r.text
            assert r.json()["detail"] == (
                "the disk is full: the job's record could not be deleted; free some space "
                "and delete it again"
            )
            small_disk.free()
            assert client.delete(f"{API}/jobs/{job_id}").status_code == 204
            assert client.get(f"{API}/jobs/{job_id}").status_code == 404
    finally:
        get_engine(settings.db_url).dispose()
