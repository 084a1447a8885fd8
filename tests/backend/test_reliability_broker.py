"""Broker loss and the poison job, end to end: real `nada worker` processes and the real
engine (tiny jobs) over a throwaway redis-server of the test's own (never the shared one)
and an own PostgreSQL database.

- Redis flushed (FLUSHALL) or restarted empty while jobs are queued and one runs: the
  workers' reapers re-send the queued jobs whose messages vanished; every job succeeds once.
- A job that kills its worker on every attempt fails with `worker_lost` after
  NADA_MAX_ATTEMPTS, and the other jobs still run (the test restarts the worker, as a
  supervisor would).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs import storage, store
from jobs.db.models import Job
from jobs.db.session import get_engine, session_scope
from jobs.queue import JobQueue
from jobs.settings import Settings
from nada.params import AdaptParams
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
POISON = "poison-pill"
TINY = dict(
    source_text="photo",
    generator="random-8",
    clip_models=[{"name": "nada-tiny:random", "weight": 1}],
    steps=1,
    batch_size=1,
    probe_batch=2,
    n_samples=1,
)
TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server on a free port, without persistence: a restart comes back empty."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _until(self.ping, "redis-server to start", 20)

    def ping(self) -> bool:
        import redis

        try:
            with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def flushall(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _until(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """Own Redis + own PostgreSQL database + worker processes started on demand."""

    def __init__(self, workdir: Path, redis: OwnRedis, pg: str):
        self.workdir = workdir
        self.redis = redis
        queue = f"nada-rel-{uuid.uuid4().hex[:6]}"
        self.settings = Settings(
            data_dir=workdir / "data", database_url=pg, broker_url=redis.url, queue=queue
        )
        self.env = {
            **os.environ,
            "NADA_DATA_DIR": str(workdir / "data"),
            "NADA_CACHE_DIR": str(workdir / "cache"),
            "NADA_DATABASE_URL": pg,
            "NADA_BROKER_URL": redis.url,
            "NADA_QUEUE": queue,
            "NADA_DEVICE": "cpu",
            "NADA_LEASE_SECONDS": "2",
            "NADA_REAP_INTERVAL": "0.5",
            "NADA_CANCEL_POLL_SECONDS": "0.2",
            "NADA_TEST_POISON_TARGET": POISON,
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        self.env.pop("NADA_BROKER_PREFIX", None)
        self.queue = JobQueue(self.settings)
        self.worker: subprocess.Popen[bytes] | None = None
        self._logs = 0

    def start_worker(self) -> None:
        assert self.worker is None or self.worker.poll() is not None
        self._logs += 1
        log = open(self.workdir / f"worker-{self._logs}.log", "wb")  # noqa: SIM115
        script = ROOT / "tests" / "backend" / "reliability_poison_worker.py"
        self.worker = subprocess.Popen(
            [sys.executable, str(script), "--device", "cpu", "--hostname", f"w{self._logs}@%h"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    def submit(self, target: str, seed: int) -> str:
        params = AdaptParams.from_dict({**TINY, "target_text": target, "seed": seed})
        with session_scope(self.settings.db_url) as s:
            job_id = store.create_job(s, params=params).id
        assert self.queue.dispatch([job_id]) == [job_id]
        return job_id

    def job(self, job_id: str) -> Job:
        with session_scope(self.settings.db_url) as s:
            return store.get_job(s, job_id=job_id)

    def wait_finished(self, job_ids: list[str]) -> list[Job]:
        finished = ("succeeded", "failed", "canceled")
        try:
            _until(lambda: all(self.job(j).status in finished for j in job_ids), "the jobs")
        except AssertionError:
            states = [(j, self.job(j).status, self.job(j).attempt) for j in job_ids]
            raise AssertionError(f"{states}\n{self.logs()}") from None
        return [self.job(j) for j in job_ids]

    def assert_succeeded_once(self, job_ids: list[str]) -> None:
        for job in self.wait_finished(job_ids):
            assert job.status == "succeeded", f"{job.id}: {job.error_code}\n{self.logs()}"
            root = storage.job_dir(self.settings.jobs_dir, job.id)
            files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            assert "adapted.pt" in files and not any(f.startswith("attempts") for f in files)
            with session_scope(self.settings.db_url) as s:
                kinds = [e.kind for e in store.events_after(s, job_id=job.id)]
            assert kinds.count("succeeded") == 1 and kinds.count("started") == job.attempt
            assert 1 <= job.attempt <= 2, job.attempt


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis = OwnRedis(tmp_path)
    pg = create_pg_database(f"nada_test_{uuid.uuid4().hex[:12]}")
    redis.start()
    c = Cluster(tmp_path, redis, pg)
    try:
        from jobs.db.session import migrate

        migrate(pg)
        yield c
    finally:
        c.stop_worker()
        c.queue.close()
        redis.stop()
        get_engine(pg).dispose()
        drop_pg_database(pg)


def _running(c: Cluster, job_id: str) -> Callable[[], bool]:
    return lambda: c.job(job_id).status == "running"


def test_every_job_finishes_once_after_redis_is_flushed_and_restarted(cluster: Cluster) -> None:
    c = cluster
    c.start_worker()
    # FLUSHALL while one job runs and two wait: their messages are gone.
    flushed = [c.submit("sketch", seed) for seed in range(3)]
    _until(lambda: any(c.job(j).status == "running" for j in flushed), "a running job")
    c.redis.flushall()
    c.assert_succeeded_once(flushed)
    # Redis restarted empty (no persistence) while a job runs and one waits.
    restarted = [c.submit("cartoon", seed) for seed in range(2)]
    _until(lambda: any(c.job(j).status == "running" for j in restarted), "a running job")
    c.redis.stop()
    c.redis.start()
    c.assert_succeeded_once(restarted)
    assert c.worker is not None and c.worker.poll() is None, c.logs()


def test_a_job_that_kills_its_worker_fails_with_worker_lost_and_others_run(
    cluster: Cluster,
) -> None:
    c = cluster
    poison = c.submit(POISON, 0)
    good = c.submit("sketch", 1)
    for attempt in (1, 2, 3):
        c.start_worker()
        _until(
            lambda: (
                c.worker is not None
                and c.worker.poll() is not None
                or (c.job(poison).status == "failed")
            ),
            f"attempt {attempt} to kill the worker",
        )
        if c.job(poison).status == "failed":
            break
        assert c.job(poison).attempt == attempt, c.logs()
    c.stop_worker()
    c.start_worker()  # its reaper fails the job once the third lease expires
    poisoned, done = c.wait_finished([poison, good])
    assert (poisoned.status, poisoned.error_code, poisoned.attempt) == ("failed", "worker_lost", 3)
    assert done.status == "succeeded", c.logs()
