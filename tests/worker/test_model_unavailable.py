"""A model that cannot be downloaded fails its job within seconds as `model_unavailable`,
for every kind of model: a registry generator, CLIP weights from the Hugging Face hub, an
auxiliary file (the face detector). Each job runs through the real attempt path
(worker.attempts.run_job with the real engine and model cache); downloads go to a closed
loopback port, or are switched off. The message is the page's (what to pick instead), the
details the operator's (the variable to set), and neither names a server path.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from jobs import storage, store
from jobs.db.models import Job
from jobs.db.session import migrate, session_scope
from jobs.kinds import INVERT
from jobs.settings import Settings
from nada import rundir
from nada.params import AdaptParams, ClipSpec
from nada.photo_params import InvertParams

FAST = 20.0  # seconds: generous; offline, the CLIP download alone used to take ~50 s


@pytest.fixture
def closed_url() -> Iterator[str]:
    """An http URL on a loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@pytest.fixture
def worker_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "model cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("NADA_OFFLINE", raising=False)
    settings = Settings(data_dir=tmp_path / "data", device="cpu", migrate_on_start=False,
                        frontend_dir=None)  # fmt: skip
    migrate(settings.db_url)
    return settings


def _adapt(**changes: object) -> AdaptParams:
    base = {"source_text": "photo", "target_text": "sketch", "generator": "random-8",
            "clip_models": (ClipSpec("nada-tiny:random"),), "steps": 2, "batch_size": 1,
            "probe_batch": 1, "n_samples": 1, "sample_every": 2, "score_latents": 2}  # fmt: skip
    return AdaptParams(**{**base, **changes})  # type: ignore[arg-type]


def _run(settings: Settings, job_id: str) -> tuple[Job, float]:
    from worker.attempts import run_job
    from worker.model_cache import ModelCache

    started = time.monotonic()
    outcome = run_job(job_id, settings=settings, worker_id="w", models=ModelCache())
    elapsed = time.monotonic() - started
    assert outcome == "failed"
    with session_scope(settings.db_url) as session:
        return store.get_job(session, job_id=job_id), elapsed


def _submit(settings: Settings, params: AdaptParams) -> str:
    with session_scope(settings.db_url) as session:
        return store.create_job(session, params=params).id


def _check(job: Job, elapsed: float, tmp_path: Path, *, says: str, details: str) -> None:
    assert job.error_code == "model_unavailable"
    assert elapsed < FAST
    assert job.error_message is not None and job.error_details is not None
    assert says in job.error_message
    assert details in job.error_details
    for text in (job.error_message, job.error_details):
        assert str(tmp_path) not in text


def test_a_generator_that_cannot_be_downloaded(
    worker_settings: Settings, closed_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NADA_GENERATOR_FFHQ_1024", f"{closed_url}/ffhq.pt")  # a dead mirror
    job, elapsed = _run(worker_settings, _submit(worker_settings, _adapt(generator="ffhq-1024")))
    _check(job, elapsed, tmp_path, says="no copy of generator 'ffhq-1024'",
           details="NADA_GENERATOR_FFHQ_1024")  # fmt: skip
    assert "pick another generator" in job.error_message  # type: ignore[operator]


@pytest.mark.parametrize("offline", ["unreachable", "HF_HUB_OFFLINE"])
def test_clip_weights_that_cannot_be_downloaded(
    worker_settings: Settings,
    closed_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    offline: str,
) -> None:
    """Left to huggingface_hub, this took about 50 s of retries offline."""
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", closed_url)
    params = _adapt(clip_models=(ClipSpec("ViT-B-32:openai"),))
    job, elapsed = _run(worker_settings, _submit(worker_settings, params))
    _check(job, elapsed, tmp_path, says="no copy of CLIP model 'ViT-B-32:openai'",
           details="ViT-B-32:openai")  # fmt: skip
    assert "'ViT-B-32:random'" in job.error_message  # type: ignore[operator]


def test_the_face_detector_that_cannot_be_downloaded(
    worker_settings: Settings, closed_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A photo to align without the detector's files: the message points at Already
    aligned, which needs none."""
    monkeypatch.setenv("NADA_WEIGHTS_FACE_S3FD", f"{closed_url}/s3fd.pth")
    params = InvertParams(generator="random-8", encoder="none", align=True, refine_steps=1,
                          perceptual_weight=0.0, sample_every=0)  # fmt: skip
    with session_scope(worker_settings.db_url) as session:
        job_id = store.create_job(session, params=params, kind=INVERT).id
    root = storage.job_dir(worker_settings.jobs_dir, job_id)
    root.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(root / rundir.PHOTO)
    job, elapsed = _run(worker_settings, job_id)
    _check(job, elapsed, tmp_path, says="no copy of the face detector (face-s3fd)",
           details="NADA_WEIGHTS_FACE_S3FD")  # fmt: skip
    assert "Already aligned" in job.error_message  # type: ignore[operator]


def test_the_apis_hub_table_is_open_clips() -> None:
    """jobs/availability.py names, without importing open_clip, the hub repository of
    every CLIP model the service offers: the ones open_clip's pretrained configs name."""
    import open_clip

    from jobs.availability import CLIP_HF_HUB
    from nada.catalog import CLIP_MODELS

    offered = {(arch, tag) for arch, tags in CLIP_MODELS.items() for tag in tags}
    assert set(CLIP_HF_HUB) == offered
    for (arch, tag), repo in CLIP_HF_HUB.items():
        assert open_clip.get_pretrained_cfg(arch, tag)["hf_hub"] == f"{repo}/", (arch, tag)


def test_cached_clip_weights_are_read_from_the_cache_not_the_hub(
    worker_settings: Settings, closed_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file in the Hugging Face cache is loaded from its path, the hub unreachable: this
    one is not a checkpoint, so loading it fails, naming that file, not a download."""
    from worker.clip_models import load_clip

    monkeypatch.setenv("HF_ENDPOINT", closed_url)
    snapshot = tmp_path / "hf/hub/models--timm--vit_base_patch32_clip_224.openai/snapshots/r1"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not load CLIP weights ViT-B-32:openai from"):
        load_clip("ViT-B-32:openai")
