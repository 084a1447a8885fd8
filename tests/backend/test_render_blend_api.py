"""POST /api/v1/jobs/{id}/renders with `strength`, `blend` and mode 'domains' (the queue
records; tests/worker/test_render_strength.py draws them).

Pass criteria: strengths out of range, too many blended jobs, and blended jobs that are not
this token's finished adaptations on the same base are refused with 422 naming `blend` (or
the field) and create nothing; the cache key tells strengths and blends apart; a domain
video counts its frames and serves a video.
"""

from __future__ import annotations

from typing import Any

from jobs.settings import Settings
from nada.render_params import MAX_BLEND, MAX_DOMAIN_STRENGTH
from tests.backend.test_renders_api import API, _finish, _jobs


def _adapt(client: Any, generator: str = "random-64") -> str:
    body = {"source_text": "photo", "target_text": "sketch", "generator": generator}
    r = client.post(f"{API}/jobs", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _finished(client: Any, settings: Settings, generator: str = "random-64") -> str:
    job = _adapt(client, generator)
    _finish(settings, job, {"adapted.pt": b"x"})
    return job


def _fields(r: Any) -> list[Any]:
    return [e["loc"][1] for e in r.json()["detail"] if len(e["loc"]) > 1]


def test_bad_strengths_and_blends_are_named(client: Any, settings: Settings) -> None:
    job, other = _finished(client, settings), _finished(client, settings)
    elsewhere = _finished(client, settings, "random-32")
    running = _adapt(client)
    one = [{"job_id": other}]
    refused = [
        ({"strength": MAX_DOMAIN_STRENGTH + 0.1}, "strength", "strength"),
        ({"strength": -0.1}, "strength", "strength"),
        ({"strength_fine": 1.5}, "strength_fine", "strength_fine"),
        ({"blend": [{"job_id": other, "strength": 1.6}]}, "blend", "less than or equal"),
        ({"blend": [{"job_id": "nope"}]}, "blend", "pattern"),
        ({"blend": [{"job_id": other, "alpha": 1}]}, "blend", "alpha"),
        ({"blend": one * 2}, "blend", "twice"),
        ({"blend": [{"job_id": f"{i:032x}"} for i in range(MAX_BLEND + 1)]}, "blend", "0..3"),
        ({"blend": [{"job_id": "0" * 32}]}, "blend", "no such adaptation"),
        ({"blend": [{"job_id": job}]}, "blend", "itself"),
        ({"blend": [{"job_id": running}]}, "blend", "finished jobs"),
        ({"blend": [{"job_id": elsewhere}]}, "blend", "same base generator"),
    ]
    for body, field, words in refused:
        r = client.post(f"{API}/jobs/{job}/renders", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in _fields(r) and words in r.text, (body, r.json())
    assert _jobs(settings) == []


def test_strength_and_blend_are_part_of_the_cache_key(
    client: Any, settings: Settings, queue: Any
) -> None:
    job, other = _finished(client, settings), _finished(client, settings)
    url = f"{API}/jobs/{job}/renders"
    plain = client.post(url, json={"seeds": [1, 2]}).json()
    full = client.post(url, json={"seeds": [1, 2], "strength": 1.0})
    assert full.status_code == 200 and full.json()["id"] == plain["id"]  # 1 is the default
    half = client.post(url, json={"seeds": [1, 2], "strength": 0.5})
    assert half.status_code == 202 and half.json()["id"] != plain["id"]
    body = {"seeds": [1, 2], "strength": 0.5, "blend": [{"job_id": other, "strength": 0.7}]}
    blended = client.post(url, json=body)
    assert blended.status_code == 202, blended.text
    render = blended.json()
    assert render["params"]["blend"] == [{"job_id": other, "strength": 0.7}]
    assert queue.lanes[render["id"]] == "fast"
    again = client.post(url, json=body)
    assert again.status_code == 200 and again.json()["id"] == render["id"]
    more = {**body, "blend": [{"job_id": other, "strength": 0.8}]}
    assert client.post(url, json=more).json()["id"] != render["id"]


def test_a_domain_video_counts_its_frames(client: Any, settings: Settings) -> None:
    job, other = _finished(client, settings), _finished(client, settings)
    body = {"mode": "domains", "domain_seeds": [3, 4], "frames": 10, "format": "gif",
            "blend": [{"job_id": other}]}  # fmt: skip
    r = client.post(f"{API}/jobs/{job}/renders", json=body)
    assert r.status_code == 202, r.text
    video = r.json()
    assert video["mode"] == "domains"
    frames = (3 - 1) * 10 + 1  # the base, this job, the blend job
    assert video["total_steps"] == frames * 2  # a step is a picture: two seeds a frame
    _finish(settings, video["id"], {"render.png": b"\x89PNG-poster", "render.gif": b"GIF89a-x"})
    done = client.get(f"{API}/renders/{video['id']}").json()
    assert done["video_url"] == f"{API}/renders/{video['id']}/render.gif"
    assert client.get(done["video_url"]).content == b"GIF89a-x"
