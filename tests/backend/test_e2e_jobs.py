"""End to end: real API and Celery worker processes, the real engine on a tiny job.

Two deployments run the tests (those marked `scale_out_only` the first alone; each says why
one suffices):
- redis-postgres: `uvicorn backend.main:create_app` + `python -m cli.worker` (the
  `nada worker` code) over the local Redis and PostgreSQL (own database, key prefix, queue);
- embedded: `nada serve` alone (SQLite, the SQLite Celery transport, its own worker child).

Jobs use generator 'random-32' and the two-layer random CLIP 'nada-tiny:random' on the CPU (what
is under test is the job system, so the engine's share of the time is kept small: a step takes
a fraction of a second). A test that acts while a job runs (cancel, kill, the fast lane) gives
that job enough steps to still be running when it acts (LONG).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
SIZE = 32
GENERATOR = f"random-{SIZE}"
TINY = {
    "source_text": "photo",
    "target_text": "sketch",
    "generator": GENERATOR,
    "clip_models": [{"name": "nada-tiny:random", "weight": 1}],
    "batch_size": 1,
    "sample_every": 2,
    "probe_batch": 2,
    "n_samples": 2,
    "score_latents": 4,  # the scores' cost on the CPU: 4 images, not 32
}
# Minutes of steps: a job that is still running when a test acts on it, canceled by the test.
LONG = {"steps": 3000, "sample_every": 1000}
JOB_TIMEOUT = 300.0
DEPLOYMENTS = ["redis-postgres", "embedded"]
# What one deployment suffices for (the reason is in each test's docstring): the test asks
# for the scale-out deployment only, so the embedded variant is never generated.
scale_out_only = pytest.mark.parametrize("deployment", ["redis-postgres"], indirect=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Deployment:
    """Processes of one deployment, their logs, and an HTTP client to the API."""

    def __init__(self, kind: str, workdir: Path, env: dict[str, str]):
        self.kind = kind
        self.workdir = workdir
        self.env = env
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self._logs = 0

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        self._logs += 1
        log = open(self.workdir / f"{self._logs:02d}-{name}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    def start_api(self) -> None:
        if self.kind == "embedded":
            argv = [
                sys.executable,
                "-m",
                "cli.main",
                "serve",
                "--port",
                str(self.port),
                "--device",
                "cpu",
            ]
        else:
            argv = [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ]
        self.api = self._spawn(argv, "api")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.api.poll() is None, self.logs()
            try:
                if self.http.get(f"{API}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"API did not come up\n{self.logs()}")

    def stop_api(self) -> None:
        if self.api is not None and self.api.poll() is None:
            children = _children(self.api.pid)  # `nada serve`'s local worker
            self.api.send_signal(signal.SIGTERM)
            try:
                self.api.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.api.pid, signal.SIGKILL)
                self.api.wait()
            deadline = time.monotonic() + 20
            while any(_alive(c) for c in children) and time.monotonic() < deadline:
                time.sleep(0.2)
            orphans = [c for c in children if _alive(c)]
            for pid in orphans:
                os.kill(pid, signal.SIGKILL)
            assert not orphans, f"`nada serve` left its worker running\n{self.logs()}"

    def start_worker(self, lanes: str = "train,fast") -> None:
        if self.kind == "embedded":
            return  # `nada serve` runs its own workers (one of them for the fast lane)
        name = f"w{len(self.workers)}"
        self.workers.append(
            self._spawn(
                [
                    sys.executable,
                    "-m",
                    "cli.worker",
                    "--device",
                    "cpu",
                    "--hostname",
                    f"{name}@%h",
                    "--lanes",
                    lanes,
                ],
                name,
            )
        )

    def kill_worker(self) -> None:
        """SIGKILL the worker process running jobs (no cleanup, as a crashed machine)."""
        if self.kind == "embedded":
            assert self.api is not None
            pids = [p for p in _children(self.api.pid)]
            assert pids, "no worker child"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        else:
            for worker in self.workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()

    def stop(self) -> None:
        self.stop_api()
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self.http.close()

    # --- the API, as a client uses it

    def submit(self, **params: Any) -> str:
        r = self.http.post(f"{API}/jobs", json={**TINY, **params})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.http.get(f"{API}/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait(
        self, job_id: str, until: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + JOB_TIMEOUT
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if until(job):
                return job
            if job["status"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} never got {what}: {job}\n{self.logs()}")

    def wait_status(self, job_id: str, status: str) -> dict[str, Any]:
        return self.wait(job_id, lambda j: j["status"] == status, status)


class EventRecorder(threading.Thread):
    """Reads a job's SSE stream in the background until it ends."""

    def __init__(self, base: str, job_id: str):
        super().__init__(daemon=True)
        self.url = f"{base}{API}/jobs/{job_id}/events"
        self.events: list[dict[str, Any]] = []
        self.start()

    def run(self) -> None:
        with httpx.stream("GET", self.url, timeout=JOB_TIMEOUT) as r:
            current: dict[str, Any] = {}
            for line in r.iter_lines():
                if not line:
                    if "event" in current:
                        self.events.append(current)
                    current = {}
                elif line.startswith(("id: ", "event: ")):
                    key, _, value = line.partition(": ")
                    current[key] = value
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events if e["event"] != "heartbeat"]


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind = request.param
    workdir = tmp_path_factory.mktemp(kind)
    env = {
        **os.environ,
        "NADA_DATA_DIR": str(workdir / "data"),
        "NADA_CACHE_DIR": str(workdir / "cache"),
        "NADA_DEVICE": "cpu",
        "NADA_LEASE_SECONDS": "4",
        "NADA_REAP_INTERVAL": "1",
        "NADA_CANCEL_POLL_SECONDS": "0.2",
        "NADA_SSE_POLL_SECONDS": "0.1",
        "NADA_SSE_HEARTBEAT_SECONDS": "2",
        "NADA_FRONTEND_DIR": "",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for k in ("NADA_DATABASE_URL", "NADA_BROKER_URL", "NADA_BROKER_PREFIX", "NADA_QUEUE"):
        env.pop(k, None)
    pg = None
    if kind == "redis-postgres":
        pg = create_pg_database(f"nada_test_{uuid.uuid4().hex[:12]}")
        prefix = request.getfixturevalue("redis_prefix")
        env.update(
            NADA_DATABASE_URL=pg,
            NADA_BROKER_URL=request.getfixturevalue("redis_url"),
            NADA_BROKER_PREFIX=prefix,
            NADA_QUEUE=f"nada-e2e-{uuid.uuid4().hex[:6]}",
        )
    d = Deployment(kind, workdir, env)
    try:
        d.start_api()
        d.start_worker()
        yield d
    finally:
        d.stop()
        if pg:
            drop_pg_database(pg)


def test_job_runs_to_success_with_samples_checkpoint_and_events(deployment: Deployment) -> None:
    d = deployment
    job_id = d.submit(steps=2)
    events = EventRecorder(d.base, job_id)
    job = d.wait_status(job_id, "succeeded")
    events.join(30)
    kinds = events.kinds()
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "succeeded", kinds
    assert "progress" in kinds and "sample" in kinds
    steps = [e["data"]["step"] for e in events.events if e["event"] == "progress"]
    assert steps[-1] == 2 and steps == sorted(steps)
    assert job["step"] == 2 and job["attempt"] == 1 and job["error"] is None
    assert job["losses"] and job["selected_layers"] and job["started_at"] and job["finished_at"]
    assert [s["step"] for s in job["samples"]] == [0, 2]  # 0: before training
    for sample in job["samples"]:
        png = d.http.get(sample["url"])
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = d.http.get(job["checkpoint_url"])
    assert r.status_code == 200 and "nada-photo-to-sketch-" in r.headers["content-disposition"]
    path = d.workdir / "downloaded.pt"
    path.write_bytes(r.content)
    import hashlib

    from stylegan2 import load_generator

    loaded = load_generator(path)  # load_state_dict(strict=True) inside
    assert loaded.generator.size == SIZE
    root = d.workdir / "data" / "jobs" / job_id
    assert (
        hashlib.sha256(r.content).hexdigest()
        == hashlib.sha256((root / "adapted.pt").read_bytes()).hexdigest()
    )


def test_cancel_a_queued_and_a_running_job_and_priority_goes_first(
    deployment: Deployment,
) -> None:
    """Cancel a queued and a running job; meanwhile three normal jobs and then one of
    priority 5 queued behind the running one: the priority one starts next, then the three
    in their order (jobs/leases.py claim_job: the embedded transport has no message
    priorities and Redis's are not used, a message is a place in its lane's queue)."""
    d = deployment
    running = d.submit(seed=1, **LONG)
    queued = d.submit(steps=4, seed=2)
    d.wait_status(running, "running")
    assert d.job(queued)["status"] == "queued" and d.job(queued)["queue_position"] == 1
    normal = [d.submit(steps=1, seed=10 + i) for i in range(3)]
    r = d.http.post(f"{API}/jobs", json={**TINY, "steps": 1, "seed": 20, "priority": 5})
    assert r.status_code == 202 and r.json()["priority"] == 5, r.text
    high = r.json()["id"]
    assert [d.job(j)["queue_position"] for j in (high, queued, *normal)] == [1, 2, 3, 4, 5]
    r = d.http.post(f"{API}/jobs/{queued}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert [d.job(j)["queue_position"] for j in (high, *normal)] == [1, 2, 3, 4]
    events = EventRecorder(d.base, running)
    r = d.http.post(f"{API}/jobs/{running}/cancel")
    assert r.status_code == 202 and r.json()["cancel_requested"]
    job = d.wait_status(running, "canceled")
    assert job["step"] < LONG["steps"] and job["checkpoint_url"] is None
    events.join(30)
    assert events.kinds()[-1] == "canceled"
    assert d.http.post(f"{API}/jobs/{running}/cancel").status_code == 409
    started = {j: d.wait_status(j, "succeeded")["started_at"] for j in (high, *normal)}
    assert sorted(started, key=started.__getitem__) == [high, *normal], started
    assert d.job(queued)["started_at"] is None  # canceled before any message reached it
    assert d.http.delete(f"{API}/jobs/{queued}").status_code == 204


def _picture(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGB", (64, 64), color)
    image.paste((255 - color[0], 255 - color[1], 255 - color[2]), (16, 16, 48, 48))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_killed_worker_job_is_finished_by_a_new_worker_without_duplicate_files(
    deployment: Deployment,
) -> None:
    """The job is image-guided (two uploaded pictures, no target text): after its worker is
    killed past the first intermediate checkpoint, the upload pool is swept, and the new
    worker resumes from the job's own copies of the images (issue 12), whose names the
    adapted checkpoint's metadata records."""
    from jobs import image_pool
    from stylegan2 import load_generator

    d = deployment
    files = [("file", (f"{i}.png", _picture(c), "image/png"))
             for i, c in enumerate([(200, 40, 40), (40, 40, 200)])]  # fmt: skip
    r = d.http.post(f"{API}/images", files=files)
    assert r.status_code == 201, r.text
    names = [item["id"] for item in r.json()["data"]]
    steps = 20  # ~0.5 s each: the kill lands long before the last one
    job_id = d.submit(
        target_text="",
        target_images=names,
        image_views=2,
        steps=steps,
        checkpoint_every=5,
        sample_every=10,
        seed=3,
    )
    root = d.workdir / "data" / "jobs" / job_id
    d.wait(job_id, lambda j: (root / "checkpoints" / "step_000005.pt").is_file(), "a checkpoint")
    d.kill_worker()
    removed = image_pool.remove_stale(d.workdir / "data", older_than_s=-60)
    assert sorted(removed) == sorted(names)  # the job cannot lean on the pool
    d.start_worker()
    job = d.wait_status(job_id, "succeeded")
    assert job["attempt"] == 2 and job["step"] == steps, f"{job}\n{d.logs()}"
    assert [s["step"] for s in job["samples"]] == [0, 10, 20]
    assert job["params"]["target_images"] == names
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "adapted.pt",
        *sorted(f"domain_images/{name}.png" for name in names),
        "metrics.jsonl",
        "resume.pt",  # what a continuation starts from
        "samples/step_000000.png",
        "samples/step_000010.png",
        "samples/step_000020.png",
    ], f"{files}\n{d.logs()}"
    with d.http.stream("GET", f"{API}/jobs/{job_id}/events") as r:
        kinds = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert kinds.count("started") == 2 and kinds.count("queued") == 2 and kinds[-1] == "succeeded"

    for name in names:
        served = d.http.get(f"{API}/jobs/{job_id}/images/{name}.png")
        assert served.status_code == 200
        assert served.content == (root / "domain_images" / f"{name}.png").read_bytes()
    path = d.workdir / f"{job_id}.pt"
    path.write_bytes(d.http.get(job["checkpoint_url"]).content)
    domain = load_generator(path).metadata["domain"]
    assert domain["target_images"] == names and domain["image_weight"] == 1.0


def test_restarting_the_api_loses_nothing(deployment: Deployment) -> None:
    d = deployment
    before = d.http.get(f"{API}/jobs", params={"limit": 100}).json()
    pending = d.submit(steps=1, seed=4)
    d.stop_api()
    d.start_api()
    after = d.http.get(f"{API}/jobs", params={"limit": 100}).json()
    assert after["count"] == before["count"] + 1
    old = {j["id"]: j for j in after["data"]}
    for job in before["data"]:
        assert {k: v for k, v in old[job["id"]].items() if k != "eta_seconds"} == {
            k: v for k, v in job.items() if k != "eta_seconds"
        }
    job = d.wait_status(pending, "succeeded")  # queued before the restart, done after it
    assert d.http.get(job["checkpoint_url"]).status_code == 200


@scale_out_only
def test_a_photo_through_a_finished_job(deployment: Deployment) -> None:
    """Upload -> the inversion runs on the worker -> the edit of a finished job renders it:
    what the page's "Try it on a photo" does (no weights: no encoder, no alignment). The
    embedded deployment's photo path is the page's: tests/frontend/test_page_photo.py drives
    it through `nada serve`."""
    import io

    from PIL import Image

    d = deployment
    job_id = d.submit(steps=1, seed=7)
    buffer = io.BytesIO()
    Image.new("RGB", (80, 64), (180, 120, 90)).save(buffer, format="JPEG")
    params = {"generator": GENERATOR, "encoder": "auto", "align": False, "refine_steps": 3,
              "sample_every": 2}  # fmt: skip
    r = d.http.post(
        f"{API}/inversions",
        data={"params": json.dumps(params)},
        files={"file": ("me.jpg", buffer.getvalue(), "image/jpeg")},
    )
    assert r.status_code == 202, r.text
    inversion = r.json()["id"]
    events = EventRecorder(d.base, inversion)  # the job event stream serves every kind
    d.wait_status(job_id, "succeeded")
    done = d.wait(
        inversion,
        lambda j: j["status"] == "succeeded",
        "succeeded",
    )
    events.join(30)
    assert "progress" in events.kinds() and events.kinds()[-1] == "succeeded"
    assert done["kind"] == "invert" and done["step"] == 3 and done["error"] is None
    view = d.http.get(f"{API}/inversions/{inversion}").json()
    # No VGG weights on this machine: the refinement said it used the pixel loss only.
    assert view["note"] and "pixel loss only" in view["note"], view
    for key in ("photo_url", "aligned_url", "reconstruction_url"):
        png = d.http.get(view[key])
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n", key
    assert Image.open(io.BytesIO(d.http.get(view["aligned_url"]).content)).size == (SIZE, SIZE)
    latent = d.workdir / "latent.pt"
    latent.write_bytes(d.http.get(view["latent_url"]).content)
    import torch

    code = torch.load(latent, weights_only=True)
    assert code["w_plus"].shape[0] == 1 and code["w_plus"].shape[-1] == 512

    r = d.http.post(f"{API}/jobs/{job_id}/edits", json={"inversion_id": inversion})
    assert r.status_code == 202, r.text
    edit = d.wait(r.json()["id"], lambda j: j["status"] == "succeeded", "succeeded")
    assert edit["kind"] == "edit"
    shown = d.http.get(f"{API}/edits/{edit['id']}").json()
    image = d.http.get(shown["image_url"])
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (SIZE, SIZE)
    again = d.http.post(f"{API}/jobs/{job_id}/edits", json={"inversion_id": inversion})
    assert again.status_code == 200 and again.json()["id"] == edit["id"]


def test_a_photo_does_not_wait_behind_a_training_job(deployment: Deployment) -> None:
    """The fast lane: an inversion submitted while a long adaptation trains finishes before
    that adaptation does (embedded: `nada serve`'s second worker; scale-out: a worker
    started with --lanes fast)."""
    import io

    from PIL import Image

    d = deployment
    if d.kind != "embedded":
        d.start_worker(lanes="fast")  # the others may take either lane
    long_job = d.submit(seed=11, **LONG)
    d.wait_status(long_job, "running")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 60, 30)).save(buffer, format="PNG")
    params = {"generator": GENERATOR, "align": False, "refine_steps": 2, "sample_every": 0}
    r = d.http.post(
        f"{API}/inversions",
        data={"params": json.dumps(params)},
        files={"file": ("me.png", buffer.getvalue(), "image/png")},
    )
    assert r.status_code == 202, r.text
    d.wait_status(r.json()["id"], "succeeded")
    training = d.job(long_job)
    assert training["status"] == "running" and training["step"] < LONG["steps"], training
    assert d.http.post(f"{API}/jobs/{long_job}/cancel").status_code in (200, 202)
    d.wait_status(long_job, "canceled")


@scale_out_only
def test_a_two_by_two_sweep_runs_to_four_scored_jobs(deployment: Deployment) -> None:
    """A sweep through a real worker: four jobs, each succeeded with its scores measured at
    step 0 and at its last step, and the sweep's view agrees. One deployment suffices: the
    sweep is made of ordinary jobs, which both deployments already run above."""
    d = deployment
    grid = {"layers": [1, 2], "seed": [3, 4]}
    r = d.http.post(f"{API}/sweeps", json={"base": {**TINY, "steps": 2}, "grid": grid})
    assert r.status_code == 202, r.text
    sweep = r.json()
    assert sweep["count"] == 4 and sorted(sweep["varying"]) == ["layers", "seed"]
    combos = set()
    for entry in sweep["jobs"]:
        job = d.wait_status(entry["id"], "succeeded")
        combos.add((job["params"]["layers"], job["params"]["seed"]))
        steps = [s["step"] for s in job["scores"]]
        assert steps == [0, 2], job["scores"]
        final = job["scores"][-1]["values"]
        for name in ("direction", "target", "content", "diversity", "loss"):
            assert isinstance(final[name], float), (name, final)
        assert job["scores"][0]["values"]["content"] > 0.999  # step 0: nothing trained yet
    assert combos == {(1, 3), (1, 4), (2, 3), (2, 4)}
    shown = d.http.get(f"{API}/sweeps/{sweep['id']}").json()
    assert shown["done"] is True and shown["status"] == {"succeeded": 4}, shown


# -- renders of a finished job (worker/renders.py) --------------------------------------------


def _finished_job(d: Deployment) -> str:
    """A succeeded 1-step adaptation to render from."""
    job_id = d.submit(steps=1, seed=5)
    d.wait_status(job_id, "succeeded")
    return job_id


@scale_out_only
def test_renders_of_a_finished_job_download(deployment: Deployment, tmp_path: Path) -> None:
    """A grid and a video of a finished job, downloaded. One deployment suffices: renders are
    jobs of the fast lane, which the embedded deployment runs above (the photo tests)."""
    import io

    from PIL import Image

    from worker.video import count_frames

    d = deployment
    job_id = _finished_job(d)
    r = d.http.post(f"{API}/jobs/{job_id}/renders", json={"seeds": [1, 2], "truncation": 0.6})
    assert r.status_code == 202, r.text
    done = d.wait_status(r.json()["id"], "succeeded")
    assert done["kind"] == "render" and done["step"] == done["total_steps"] == 2
    view = d.http.get(f"{API}/renders/{done['id']}").json()
    png = d.http.get(view["image_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    grid = Image.open(io.BytesIO(png.content))
    assert grid.size == (2 * SIZE + 2, 2 * SIZE + 2)  # two seeds; source over adapted
    again = d.http.post(f"{API}/jobs/{job_id}/renders", json={"seeds": [1, 2], "truncation": 0.6})
    assert again.status_code == 200 and again.json()["id"] == done["id"]

    body = {"mode": "video", "keyframes": [3, 4], "frames": 2, "fps": 4, "format": "mp4"}
    r = d.http.post(f"{API}/jobs/{job_id}/renders", json=body)
    assert r.status_code == 202, r.text
    d.wait_status(r.json()["id"], "succeeded")
    view = d.http.get(f"{API}/renders/{r.json()['id']}").json()
    video = d.http.get(view["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = tmp_path / "render.mp4"
    path.write_bytes(video.content)
    assert count_frames(path) == 3  # ffmpeg reads back every frame written


@scale_out_only
def test_a_render_does_not_wait_behind_a_training_job(deployment: Deployment) -> None:
    """The fast lane: a render asked for while a long adaptation trains on the only train
    worker finishes before that adaptation does. The embedded deployment's fast lane is
    proven by the photo test above; here the scale-out one's."""
    d = deployment
    d.start_worker(lanes="fast")  # the others may take either lane
    job_id = _finished_job(d)
    long_job = d.submit(seed=13, **LONG)
    d.wait_status(long_job, "running")
    r = d.http.post(f"{API}/jobs/{job_id}/renders", json={"seeds": [8]})
    assert r.status_code == 202, r.text
    d.wait_status(r.json()["id"], "succeeded")
    training = d.job(long_job)
    assert training["status"] == "running" and training["step"] < LONG["steps"], training
    assert d.http.post(f"{API}/jobs/{long_job}/cancel").status_code in (200, 202)
    d.wait_status(long_job, "canceled")
