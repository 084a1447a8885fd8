"""Benchmark of the REST API: submit and status-poll latency (p50/p99) and throughput with
N concurrent clients on loopback.

    .venv/bin/python bench/api.py                       # SQLite + embedded queue (default)
    .venv/bin/python bench/api.py --postgres --redis     # local PostgreSQL + Redis
    .venv/bin/python bench/api.py --url http://127.0.0.1:8000   # a running server

Unless --url is given it starts `uvicorn backend.main:create_app` on a free loopback port
with a temporary data directory (and, with --postgres, a temporary database that is
dropped afterwards). No worker runs: submitted jobs stay queued, so the figures are the
API's own (validation, database, broker publish), not the GPU's. Every request loop is
bounded in count; the clients run in this process (asyncio + httpx), on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"
JOB = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 10}
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_phase(
    base: str, clients: int, per_client: int, request: str, job_ids: list[str]
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def client(index: int) -> None:
            nonlocal errors
            rng = random.Random(index)
            for i in range(per_client):
                started = time.perf_counter()
                try:
                    if request == "submit":
                        body = {**JOB, "seed": index * 10_000 + i}
                        r = await http.post(f"{API}/jobs", json=body)
                        ok = r.status_code == 202
                        if ok:
                            job_ids.append(r.json()["id"])
                    else:
                        r = await http.get(f"{API}/jobs/{rng.choice(job_ids)}")
                        ok = r.status_code == 200
                except httpx.TransportError:  # counted, not retried
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "throughput_rps": len(latencies) / wall,
        "wall_s": wall,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A temporary API server (and temporary database) for the benchmark."""

    def __init__(self, postgres: bool, redis: bool):
        self.tmp = Path(tempfile.mkdtemp(prefix="nada-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.pg_name = f"nada_bench_{uuid.uuid4().hex[:10]}" if postgres else None
        self.prefix = f"nada_bench_{uuid.uuid4().hex[:10]}:" if redis else None
        env = {**os.environ, "NADA_DATA_DIR": str(self.tmp), "NADA_FRONTEND_DIR": ""}
        for key in ("NADA_DATABASE_URL", "NADA_BROKER_URL", "NADA_BROKER_PREFIX"):
            env.pop(key, None)
        if self.pg_name:
            self._admin(f'CREATE DATABASE "{self.pg_name}"')
            env["NADA_DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.pg_name
        if self.prefix:
            env.update(NADA_BROKER_URL=REDIS, NADA_BROKER_PREFIX=self.prefix, NADA_QUEUE="bench")
        self.log = open(self.tmp / "api.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                # Longer than httpx's 5 s keep-alive expiry: otherwise the server may close
                # an idle connection just as the client reuses it (a ReadError).
                "--timeout-keep-alive",
                "30",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}{API}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the API did not start; see its log")

    @staticmethod
    def _admin(sql: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if self.pg_name:
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        if self.prefix:
            import redis

            client = redis.Redis.from_url(REDIS)
            keys = list(client.scan_iter(f"{self.prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--postgres", action="store_true", help="local PostgreSQL, temp database")
    parser.add_argument("--redis", action="store_true", help="local Redis as the broker")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--submits", type=int, default=10, help="jobs per client")
    parser.add_argument("--polls", type=int, default=40, help="status polls per client")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)

    server = None if args.url else Server(args.postgres, args.redis)
    base = args.url or server.base  # type: ignore[union-attr]
    try:
        job_ids: list[str] = []
        results = {
            "submit": asyncio.run(run_phase(base, args.clients, args.submits, "submit", job_ids)),
            "poll": asyncio.run(run_phase(base, args.clients, args.polls, "poll", job_ids)),
        }
    finally:
        if server is not None:
            server.stop()
    setup = {
        "clients": args.clients,
        "database": "url" if args.url else ("postgresql" if args.postgres else "sqlite"),
        "broker": "url" if args.url else ("redis" if args.redis else "embedded sqlite"),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps({"setup": setup, **results}, indent=2))
        return 0
    print(f"setup: {setup}")
    print(
        f"{'phase':<8}{'requests':>9}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'req/s':>8}"
    )
    for phase, r in results.items():
        print(
            f"{phase:<8}{r['requests']:>9}{r['errors']:>7}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['mean_ms']:>9.1f}{r['throughput_rps']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
