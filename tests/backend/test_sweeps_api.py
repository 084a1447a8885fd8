"""POST /api/v1/sweeps, GET /sweeps[/{id}], POST /sweeps/{id}/cancel through the TestClient
on SQLite and PostgreSQL (the queue records).

Pass criteria: a grid makes one queued job per combination, in grid order, dispatched
together; a grid that is too large, names an unknown parameter, repeats a value, or has one
combination that is not a valid job is refused with 422 naming it, and nothing is created;
cancelling a sweep cancels its jobs; sweeps are per-token and count against the token's
active-job cap.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from jobs.db.models import Job, Sweep
from jobs.db.session import session_scope
from jobs.settings import Settings

API = "/api/v1"
BASE = {"source_text": "photo", "target_text": "sketch", "generator": "random-64"}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in BASE.items() if k != key}


def _rows(settings: Settings) -> tuple[int, int]:
    with session_scope(settings.db_url) as session:
        jobs = session.scalar(select(func.count()).select_from(Job)) or 0
        sweeps = session.scalar(select(func.count()).select_from(Sweep)) or 0
        return jobs, sweeps


def test_a_grid_makes_one_job_per_combination(client: Any, settings: Settings, queue: Any) -> None:
    r = client.post(
        f"{API}/sweeps", json={"base": BASE, "grid": {"layers": [3, 6], "steps": [150, 300]}}
    )
    assert r.status_code == 202, r.text
    sweep = r.json()
    assert r.headers["location"] == f"{API}/sweeps/{sweep['id']}"
    assert sweep["count"] == 4 and sweep["varying"] == ["layers", "steps"]
    combos = [(j["params"]["layers"], j["params"]["steps"]) for j in sweep["jobs"]]
    assert combos == [(3, 150), (3, 300), (6, 150), (6, 300)]  # the last key fastest
    assert all(j["params"]["target_text"] == "sketch" for j in sweep["jobs"])
    assert {j["sweep_id"] for j in sweep["jobs"]} == {sweep["id"]}  # the page links back
    assert sweep["status"] == {"queued": 4} and sweep["done"] is False
    assert queue.sent == [j["id"] for j in sweep["jobs"]]

    again = client.get(f"{API}/sweeps/{sweep['id']}").json()
    assert [j["id"] for j in again["jobs"]] == [j["id"] for j in sweep["jobs"]]
    assert client.get(f"{API}/sweeps").json()["count"] == 1
    listed = client.get(f"{API}/jobs").json()
    assert listed["count"] == 4  # ordinary jobs too
    assert {j["sweep_id"] for j in listed["data"]} == {sweep["id"]}

    canceled = client.post(f"{API}/sweeps/{sweep['id']}/cancel").json()
    assert canceled["status"] == {"canceled": 4} and canceled["done"] is True

    gone = sweep["jobs"][0]["id"]
    assert client.delete(f"{API}/jobs/{gone}").status_code in (200, 204)
    after = client.get(f"{API}/sweeps/{sweep['id']}").json()
    assert after["count"] == 3 and gone not in [j["id"] for j in after["jobs"]]


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        (
            {"base": BASE, "grid": {"layers": list(range(1, 10)), "steps": [1, 2, 3, 4]}},
            ["grid"],
            "makes 36 jobs",
        ),
        ({"base": BASE, "grid": {"colour": ["red"]}}, ["grid", "colour"], "not a parameter"),
        ({"base": BASE, "grid": {"layers": []}}, ["grid", "layers"], "non-empty"),
        ({"base": BASE, "grid": {"layers": [3, 3]}}, ["grid", "layers"], "twice"),
        (
            {"base": BASE, "grid": {"layers": [3, 100]}},
            ["grid", "layers"],
            "combination 2 (layers=100)",
        ),
        ({"base": BASE, "grid": {"lr": [0.002, "fast"]}}, ["grid", "lr"], "combination 2"),
        (
            {"base": {**BASE, "steps": 0}, "grid": {"layers": [3]}},
            ["base", "steps"],
            "combination 1",
        ),
        (
            {"base": {**BASE, "layers": 3}, "grid": {"layers": [3, 6]}},
            ["base", "layers"],
            "in one place",
        ),
        (
            {"base": {"source_text": "photo"}, "grid": {"layers": [3]}},
            ["base", "target_text"],
            "must not be empty (or give target_images)",
        ),
        (
            {"base": _without("generator"), "grid": {"generator": ["random-64", "no-such"]}},
            ["grid", "generator"],
            "no-such",
        ),
        (
            {"base": _without("target_text"), "grid": {"target_text": ["sketch", "photo"]}},
            ["grid", "target_text"],
            "combination 2",
        ),
        (  # two spellings of one number are one job
            {"base": BASE, "grid": {"mixing": [0, 0.0]}},
            ["grid", "mixing"],
            "values 0 and 0.0 make the same job (combinations 1 and 2)",
        ),
        (  # two spellings of one prompt: the job stores one
            {"base": _without("target_text"), "grid": {"target_text": ["sketch", "sketch "]}},
            ["grid", "target_text"],
            "make the same job (combinations 1 and 2)",
        ),
        (
            {"base": _without("target_text"), "grid": {"target_text": ["caf\u00e9", "cafe\u0301"]}},
            ["grid", "target_text"],
            "make the same job (combinations 1 and 2)",
        ),
        (
            {
                "base": _without("target_text"),
                "grid": {"target_text": ["sketch", "ｓｋｅ\u200bｔｃｈ"]},
            },
            ["grid", "target_text"],
            "make the same job (combinations 1 and 2)",
        ),
        (  # one generator has one name
            {"base": _without("generator"), "grid": {"generator": ["random-32", "random-0032"]}},
            ["grid", "generator"],
            "combination 2 (generator=random-0032): generator is not usable: write the random "
            "generator's name as 'random-32'",
        ),
    ],
)
def test_an_invalid_grid_creates_nothing(
    client: Any, settings: Settings, queue: Any, body: dict[str, Any], loc: list[str], says: str
) -> None:
    r = client.post(f"{API}/sweeps", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", *loc], detail
    assert says in detail["msg"], detail
    assert _rows(settings) == (0, 0) and queue.sent == []


def test_sweeps_are_per_token_and_count_against_the_cap(settings: Settings, queue: Any) -> None:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    tokened = Settings(
        **{**settings.model_dump(), "api_tokens": "alice:aaaaaaaaaaaaaaaa,bob:bbbbbbbbbbbbbbbb",
           "max_active_jobs": 4}
    )  # fmt: skip
    alice = {"Authorization": "Bearer aaaaaaaaaaaaaaaa"}
    bob = {"Authorization": "Bearer bbbbbbbbbbbbbbbb"}
    with TestClient(create_app(tokened, queue=queue)) as client:
        r = client.post(
            f"{API}/sweeps", json={"base": BASE, "grid": {"layers": [1, 2, 3]}}, headers=alice
        )
        assert r.status_code == 202, r.text
        sweep = r.json()["id"]
        assert client.get(f"{API}/sweeps/{sweep}", headers=bob).status_code == 404
        assert client.post(f"{API}/sweeps/{sweep}/cancel", headers=bob).status_code == 404
        assert client.get(f"{API}/sweeps", headers=bob).json()["count"] == 0
        r = client.post(
            f"{API}/sweeps", json={"base": BASE, "grid": {"layers": [4, 5]}}, headers=alice
        )
        assert r.status_code == 429 and "NADA_MAX_ACTIVE_JOBS" in r.json()["detail"]
        assert _rows(settings) == (3, 1)
    assert client.get(f"{API}/sweeps/not-an-id").status_code in (401, 404)
