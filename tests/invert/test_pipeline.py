"""The photo engine calls (invert/pipeline.py) end to end on small random generators and a
random-weight e4e: what they write, what they report, and where they refuse."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import PIL.Image
import pytest
import torch

import stylegan2
from invert.e4e import preprocess
from invert.e4e_weights import load_e4e
from invert.images import image_to_tensor, tensor_to_uint8
from invert.landmarks import Face
from invert.latent import LatentError, read_latent, render_latent
from invert.pipeline import run_edit, run_inversion
from nada import rundir
from nada.errors import ParamError
from nada.events import Canceled, Progress
from nada.photo_params import EditParams, InvertParams


@pytest.fixture(scope="module")
def photo_256(tmp_path_factory):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    PIL.Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def photo_16(tmp_path_factory):
    """An image random-16 can make: its render of one seed, as a PNG of 32x32 (the smallest
    photo accepted; each pixel 2x2, so the 16-px crop the pipeline makes of it is close)."""
    g = stylegan2.load_generator("random-16").generator
    with torch.no_grad():
        image, _ = g([torch.randn(1, 512, generator=torch.Generator().manual_seed(3))],
                     randomize_noise=False)  # fmt: skip
    path = tmp_path_factory.mktemp("photo") / "face16.png"
    PIL.Image.fromarray(tensor_to_uint8(image)[0]).resize((32, 32), PIL.Image.NEAREST).save(path)
    return path


def invert(tmp_path, photo, name="run", models=None, **changes):
    params = dict(generator="random-16", encoder="none", align=False, refine_steps=4,
                  refine_lr=0.03, perceptual_weight=0.0, sample_every=2)  # fmt: skip
    params.update(changes)
    events: list[Progress] = []
    result = run_inversion(
        InvertParams(**params), tmp_path / name, photo_path=photo, device="cpu",
        on_progress=events.append, models=models,
    )  # fmt: skip
    return result, events


class CountingCache:
    """A model cache that keeps generators and encoders (worker.model_cache.ModelCache's
    `generator`, plus the optional `encoder` run_inversion uses when a cache has one)."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def generator(self, name, device):
        self.calls.append(("generator", name))
        return stylegan2.load_generator(name, device=device)

    def encoder(self, source, device):
        self.calls.append(("encoder", str(source)))
        return load_e4e(source, device=device)


def test_no_refinement_gives_the_encoders_code_exactly(tmp_path, e4e_64, photo_256):
    cache = CountingCache()
    result, events = invert(
        tmp_path, photo_256, models=cache, generator="random-64", encoder=str(e4e_64),
        refine_steps=0,
    )  # fmt: skip
    assert cache.calls == [("generator", "random-64"), ("encoder", str(e4e_64))]
    # The encoder is fed as e4e's own test transform feeds it: the photo's centre square (a
    # no-op here) at its own resolution, resized once to 256 (PIL bilinear), never through
    # the generator's size first; the aligned image the refinement compares against is
    # that square at the generator's 64 px.
    photo = PIL.Image.open(photo_256).convert("RGB")
    aligned = photo.resize((64, 64), PIL.Image.LANCZOS)
    assert np.array_equal(np.asarray(PIL.Image.open(result.aligned)), np.asarray(aligned))
    e4e = load_e4e(e4e_64)
    with torch.no_grad():
        expected = e4e.encoder(preprocess(photo)) + e4e.latent_avg
    saved = torch.load(result.latent, weights_only=True)
    assert saved["w_plus"].dtype == torch.float32 and saved["w_plus"].shape == (1, 10, 512)
    assert torch.equal(saved["w_plus"], expected)
    assert "noise" not in saved
    meta = saved["metadata"]
    assert meta["encoder"] == str(e4e_64) and meta["refine_steps"] == 0
    assert meta["generator"] == "random-64" and meta["align"] is False and meta["quad"] is None
    assert meta["params"] == InvertParams(**{**meta["params"]}).to_dict()
    assert result.latent_sha256 == hashlib.sha256(result.latent.read_bytes()).hexdigest()
    assert [(e.kind, e.stage) for e in events] == [
        ("stage", "loading"), ("stage", "encoding"), ("sample", "encoding"), ("stage", "saving"),
    ]  # fmt: skip
    assert result.samples == (rundir.sample_path(tmp_path / "run", 0),)


def test_refinement_writes_its_files_and_reports_every_step(tmp_path, photo_16):
    result, events = invert(tmp_path, photo_16)
    out = tmp_path / "run"
    assert result.latent == out / rundir.LATENT
    assert result.aligned == out / rundir.ALIGNED
    assert result.reconstruction == out / rundir.RECONSTRUCTION
    assert result.samples == tuple(rundir.sample_path(out, s) for s in (0, 2, 4))
    stages = [e.stage for e in events if e.kind == "stage"]
    assert stages == ["loading", "encoding", "refining", "saving"]
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert all(e.total_steps == 4 and e.seconds_per_step > 0 for e in steps)
    assert set(steps[-1].losses) == {"total", "pixel", "perceptual", "latent"}
    assert [e.step for e in events if e.kind == "sample"] == [0, 2, 4]
    sample = PIL.Image.open(result.samples[-1])
    assert sample.size == (16 * 2 + 2, 16)  # aligned | reconstruction

    code = read_latent(result.latent)
    meta = code.metadata
    assert meta["losses"] == steps[-1].losses and meta["note"] is None and result.note is None
    g = stylegan2.load_generator("random-16").generator
    # No encoder: refinement started from the generator's mean latent.
    start = stylegan2.load_generator("random-16").latent_avg
    assert not torch.allclose(code.w_plus, start.expand_as(code.w_plus))
    reconstruction = np.asarray(PIL.Image.open(result.reconstruction))
    assert np.array_equal(reconstruction, tensor_to_uint8(render_latent(g, code.w_plus))[0])
    # ... and it is closer to the photo than the mean latent's image.
    target = image_to_tensor(PIL.Image.open(result.aligned))
    mean_image = render_latent(g, start.reshape(1, 1, -1).repeat(1, g.n_latent, 1))
    final = render_latent(g, code.w_plus)
    assert (final - target).square().mean() < (mean_image - target).square().mean()


def test_optimised_noise_is_saved_and_rendered(tmp_path, photo_16):
    result, _ = invert(tmp_path, photo_16, refine_steps=2, optimize_noise=True, sample_every=0,
                       encoder="auto")  # fmt: skip
    code = read_latent(result.latent)
    assert code.metadata["encoder"] is None  # no encoder is registered for random-16
    g = stylegan2.load_generator("random-16").generator
    assert code.noise is not None and len(code.noise) == g.num_layers
    reconstruction = np.asarray(PIL.Image.open(result.reconstruction))
    expected = tensor_to_uint8(render_latent(g, code.w_plus, code.noise))[0]
    assert np.array_equal(reconstruction, expected)
    assert result.samples == (rundir.sample_path(tmp_path / "run", 2),)  # only the last


def test_cancel_leaves_no_latent(tmp_path, photo_16):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    out = tmp_path / "run"
    out.mkdir()
    (out / rundir.LATENT).write_bytes(b"a previous run's")
    with pytest.raises(Canceled):
        run_inversion(InvertParams(generator="random-16", encoder="none", align=False,
                                   refine_steps=5, perceptual_weight=0.0),
                      out, photo_path=photo_16, device="cpu", should_cancel=cancel)  # fmt: skip
    assert not (out / rundir.LATENT).exists()


def test_an_encoder_for_another_size_is_refused(tmp_path, e4e_64, photo_16):
    with pytest.raises(ParamError, match="10 W\\+ entries .* 64 px .* takes 6") as info:
        invert(tmp_path, photo_16, encoder=str(e4e_64))
    assert info.value.field == "encoder"


def test_no_perceptual_weights_is_a_note(tmp_path, photo_16, monkeypatch):
    monkeypatch.setattr("invert.perceptual.load_perceptual", lambda device: None)
    result, _ = invert(tmp_path, photo_16, refine_steps=1, perceptual_weight=1.0)
    assert result.note == "perceptual loss unavailable: pixel loss only"
    assert read_latent(result.latent).metadata["note"] == result.note
    info = json.loads((tmp_path / "run" / rundir.INVERSION_INFO).read_text())  # for the API
    assert info["note"] == result.note and info["params"]["perceptual_weight"] == 1.0


class FakeDetector:
    """Two faces drawn from one hand-made landmark layout, the second one larger."""

    def detect(self, image):
        faces = []
        for centre, scale in (((20.0, 20.0), 6.0), ((64.0, 60.0), 14.0)):
            lm = np.zeros((68, 2))
            lm[36:42] = (-0.5, 0.0)
            lm[42:48] = (0.5, 0.0)
            lm[48], lm[54] = (-0.35, 0.9), (0.35, 0.9)
            lm = lm * scale + centre
            box = (centre[0] - 2 * scale, centre[1] - 2 * scale,
                   centre[0] + 2 * scale, centre[1] + 2 * scale)  # fmt: skip
            faces.append(Face(landmarks=lm, box=box, score=0.9))
        return faces


def test_alignment_uses_the_largest_face_and_says_so(tmp_path, photo_256):
    params = InvertParams(generator="random-16", encoder="none", refine_steps=0,
                          perceptual_weight=0.0)  # fmt: skip
    events = []
    result = run_inversion(params, tmp_path / "run", photo_path=photo_256, device="cpu",
                           on_progress=events.append, detector=FakeDetector())  # fmt: skip
    assert [e.stage for e in events if e.kind == "stage"] == [
        "loading", "aligning", "encoding", "saving",
    ]  # fmt: skip
    assert result.note == "2 faces found; using the largest"
    meta = read_latent(result.latent).metadata
    quad = np.asarray(meta["quad"])
    assert quad.shape == (4, 2)
    assert np.allclose(quad.mean(axis=0), (64.0, 60.0 + 0.09 * 14.0), atol=1.0)
    assert PIL.Image.open(result.aligned).size == (16, 16)


def test_edit_renders_the_code_through_an_adapted_generator(tmp_path, photo_16):
    result, _ = invert(tmp_path, photo_16, refine_steps=0)
    other = stylegan2.load_generator("random-16", seed=7)
    adapted = tmp_path / "job" / rundir.ADAPTED
    adapted.parent.mkdir()
    stylegan2.save_generator(adapted, other.generator, other.latent_avg, {"kind": "test"})
    params = EditParams(inversion_id="a" * 32, job_id="b" * 32)
    events: list[Progress] = []
    edit = run_edit(params, tmp_path / "edit", latent_path=result.latent,
                    checkpoint_path=adapted, device="cpu", on_progress=events.append)  # fmt: skip
    assert edit.image == tmp_path / "edit" / rundir.EDIT and edit.samples == ()
    assert edit.image_sha256 == hashlib.sha256(edit.image.read_bytes()).hexdigest()
    code = read_latent(result.latent)
    expected = tensor_to_uint8(render_latent(other.generator, code.w_plus))[0]
    assert np.array_equal(np.asarray(PIL.Image.open(edit.image)), expected)
    assert [(e.kind, e.stage, e.step) for e in events] == [
        ("stage", "loading", 0), ("stage", "rendering", 0), ("step", "rendering", 1),
        ("stage", "saving", 1),
    ]  # fmt: skip
    assert all(e.total_steps == 1 for e in events)


def test_edit_refuses_a_code_for_another_size(tmp_path, photo_16):
    result, _ = invert(tmp_path, photo_16, refine_steps=0)
    params = EditParams(inversion_id="a" * 32, job_id="b" * 32)
    with pytest.raises(LatentError, match="6 W\\+ entries .* 16 px.*32 px generator takes 8"):
        run_edit(params, tmp_path / "edit", latent_path=result.latent,
                 checkpoint_path="random-32", device="cpu")  # fmt: skip
    assert not (tmp_path / "edit" / rundir.EDIT).exists()


def test_a_damaged_latent_file_is_named(tmp_path):
    bad = tmp_path / "latent.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(LatentError, match="is not a latent.pt"):
        read_latent(bad)
    torch.save({"w_plus": torch.zeros(10, 512)}, bad)
    with pytest.raises(LatentError, match="no w_plus of shape"):
        read_latent(bad)
    with pytest.raises(LatentError, match="no such latent file"):
        read_latent(tmp_path / "missing.pt")
