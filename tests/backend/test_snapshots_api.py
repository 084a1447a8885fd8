"""GET /jobs/{id}/snapshots, a snapshot's download and POST .../continue with from_step,
on a job run by the worker's job function (the real engine on the tiny models of
test_continue_api.py)."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import torch

from jobs import store
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada.recommend import MIN_CONTENT, MIN_DIVERSITY
from tests.backend.test_continue_api import API, TINY, models, run  # noqa: F401 (fixture)
from tests.backend.test_events import read_sse

SNAPPY = dataclasses.replace(TINY, steps=3, snapshot_every=1, score_latents=2)


def test_snapshots_list_download_and_continue(
    client: Any,
    settings: Settings,
    queue: Any,
    models: Any,  # noqa: F811
) -> None:
    with session_scope(settings.db_url) as session:
        job_id = store.create_job(session, params=SNAPPY, owner="").id
    assert run(settings, job_id, models) == "succeeded"

    r = client.get(f"{API}/jobs/{job_id}/snapshots")
    assert r.status_code == 200, r.text
    body = r.json()
    snaps = body["snapshots"]
    assert [(s["step"], s["final"]) for s in snaps] == [(1, False), (2, False), (3, True)]
    assert snaps[0]["url"] == f"{API}/jobs/{job_id}/snapshots/1.pt"
    assert snaps[2]["url"] == f"{API}/jobs/{job_id}/checkpoint"
    assert all(s["size_bytes"] > 0 and "direction" in s["scores"] for s in snaps)
    rec = body["recommended"]
    assert (rec["min_content"], rec["min_diversity"]) == (MIN_CONTENT, MIN_DIVERSITY)
    assert rec["step"] in (None, 1, 2, 3) and rec["reason"]
    # Thresholds anyone passes: the best direction of the three.
    loose = client.get(
        f"{API}/jobs/{job_id}/snapshots", params={"min_content": -1, "min_diversity": 0}
    ).json()["recommended"]
    best = max(snaps, key=lambda s: (s["scores"]["direction"], -s["step"]))["step"]
    assert loose["step"] == best and loose["min_content"] == -1
    with client.stream("GET", f"{API}/jobs/{job_id}/events") as r:
        kept = [e["data"] for e in read_sse(r) if e["event"] == "snapshot"]
    assert [(e["step"], e["url"]) for e in kept] == [
        (1, f"{API}/jobs/{job_id}/snapshots/1.pt"),
        (2, f"{API}/jobs/{job_id}/snapshots/2.pt"),
    ]
    view = client.get(f"{API}/jobs/{job_id}").json()
    assert [s["step"] for s in view["snapshots"]] == [1, 2]
    assert view["recommended_step"] == rec["step"]
    r = client.get(f"{API}/jobs/{job_id}/snapshots", params={"min_content": 2})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "min_content"]

    r = client.get(f"{API}/jobs/{job_id}/snapshots/2.pt")
    assert r.status_code == 200
    assert 'step2.pt"' in r.headers["content-disposition"]
    assert torch.load(io.BytesIO(r.content), weights_only=True)["resume"]["step"] == 2
    assert client.get(f"{API}/jobs/{job_id}/snapshots/3.pt").status_code == 404

    r = client.post(f"{API}/jobs/{job_id}/continue", json={"steps": 1, "from_step": 5})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "from_step"
    r = client.post(f"{API}/jobs/{job_id}/continue", json={"steps": 1, "from_step": 1})
    assert r.status_code == 202, r.text
    child = r.json()
    assert child["total_steps"] == 2 and child["params"]["steps"] == 2
    assert run(settings, child["id"], models) == "succeeded"
    done = client.get(f"{API}/jobs/{child['id']}").json()
    assert done["step"] == 2 and [s["step"] for s in done["samples"]] == [1, 2]
