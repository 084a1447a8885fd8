"""Benchmark of the REST API: submit and status-poll latency (p50/p99) and throughput with
N concurrent clients on loopback.

    .venv/bin/python bench/api.py                       # SQLite + embedded queue (default)
    .venv/bin/python bench/api.py --postgres --redis     # local PostgreSQL + Redis
    .venv/bin/python bench/api.py --url http://127.0.0.1:8000   # a running server
    .venv/bin/python bench/api.py --wrk --compare a626fc8 --training   # wrk, side by side

With --wrk the load comes from wrk (a compiled load generator: apt-get install wrk), so the
client does not take the server's CPU; each scenario runs for --seconds, after a 3 s
unmeasured warm-up of each server: a bare FastAPI app under the same uvicorn first and
last (the ceiling: "hello", and a POST taking our JobCreate that stores nothing, the
framework's share of a submission; every figure is also given as a fraction of the mean
of the two hello runs), then 50 pollers of a finished job, 50 of a queued one, 50 list
readers, 50 submitters, 50 pollers beside 200 open event streams, and 200 pollers last;
with --training also while `nada serve`'s local worker trains a job. --compare REF runs
the same scenarios against a git checkout of REF (or a source folder) in the same run.

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
    """A temporary API server (and temporary database) for the benchmark.

    root: the source tree whose code runs (another checkout: a previous release, for a side
        by side comparison; this venv's packages are shadowed by the tree's own).
    worker: run `nada serve` with its local worker (the embedded mode as users run it)
        instead of the API alone.
    """

    def __init__(self, postgres: bool, redis: bool, *, root: Path = ROOT, worker: bool = False):
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
        if worker:
            env.update(NADA_HOST="127.0.0.1", NADA_PORT=str(self.port))
            command = ["-c", "import sys; from cli.main import main; sys.exit(main(['serve']))"]
        else:
            command = [
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
            ]
        self.process = subprocess.Popen(
            [sys.executable, *command],
            cwd=root,
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


# -- the compiled load generator (wrk) ------------------------------------------------------

_WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK-JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "errors": %d, "non_2xx": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""
_WRK_SUBMIT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"source_text": "photo", "target_text": "sketch", "generator": "random-64", ' ..
    '"steps": 10, "seed": %d}', counter + math.random(1, 1000000000))
  return wrk.format(nil, nil, nil, body)
end
"""


def wrk(url: str, *, connections: int, seconds: float, submit: bool = False) -> dict[str, float]:
    """Drive `url` with wrk (2 threads, `connections` keep-alive connections) and return
    requests/s, p50/p99/max latency in ms and the error count."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py --wrk needs wrk (Debian: apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write((_WRK_SUBMIT if submit else "") + _WRK_REPORT)
    try:
        done = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "10s",
             "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        os.unlink(script.name)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK-JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    r = json.loads(line.removeprefix("WRK-JSON "))
    return {
        "requests": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "errors": r["errors"] + r["non_2xx"],
    }


_SSE_HOLDER = """
import asyncio, sys, httpx
async def hold(url, n):
    async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=n)) as c:
        async def one():
            async with c.stream("GET", url) as r:
                async for _ in r.aiter_lines():
                    pass
        await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
asyncio.run(hold(sys.argv[1], int(sys.argv[2])))
"""


class SseStreams:
    """`count` open event streams of one job, held by a separate process (idle clients:
    they cost the server whatever it does per stream, and this process nothing)."""

    def __init__(self, url: str, count: int):
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SSE_HOLDER, url, str(count)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)  # let them connect

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def _submit_one(base: str, **overrides: object) -> str:
    r = httpx.post(f"{base}{API}/jobs", json={**JOB, **overrides}, timeout=30)
    r.raise_for_status()
    return str(r.json()["id"])


def _wait_training(base: str, job_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}{API}/jobs/{job_id}", timeout=30).json()
        if job["status"] == "running" and job["step"] >= 1:
            return
        if job["status"] in ("failed", "canceled", "succeeded"):
            raise RuntimeError(f"the training job ended: {job['status']} {job.get('error')}")
        time.sleep(1)
    raise RuntimeError("the training job did not start in time")


# Long enough to keep the worker busy through the measurements (random weights, no download).
TRAINING_JOB = {
    "generator": "random-128",
    "steps": 5000,
    "clip_models": [{"name": "ViT-B-32:random"}],
}


_BARE_APP = """
from fastapi import FastAPI, Response

from backend.schemas.jobs import JobCreate

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.post("/jobs", status_code=202)
def submit(body: JobCreate) -> Response:
    # The framework's share of a submission: our request model parsed and validated (the
    # prompts' token counts included), in the thread pool as our route runs; nothing stored.
    return Response(body.model_dump_json(), status_code=202, media_type="application/json")
"""


class BareApp:
    """A bare FastAPI "hello" app under the same uvicorn command line as the API: the
    ceiling one process of this framework reaches on this machine, measured in the same
    run so that the API's figures can be read as a fraction of it. Its POST /jobs takes
    our request model and stores nothing: the ceiling of a submission in this framework."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="nada-bench-bare-"))
        (self.tmp / "bare_app.py").write_text(_BARE_APP)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hello"
        self.submit_url = f"http://127.0.0.1:{self.port}/jobs"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(self.tmp),
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
             "--timeout-keep-alive", "30"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the bare FastAPI app did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
        shutil.rmtree(self.tmp, ignore_errors=True)


def warm_up(url: str) -> None:
    """A short unmeasured run first, for the bare app and each tree alike: a server's
    first seconds under load (50 connections accepted, first calls of each code path, the
    allocator growing) put a p99 of ~90 ms on whatever scenario comes first, where the
    same scenario run again gives 15-20 ms."""
    wrk(url, connections=50, seconds=3)


def bare_suite(
    seconds: float, connections: tuple[int, ...] = (50, 200), submit: bool = True
) -> dict[str, dict[str, float]]:
    app = BareApp()
    try:
        warm_up(app.url)
        results = {"hello-50": wrk(app.url, connections=50, seconds=seconds)}
        if submit:
            results["submit-50"] = wrk(app.submit_url, connections=50, seconds=seconds,
                                       submit=True)  # fmt: skip
        for n in connections:  # 200 last, as in wrk_suite
            if n != 50:
                results[f"hello-{n}"] = wrk(app.url, connections=n, seconds=seconds)
        return results
    finally:
        app.stop()


def wrk_suite(
    root: Path, *, postgres: bool, redis: bool, seconds: float, training: bool
) -> dict[str, dict[str, float]]:
    """The scenarios of issues #13 and #26 against one source tree: polls of a finished
    job (canceled: the view a script or page polls most, answered from the view cache) and
    of a queued one (read from the database at every poll), lists, submissions, and polls
    beside open event streams."""
    results: dict[str, dict[str, float]] = {}
    server = Server(postgres, redis, root=root, worker=training)
    try:
        base = server.base
        queued = _submit_one(base)  # a job that stays queued (no worker) or runs
        finished = _submit_one(base, seed=1)
        httpx.post(f"{base}{API}/jobs/{finished}/cancel", timeout=30).raise_for_status()
        if training:
            busy = _submit_one(base, **TRAINING_JOB)
            _wait_training(base, busy)
            queued = busy
        else:
            time.sleep(3)  # the canceled job's folder settles (backend/api/view_cache.py)
        warm_up(f"{base}{API}/jobs/{finished}")
        results["poll-finished-50"] = wrk(
            f"{base}{API}/jobs/{finished}", connections=50, seconds=seconds
        )
        active = "running" if training else "queued"
        results[f"poll-{active}-50"] = wrk(
            f"{base}{API}/jobs/{queued}", connections=50, seconds=seconds
        )
        if not training:
            results["list-50"] = wrk(f"{base}{API}/jobs?limit=20", connections=50,
                                     seconds=seconds)  # fmt: skip
            results["submit-50"] = wrk(f"{base}{API}/jobs", connections=50, seconds=seconds,
                                       submit=True)  # fmt: skip
            streams = SseStreams(f"{base}{API}/jobs/{queued}/events", 200)
            try:
                results["poll-finished-50+sse-200"] = wrk(
                    f"{base}{API}/jobs/{finished}", connections=50, seconds=seconds
                )
            finally:
                streams.close()
        # Last: 200 connections leave a backlog (slow accepts, retransmits) that would
        # lengthen the tail of whatever scenario followed.
        results["poll-finished-200"] = wrk(
            f"{base}{API}/jobs/{finished}", connections=200, seconds=seconds
        )
    finally:
        server.stop()
    return results


def _worktree(ref: str) -> Path:
    """A checkout of `ref` (e.g. the previous release) in a temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="nada-bench-ref-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    return path


def main_wrk(args: argparse.Namespace) -> int:
    trees = {"this tree": ROOT}
    made: list[Path] = []  # worktrees to remove afterwards
    if args.compare:
        given = Path(args.compare)
        if given.is_dir():  # a source tree already there (e.g. `git archive REF | tar -x`)
            trees = {given.name: given.resolve(), "this tree": ROOT}
        else:
            made.append(_worktree(args.compare))
            trees = {args.compare: made[0], "this tree": ROOT}
    report: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    report["bare FastAPI"] = {"-": bare_suite(args.seconds)}  # first: the ceiling, same run
    try:
        for label, root in trees.items():
            report[label] = {}
            modes = [("idle", False)] + ([("training", True)] if args.training else [])
            for mode, training in modes:
                report[label][mode] = wrk_suite(
                    root, postgres=args.postgres, redis=args.redis, seconds=args.seconds,
                    training=training,
                )  # fmt: skip
    finally:
        for root in made:
            subprocess.run(["git", "worktree", "remove", "--force", str(root)], cwd=ROOT,
                           capture_output=True)  # fmt: skip
    # Again at the end: the machine's load may have changed meanwhile; "x bare" divides by
    # the mean of the two.
    report["bare FastAPI, after"] = {"-": bare_suite(args.seconds, (50,), submit=False)}
    setup = {
        "database": "postgresql" if args.postgres else "sqlite",
        "broker": "redis" if args.redis else "embedded sqlite",
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "load generator": "wrk, 2 threads, same machine",
    }
    if args.json:
        print(json.dumps({"setup": setup, "results": report}, indent=2))
        return 0
    bare = (
        report["bare FastAPI"]["-"]["hello-50"]["rps"]
        + report["bare FastAPI, after"]["-"]["hello-50"]["rps"]
    ) / 2
    print(f"setup: {setup}")
    print(f"{'code':<20}{'worker':<10}{'scenario':<26}{'req/s':>8}{'x bare':>8}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}")  # fmt: skip
    for label, modes in report.items():
        for mode, scenarios in modes.items():
            for name, r in scenarios.items():
                print(f"{label:<20}{mode:<10}{name:<26}{r['rps']:>8.0f}{r['rps'] / bare:>8.2f}"
                      f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}"
                      f"{r['errors']:>8.0f}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--postgres", action="store_true", help="local PostgreSQL, temp database")
    parser.add_argument("--redis", action="store_true", help="local Redis as the broker")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--submits", type=int, default=10, help="jobs per client")
    parser.add_argument("--polls", type=int, default=40, help="status polls per client")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--wrk", action="store_true", help="drive the server with wrk: the scenarios of #13"
    )
    parser.add_argument("--seconds", type=float, default=10, help="--wrk: seconds per scenario")
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="--wrk: run a git REF's code (or a source tree's, given its folder) too, side by side",
    )
    parser.add_argument(
        "--training", action="store_true", help="--wrk: also measure while a local worker trains"
    )
    args = parser.parse_args(argv)
    if args.wrk:
        return main_wrk(args)

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
