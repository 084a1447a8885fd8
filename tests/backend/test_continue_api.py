"""POST /jobs/{id}/continue on SQLite and PostgreSQL: refusals create nothing; a
continuation run by the worker's job function (worker.attempts.run_job, the real engine on an
8-px generator and the random 'nada-tiny' CLIP) trains on from its parent and links to it;
continuing again makes a chain, and a deleted parent breaks no child."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.main import create_app
from jobs import storage, store
from jobs.db.models import Job
from jobs.db.session import session_scope
from jobs.retention import disk_bytes
from jobs.settings import Settings
from nada import rundir
from nada.params import AdaptParams, ClipSpec

API = "/api/v1"
ALICE, BOB = "alice-secret-token-0001", "bob-secret-token-00002"
TINY = AdaptParams(
    source_text="photo",
    target_text="sketch",
    generator="random-8",
    clip_models=(ClipSpec("nada-tiny:random", 1.0),),
    steps=2,
    layers=1,
    batch_size=1,
    probe_batch=2,
    sample_every=1,
    n_samples=2,
    score_latents=0,
    seed=5,
)


@pytest.fixture(scope="module")
def models() -> Any:
    """The worker's model cache, and one torch thread: on shared CI cores, OpenMP hand-offs
    cost far more than these tiny models' work (tests/worker/conftest.py)."""
    import torch

    from worker.engine import ModelCache

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ModelCache()
    torch.set_num_threads(threads)


def add_job(settings: Settings, owner: str = "") -> str:
    with session_scope(settings.db_url) as session:
        return store.create_job(session, params=TINY, owner=owner).id


def run(settings: Settings, job_id: str, models: Any) -> str:
    from worker.attempts import run_job

    cpu = settings.model_copy(update={"device": "cpu"})
    return str(run_job(job_id, settings=cpu, worker_id="test-worker", models=models))


def finished_without_running(settings: Settings, owner: str = "") -> str:
    """A job marked succeeded, with a stand-in resume.pt: enough for the checks that come
    before anything reads the file (the refusals)."""
    job_id = add_job(settings, owner)
    with session_scope(settings.db_url) as session:
        session.get(Job, job_id).status = "succeeded"  # type: ignore[union-attr]
    root = storage.job_dir(settings.jobs_dir, job_id)
    root.mkdir(parents=True)
    rundir.write_bytes(root / rundir.RESUME, b"stand-in")
    return job_id


def job_count(settings: Settings) -> int:
    with session_scope(settings.db_url) as session:
        return session.query(Job).count()


def job_folders(settings: Settings) -> set[str]:
    jobs_dir = settings.jobs_dir
    return {p.name for p in jobs_dir.iterdir()} if jobs_dir.is_dir() else set()


def test_refusals_create_nothing(client: Any, settings: Settings, queue: Any) -> None:
    queued = add_job(settings)
    parent = finished_without_running(settings)
    before, folders, sent = job_count(settings), job_folders(settings), list(queue.sent)

    def refused(job_id: str, body: dict[str, Any], code: int) -> dict[str, Any]:
        r = client.post(f"{API}/jobs/{job_id}/continue", json=body)
        assert r.status_code == code, r.text
        return r.json()

    refused("0" * 32, {"steps": 10}, 404)
    refused("not-an-id", {"steps": 10}, 404)
    assert refused(queued, {"steps": 10}, 409)["detail"] == (
        f"job {queued} is still queued; only a job that succeeded can be continued"
    )
    failed = add_job(settings)
    with session_scope(settings.db_url) as session:
        session.get(Job, failed).status = "failed"  # type: ignore[union-attr]
    before = job_count(settings)
    assert refused(failed, {"steps": 10}, 409)["detail"] == (
        f"job {failed} failed; only a job that succeeded can be continued"
    )

    def field_of(body: dict[str, Any]) -> tuple[str, str]:
        detail = refused(parent, body, 422)["detail"][0]
        return detail["loc"][-1], detail["msg"]

    assert field_of({"steps": 0})[0] == "steps"
    assert field_of({})[0] == "steps"
    assert field_of({"steps": "5"})[0] == "steps"
    field, msg = field_of({"steps": 4999})  # 2 done + 4999 > 5000
    assert field == "steps" and "at most 4998 more" in msg
    field, msg = field_of({"steps": 1, "lr": 5.0})
    assert field == "lr" and "1e-06..1.0 (got 5.0)" in msg
    assert field_of({"steps": 1, "layers": -1})[0] == "layers"
    assert field_of({"steps": 1, "lambda_direction": 0.0, "lambda_global": 0.0})[0] == (
        "lambda_direction"
    )
    assert field_of({"steps": 1, "seed": 2})[0] == "seed"  # may not change: not a field here

    (storage.job_dir(settings.jobs_dir, parent) / rundir.RESUME).unlink()
    assert "no optimiser state" in refused(parent, {"steps": 10}, 409)["detail"]

    assert job_count(settings) == before and job_folders(settings) == folders
    assert queue.sent == sent


def test_continuing_twice_makes_a_chain(
    client: Any, settings: Settings, queue: Any, models: Any
) -> None:
    parent = add_job(settings)
    assert run(settings, parent, models) == "succeeded"
    assert client.get(f"{API}/jobs/{parent}").json()["children"] == []

    r = client.post(f"{API}/jobs/{parent}/continue", json={"steps": 1, "lr": 0.004})
    assert r.status_code == 202, r.text
    child = r.json()
    assert r.headers["location"] == f"{API}/jobs/{child['id']}"
    assert child["parent_id"] == parent and child["status"] == "queued"
    assert child["total_steps"] == 3 and child["params"]["steps"] == 3
    assert child["params"]["lr"] == 0.004
    assert {k: v for k, v in child["params"].items() if k not in ("steps", "lr")} == {
        k: v for k, v in TINY.to_dict().items() if k not in ("steps", "lr")
    }
    assert queue.sent == [child["id"]]
    assert run(settings, child["id"], models) == "succeeded"

    done = client.get(f"{API}/jobs/{child['id']}").json()
    assert done["status"] == "succeeded" and done["step"] == 3
    assert [s["step"] for s in done["samples"]] == [2, 3]  # its start, then its own step
    root = storage.job_dir(settings.jobs_dir, child["id"])
    assert (root / rundir.RESUME).is_file() and not (root / rundir.START).exists()
    with session_scope(settings.db_url) as session:
        measured = session.get(Job, child["id"]).disk_bytes  # type: ignore[union-attr]
    assert measured == disk_bytes(root) > 0  # the quota's measure, taken as it finished
    assert client.get(f"{API}/jobs/{parent}").json()["children"] == [child["id"]]

    # The child continues too: a chain of three, visible from every end.
    r = client.post(f"{API}/jobs/{child['id']}/continue", json={"steps": 2})
    assert r.status_code == 202, r.text
    grandchild = r.json()["id"]
    listed = {j["id"]: j for j in client.get(f"{API}/jobs").json()["data"]}
    assert (listed[parent]["parent_id"], listed[parent]["children"]) == (None, [child["id"]])
    assert (listed[child["id"]]["parent_id"], listed[child["id"]]["children"]) == (
        parent,
        [grandchild],
    )
    assert (listed[grandchild]["parent_id"], listed[grandchild]["children"]) == (child["id"], [])
    assert client.get(f"{API}/jobs/{child['id']}").json()["children"] == [grandchild]

    # Deleting a parent breaks no queued child: it has its own link to the starting point.
    assert client.delete(f"{API}/jobs/{child['id']}").status_code == 204
    assert run(settings, grandchild, models) == "succeeded"
    last = client.get(f"{API}/jobs/{grandchild}").json()
    assert last["step"] == 5 and last["parent_id"] == child["id"]  # the id stays
    assert client.get(f"{API}/jobs/{parent}").json()["children"] == []
    assert client.get(f"{API}/jobs/{parent}/checkpoint").status_code == 200  # adapted.pt


def test_another_tokens_job_is_not_found(settings: Settings, queue: Any) -> None:
    secured = settings.model_copy(update={"api_tokens": f"alice:{ALICE}, bob:{BOB}"})
    secured = Settings.model_validate(secured.model_dump())
    parent = finished_without_running(settings, owner="alice")
    with TestClient(create_app(secured, queue=queue)) as client:
        url = f"{API}/jobs/{parent}/continue"
        r = client.post(url, json={"steps": 1}, headers={"Authorization": f"Bearer {BOB}"})
        assert r.status_code == 404 and job_count(settings) == 1
        r = client.post(url, json={"steps": 1}, headers={"Authorization": f"Bearer {ALICE}"})
        assert r.status_code == 202 and r.json()["parent_id"] == parent
