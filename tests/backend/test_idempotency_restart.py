"""Issue #6 acceptance: the API is SIGKILLed and restarted while clients submit jobs with
Idempotency-Keys and retry until they get an answer -> one job per key, no duplicates.

A real `uvicorn backend.main:create_app --factory` process on a free port, over the
migrated SQLite / PostgreSQL database of the `db_url` fixture; no worker is needed (jobs
stay queued). Tokens are configured, so the keys are scoped to a token as in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from jobs.db.session import get_engine

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
TOKEN = "idem-restart-token-0123456789"
BODY = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 2}
THREADS = 3
KEYS_PER_THREAD = 8
TOTAL_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """One uvicorn API process at a time on a fixed port, restartable."""

    def __init__(self, db_url: str, workdir: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.env = {
            **os.environ,
            "NADA_DATABASE_URL": db_url,
            "NADA_DATA_DIR": str(workdir / "data"),
            "NADA_CACHE_DIR": str(workdir / "cache"),
            "NADA_FRONTEND_DIR": "",
            "NADA_MIGRATE_ON_START": "0",
            "NADA_API_TOKENS": f"alice:{TOKEN}",
            "NADA_MAX_ACTIVE_JOBS": "0",
            "NADA_SUBMISSIONS_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
        }
        for k in ("NADA_BROKER_URL", "NADA_BROKER_PREFIX", "NADA_QUEUE"):
            self.env.pop(k, None)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"{self.starts:02d}-api.log", "wb")  # noqa: SIM115
        argv = [sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=self.base, timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.logs()
                try:
                    if http.get(f"{API}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"API did not come up\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL the whole process group (no graceful shutdown, as a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    server = Api(db_url, tmp_path)
    try:
        yield server
    finally:
        server.kill()


def test_api_killed_and_restarted_during_submissions_makes_no_duplicate_jobs(
    api: Api, db_url: str
) -> None:
    api.start()
    deadline = time.monotonic() + TOTAL_TIMEOUT
    headers = {"Authorization": f"Bearer {TOKEN}"}
    keys = [[f"restart-{t}-{i}" for i in range(KEYS_PER_THREAD)] for t in range(THREADS)]
    # key -> job ids of every 2xx answer; key -> (status codes / errors) before the answer
    answers: dict[str, list[str]] = {k: [] for row in keys for k in row}
    retries: dict[str, list[str]] = {k: [] for row in keys for k in row}
    first_2xx = threading.Event()
    failures: list[str] = []

    def submit(key: str, http: httpx.Client) -> None:
        while time.monotonic() < deadline:
            try:
                r = http.post(f"{API}/jobs", json=BODY, headers={**headers, "Idempotency-Key": key})
            except httpx.TransportError as exc:
                retries[key].append(type(exc).__name__)
                time.sleep(0.05)
                continue
            if r.status_code >= 500:
                retries[key].append(str(r.status_code))
                time.sleep(0.05)
                continue
            if r.status_code not in (200, 202):
                failures.append(f"{key}: {r.status_code} {r.text}")
                return
            answers[key].append(r.json()["id"])
            first_2xx.set()
            return
        failures.append(f"{key}: no 2xx before the deadline ({retries[key][-5:]})")

    def client(row: list[str]) -> None:
        with httpx.Client(base_url=api.base, timeout=5) as http:
            for key in row:
                submit(key, http)
                time.sleep(0.05)  # spread the submissions over the kill
                # one more submission of an answered key, as a client unsure it was received
                submit(key, http)

    threads = [threading.Thread(target=client, args=(row,), daemon=True) for row in keys]
    for t in threads:
        t.start()
    # kill once about a third of the keys are answered, with others in flight
    assert first_2xx.wait(TOTAL_TIMEOUT), api.logs()
    while sum(1 for v in answers.values() if v) < len(answers) // 3:
        assert time.monotonic() < deadline, api.logs()
        time.sleep(0.01)
    done_before = sum(1 for v in answers.values() if v)
    api.kill()
    time.sleep(0.3)  # clients see connection errors meanwhile
    api.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    assert not any(t.is_alive() for t in threads), "clients did not finish in time"
    assert not failures, failures

    total = len(answers)
    assert done_before < total, "all keys answered before the kill; the kill proved nothing"
    retried = [k for k, r in retries.items() if r]
    assert retried, "no client saw the API down"
    print(
        f"answered before kill: {done_before}/{total}; retried keys: {len(retried)}; "
        f"errors seen: {sorted({e for r in retries.values() for e in r})}"
    )
    for key, ids in answers.items():
        assert len(ids) == 2 and ids[0] == ids[1], (key, ids, retries[key])
    job_ids = {ids[0] for ids in answers.values()}
    assert len(job_ids) == total, "two keys answered with the same job"

    with get_engine(db_url).connect() as conn:
        rows = conn.execute(text("SELECT id, owner, idempotency_key FROM jobs")).all()
    assert len(rows) == total, f"{len(rows)} jobs for {total} keys: {rows}"
    assert {r.id for r in rows} == job_ids
    assert {r.idempotency_key: r.id for r in rows} == {k: v[0] for k, v in answers.items()}
    assert {r.owner for r in rows} == {"alice"}
