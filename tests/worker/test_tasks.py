"""worker.attempts.run_job, the plain function behind the Celery task, with a scripted engine.

The real engine and a real Celery worker are exercised by tests/backend/test_e2e_*.py.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text, update
from sqlalchemy.engine import make_url

from jobs import leases, storage, store
from jobs.db.models import Job
from jobs.db.session import get_engine, migrate, session_scope
from jobs.settings import Settings
from nada import rundir
from nada.params import AdaptParams
from worker.events import AdaptResult, Canceled, Progress

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PARAMS = AdaptParams(
    "photo", "sketch", generator="random-64", steps=4, sample_every=2, checkpoint_every=2
)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    name = f"nada_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nada.sqlite'}"
        migrate(url)
    else:
        url = request.getfixturevalue("pg_url")
        with get_engine(url).begin() as conn:
            conn.execute(text("TRUNCATE jobs, job_events, sweeps RESTART IDENTITY CASCADE"))
    return Settings(data_dir=tmp_path / "data", database_url=url, cancel_poll_seconds=0)


class ScriptedEngine:
    """Stands in for worker.engine.run_adaptation: same signature, same files, same events."""

    def __init__(
        self,
        *,
        fail: Exception | None = None,
        hook: Callable[[int], None] | None = None,
        refuse_resume: bool = False,
    ):
        self.fail = fail
        self.refuse_resume = refuse_resume
        self.hook = hook  # called after each step with the step number
        self.calls: list[dict[str, Any]] = []

    def __call__(self, params, out_dir, *, device, on_progress, should_cancel, resume_from, models):  # type: ignore[no-untyped-def]
        self.calls.append({"out_dir": out_dir, "device": device, "resume_from": resume_from})
        total = params.steps
        if resume_from and self.refuse_resume:
            raise ValueError(f"resume_from {resume_from} is not an intermediate checkpoint")
        start = rundir.step_of(resume_from) if resume_from else 0
        on_progress(Progress("stage", "loading", start, total))
        on_progress(Progress("stage", "training", start, total))
        samples = []
        for step in range(start + 1, total + 1):
            if should_cancel():
                raise Canceled()
            if self.fail is not None and step == 2:
                raise self.fail
            on_progress(
                Progress(
                    "step",
                    "training",
                    step,
                    total,
                    losses={"total": 1 / step},
                    selected_layers=("convs.1",),
                    seconds_per_step=0.1,
                )
            )
            if step % params.sample_every == 0 or step == total:
                png = out_dir / "samples" / f"step_{step:06d}.png"
                rundir.write_bytes(png, f"png {step}".encode())
                samples.append(png)
                on_progress(Progress("sample", "training", step, total, path=png))
            if params.checkpoint_every and step % params.checkpoint_every == 0:
                pt = out_dir / "checkpoints" / f"step_{step:06d}.pt"
                rundir.write_bytes(pt, f"ckpt {step}".encode())
                on_progress(Progress("checkpoint", "training", step, total, path=pt))
            if self.hook:
                self.hook(step)
        on_progress(Progress("stage", "saving", total, total))
        ckpt = rundir.write_bytes(out_dir / "adapted.pt", b"adapted weights")
        metrics = rundir.write_bytes(out_dir / "metrics.jsonl", b"{}\n")
        return AdaptResult(
            ckpt,
            tuple(samples),
            metrics,
            hashlib.sha256(b"adapted weights").hexdigest(),
            total,
            0.1,
        )


def _submit(settings: Settings, params: AdaptParams = PARAMS) -> str:
    with session_scope(settings.db_url) as s:
        return store.create_job(s, params=params).id


def _run(settings: Settings, job_id: str, engine: ScriptedEngine, worker: str = "w1") -> str:
    from worker.attempts import run_job

    return run_job(job_id, settings=settings, worker_id=worker, engine=engine, models=object())


def _job(settings: Settings, job_id: str) -> Job:
    with session_scope(settings.db_url) as s:
        return store.get_job(s, job_id=job_id)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_success_publishes_samples_and_checkpoint_once(settings: Settings) -> None:
    job_id = _submit(settings)
    engine = ScriptedEngine()
    assert _run(settings, job_id, engine) == "succeeded"
    job = _job(settings, job_id)
    assert (job.status, job.step, job.sample_steps, job.attempt) == ("succeeded", 4, [2, 4], 1)
    assert job.checkpoint_sha256 == hashlib.sha256(b"adapted weights").hexdigest()
    assert job.losses == {"total": 0.25} and job.selected_layers == ["convs.1"]
    root = storage.job_dir(settings.jobs_dir, job_id)
    assert _files(root) == [
        "adapted.pt",
        "metrics.jsonl",
        "samples/step_000002.png",
        "samples/step_000004.png",
    ]
    assert engine.calls[0]["device"] == "auto" and engine.calls[0]["resume_from"] is None
    with session_scope(settings.db_url) as s:
        kinds = [e.kind for e in store.events_after(s, job_id=job_id)]
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "succeeded"
    assert kinds.count("sample") == 2
    # A re-delivered message for the finished job does nothing.
    assert _run(settings, job_id, ScriptedEngine()) == "skipped"


def test_engine_error_fails_the_job_with_its_message(settings: Settings) -> None:
    job_id = _submit(settings)
    outcome = _run(
        settings, job_id, ScriptedEngine(fail=RuntimeError("CUDA out of memory. Tried 2 GiB"))
    )
    assert outcome == "failed"
    job = _job(settings, job_id)
    assert (job.status, job.error_code, job.error_message) == (
        "failed",
        "out_of_memory",
        "CUDA out of memory. Tried 2 GiB",
    )
    assert not (storage.job_dir(settings.jobs_dir, job_id) / "attempts").exists()


def test_cancel_stops_a_running_job_at_its_next_step(settings: Settings) -> None:
    job_id = _submit(settings)

    def cancel_after_first_step(step: int) -> None:
        if step == 1:
            with session_scope(settings.db_url) as s:
                store.request_cancel(s, job_id=job_id)

    assert _run(settings, job_id, ScriptedEngine(hook=cancel_after_first_step)) == "canceled"
    job = _job(settings, job_id)
    assert (job.status, job.step) == ("canceled", 1)


def test_a_worker_that_lost_its_lease_writes_nothing_final(settings: Settings) -> None:
    job_id = _submit(settings)

    def taken_over(step: int) -> None:
        if step == 1:  # our lease expires and another worker claims the job
            _expire_lease(settings, job_id)
            with session_scope(settings.db_url) as s:
                assert leases.claim_job(
                    s, job_id=job_id, worker_id="w2", lease_seconds=60, max_attempts=3
                )

    assert _run(settings, job_id, ScriptedEngine(hook=taken_over)) == "lost"
    job = _job(settings, job_id)
    assert (job.status, job.attempt, job.worker_id, job.step) == ("running", 2, "w2", 1)


def _expire_lease(settings: Settings, job_id: str) -> None:
    """The job's lease ran out a minute ago (its worker stopped renewing it)."""
    with session_scope(settings.db_url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=store.utcnow() - timedelta(minutes=1))
        )


def _claimed_by_a_dead_worker(settings: Settings, job_id: str) -> None:
    """Attempt 1 claimed the job and its lease has run out: the worker is gone."""
    with session_scope(settings.db_url) as s:
        leases.claim_job(s, job_id=job_id, worker_id="dead", lease_seconds=60, max_attempts=3)
    _expire_lease(settings, job_id)


def test_a_new_attempt_resumes_from_the_published_checkpoint(settings: Settings) -> None:
    job_id = _submit(settings)
    _claimed_by_a_dead_worker(settings, job_id)  # attempt 1 got to step 2, then died
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.intermediate_checkpoint_path(root, 2), b"ckpt 2")
    rundir.write_bytes(rundir.sample_path(root, 2), b"png 2")
    rundir.write_bytes(rundir.attempt_dir(root, 1) / "samples" / "step_000002.png", b"png 2")
    engine = ScriptedEngine()
    assert _run(settings, job_id, engine, worker="w2") == "succeeded"
    assert engine.calls[0]["resume_from"] == rundir.intermediate_checkpoint_path(root, 2)
    assert _job(settings, job_id).attempt == 2
    assert _files(root) == [
        "adapted.pt",
        "metrics.jsonl",
        "samples/step_000002.png",
        "samples/step_000004.png",
    ]


def test_a_checkpoint_that_cannot_be_resumed_means_starting_over(settings: Settings) -> None:
    job_id = _submit(settings)
    _claimed_by_a_dead_worker(settings, job_id)
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.intermediate_checkpoint_path(root, 2), b"from another version")
    rundir.write_bytes(rundir.attempt_dir(root, 1) / "samples" / "step_000002.png", b"png 2")
    engine = ScriptedEngine(refuse_resume=True)
    assert _run(settings, job_id, engine, worker="w2") == "succeeded"
    assert [c["resume_from"] for c in engine.calls] == [
        rundir.intermediate_checkpoint_path(root, 2),
        None,
    ]
    assert _job(settings, job_id).step == 4
    assert _files(root) == [
        "adapted.pt",
        "metrics.jsonl",
        "samples/step_000002.png",
        "samples/step_000004.png",
    ]


def test_the_task_is_registered_under_the_name_the_api_sends() -> None:
    from jobs.queue import LEGACY_TASK_NAMES, TASK_NAME
    from worker.celery_app import app
    from worker.tasks import adapt, run_job_task

    assert run_job_task.name == TASK_NAME and TASK_NAME in app.tasks
    assert run_job_task.acks_late and run_job_task.reject_on_worker_lost
    # messages an API from before job kinds queued are still run
    assert adapt.name in LEGACY_TASK_NAMES and adapt.name in app.tasks


def test_models_are_cached_between_jobs_of_a_worker_process() -> None:
    from worker import attempts, engine

    cache = attempts._model_cache()
    assert isinstance(cache, engine.ModelCache) and attempts._model_cache() is cache


# --- Timeouts and resources: faults injected through the engine and storage (a CPU test
# machine cannot run out of GPU memory or disk for real).


def test_a_job_past_its_time_limit_is_stopped_and_fails_with_timeout(
    settings: Settings,
) -> None:
    import time

    settings = settings.model_copy(update={"job_time_limit": 1})
    job_id = _submit(settings)
    engine = ScriptedEngine(hook=lambda step: time.sleep(1.1) if step == 1 else None)
    assert _run(settings, job_id, engine) == "failed"
    job = _job(settings, job_id)
    assert (job.status, job.error_code, job.step) == ("failed", "timeout", 1)
    assert "NADA_JOB_TIME_LIMIT" in (job.error_message or "")
    assert _files(storage.job_dir(settings.jobs_dir, job_id)) == []  # no checkpoints, attempts


def test_cuda_out_of_memory_fails_the_job_frees_memory_and_the_worker_goes_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import worker.attempts

    released: list[bool] = []
    monkeypatch.setattr(
        worker.attempts, "release_accelerator_memory", lambda: released.append(True)
    )
    oom, after = _submit(settings), _submit(settings)
    failing = ScriptedEngine(fail=torch.cuda.OutOfMemoryError("CUDA error: out of memory"))
    assert _run(settings, oom, failing) == "failed"
    job = _job(settings, oom)
    assert (job.status, job.error_code) == ("failed", "out_of_memory")
    assert released == [True]
    assert _files(storage.job_dir(settings.jobs_dir, oom)) == []
    assert _run(settings, after, ScriptedEngine()) == "succeeded"  # same process, next job
    assert released == [True]


def test_release_accelerator_memory_runs_without_a_gpu() -> None:
    from worker.failures import release_accelerator_memory

    release_accelerator_memory()  # gc + empty_cache only where CUDA is present


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT"])
def test_a_full_disk_during_training_fails_with_io_and_leaves_no_partial_files(
    settings: Settings, code: str
) -> None:
    import errno
    import os

    job_id = _submit(settings)
    err = OSError(getattr(errno, code), os.strerror(getattr(errno, code)))
    assert _run(settings, job_id, ScriptedEngine(fail=err)) == "failed"
    job = _job(settings, job_id)
    assert (job.status, job.error_code) == ("failed", "io")
    # attempts/ and checkpoints/ are gone; only whole files published before remain
    assert _files(storage.job_dir(settings.jobs_dir, job_id)) == []


def test_a_full_disk_while_publishing_the_result_fails_with_io(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real_publish = rundir.publish

    def publish(src: Path, dst: Path, *, copy: bool = False) -> Path:
        if dst.name == "metrics.jsonl" and dst.parent.name != "checkpoints" and not copy:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_publish(src, dst, copy=copy)

    monkeypatch.setattr(rundir, "publish", publish)
    job_id = _submit(settings)
    assert _run(settings, job_id, ScriptedEngine()) == "failed"
    job = _job(settings, job_id)
    assert (job.status, job.error_code, job.checkpoint_sha256) == ("failed", "io", None)
    root = storage.job_dir(settings.jobs_dir, job_id)
    assert _files(root) == ["samples/step_000002.png", "samples/step_000004.png"]


def test_error_codes() -> None:
    import errno

    from worker.failures import error_code

    assert error_code(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == (
        "out_of_memory"
    )
    assert error_code(OSError(errno.ENOSPC, "No space left on device")) == "io"
    assert error_code(OSError(errno.EDQUOT, "Disk quota exceeded")) == "io"
    assert error_code(FileNotFoundError(errno.ENOENT, "gone")) == "missing_file"
    assert error_code(ValueError("x")) == "engine_error"
    from nada.errors import InputError
    from stylegan2.download import ChecksumError, DownloadError

    assert error_code(InputError("no face found in the photo")) == "invalid_input"
    assert error_code(DownloadError("could not download e4e-ffhq")) == "model_unavailable"
    assert error_code(ChecksumError("bad", expected="a", got="b")) == "model_unavailable"


def test_a_missing_model_fails_with_model_unavailable_naming_no_server_path(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The registry's own refusal (a generator not pulled into the cache): the client reads
    what is missing and how to fix it, the worker's log keeps where it looked."""
    from stylegan2 import registry

    cache = tmp_path / "model cache"  # a space in it, too
    monkeypatch.setenv(registry.CACHE_ENV, str(cache))
    missing = registry.cache_path("ffhq-1024")
    job_id = _submit(settings)

    def look_up(step: int) -> None:  # what loading the models does first
        registry.verify_cached("ffhq-1024")

    engine = ScriptedEngine(hook=look_up)
    with caplog.at_level("ERROR", logger="worker.attempts"):
        assert _run(settings, job_id, engine) == "failed"
    job = _job(settings, job_id)
    assert job.error_code == "model_unavailable"
    assert job.error_message == (  # for the page: what its user can do
        "this server has no copy of generator 'ffhq-1024' and cannot download it; pick "
        "another generator (those marked cached need no download), or ask the operator to "
        "install it"
    )
    assert job.error_details == (  # for the operator: the command, no server path
        "generator 'ffhq-1024' is not in the cache (<server path>); run "
        "`nada models pull ffhq-1024`"
    )
    assert str(tmp_path) not in job.error_message + job.error_details
    assert str(missing) in caplog.text  # the operator's log names the file


def test_a_full_disk_before_the_engine_starts_fails_with_io(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(_: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir, "latest_intermediate_checkpoint", full)
    job_id = _submit(settings)
    engine = ScriptedEngine()
    assert _run(settings, job_id, engine) == "failed" and engine.calls == []
    assert _job(settings, job_id).error_code == "io"
    assert _files(storage.job_dir(settings.jobs_dir, job_id)) == []


# --- Faults of the data directory (jobs/disk.py): named, recorded, resumable. The same
# faults on a real, small filesystem: tests/backend/test_disk_full.py.

FULL = "the data directory is full; the job's files could not be written"


def _hidden_enospc() -> RuntimeError:
    """What torch's checkpoint writer raises on a full disk: a RuntimeError about stream
    positions, raised while handling the OSError(ENOSPC) of the write."""
    import errno

    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        try:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704")
        except RuntimeError as exc:
            return exc


def test_a_checkpoint_writer_hiding_a_full_disk_fails_the_job_naming_the_data_dir(
    settings: Settings,
) -> None:
    job_id = _submit(settings)
    assert _run(settings, job_id, ScriptedEngine(fail=_hidden_enospc())) == "failed"
    job = _job(settings, job_id)
    assert (job.status, job.error_code) == ("failed", "io")
    assert job.error_message == FULL


def test_a_writer_error_on_a_data_dir_gone_full_names_the_data_dir(settings: Settings) -> None:
    def fill_the_disk(step: int) -> None:
        if step == 1:  # from now on the data directory has less than the minimum free
            settings.min_free_disk_mb = 1e12

    job_id = _submit(settings)
    writer = RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    engine = ScriptedEngine(fail=writer, hook=fill_the_disk)
    assert _run(settings, job_id, engine) == "failed"
    job = _job(settings, job_id)
    assert (job.error_code, job.error_message) == ("io", FULL)


def test_a_job_on_a_full_data_dir_fails_before_its_engine_starts(settings: Settings) -> None:
    settings = settings.model_copy(update={"min_free_disk_mb": 1e12})
    job_id = _submit(settings)
    engine = ScriptedEngine()
    assert _run(settings, job_id, engine) == "failed" and engine.calls == []
    job = _job(settings, job_id)
    assert (job.error_code, job.error_message) == ("io", FULL)


def test_a_job_folder_removed_while_the_job_runs_fails_it_at_the_next_publish(
    settings: Settings,
) -> None:
    job_id = _submit(settings)
    root = storage.job_dir(settings.jobs_dir, job_id)

    def remove_the_folder(step: int) -> None:
        if step == 1:
            rundir.remove_tree(root)  # the engine's next write makes its directory again

    assert _run(settings, job_id, ScriptedEngine(hook=remove_the_folder)) == "failed"
    job = _job(settings, job_id)
    assert (job.status, job.error_code, job.step) == ("failed", "io", 2)  # not trained to 4
    assert job.error_message == "the job's files were removed while it ran"
    assert job.sample_steps == [] and not root.exists()


def test_a_failure_that_cannot_be_recorded_leaves_the_checkpoint_to_resume_from(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import worker.attempts

    def database_full(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("UPDATE jobs", {}, sqlite3.OperationalError("disk is full"))

    params = AdaptParams(
        "photo", "sketch", generator="random-64", steps=4, sample_every=2, checkpoint_every=1
    )
    job_id = _submit(settings, params)
    root = storage.job_dir(settings.jobs_dir, job_id)
    with monkeypatch.context() as patch:
        patch.setattr(leases, "finish_job", database_full)
        patch.setattr(worker.attempts, "_FINAL_WRITE_RETRIES", (0, 0))
        full = ScriptedEngine(fail=OSError(errno.ENOSPC, "No space left on device"))
        assert _run(settings, job_id, full) == "unrecorded"
    assert _job(settings, job_id).status == "running"  # until its lease runs out
    assert rundir.intermediate_checkpoint_steps(root) == [1]
    _expire_lease(settings, job_id)
    with session_scope(settings.db_url) as s:
        assert leases.reap_expired(s, max_attempts=3) == [job_id]  # re-queued
    engine = ScriptedEngine()
    assert _run(settings, job_id, engine, worker="w2") == "succeeded"
    assert engine.calls[0]["resume_from"] == rundir.intermediate_checkpoint_path(root, 1)
    assert (_job(settings, job_id).attempt, _job(settings, job_id).step) == (2, 4)


def test_a_full_disk_when_resuming_is_not_taken_for_a_bad_checkpoint(settings: Settings) -> None:
    import errno

    job_id = _submit(settings)
    _claimed_by_a_dead_worker(settings, job_id)
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.intermediate_checkpoint_path(root, 2), b"ckpt 2")
    calls: list[Path | None] = []

    def engine(params: AdaptParams, out_dir: Path, *, resume_from: Path | None, **_: Any) -> Any:
        calls.append(resume_from)
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "params.json"))

    from worker.attempts import run_job

    outcome = run_job(job_id, settings=settings, worker_id="w2", engine=engine, models=object())
    assert outcome == "failed"
    assert calls == [rundir.intermediate_checkpoint_path(root, 2)]  # no start from step 0
    job = _job(settings, job_id)
    assert (job.error_code, job.error_message) == ("io", FULL)


def test_an_attempt_that_must_start_over_says_so(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = _submit(settings)
    _claimed_by_a_dead_worker(settings, job_id)
    with session_scope(settings.db_url) as s:
        s.execute(update(Job).where(Job.id == job_id).values(step=3))  # and no checkpoint
    with caplog.at_level("WARNING", logger="worker.attempts"):
        assert _run(settings, job_id, ScriptedEngine(), worker="w2") == "succeeded"
    assert "starts over: an earlier attempt reached step 3" in caplog.text
