"""`priority` on submissions (docs/api.md#priority): the range, the per-token cap, the job
view, sweeps, and the field in every submission's schema."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.main import create_app
from backend.schemas.photos import parse_invert_params
from jobs.settings import Settings
from nada.errors import ParamError
from tests.conftest import RecordingQueue

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"


def test_priority_is_range_checked_capped_per_token_and_shown(settings: Settings) -> None:
    settings = settings.model_copy(
        update={
            "api_tokens": Settings(api_tokens=f"alice:{ALICE},bob:{BOB}").api_tokens,
            "max_priority": 1,
            "token_max_priority": "alice:9",
            "max_active_jobs": 0,
        }
    )
    with TestClient(create_app(settings, queue=RecordingQueue(settings))) as client:
        alice = {"Authorization": f"Bearer {ALICE}"}
        bob = {"Authorization": f"Bearer {BOB}"}
        for bad in (10, -1, True, "3"):
            r = client.post(f"{API}/jobs", json={**SMALL, "priority": bad}, headers=alice)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "priority"]
        r = client.post(f"{API}/jobs", json={**SMALL, "priority": 2}, headers=bob)
        assert r.status_code == 403 and "priority 2" in r.text and "cap of 1" in r.text
        normal = client.post(f"{API}/jobs", json=SMALL, headers=alice).json()
        high = client.post(f"{API}/jobs", json={**SMALL, "priority": 9}, headers=alice).json()
        assert (normal["priority"], high["priority"]) == (0, 9)
        assert "priority" not in high["params"]
        # The queue positions follow the priority: the later, higher job is first.
        assert client.get(f"{API}/jobs/{high['id']}", headers=alice).json()["queue_position"] == 1
        assert client.get(f"{API}/jobs/{normal['id']}", headers=alice).json()["queue_position"] == 2
        r = client.post(f"{API}/jobs", json={**SMALL, "priority": 1}, headers=bob)
        assert r.status_code == 202 and r.json()["priority"] == 1
        sweep = {"base": SMALL, "grid": {"lr": [0.002, 0.004]}}
        r = client.post(f"{API}/sweeps", json={**sweep, "priority": 4}, headers=alice)
        assert r.status_code == 202, r.text
        ids = [j["id"] for j in r.json()["jobs"]]
        assert {client.get(f"{API}/jobs/{i}", headers=alice).json()["priority"] for i in ids} == {4}
        r = client.post(
            f"{API}/sweeps", json={**sweep, "base": {**SMALL, "priority": 4}}, headers=alice
        )
        assert r.status_code == 422 and "priority" in r.text
        r = client.post(f"{API}/sweeps", json={**sweep, "priority": 4}, headers=bob)
        assert r.status_code == 403
        schema = client.app.openapi()
    bodies = schema["components"]["schemas"]
    for name in ("JobCreate", "RenderCreate", "EditCreate", "ContinueCreate", "SweepCreate"):
        field = bodies[name]["properties"]["priority"]
        assert (field["minimum"], field["maximum"], field["default"]) == (0, 9, 0), name
    domain_job = schema["paths"][f"{API}/domains/{{name}}/jobs"]["post"]
    assert "priority" in [p["name"] for p in domain_job["parameters"]]


def test_an_inversion_takes_priority_in_its_params_json() -> None:
    params, hook = parse_invert_params('{"priority": 3}', photo_sha256="0" * 64)
    assert hook.priority == 3 and "priority" not in params.to_dict()
    with pytest.raises(ParamError) as info:
        parse_invert_params('{"priority": 10}', photo_sha256="0" * 64)
    assert info.value.field == "priority"
