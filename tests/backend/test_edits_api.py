"""Latent edits through the API (TestClient, SQLite and PostgreSQL; the queue records, the
engines have their own tests: tests/worker/test_latent_edits.py): GET /directions, uploads
of one's own direction checked in the limited child, and the `edits` of renders and photo
edits, refused with 422 naming the field (unknown names, paths, another base, strengths
out of range, too many), canonical in the cache key."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import torch
from sqlalchemy import select, update

from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"


def _finish(settings: Settings, job_id: str) -> None:
    with session_scope(settings.db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.succeeded))


def _kind(settings: Settings, kind: str) -> list[Job]:
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(Job).where(Job.kind == kind)))


def _tensor(value: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _upload(client: Any, name: str, base: str, data: bytes) -> Any:
    return client.post(f"{API}/directions", data={"name": name, "base": base},
                       files={"file": ("d.pt", io.BytesIO(data), "application/octet-stream")})  # fmt: skip


def _fields(r: Any) -> list[str]:
    return [e["loc"][1] for e in r.json()["detail"] if len(e["loc"]) > 1]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the child, once
def test_directions_are_listed_and_uploads_are_checked_in_the_child(
    client: Any, settings: Settings
) -> None:
    listed = client.get(f"{API}/directions").json()
    names = {d["name"]: d for d in listed["data"]}
    assert set(names) == {"age", "smile", "pose", "gender", "hair_length", "beard"}
    assert {d["base"] for d in names.values()} == {"ffhq-1024"}
    assert names["pose"]["availability"] == "manual" and names["pose"]["url"] is None
    assert listed["max_edits"] == 6 and listed["max_strength"] == 10

    # One's own direction for random-64 (10 W+ entries), checked in the limited child. (A
    # tensor of another shape is refused by the same check: tests/worker/test_latent_edits.py.)
    assert _upload(client, "mine", "random-64", _tensor(torch.ones(1, 512))).status_code == 201
    stored = settings.data_dir / "directions"
    assert torch.equal(torch.load(stored / "mine.pt", weights_only=True), torch.ones(512))
    assert json.loads((stored / "mine.json").read_text())["base"] == "random-64"
    r = _upload(client, "junk", "random-64", b"not a tensor")  # refused before any child
    assert r.status_code == 422 and _fields(r) == ["file"]
    # Streamed under the direction's own cap (4 MiB), not the 64 KiB of a JSON body.
    r = _upload(client, "huge", "random-64", b"x" * (5 << 20))
    assert r.status_code == 413 and "direction" in r.text and "JSON" not in r.text, r.text
    r = _upload(client, "padded", "random-64", b"x" * (100 << 10))  # over 64 KiB, under 4 MiB
    assert r.status_code == 422 and _fields(r) == ["file"]
    assert _upload(client, "mine", "random-64", _tensor(torch.ones(512))).status_code == 409
    r = _upload(client, "age", "random-64", _tensor(torch.ones(512)))
    assert r.status_code == 422 and _fields(r) == ["name"]
    r = _upload(client, "other", "nosuch-gen", _tensor(torch.ones(512)))
    assert r.status_code == 422 and _fields(r) == ["base"]
    mine = next(d for d in client.get(f"{API}/directions").json()["data"] if d["name"] == "mine")
    assert mine["base"] == "random-64" and mine["source"] == "upload"
    assert sorted(p.name for p in stored.iterdir()) == ["mine.json", "mine.pt"]


def _stored(settings: Settings, name: str, base: str) -> None:
    """An upload as POST /directions leaves it (jobs/directions.py's layout), without the
    child's seconds: the check itself is tested above."""
    folder = settings.data_dir / "directions"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(torch.ones(512), folder / f"{name}.pt")
    meta = {"name": name, "base": base, "shape": [512], "sha256": "0" * 64}
    (folder / f"{name}.json").write_text(json.dumps(meta))


def test_edits_name_directions_of_the_jobs_base_or_are_refused(
    client: Any, settings: Settings
) -> None:
    _stored(settings, "mine", "random-64")
    job = client.post(f"{API}/jobs", json={"source_text": "photo", "target_text": "sketch",
                                           "generator": "random-64"}).json()["id"]  # fmt: skip
    _finish(settings, job)
    refused = [
        ({"edits": "age=2"}, "edits", "W space of 'ffhq-1024'"),
        ({"edits": "nosuch=1"}, "edits", "unknown edit direction 'nosuch'"),
        ({"edits": "/etc/passwd=1"}, "edits", "unknown edit direction"),
        ({"edits": "mine=11"}, "edits", "-10..10"),
        ({"edits": "mine"}, "edits", "NAME=STRENGTH"),
        ({"edits": ",".join(f"d{i}=1" for i in range(7))}, "edits", "0..6 edits"),
        ({"mode": "video", "edit_sweep": "age=-1:1"}, "edit_sweep", "W space"),
        ({"mode": "video", "edit_sweep": "mine=1"}, "edit_sweep", "NAME=START:STOP"),
    ]
    for body, field, says in refused:
        r = client.post(f"{API}/jobs/{job}/renders", json=body)
        assert r.status_code == 422 and field in _fields(r) and says in r.text, (body, r.text)
    assert _kind(settings, "render") == []

    first = client.post(f"{API}/jobs/{job}/renders", json={"seeds": [1], "edits": "mine=2.0"})
    assert first.status_code == 202, first.text
    assert first.json()["params"]["edits"] == "mine=2"
    again = client.post(f"{API}/jobs/{job}/renders", json={"seeds": [1], "edits": "mine=2"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    plain = client.post(f"{API}/jobs/{job}/renders", json={"seeds": [1]})
    assert plain.status_code == 202 and plain.json()["id"] != first.json()["id"]

    # A photo edit: the same rules, and the edits in its key and its view.
    inversion = client.post(
        f"{API}/inversions", data={"params": json.dumps({"generator": "random-64"})},
        files={"file": ("me.png", io.BytesIO(_png()), "image/png")},
    ).json()["id"]  # fmt: skip
    _finish(settings, inversion)
    r = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion, "edits": "age=1"})
    assert r.status_code == 422 and _fields(r) == ["edits"] and "W space" in r.text
    r = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion, "edits": "x=99"})
    assert r.status_code == 422 and _fields(r) == ["edits"]
    assert _kind(settings, "edit") == []
    plain = client.post(f"{API}/jobs/{job}/edits", json={"inversion_id": inversion})
    edited = client.post(f"{API}/jobs/{job}/edits",
                         json={"inversion_id": inversion, "edits": "mine=-1.50"})  # fmt: skip
    assert plain.status_code == edited.status_code == 202
    assert plain.json()["edits"] == "" and edited.json()["edits"] == "mine=-1.5"
    assert plain.json()["id"] != edited.json()["id"]
    again = client.post(
        f"{API}/jobs/{job}/edits", json={"inversion_id": inversion, "edits": "mine=-1.5"}
    )
    assert again.status_code == 200 and again.json()["id"] == edited.json()["id"]


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()
