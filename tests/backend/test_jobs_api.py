"""The /api/v1/jobs routes through FastAPI's TestClient, on SQLite and PostgreSQL.

Workers are played by jobs.store' worker-side functions; the broker is a list."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import leases, storage, store
from jobs.db.models import JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada import rundir
from nada.params import RANGES, AdaptParams

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}


def _submit(client, **overrides) -> dict:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json={**SMALL, **overrides})
    assert r.status_code == 202, r.text
    return r.json()


def _count(settings: Settings) -> int:
    with session_scope(settings.db_url) as s:
        return store.list_jobs(s)[1]


def _run_to_end(settings: Settings, job_id: str, status: JobStatus = JobStatus.succeeded) -> None:
    """Play a worker: claim, one step, one sample file, a checkpoint file, finish."""
    with session_scope(settings.db_url) as s:
        claim = leases.claim_job(s, job_id=job_id, worker_id="t", lease_seconds=30, max_attempts=3)
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.sample_path(root, 2), b"\x89PNG fake")
    rundir.write_bytes(rundir.adapted_path(root), b"weights")
    with session_scope(settings.db_url) as s:
        kw = dict(job_id=job_id, attempt=claim.attempt)
        leases.record_progress(s, **kw, stage="training", step=2, total_steps=4, lease_seconds=30)
        leases.record_sample(s, **kw, step=2)
        error = (
            {}
            if status != JobStatus.failed
            else {"error_code": "engine_error", "error_message": "boom"}
        )
        leases.finish_job(s, **kw, status=status, **error)


def test_submit_returns_202_location_and_engine_defaults(client, queue) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json={"source_text": "photo", "target_text": "sketch"})
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"{API}/jobs/{job['id']}"
    defaults = AdaptParams("photo", "sketch").to_dict()
    assert job["params"] == defaults
    assert (job["status"], job["step"], job["total_steps"]) == ("queued", 0, defaults["steps"])
    assert job["queue_position"] == 1 and job["checkpoint_url"] is None and job["error"] is None
    assert queue.sent == [job["id"]]  # dispatched by name, after the commit
    assert client.get(r.headers["location"]).json()["id"] == job["id"]


def test_submit_accepts_every_engine_parameter(client) -> None:  # type: ignore[no-untyped-def]
    body = {
        **SMALL,
        "clip_models": [
            {"name": "ViT-B-32:random", "weight": 1},
            {"name": "ViT-B/16", "weight": 0.5},
        ],
        "layers": 0,
        "selection": "gradient",
        "include_torgb": True,
        "probe_steps": 2,
        "batch_size": 1,
        "lr": 0.01,
        "sample_every": 2,
        "checkpoint_every": 2,
        "mixing": 0.9,
        "seed": 7,
    }
    params = _submit(client, **body)["params"]
    assert params["clip_models"] == [
        {"name": "ViT-B-32:random", "weight": 1.0},
        {"name": "ViT-B/16", "weight": 0.5},
    ]
    assert {k: params[k] for k in ("selection", "include_torgb", "seed", "mixing")} == {
        "selection": "gradient",
        "include_torgb": True,
        "seed": 7,
        "mixing": 0.9,
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"steps": 0}, "steps", "steps must be 1..5000 (got 0)"),
        ({"lr": 2.0}, "lr", f"lr must be {RANGES['lr'][0]}..1.0"),
        ({"mixing": -0.5}, "mixing", "mixing must be 0.0..1.0"),
        ({"steps": "many"}, "steps", "integer"),
        ({"batch_size": 1.5}, "batch_size", "integer"),
        ({"generator": "ffqh-1024"}, "generator", "unknown name 'ffqh-1024'; known: ffhq-1024"),
        ({"generator": "random-63"}, "generator", "power of two"),
        ({"clip_models": [{"name": "ViT-X-99"}]}, "clip_models", "known: ViT-B-32, ViT-B-16"),
        ({"clip_models": [{"name": "ViT-B-32:nope"}]}, "clip_models", "unknown weights 'nope'"),
        ({"clip_models": []}, "clip_models", "at least one"),
        ({"clip_models": [{"name": "ViT-B-32", "weight": 0}]}, "clip_models", "weight > 0"),
        ({"selection": "random"}, "selection", "'latent' or 'gradient'"),
        ({"target_text": "photo"}, "target_text", "must differ from source_text"),
        ({"target_text": "\uff30\uff28\uff2f\uff34\uff2f"}, "target_text", "must differ from"),
        ({"target_text": "pho\u200bto"}, "target_text", "must differ from source_text"),
        ({"generator": "random-0064"}, "generator", "name as 'random-64' (got 'random-0064')"),
        ({"source_text": "   "}, "source_text", "must not be empty"),
        ({"target_text": "x" * 301}, "target_text", "at most 300"),
        ({"target_text": None}, "target_text", "string"),
        ({"warp_speed": 9}, "warp_speed", "Extra inputs are not permitted"),
    ],
)
def test_invalid_submissions_are_422_naming_the_field(
    client, queue, settings, change, field, words
) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json={**SMALL, **change})
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(field in e["loc"] and words in e["msg"] for e in errors), errors
    assert _count(settings) == 0 and queue.sent == []  # nothing stored, nothing sent


def test_missing_texts_are_422(client, settings) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/jobs", json={})
    assert r.status_code == 422
    # No target at all (neither text nor images): named once, on the target text.
    assert {tuple(e["loc"]) for e in r.json()["detail"]} == {("body", "target_text")}
    assert (
        client.post(
            f"{API}/jobs", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert _count(settings) == 0


def test_list_is_newest_first_filtered_and_paginated(client, settings) -> None:  # type: ignore[no-untyped-def]
    ids = [_submit(client, seed=i)["id"] for i in range(5)]
    _run_to_end(settings, ids[0])
    page = client.get(f"{API}/jobs", params={"limit": 2}).json()
    assert page["count"] == 5 and [j["id"] for j in page["data"]] == ids[::-1][:2]
    page = client.get(f"{API}/jobs", params={"limit": 2, "offset": 4}).json()
    assert [j["id"] for j in page["data"]] == [ids[0]]
    queued = client.get(f"{API}/jobs", params={"status": "queued"}).json()
    assert queued["count"] == 4 and [j["queue_position"] for j in queued["data"]] == [4, 3, 2, 1]
    both = client.get(f"{API}/jobs?status=queued&status=succeeded").json()
    assert both["count"] == 5
    assert client.get(f"{API}/jobs", params={"status": "sleeping"}).status_code == 422
    assert client.get(f"{API}/jobs", params={"limit": 101}).status_code == 422


def test_unknown_job_is_404_everywhere(client) -> None:  # type: ignore[no-untyped-def]
    missing = "0" * 32
    for method, path in [
        ("get", f"/jobs/{missing}"),
        ("get", f"/jobs/{missing}/events"),
        ("post", f"/jobs/{missing}/cancel"),
        ("delete", f"/jobs/{missing}"),
        ("get", f"/jobs/{missing}/samples/2.png"),
        ("get", f"/jobs/{missing}/checkpoint"),
        ("get", "/jobs/../../etc"),
        ("delete", "/jobs/not-an-id"),
    ]:
        r = getattr(client, method)(API + path)
        assert r.status_code == 404, (method, path, r.text)
        assert "not found" in r.json()["detail"].lower()


def test_finished_job_has_samples_checkpoint_and_filename(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = _submit(client, source_text="a photo", target_text="Pencil Sketch!")["id"]
    assert client.get(f"{API}/jobs/{job_id}/checkpoint").status_code == 409
    _run_to_end(settings, job_id)
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["samples"] == [
        {"step": 2, "url": f"{API}/jobs/{job_id}/samples/2.png"}
    ]
    assert job["checkpoint_url"] == f"{API}/jobs/{job_id}/checkpoint"
    png = client.get(job["samples"][0]["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert client.get(f"{API}/jobs/{job_id}/samples/4.png").status_code == 404
    ckpt = client.get(job["checkpoint_url"])
    assert ckpt.status_code == 200 and ckpt.content == b"weights"
    assert (
        f'filename="nada-a-photo-to-pencil-sketch-{job_id[:8]}.pt"'
        in ckpt.headers["content-disposition"]
    )
    assert client.get(f"{API}/jobs/{job_id}/domain").status_code == 404  # a weights job
    assert job["domain_url"] is None
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.domain_path(root), b"vectors")  # what a modulation job adds
    domain = client.get(f"{API}/jobs/{job_id}/domain")
    assert domain.status_code == 200 and domain.content == b"vectors"
    assert f"pencil-sketch-{job_id[:8]}-domain.pt" in domain.headers["content-disposition"]


def test_a_modulation_job_links_its_domain_file(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = _submit(client, parametrization="modulation")["id"]
    assert client.get(f"{API}/jobs/{job_id}/domain").status_code == 409  # not finished
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.domain_path(root), b"vectors")
    _run_to_end(settings, job_id)
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["params"]["parametrization"] == "modulation"
    assert job["domain_url"] == f"{API}/jobs/{job_id}/domain"
    assert client.get(job["domain_url"]).content == b"vectors"
    bad = client.post(f"{API}/jobs", json={**SMALL, "parametrization": "vectors"})
    assert bad.status_code == 422 and "parametrization" in bad.text


def test_intermediate_checkpoints_are_listed_and_downloadable(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = _submit(client)["id"]
    assert client.get(f"{API}/jobs/{job_id}").json()["checkpoints"] == []
    root = storage.job_dir(settings.jobs_dir, job_id)
    rundir.write_bytes(rundir.intermediate_checkpoint_path(root, 2), b"state at 2")
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["checkpoints"] == [{"step": 2, "url": f"{API}/jobs/{job_id}/checkpoints/2.pt"}]
    listed = client.get(f"{API}/jobs").json()["data"][0]
    assert listed["id"] == job_id and listed["checkpoints"] == job["checkpoints"]
    got = client.get(job["checkpoints"][0]["url"])
    assert got.status_code == 200 and got.content == b"state at 2"
    assert "-step2.pt" in got.headers["content-disposition"]
    assert client.get(f"{API}/jobs/{job_id}/checkpoints/3.pt").status_code == 404
    assert client.get(f"{API}/jobs/{job_id}/checkpoints/-1.pt").status_code == 422


def test_failed_job_reports_its_error(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = _submit(client)["id"]
    _run_to_end(settings, job_id, JobStatus.failed)
    job = client.get(f"{API}/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"] == {
        "code": "engine_error",
        "message": "boom",
        "details": None,
    }
    assert job["checkpoint_url"] is None


def test_cancel_queued_running_and_finished(client, settings) -> None:  # type: ignore[no-untyped-def]
    running, queued = _submit(client)["id"], _submit(client)["id"]  # a message takes the oldest
    with session_scope(settings.db_url) as s:
        leases.claim_job(s, job_id=running, worker_id="t", lease_seconds=30, max_attempts=3)
    r = client.post(f"{API}/jobs/{queued}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled" and r.json()["finished_at"]
    r = client.post(f"{API}/jobs/{running}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["cancel_requested"]
    r = client.post(f"{API}/jobs/{queued}/cancel")
    assert r.status_code == 409 and "only queued and running" in r.json()["detail"]


def test_delete_removes_finished_job_and_files(client, settings) -> None:  # type: ignore[no-untyped-def]
    job_id = _submit(client)["id"]
    r = client.delete(f"{API}/jobs/{job_id}")
    assert r.status_code == 409 and "cancel it" in r.json()["detail"]
    _run_to_end(settings, job_id)
    root = storage.job_dir(settings.jobs_dir, job_id)
    assert root.is_dir()
    assert client.delete(f"{API}/jobs/{job_id}").status_code == 204
    assert not root.exists()
    assert client.get(f"{API}/jobs/{job_id}").status_code == 404
    assert client.delete(f"{API}/jobs/{job_id}").status_code == 404


def test_broker_down_still_accepts_and_redispatches_later(client, queue, settings) -> None:  # type: ignore[no-untyped-def]
    queue.refuse = True
    job_id = _submit(client)["id"]
    assert client.get(f"{API}/healthz").json() == {
        "status": "degraded",
        "database": "ok",
        "broker": "unavailable",
        "version": "0.1.0",
        "retention": {"resumable_hours": None, "results_hours": None, "disk_quota_mb": None},
    }
    queue.refuse = False
    from jobs.queue import sweep

    settings.reap_interval = 0.1  # dispatch grace = max(2 * 0.1, 5) s
    with session_scope(settings.db_url) as s:
        from sqlalchemy import update

        from jobs.db.models import Job

        s.execute(update(Job).values(queued_at=store.utcnow().replace(year=2000)))
    assert sweep(settings, queue) == [job_id] and queue.sent == [job_id]
    assert sweep(settings, queue) == []  # now marked dispatched


def test_catalog_routes(client) -> None:  # type: ignore[no-untyped-def]
    gens = client.get(f"{API}/generators").json()
    assert gens["count"] == len(gens["data"]) and "ffhq-1024" in [g["name"] for g in gens["data"]]
    assert 64 in gens["random_sizes"]
    clips = client.get(f"{API}/clip-models").json()
    names = [c["name"] for c in clips["data"]]
    assert "ViT-B-32:openai" in names and "ViT-B-32:random" in names
    assert names[-1] == "nada-tiny:random"  # the offline first job's CLIP is offered too
    assert client.get(f"{API}/healthz").json()["status"] == "ok"


def test_openapi_documents_ranges_from_adapt_params(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()["components"]["schemas"]["JobCreate"]
    assert "required" not in schema  # prompts may be empty when target images are given
    for name, (lo, hi) in RANGES.items():
        prop = schema["properties"][name]
        assert (prop.get("minimum"), prop.get("maximum")) == (lo, hi), name
        assert prop["default"] == getattr(AdaptParams("a", "b"), name)


def test_static_page_is_served_at_root(settings, queue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from backend.main import create_app

    page = tmp_path / "page"
    page.mkdir()
    (page / "index.html").write_text("<title>nada</title>")
    settings.frontend_dir = page
    with TestClient(create_app(settings, queue=queue)) as client:
        assert "<title>nada</title>" in client.get("/").text
        assert client.get(f"{API}/healthz").status_code == 200
