"""POST /images, GET /images/{id}.png, and jobs that name example images (issue 12), through
the TestClient on SQLite and PostgreSQL (the queue records; the killed-worker test of
tests/backend/test_e2e_jobs.py runs such a job through a real worker).

Pass criteria: uploads are stored upright as PNG under the sha256 of those bytes and come
back; every refusal (not an image, a pixel bomb, too small, too large, 17 files, one bad
file among good ones) names the file, stores nothing and changes no job; a job naming an
image this token has not uploaded is refused naming the field and the id, creating nothing;
a job gets its own copies of its images, which outlive the pool and go with the job; a
resumed job's engine is handed exactly those copies.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from invert.example_images import check_stored
from jobs import image_pool, leases, storage
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir

from .test_inversions_api import _gif, _png, _png_bomb  # type: ignore[import-not-found]

API = "/api/v1"
TEXT = {"source_text": "photo", "target_text": "sketch", "generator": "random-64"}


def _jpeg_rotated() -> bytes:
    """An 80x40 JPEG whose EXIF orientation says 'rotate 90° clockwise to view' (6)."""
    image = Image.new("RGB", (80, 40), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _upload(client: Any, *files: tuple[str, bytes], **kw: Any) -> Any:
    parts = [("file", (name, io.BytesIO(data), "application/octet-stream")) for name, data in files]
    return client.post(f"{API}/images", files=parts, **kw)


def _ids(client: Any, *files: tuple[str, bytes], **kw: Any) -> list[str]:
    r = _upload(client, *files, **kw)
    assert r.status_code == 201, r.text
    return [item["id"] for item in r.json()["data"]]


def _stored(settings: Settings) -> list[str]:
    """Every file under the pool and the incoming folder."""
    found = []
    for folder in (image_pool.pool_dir(settings.data_dir), settings.data_dir / "uploads-incoming"):
        found += sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    return found


def _jobs(settings: Settings) -> list[Job]:
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(Job)))


def _folder(settings: Settings, job_id: str) -> dict[str, bytes]:
    root = storage.job_dir(settings.jobs_dir, job_id)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_uploads_get_content_names_and_come_back_upright(client: Any, settings: Settings) -> None:
    r = _upload(client, ("red.png", _png(64, 48)), ("turned.jpg", _jpeg_rotated()))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["count"] == 2
    red, turned = body["data"]
    assert (red["width"], red["height"]) == (64, 48)
    assert (turned["width"], turned["height"]) == (40, 80)  # EXIF orientation applied
    for item in body["data"]:
        png = client.get(item["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert hashlib.sha256(png.content).hexdigest() == item["id"]
        image = Image.open(io.BytesIO(png.content))
        assert image.size == (item["width"], item["height"]) and image.mode == "RGB"
    assert not Image.open(io.BytesIO(client.get(turned["url"]).content)).info.get("exif")
    # The same picture again is the same image: one name, one file.
    assert _ids(client, ("again.png", _png(64, 48))) == [red["id"]]
    assert len(list(image_pool.pool_dir(settings.data_dir).glob("*.png"))) == 2
    assert client.get(f"{API}/images/{'0' * 64}.png").status_code == 404
    r = client.get(f"{API}/images/not-a-name.png")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "image_id"]


def test_a_large_photo_is_shrunk_to_1024_on_its_longer_side(client: Any) -> None:
    (item,) = _upload(client, ("big.png", _png(2048, 512))).json()["data"]
    assert (item["width"], item["height"]) == (1024, 256)


GOOD = ("good.png", _png(40, 40, (1, 2, 3)))


@pytest.mark.parametrize(
    ("files", "status", "says"),
    [
        ([("notes.txt", b"hello, not a picture")], 422, 'file 1 ("notes.txt") refused'),
        ([GOOD, ("bomb.png", _png_bomb(20_000, 20_000)), GOOD], 422, 'file 2 ("bomb.png")'),
        ([GOOD, ("tiny.png", _png(20, 20))], 422, "at least 32"),
        ([GOOD, ("anim.gif", _gif())], 422, 'file 2 ("anim.gif") refused'),
        ([GOOD] * 17, 422, "at most 16 images"),
    ],
    ids=["not-an-image", "pixel-bomb-among-good", "too-small", "gif", "17-files"],
)
def test_refused_uploads_store_nothing_and_change_no_job(
    client: Any,
    settings: Settings,
    queue: Any,
    files: list[tuple[str, bytes]],
    status: int,
    says: str,
) -> None:
    (kept,) = _ids(client, ("kept.png", _png(50, 50, (9, 9, 9))))
    r = client.post(f"{API}/jobs", json={**TEXT, "target_images": [kept]})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    before = (_stored(settings), _folder(settings, job_id), [j.params for j in _jobs(settings)])

    r = _upload(client, *files)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "file"] and says in detail[0]["msg"], detail
    after = (_stored(settings), _folder(settings, job_id), [j.params for j in _jobs(settings)])
    assert after == before and queue.sent == [job_id]


def test_too_large_names_the_file_and_other_refusals(client: Any, settings: Settings) -> None:
    small = settings.model_copy(update={"max_photo_mb": 0.01})  # ~10 KiB per image
    client.app.state.settings = small
    try:
        r = _upload(client, GOOD, ("noise.png", GOOD[1] + os.urandom(20_000)))
        assert r.status_code == 413, r.text
        assert 'file 2 ("noise.png")' in r.json()["detail"]
        assert "NADA_MAX_PHOTO_MB" in r.json()["detail"]
    finally:
        client.app.state.settings = settings
    r = client.post(f"{API}/images", json={"file": "x"})
    assert r.status_code == 415 and "multipart" in r.json()["detail"]
    r = client.post(f"{API}/images", data={"note": "no file"}, files={"x": ("", b"")})
    assert r.status_code in (400, 422), r.text
    r = client.post(f"{API}/images", files={"photo": ("a.png", GOOD[1])})  # the wrong name
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "photo"]
    assert _stored(settings) == []


def test_a_job_names_only_uploaded_images_and_keeps_its_own_copies(
    client: Any, settings: Settings, queue: Any
) -> None:
    a, b, c = _ids(
        client,
        ("a.png", _png(40, 40, (200, 0, 0))),
        ("b.png", _png(40, 40, (0, 0, 200))),
        ("c.png", _png(40, 40, (0, 200, 0))),
    )
    unknown = hashlib.sha256(b"never uploaded").hexdigest()
    for field in ("target_images", "source_images"):
        body = {
            **TEXT,
            "target_images": [a],
            field: [a, unknown] if field == "target_images" else [unknown],
        }
        r = client.post(f"{API}/jobs", json=body)
        assert r.status_code == 422, r.text
        error = r.json()["detail"][0]
        assert error["loc"][-1] == field and unknown in error["msg"], error
    assert _jobs(settings) == [] and queue.sent == []
    assert not settings.jobs_dir.is_dir() or list(settings.jobs_dir.iterdir()) == []

    # Images only: no target text at all.
    r = client.post(
        f"{API}/jobs",
        json={"generator": "random-64", "target_images": [a, b], "source_images": [c]},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["params"]["target_images"] == [a, b] and job["params"]["source_images"] == [c]
    assert sorted(_folder(settings, job["id"])) == sorted(
        f"domain_images/{name}.png" for name in (a, b, c)
    )
    root = storage.job_dir(settings.jobs_dir, job["id"])
    for name in (a, b, c):
        check_stored(rundir.domain_image_path(root, name), name)
        served = client.get(f"{API}/jobs/{job['id']}/images/{name}.png")
        assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == name
    other = _ids(client, ("d.png", _png(40, 40, (90, 90, 90))))[0]
    assert client.get(f"{API}/jobs/{job['id']}/images/{other}.png").status_code == 404

    # The pool may be swept at any time: the job's copies stay.
    assert sorted(image_pool.remove_stale(settings.data_dir, older_than_s=-60)) == sorted(
        [a, b, c, other]
    )
    assert client.get(f"{API}/images/{a}.png").status_code == 404
    assert client.get(f"{API}/jobs/{job['id']}/images/{a}.png").status_code == 200
    r = client.post(f"{API}/jobs", json={**TEXT, "target_images": [a]})
    assert r.status_code == 422 and "POST /images" in r.json()["detail"][0]["msg"]

    # Deleting the job deletes its copies, not what was uploaded again since.
    assert _ids(client, ("a.png", _png(40, 40, (200, 0, 0)))) == [a]
    assert client.post(f"{API}/jobs/{job['id']}/cancel").status_code == 200
    assert client.delete(f"{API}/jobs/{job['id']}").status_code == 204
    assert not root.exists()
    assert client.get(f"{API}/images/{a}.png").status_code == 200


def test_a_sweep_gives_every_job_its_images(client: Any, settings: Settings) -> None:
    (a,) = _ids(client, ("a.png", _png(40, 40, (200, 0, 0))))
    r = client.post(
        f"{API}/sweeps",
        json={"base": {**TEXT, "target_images": [a]}, "grid": {"image_weight": [0.25, 0.75]}},
    )
    assert r.status_code == 202, r.text
    for job in r.json()["jobs"]:
        assert list(_folder(settings, job["id"])) == [f"domain_images/{a}.png"]
    r = client.post(
        f"{API}/sweeps",
        json={"base": {**TEXT, "target_images": ["f" * 64]}, "grid": {"steps": [1, 2]}},
    )
    assert r.status_code == 422 and "target_images" in r.text
    assert len(_jobs(settings)) == 2


def test_images_are_per_token(settings: Settings, queue: Any) -> None:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    tokened = Settings(
        **{**settings.model_dump(), "api_tokens": "alice:aaaaaaaaaaaaaaaa,bob:bbbbbbbbbbbbbbbb"}
    )
    alice = {"Authorization": "Bearer aaaaaaaaaaaaaaaa"}
    bob = {"Authorization": "Bearer bbbbbbbbbbbbbbbb"}
    with TestClient(create_app(tokened, queue=queue)) as client:
        assert _upload(client, GOOD).status_code == 401
        (mine,) = _ids(client, GOOD, headers=alice)
        assert client.get(f"{API}/images/{mine}.png", headers=alice).status_code == 200
        # Knowing the name is not enough: bob never uploaded it.
        assert client.get(f"{API}/images/{mine}.png", headers=bob).status_code == 404
        r = client.post(f"{API}/jobs", json={**TEXT, "target_images": [mine]}, headers=bob)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "target_images"
        r = client.post(f"{API}/jobs", json={**TEXT, "target_images": [mine]}, headers=alice)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        url = f"{API}/jobs/{job_id}/images/{mine}.png"
        assert client.get(url, headers=alice).status_code == 200
        assert client.get(url, headers=bob).status_code == 404
        # Once bob sends the same picture himself, it is his to use too.
        assert _ids(client, GOOD, headers=bob) == [mine]
        assert client.get(f"{API}/images/{mine}.png", headers=bob).status_code == 200


class _RecordingEngine:
    """Stands in for run_adaptation: records what it was handed, finishes at once."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, params: Any, out_dir: Path, **kwargs: Any) -> Any:
        from worker.events import AdaptResult

        self.calls.append({"params": params, "out_dir": out_dir, **kwargs})
        ckpt = rundir.write_bytes(out_dir / rundir.ADAPTED, b"adapted weights")
        metrics = rundir.write_bytes(out_dir / rundir.METRICS, b"{}\n")
        digest = hashlib.sha256(b"adapted weights").hexdigest()
        return AdaptResult(ckpt, (), metrics, digest, params.steps, 0.1)


def test_a_resumed_job_is_handed_its_own_copies(client: Any, settings: Settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from worker.attempts import run_job

    a, b = _ids(client, ("a.png", _png(40, 40, (200, 0, 0))), ("b.png", _png(40, 40, (0, 0, 200))))
    r = client.post(
        f"{API}/jobs",
        json={**TEXT, "target_images": [a, b], "steps": 4, "checkpoint_every": 2},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    root = storage.job_dir(settings.jobs_dir, job_id)
    # Attempt 1 got to step 2 and its worker died; the pool was swept meanwhile.
    with session_scope(settings.db_url) as s:
        leases.claim_job(s, job_id=job_id, worker_id="dead", lease_seconds=60, max_attempts=3)
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=leases.utcnow() - timedelta(minutes=1))
        )
    rundir.write_bytes(rundir.intermediate_checkpoint_path(root, 2), b"ckpt 2")
    image_pool.remove_stale(settings.data_dir, older_than_s=-60)

    engine = _RecordingEngine()
    assert run_job(job_id, settings=settings, worker_id="w2", engine=engine, models=object()) == (
        "succeeded"
    )
    (call,) = engine.calls
    assert call["resume_from"] == rundir.intermediate_checkpoint_path(root, 2)
    assert call["params"].target_images == (a, b)
    assert call["domain_images"] == {n: rundir.domain_image_path(root, n) for n in (a, b)}
    for name, path in call["domain_images"].items():
        assert path.is_relative_to(root)
        check_stored(path, name)  # the bytes the name says
