"""POST /api/v1/generators: uploading a custom base generator through the TestClient.

Pass criteria: a valid generator is stored (re-saved plus a JSON sidecar), listed by GET
/generators, accepted by POST /jobs and handed to the engine by its file path; a taken name
is 409, a bad name 422, an over-cap file 413; a hostile pickle and a truncated file are
refused with 422 saying why, the payload never runs, and no partial file is left behind."""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from jobs.settings import Settings
from stylegan2.checkpoint import load_generator

API = "/api/v1"


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _upload(client, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/generators",
        data={"name": name},
        files={"file": ("g.pt", io.BytesIO(data), "application/octet-stream")},
    )


def test_upload_list_submit_and_worker_path(
    client, settings: Settings, leftovers, good_bytes: bytes
) -> None:  # type: ignore[no-untyped-def]
    r = _upload(client, "my-gen.v1", good_bytes)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "my-gen.v1" and body["size"] == 8 and body["source"] == "upload"
    assert len(body["sha256"]) == 64

    stored = settings.data_dir / "generators" / "my-gen.v1.pt"
    meta = json.loads(stored.with_suffix(".json").read_text())
    assert meta["sha256"] == body["sha256"] and meta["size"] == 8 and meta["uploaded_at"]
    assert "owner" in meta
    assert load_generator(stored).metadata["source"]["kind"] == "upload"  # the re-save
    assert leftovers() == []

    listed = {g["name"]: g for g in client.get(f"{API}/generators").json()["data"]}
    assert listed["my-gen.v1"]["source"] == "upload"
    assert all(g["source"] == "registry" for n, g in listed.items() if n != "my-gen.v1")

    job = client.post(
        f"{API}/jobs",
        json={"source_text": "photo", "target_text": "sketch", "generator": "my-gen.v1"},
    )
    assert job.status_code == 202, job.text
    unknown = client.post(
        f"{API}/jobs",
        json={"source_text": "photo", "target_text": "sketch", "generator": "not-uploaded"},
    )
    assert unknown.status_code == 422

    # The worker hands the stored file to the engine (generator_path=).
    from worker.attempts import run_job

    seen: dict = {}

    def engine(params, out_dir, **kw):  # type: ignore[no-untyped-def]
        seen.update(generator=params.generator, path=kw.get("generator_path"))
        raise RuntimeError("stop here")

    run_job(job.json()["id"], settings=settings, worker_id="t", engine=engine, models=1)
    assert seen == {"generator": "my-gen.v1", "path": stored}

    again = _upload(client, "my-gen.v1", good_bytes)
    assert again.status_code == 409 and "already exists" in again.text
    registered = client.get(f"{API}/generators").json()["data"]
    taken = next(g["name"] for g in registered if g["source"] == "registry")
    assert _upload(client, taken, good_bytes).status_code == 409


@pytest.mark.parametrize("name", ["Upper", "random-64", "-dash", "a" * 65, "a/b", ""])
def test_bad_names_are_422(client, settings: Settings, leftovers, name: str) -> None:  # type: ignore[no-untyped-def]
    r = _upload(client, name, b"not even read")
    assert r.status_code == 422, r.text
    assert leftovers() == [] and not (settings.data_dir / "generators").exists()


def test_hostile_pickle_and_truncated_file_are_refused(
    client, settings: Settings, leftovers, good_bytes: bytes, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"g_ema": _Payload(marker), "latent_avg": torch.zeros(512)}, buf)
    for name, data, why in [
        ("evil", buf.getvalue(), "refused"),
        ("evil-raw", pickle.dumps({"g_ema": _Payload(marker)}), "refused"),
        ("half", good_bytes[: len(good_bytes) // 2], "truncated or corrupted"),
    ]:
        r = _upload(client, name, data)
        assert r.status_code == 422, r.text
        assert why in r.text and str(settings.data_dir) not in r.text
        assert not marker.exists(), "the payload ran"
    assert [
        g["name"] for g in client.get(f"{API}/generators").json()["data"] if g["source"] == "upload"
    ] == []
    assert leftovers() == []
    assert list((settings.data_dir / "generators").glob("*")) == []


def test_over_the_size_cap_is_413(client, settings: Settings, leftovers, good_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    settings.max_upload_mb = 1 / 1024  # 1 KiB; the app reads its settings per request
    r = _upload(client, "big", good_bytes)
    assert r.status_code == 413, r.text
    assert "NADA_MAX_UPLOAD_MB" in r.text
    assert leftovers() == []
    assert not (settings.data_dir / "generators" / "big.pt").exists()


def test_over_the_cap_without_content_length_is_413(client, settings: Settings, leftovers) -> None:  # type: ignore[no-untyped-def]
    """A chunked body (no Content-Length) is cut off while streaming."""
    settings.max_upload_mb = 1 / 1024
    boundary = "XyZ"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="g.pt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def body():  # type: ignore[no-untyped-def]
        yield head
        for _ in range(64):
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post(
        f"{API}/generators",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413, r.text
    assert leftovers() == []


def test_upload_needs_a_token_and_records_its_owner(
    client, settings: Settings, good_bytes: bytes
) -> None:  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    settings.api_tokens = SecretStr("alice:alice-token-0123456789")
    assert _upload(client, "mine", good_bytes).status_code == 401
    assert not (settings.data_dir / "generators" / "mine.pt").exists()
    r = client.post(
        f"{API}/generators",
        data={"name": "mine"},
        files={"file": ("g.pt", io.BytesIO(good_bytes))},
        headers={"authorization": "Bearer alice-token-0123456789"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "uploaded by alice"
    meta = json.loads((settings.data_dir / "generators" / "mine.json").read_text())
    assert meta["owner"] == "alice"


@pytest.mark.parametrize(
    ("fixture", "family"),
    [
        ("ada_sg2_64.pkl", "stylegan2"),
        ("ada_sg2_64_tf.pkl", "stylegan2"),
        ("sg3_t_64.pkl", "stylegan3"),
    ],
)
def test_nvidia_pickles_upload_as_generators(
    client, settings: Settings, leftovers, fixture: str, family: str
) -> None:  # type: ignore[no-untyped-def]
    """NVIDIA's .pkl files (their stored source replaced by a line that would exit) go through
    the same limited validator child: read as data, re-saved in our layout, listed."""
    data = (Path(__file__).resolve().parents[2] / "data" / "nvidia" / fixture).read_bytes()
    r = _upload(client, "nvidia-gen", data)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 64
    stored = settings.data_dir / "generators" / "nvidia-gen.pt"
    loaded = load_generator(stored)
    assert loaded.family == family and loaded.resolution == 64
    assert leftovers() == []
    listed = {g["name"]: g for g in client.get("/api/v1/generators").json()["data"]}
    assert listed["nvidia-gen"]["family"] == family
    # photo inversion (e4e) is StyleGAN2's: a StyleGAN3 generator is refused at once
    photo = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(photo, "PNG")
    r = client.post(
        "/api/v1/inversions",
        files={"file": ("p.png", photo.getvalue(), "image/png")},
        data={"params": json.dumps({"generator": "nvidia-gen", "align": False})},
    )
    if family == "stylegan3":
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "generator"]
        assert "StyleGAN2 generators only" in r.json()["detail"][0]["msg"]
    else:
        assert r.status_code != 422 or "StyleGAN2 generators only" not in r.text
