"""POST /api/v1/inversions, GET /inversions/{id}, POST /jobs/{id}/edits, GET /edits/{id}
through the TestClient on SQLite and PostgreSQL (the queue records; the worker's side has
its own tests: tests/backend/test_e2e_photos.py).

Pass criteria: a photo is stored upright as PNG in the new inversion job's folder and the
job is queued with validated params; every refused upload (not an image, truncated, a
pixel bomb, a GIF, over the size cap, bad params) answers 4xx with a message and leaves no
job, no file; inversions are per-token like jobs; an edit needs a finished job and a
finished inversion for the same generator, and the same pair is done once.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update

from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"


def _png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_rotated() -> bytes:
    """An 80x40 JPEG whose EXIF orientation tag says 'rotate 90° clockwise to view' (6)."""
    image = Image.new("RGB", (80, 40), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (one IDAT of compressed zeros)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="GIF")
    return buffer.getvalue()


def _invert(client: Any, data: bytes, params: dict[str, Any] | str | None = None, **kw: Any) -> Any:
    form = (
        {}
        if params is None
        else {"params": params if isinstance(params, str) else json.dumps(params)}
    )
    return client.post(
        f"{API}/inversions",
        data=form,
        files={"file": ("me.png", io.BytesIO(data), "image/png")},
        **kw,
    )


def _jobs(settings: Settings) -> list[Job]:
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(Job)))


def _files(settings: Settings) -> list[str]:
    found = []
    for folder in ("jobs", "uploads-incoming"):
        root = settings.data_dir / folder
        found += [str(p) for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    return found


def test_a_photo_becomes_a_queued_inversion(client: Any, settings: Settings, queue: Any) -> None:
    r = _invert(
        client, _jpeg_rotated(), {"generator": "random-64", "refine_steps": 7, "align": False}
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["kind"] == "invert" and body["status"] == "queued" and body["total_steps"] == 7
    assert r.headers["location"] == f"{API}/inversions/{body['id']}"
    assert body["params"]["align"] is False and len(body["params"]["photo_sha256"]) == 64
    assert body["aligned_url"] is None and body["latent_url"] is None
    assert queue.sent == [body["id"]] and queue.lanes[body["id"]] == "fast"

    photo = client.get(body["photo_url"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    stored = Image.open(io.BytesIO(photo.content))
    assert stored.size == (40, 80)  # the EXIF orientation was applied: upright
    assert stored.mode == "RGB" and not stored.info.get("exif")

    assert client.get(f"{API}/inversions/{body['id']}").json()["id"] == body["id"]
    listed = client.get(f"{API}/inversions").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == body["id"]
    # Not an adaptation: GET /jobs lists adaptations unless asked for another kind.
    assert client.get(f"{API}/jobs").json()["count"] == 0
    assert client.get(f"{API}/jobs", params={"kind": "invert"}).json()["count"] == 1
    # Before it succeeded its pictures are a conflict, not a missing file.
    assert client.get(f"{API}/inversions/{body['id']}/aligned.png").status_code == 409


def test_defaults_when_no_params_are_sent(client: Any) -> None:
    r = _invert(client, _png())
    assert r.status_code == 202, r.text
    params = r.json()["params"]
    assert params["generator"] == "ffhq-1024" and params["encoder"] == "auto"
    assert params["align"] is True and params["refine_steps"] == 100


@pytest.mark.parametrize(
    ("data", "params", "status", "field", "says"),
    [
        (b"definitely not an image", None, 422, "file", "not an image"),
        (_png()[:-40], None, 422, "file", "truncated"),
        (_png_bomb(20000, 20000), None, 422, "file", "pixels"),
        (_gif(), None, 422, "file", "not an image"),
        (_png(8, 8), None, 422, "file", "at least 32"),
        (_png(16, 16), None, 422, "file", "16x16 pixels; at least 32 on each side"),
        (_png(), "{not json", 422, "params", "not valid JSON"),
        (_png(), "[1, 2]", 422, "params", "JSON object"),
        (_png(), {"refine_steps": -1}, 422, "refine_steps", "must be 0..2000 (got -1)"),
        (_png(), {"refine_steps": 1.5}, 422, "refine_steps", "whole number"),
        (_png(), {"align": "yes"}, 422, "align", "true or false"),
        (_png(), {"generator": "no-such-gen"}, 422, "generator", "no-such-gen"),
        (_png(), {"encoder": "/etc/passwd"}, 422, "encoder", "neither auto, none nor"),
        (_png(), {"encoder": "e4e-mystery"}, 422, "encoder", "neither auto, none nor"),
        (_png(), {"photo_sha256": "0" * 64}, 422, "photo_sha256", "set by the server"),
        (_png(), {"colour": "red"}, 422, "colour", "not a parameter"),
    ],
)
def test_refused_uploads_leave_nothing(
    client: Any,
    settings: Settings,
    queue: Any,
    data: bytes,
    params: Any,
    status: int,
    field: str,
    says: str,
) -> None:
    r = _invert(client, data, params)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"][-1] == field, detail
    assert says in detail[0]["msg"], detail
    assert _jobs(settings) == [] and queue.sent == []
    assert _files(settings) == []


def test_too_large_and_not_multipart(client: Any, settings: Settings) -> None:
    small = settings.model_copy(update={"max_photo_mb": 0.001})  # ~1 KiB
    client.app.state.settings = small
    try:
        r = _invert(client, _png(200, 200, (1, 2, 3)) + b"\0" * 4096)
        assert r.status_code == 413 and "NADA_MAX_PHOTO_MB" in r.json()["detail"]
    finally:
        client.app.state.settings = settings
    r = client.post(f"{API}/inversions", json={"generator": "random-64"})
    assert r.status_code == 415 and "multipart" in r.json()["detail"]
    r = client.post(f"{API}/inversions", data={"params": "{}"}, files={})
    assert r.status_code in (415, 422)
    assert _jobs(settings) == [] and _files(settings) == []


def _finish(settings: Settings, job_id: str, files: dict[str, bytes] | None = None) -> None:
    with session_scope(settings.db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.succeeded))
    root = settings.jobs_dir / job_id
    root.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {}).items():
        (root / name).write_bytes(data)


def _adapt(client: Any, generator: str = "random-64") -> str:
    r = client.post(
        f"{API}/jobs",
        json={"source_text": "photo", "target_text": "sketch", "generator": generator},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_an_edit_is_done_once_per_photo_and_job(
    client: Any, settings: Settings, queue: Any
) -> None:
    job = _adapt(client)
    inversion = _invert(client, _png(), {"generator": "random-64"}).json()["id"]

    early = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert early.status_code == 409 and "finished job" in early.json()["detail"]
    _finish(settings, job, {"adapted.pt": b"x"})
    early = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert early.status_code == 409 and "finished inversion" in early.json()["detail"]
    _finish(settings, inversion, {"latent.pt": b"x", "aligned.png": _png()})

    first = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert first.status_code == 202, first.text
    edit = first.json()
    assert edit["kind"] == "edit" and edit["job_id"] == job and edit["inversion_id"] == inversion
    assert edit["image_url"] is None and queue.sent[-1] == edit["id"]
    assert queue.lanes[edit["id"]] == "fast" and queue.lanes[job] == "train"
    again = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert again.status_code == 200 and again.json()["id"] == edit["id"]
    assert client.get(f"{API}/edits/{edit['id']}").json()["status"] == "queued"
    assert client.get(f"{API}/edits/{edit['id']}/image.png").status_code == 409

    _finish(settings, edit["id"], {"edit.png": _png(32, 32)})
    done = client.get(f"{API}/edits/{edit['id']}").json()
    assert done["image_url"] == f"{API}/edits/{edit['id']}/image.png"
    assert client.get(done["image_url"]).content == _png(32, 32)
    inv = client.get(f"{API}/inversions/{inversion}").json()
    assert client.get(inv["aligned_url"]).status_code == 200
    # a failed edit does not count: asking again makes a new one
    with session_scope(settings.db_url) as session:
        session.execute(update(Job).where(Job.id == edit["id"]).values(status=JobStatus.failed))
    retry = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert retry.status_code == 202 and retry.json()["id"] != edit["id"]


def test_an_edit_needs_the_same_generator_and_real_ids(client: Any, settings: Settings) -> None:
    job = _adapt(client, "random-32")
    inversion = _invert(client, _png(), {"generator": "random-64"}).json()["id"]
    _finish(settings, job)
    _finish(settings, inversion)
    r = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    assert r.status_code == 409 and "random-64" in r.json()["detail"]
    assert client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": "x"}).status_code == 422
    r = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": job})  # not an inversion
    assert r.status_code == 404
    r = client.post(f"{API}/jobs/{inversion}/edits", json={"inversion_id": inversion})
    assert r.status_code == 404  # an inversion is not an adaptation job
    assert client.get(f"{API}/inversions/{job}").status_code == 404
    assert client.get(f"{API}/edits/{inversion}").status_code == 404


def test_inversions_are_per_token(settings: Settings, queue: Any) -> None:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    tokened = Settings(
        **{**settings.model_dump(), "api_tokens": "alice:aaaaaaaaaaaaaaaa,bob:bbbbbbbbbbbbbbbb"}
    )
    with TestClient(create_app(tokened, queue=queue)) as client:
        alice = {"Authorization": "Bearer aaaaaaaaaaaaaaaa"}
        bob = {"Authorization": "Bearer bbbbbbbbbbbbbbbb"}
        assert _invert(client, _png()).status_code == 401
        mine = _invert(client, _png(), {"generator": "random-64"}, headers=alice).json()["id"]
        assert client.get(f"{API}/inversions/{mine}", headers=alice).status_code == 200
        assert client.get(f"{API}/inversions/{mine}", headers=bob).status_code == 404
        assert client.get(f"{API}/inversions/{mine}/photo.png", headers=bob).status_code == 404
        assert client.get(f"{API}/inversions", headers=bob).json()["count"] == 0


def test_deleting_an_inversion_removes_its_photo(client: Any, settings: Settings) -> None:
    inversion = _invert(client, _png(), {"generator": "random-64"}).json()["id"]
    root: Path = settings.jobs_dir / inversion
    assert (root / "photo.png").is_file()
    assert client.delete(f"{API}/jobs/{inversion}").status_code == 409  # still queued
    client.post(f"{API}/jobs/{inversion}/cancel")
    assert client.delete(f"{API}/jobs/{inversion}").status_code == 204
    assert not root.exists()


def test_the_params_and_limits_are_published(client: Any, settings: Settings) -> None:
    from nada.photo_params import InvertParams

    body = client.get(f"{API}/inversions/params").json()
    assert body["max_photo_mb"] == settings.max_photo_mb
    assert body["max_photo_pixels"] == settings.max_photo_pixels
    fields = {f["name"]: f for f in body["fields"]}
    assert "photo_sha256" not in fields  # the server's own
    defaults = InvertParams()
    for name, field in fields.items():
        assert field["default"] == getattr(defaults, name) and field["help"], name
    assert (fields["refine_steps"]["min"], fields["refine_steps"]["max"]) == (0, 2000)
