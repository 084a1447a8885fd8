"""End to end: an image-guided job (issue 12) through real API and Celery worker processes
over Redis and PostgreSQL, the real engine on a tiny job (random-64, nada-tiny:random, CPU).

Pass criteria: two uploaded images become a job with no target text; its worker is killed
after the first intermediate checkpoint and the upload pool is swept; a new worker resumes
the job from the job's own copies of the images, and the adapted checkpoint's metadata
names exactly those images.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from jobs import image_pool

from .conftest import create_pg_database, drop_pg_database  # type: ignore[import-not-found]
from .test_e2e_jobs import API, SLOW, Deployment  # type: ignore[import-not-found]

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(1500)]
WAIT_S = 600.0  # per wait: two CLIP loads and guidance from images on a busy 2-core CPU


def _wait(d: Deployment, job_id: str, until: Any, what: str) -> dict[str, Any]:
    """Deployment.wait with a longer deadline (this job loads its models twice)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = d.job(job_id)
        if until(job):
            return job
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} never got {what}: {job}\n{d.logs()}")


def _picture(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (64, 64), color)
    image.paste((255 - color[0], 255 - color[1], 255 - color[2]), (16, 16, 48, 48))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, redis_prefix: str
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("images")
    env = {
        **os.environ,
        "NADA_DATA_DIR": str(workdir / "data"),
        "NADA_CACHE_DIR": str(workdir / "cache"),
        "NADA_DEVICE": "cpu",
        "NADA_LEASE_SECONDS": "4",
        "NADA_REAP_INTERVAL": "1",
        "NADA_CANCEL_POLL_SECONDS": "0.2",
        "NADA_FRONTEND_DIR": "",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    pg = create_pg_database(f"nada_test_{uuid.uuid4().hex[:12]}")
    env.update(
        NADA_DATABASE_URL=pg,
        NADA_BROKER_URL=redis_url,
        NADA_BROKER_PREFIX=redis_prefix,
        NADA_QUEUE=f"nada-e2e-{uuid.uuid4().hex[:6]}",
    )
    d = Deployment("redis-postgres", workdir, env)
    try:
        d.start_api()
        d.start_worker()
        yield d
    finally:
        d.stop()
        drop_pg_database(pg)


def test_an_image_guided_job_resumes_on_its_own_copies(deployment: Deployment) -> None:
    d = deployment
    files = [
        ("file", (f"{i}.png", _picture(c), "image/png"))
        for i, c in enumerate([(200, 40, 40), (40, 40, 200)])
    ]
    r = d.http.post(f"{API}/images", files=files)
    assert r.status_code == 201, r.text
    names = [item["id"] for item in r.json()["data"]]

    job_id = d.submit(
        target_text="",
        target_images=names,
        image_views=2,
        steps=2,
        checkpoint_every=1,
        seed=3,
        **SLOW,  # still running when the worker is killed
    )
    root = d.workdir / "data" / "jobs" / job_id
    _wait(d, job_id, lambda j: (root / "checkpoints" / "step_000001.pt").is_file(), "a checkpoint")
    d.kill_worker()
    removed = image_pool.remove_stale(d.workdir / "data", older_than_s=-60)
    assert sorted(removed) == sorted(names)  # the job cannot lean on the pool
    d.start_worker()
    job = _wait(d, job_id, lambda j: j["status"] == "succeeded", "succeeded")
    assert job["attempt"] == 2 and job["step"] == 2, f"{job}\n{d.logs()}"
    assert job["params"]["target_images"] == names

    for name in names:
        served = d.http.get(f"{API}/jobs/{job_id}/images/{name}.png")
        assert served.status_code == 200 and served.content == _stored(root, name)
    r = d.http.get(job["checkpoint_url"])
    assert r.status_code == 200
    path = d.workdir / "image-guided.pt"
    path.write_bytes(r.content)
    from stylegan2 import load_generator

    domain = load_generator(path).metadata["domain"]
    assert domain["target_images"] == names and domain["image_weight"] == 1.0


def _stored(root: Path, name: str) -> bytes:
    return (root / "domain_images" / f"{name}.png").read_bytes()
