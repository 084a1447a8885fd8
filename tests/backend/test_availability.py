"""Model availability through the API: each generator, CLIP model and auxiliary weight is
cached, downloadable or manual (GET /generators, /clip-models, /weights) as the files in a
temporary NADA_CACHE_DIR and Hugging Face cache say; a submission naming a model that is
neither cached nor downloadable is refused with 422 naming the field, and leaves no job; a
failed job's operator details are in its JSON (`error.details`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from jobs import leases, store
from jobs.db.models import Job, JobStatus
from jobs.db.session import session_scope
from jobs.settings import Settings
from nada.params import AdaptParams
from stylegan2 import registry

API = "/api/v1"
JOB = {"source_text": "photo", "target_text": "sketch", "generator": "random-8",
       "clip_models": [{"name": "nada-tiny:random", "weight": 1.0}]}  # fmt: skip


@pytest.fixture(autouse=True)
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty model caches of this test's own, downloads allowed."""
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "NADA_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def by_hand(monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered generator with no download URL (a team's own, installed by hand)."""
    monkeypatch.setattr(registry.GENERATORS, "_entries", dict(registry.GENERATORS._entries))
    registry.add_generator(
        registry.GeneratorInfo(
            name="by-hand-8",
            size=8,
            domain="tests",
            description="test",
            filename="h8.pt",
            manual="Ask the lab for it.",
        )  # fmt: skip
    )
    return "by-hand-8"


def _place(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")


def _by_name(client: Any, route: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"{API}/{route}")
    assert r.status_code == 200, r.text
    return {item["name"]: item for item in r.json()["data"]}


def _jobs(settings: Settings) -> int:
    with session_scope(settings.db_url) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def _refused(r: Any, field: str, says: str) -> None:
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][-1] == field, detail
    assert says in detail["msg"], detail


def test_generators_report_cached_downloadable_and_manual(
    client: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _place(registry.cache_path("ffhq-1024"))
    uploads = settings.data_dir / "generators"
    _place(uploads / "mine.pt")
    (uploads / "mine.json").write_text(json.dumps({"size": 8, "sha256": "0" * 64}))
    listed = _by_name(client, "generators")
    ffhq = listed["ffhq-1024"]
    assert ffhq["availability"] == "cached"
    assert (ffhq["family"], ffhq["domain"]) == ("stylegan2", "human faces")
    assert "Non" in ffhq["license"] or "NC" in ffhq["license"]
    assert listed["by-hand-8"]["availability"] == "manual"  # no URL: a person installs it
    assert "operator" in listed["by-hand-8"]["availability_note"]
    assert listed["mine"]["availability"] == "cached"
    registry.cache_path("ffhq-1024").unlink()
    assert _by_name(client, "generators")["ffhq-1024"]["availability"] == "downloadable"
    monkeypatch.setenv("NADA_OFFLINE", "1")
    offline = _by_name(client, "generators")["ffhq-1024"]
    assert offline["availability"] == "manual" and "offline" in offline["availability_note"]


def test_clip_models_report_the_hugging_face_cache(
    client: Any, caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = caches / "hf/hub/models--timm--vit_base_patch32_clip_224.openai/snapshots/abc"
    _place(snapshot / "open_clip_model.safetensors")
    listed = _by_name(client, "clip-models")
    assert listed["ViT-B-32:openai"]["availability"] == "cached"
    assert listed["ViT-B-16:openai"]["availability"] == "downloadable"
    assert listed["ViT-B-16:random"]["availability"] == "cached"
    assert listed["nada-tiny:random"]["availability"] == "cached"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    listed = _by_name(client, "clip-models")
    assert listed["ViT-B-16:openai"]["availability"] == "manual"
    assert listed["ViT-B-32:openai"]["availability"] == "cached"


def test_weights_say_whether_a_photo_can_be_aligned(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invert import weights

    r = client.get(f"{API}/weights")
    assert r.status_code == 200, r.text
    assert r.json()["photo"]["align"] is True  # downloadable
    assert {w["availability"] for w in r.json()["data"]} == {"downloadable"}
    monkeypatch.setenv("NADA_OFFLINE", "1")
    body = client.get(f"{API}/weights").json()
    assert body["photo"]["align"] is False
    assert "Already aligned" in body["photo"]["align_note"]
    for name in weights.ALIGNMENT:
        _place(weights.cache_path(name))
    body = client.get(f"{API}/weights").json()
    # e4e is not here either: a photo for ffhq-1024 needs encoder 'none'
    assert body["photo"] == {"align": True, "align_note": "", "encoder_unavailable": ["ffhq-1024"]}
    states = {w["name"]: w["availability"] for w in body["data"]}
    assert states == {"e4e-ffhq": "manual", "face-s3fd": "cached", "face-fan2d": "cached",
                      "vgg16-torchvision": "manual"}  # fmt: skip


def test_a_job_naming_a_model_this_server_cannot_have_is_refused(
    client: Any, settings: Settings, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = client.post(f"{API}/jobs", json={**JOB, "generator": "by-hand-8"})
    _refused(r, "generator", "names generator 'by-hand-8', which this server cannot use")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = client.post(f"{API}/jobs", json={**JOB, "clip_models": [{"name": "ViT-B-16"}]})
    _refused(r, "clip_models", "'ViT-B-16:random'")
    base = {k: v for k, v in JOB.items() if k != "generator"}
    sweep = {"base": base, "grid": {"generator": ["random-8", "ffhq-1024"]}}
    r = client.post(f"{API}/sweeps", json=sweep)
    assert r.status_code == 422, r.text
    assert "ffhq-1024" in r.json()["detail"][0]["msg"]
    assert _jobs(settings) == 0 and queue.sent == []
    r = client.post(f"{API}/jobs", json=JOB)  # random weights need nothing
    assert r.status_code == 202, r.text


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_photo_to_align_without_the_face_detector_is_refused(
    client: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NADA_OFFLINE", "1")

    def invert(params: dict[str, Any]) -> Any:
        return client.post(
            f"{API}/inversions",
            data={"params": json.dumps(params)},
            files={"file": ("me.png", io.BytesIO(_photo()), "image/png")},
        )

    _refused(invert({"generator": "random-8"}), "align", "tick Already aligned")
    _refused(invert({"generator": "ffhq-1024", "align": False}), "generator", "ffhq-1024")
    assert _jobs(settings) == 0
    r = invert({"generator": "random-8", "align": False})
    assert r.status_code == 202, r.text


def test_a_failed_jobs_details_are_in_its_json(client: Any, settings: Settings) -> None:
    with session_scope(settings.db_url) as session:
        job_id = store.create_job(session, params=AdaptParams.from_dict(JOB)).id
    with session_scope(settings.db_url) as session:
        claim = leases.claim_job(session, job_id=job_id, worker_id="t", lease_seconds=30,
                                 max_attempts=3)  # fmt: skip
        assert claim is not None
        leases.finish_job(session, job_id=job_id, attempt=claim.attempt,
                          status=JobStatus.failed, error_code="model_unavailable",
                          error_message="this server has no copy of generator 'x'",
                          error_details="set NADA_GENERATOR_X=PATH")  # fmt: skip
    error = client.get(f"{API}/jobs/{job_id}").json()["error"]
    assert error == {"code": "model_unavailable",
                     "message": "this server has no copy of generator 'x'",
                     "details": "set NADA_GENERATOR_X=PATH"}  # fmt: skip
