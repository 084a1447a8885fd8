"""POST /api/v1/jobs/{id}/renders, GET /renders/{id}[/render.png|mp4|gif], GET
/renders/params through the TestClient on SQLite and PostgreSQL (the queue records; a real
worker draws them in tests/backend/test_e2e_jobs.py).

Pass criteria: a render needs a finished adaptation of this token and parameters in range;
every refusal answers 4xx naming the field or the reason and creates no job; the same render
asked again answers 200 with the first one (a failed one does not count); renders go to the
fast lane; files are served with their media types once the render succeeded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"


def _jobs(settings: Settings, kind: str = "render") -> list[Job]:
    with session_scope(settings.db_url) as session:
        return list(session.scalars(select(Job).where(Job.kind == kind)))


def _finish(settings: Settings, job_id: str, files: dict[str, bytes] | None = None) -> None:
    with session_scope(settings.db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.succeeded))
    root = settings.jobs_dir / job_id
    root.mkdir(parents=True, exist_ok=True)
    for name, data in (files or {}).items():
        (root / name).write_bytes(data)


def _adapt(client: Any) -> str:
    r = client.post(
        f"{API}/jobs",
        json={"source_text": "photo", "target_text": "sketch", "generator": "random-64"},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


REFUSED = [
    ({"seeds": []}, "seeds"),
    ({"seeds": list(range(17))}, "seeds"),
    ({"seeds": [-1]}, "seeds"),
    ({"seeds": [2**31]}, "seeds"),
    ({"seeds": "1,2"}, "seeds"),
    ({"truncation": 1.6}, "truncation"),
    ({"mode": "zoom"}, "mode"),
    ({"mode": "mix", "crossover": 0}, "crossover"),
    ({"mode": "mix", "crossover": 10}, "crossover"),  # random-64 has 10 W+ entries
    ({"mode": "video", "keyframes": [1]}, "keyframes"),
    ({"mode": "video", "frames": 121}, "frames"),
    ({"mode": "video", "fps": 0}, "fps"),
    ({"mode": "video", "format": "webm"}, "format"),
    ({"max_tile": 8}, "max_tile"),
    ({"job_id": "a" * 32}, "job_id"),  # the server's own
    ({"generator": "ffhq-1024"}, "generator"),
]


def test_bad_params_are_named_and_create_nothing(client: Any, settings: Settings) -> None:
    job = _adapt(client)
    _finish(settings, job, {"adapted.pt": b"x"})
    for body, field in REFUSED:
        r = client.post(f"{API}/jobs/{job}/renders", json=body)
        assert r.status_code == 422, (body, r.text)
        fields = [e["loc"][1] for e in r.json()["detail"] if len(e["loc"]) > 1]
        assert field in fields, (body, r.json())
    assert _jobs(settings) == []


def test_a_render_needs_a_finished_job_of_this_token(client: Any, settings: Settings) -> None:
    job = _adapt(client)
    r = client.post(f"{API}/jobs/{job}/renders", json={"seeds": [1]})
    assert r.status_code == 409 and "finished job" in r.json()["detail"]
    assert client.post(f"{API}/jobs/{'0' * 32}/renders", json={}).status_code == 404
    assert client.post(f"{API}/jobs/nope/renders", json={}).status_code == 404
    assert _jobs(settings) == []
    _finish(settings, job, {"adapted.pt": b"x"})
    render = client.post(f"{API}/jobs/{job}/renders", json={}).json()["id"]
    # a render is not an adaptation: nothing is rendered from it
    assert client.post(f"{API}/jobs/{render}/renders", json={}).status_code == 404
    assert client.get(f"{API}/renders/{job}").status_code == 404  # an adaptation, not a render


def test_a_render_is_queued_once_per_parameters(
    client: Any, settings: Settings, queue: Any
) -> None:
    job = _adapt(client)
    _finish(settings, job, {"adapted.pt": b"x"})
    body = {"mode": "seeds", "seeds": [3, 1, 4], "truncation": 0.5}
    first = client.post(f"{API}/jobs/{job}/renders", json=body)
    assert first.status_code == 202, first.text
    render = first.json()
    assert first.headers["location"] == f"{API}/renders/{render['id']}"
    assert render["kind"] == "render" and render["job_id"] == job and render["mode"] == "seeds"
    assert render["params"]["generator"] == "random-64" and render["total_steps"] == 3
    assert render["image_url"] is None and render["video_url"] is None
    assert queue.sent[-1] == render["id"] and queue.lanes[render["id"]] == "fast"

    # The same picture (fields of other modes do not matter): the first render, 200.
    again = client.post(f"{API}/jobs/{job}/renders", json={**body, "keyframes": [7, 8]})
    assert again.status_code == 200 and again.json()["id"] == render["id"]
    other = client.post(f"{API}/jobs/{job}/renders", json={**body, "truncation": 0.6})
    assert other.status_code == 202 and other.json()["id"] != render["id"]
    listed = client.get(f"{API}/jobs", params={"kind": "render"}).json()
    assert listed["count"] == 2

    assert client.get(f"{API}/renders/{render['id']}/render.png").status_code == 409
    with session_scope(settings.db_url) as session:  # a failed render does not count
        session.execute(update(Job).where(Job.id == render["id"]).values(status=JobStatus.failed))
    retry = client.post(f"{API}/jobs/{job}/renders", json=body)
    assert retry.status_code == 202 and retry.json()["id"] not in (render["id"], other.json()["id"])


def test_a_long_video_render_goes_to_the_train_lane(
    client: Any, settings: Settings, queue: Any
) -> None:
    """Over FAST_RENDER_PIXELS (pictures x the generator's pixels) a render takes minutes:
    the train lane, so that it holds no fast-lane worker; a short one stays fast."""
    from jobs.kinds import FAST_RENDER_PIXELS, render_pixels
    from nada.render_params import RenderParams

    r = client.post(
        f"{API}/jobs",
        json={"source_text": "photo", "target_text": "sketch", "generator": "random-1024"},
    )
    job = r.json()["id"]
    _finish(settings, job, {"adapted.pt": b"x"})
    long = {"mode": "video", "keyframes": [0, 1, 2, 3, 4], "frames": 120}  # 481 frames
    short = {"mode": "video", "keyframes": [0, 1], "frames": 24}  # 25 frames
    sized = RenderParams(generator="random-1024", **long)  # type: ignore[arg-type]
    assert render_pixels(sized) == 481 * 1024**2 > FAST_RENDER_PIXELS
    first = client.post(f"{API}/jobs/{job}/renders", json=long)
    assert first.status_code == 202, first.text
    assert queue.lanes[first.json()["id"]] == "train"
    second = client.post(f"{API}/jobs/{job}/renders", json=short)
    assert queue.lanes[second.json()["id"]] == "fast"


def test_a_finished_video_serves_its_files(client: Any, settings: Settings) -> None:
    job = _adapt(client)
    _finish(settings, job, {"adapted.pt": b"x"})
    r = client.post(f"{API}/jobs/{job}/renders", json={"mode": "video", "format": "gif"})
    video = r.json()
    assert video["total_steps"] == 2 * 24 + 1  # the default three keyframes
    _finish(settings, video["id"], {"render.png": b"\x89PNG-poster", "render.gif": b"GIF89a-x"})
    done = client.get(f"{API}/renders/{video['id']}").json()
    assert done["image_url"] == f"{API}/renders/{video['id']}/render.png"
    assert done["video_url"] == f"{API}/renders/{video['id']}/render.gif"
    gif = client.get(done["video_url"])
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    assert gif.content == b"GIF89a-x"
    png = client.get(done["image_url"])
    assert png.headers["content-type"] == "image/png" and png.content == b"\x89PNG-poster"
    assert client.get(f"{API}/renders/{video['id']}/render.mp4").status_code == 404


def test_the_params_are_published(client: Any) -> None:
    from nada.render_params import RenderParams

    body = client.get(f"{API}/renders/params").json()
    fields = {f["name"]: f for f in body["fields"]}
    assert "job_id" not in fields and "generator" not in fields  # the server's own
    defaults = RenderParams().to_dict()
    for name, field in fields.items():
        assert field["default"] == defaults[name] and field["help"], name
    assert (fields["seeds"]["min"], fields["seeds"]["max"]) == (1, 16)
    assert fields["format"]["choices"] == ["mp4", "gif"]
    assert body["max_seed"] == 2**31 - 1
    from typing import get_args

    from backend.schemas.renders import Format, Mode
    from nada.render_params import MODES, VIDEO_FORMATS

    assert (get_args(Mode), get_args(Format)) == (MODES, VIDEO_FORMATS)  # the request's body
