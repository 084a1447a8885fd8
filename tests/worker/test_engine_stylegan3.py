"""The adaptation engine on StyleGAN3 (NVIDIA's config T and R fixtures, 64 px, 16 W+
entries) with the random 'nada-tiny' CLIP: what trains, what is written, resume and
continue, renders and videos of the result; the family contract's W+ -> group map; the
content box of a letterboxed generator.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan2
from nada import rundir
from nada.params import AdaptParams, ClipSpec
from nada.render_params import RenderParams
from stylegan2.family import STYLEGAN3, crop_to_content, family_of
from stylegan2.loaded import LoadedGenerator
from worker.clip_models import ClipModel
from worker.engine import ModelCache, run_adaptation, sample_wplus, step_rng
from worker.renders import run_render
from worker.video import count_frames

NVIDIA = Path(__file__).resolve().parents[1] / "data" / "nvidia"
SG3_T, SG3_R = NVIDIA / "sg3_t_64.pkl", NVIDIA / "sg3_r_64.pkl"
TINY = (ClipSpec("nada-tiny:random", 1.0),)


def make_params(generator: Path = SG3_T, **changes: object) -> AdaptParams:
    base: dict[str, object] = dict(
        source_text="photo",
        target_text="sketch",
        generator=str(generator),
        clip_models=TINY,
        steps=2,
        layers=2,
        batch_size=2,
        probe_batch=2,
        sample_every=2,
        n_samples=2,
        score_latents=2,
        mixing=0.9,  # style mixing over the 16 W+ entries
        lr=0.02,  # big steps: a few of them visibly move the selected weights
        seed=5,
    )
    base.update(changes)
    return AdaptParams(**base)


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def adapt(out: Path, models: ModelCache, **kwargs: object):
    run_kwargs = {k: kwargs.pop(k) for k in ("start_from", "resume_from") if k in kwargs}
    return run_adaptation(make_params(**kwargs), out, device="cpu", models=models, **run_kwargs)


def state(path: Path) -> dict[str, torch.Tensor]:
    loaded = stylegan2.load_generator(str(path))
    assert loaded.family == "stylegan3"
    return loaded.generator.state_dict()


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def selected_layers(out: Path) -> set[str]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return {name for line in lines for name in json.loads(line)["selected_layers"]}


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory, models: ModelCache) -> Path:
    """A finished 2-step latent-selection run on config T."""
    out = tmp_path_factory.mktemp("sg3_parent")
    adapt(out, models)
    return out


@pytest.fixture(scope="module")
def gradient_run(tmp_path_factory: pytest.TempPathFactory, models: ModelCache) -> Path:
    """A finished 2-step gradient-selection run with ToRGB among the candidates."""
    out = tmp_path_factory.mktemp("sg3_gradient")
    adapt(out, models, selection="gradient", include_torgb=True)
    return out


def check_only_selected_groups_trained(out: Path) -> set[str]:
    base = stylegan2.load_generator(str(SG3_T)).generator.state_dict()
    adapted = state(out / rundir.ADAPTED)
    layers = selected_layers(out)
    assert len(layers) >= 2 and "synthesis.input" not in layers
    changed = {k for k in base if not torch.equal(base[k], adapted[k])}
    assert changed, "the selected layers trained"
    for key in changed:
        assert key.startswith(tuple(f"{name}." for name in layers)), key
        assert ".affine." not in key, "the affines stay the base generator's"
    assert not any(k.startswith("mapping.") for k in changed), "the mapping never changes"
    return layers


def test_latent_selection_trains_only_the_selected_groups(parent):
    check_only_selected_groups_trained(parent)
    assert sorted(p.name for p in (parent / "samples").iterdir()) == [
        "step_000000.png", "step_000002.png"
    ]  # fmt: skip
    adapted = stylegan2.load_generator(str(parent / rundir.ADAPTED))
    assert (adapted.resolution, adapted.num_ws, adapted.w_dim) == (64, 16, 64)
    meta = adapted.metadata
    assert set(meta["scores"]["2"]) >= {"direction", "target", "content", "diversity"}
    assert meta["base"]["family"] == "stylegan3"
    assert "synthesis.input" not in meta["candidate_layers"]
    assert "synthesis.L14_64_3" not in meta["candidate_layers"]  # ToRGB: include_torgb only
    z = torch.randn(2, adapted.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = adapted.render_wplus(adapted.to_wplus(z, truncation=0.7))
    assert images.shape == (2, 3, 64, 64) and torch.isfinite(images).all()


def test_gradient_selection_trains_only_the_selected_groups(gradient_run):
    check_only_selected_groups_trained(gradient_run)
    meta = stylegan2.load_generator(str(gradient_run / rundir.ADAPTED)).metadata
    assert "synthesis.L14_64_3" in meta["candidate_layers"]


def test_continuing_and_resuming_equal_an_uninterrupted_run(tmp_path, models, parent):
    whole = adapt(tmp_path / "whole", models, steps=3, checkpoint_every=2)
    child = adapt(tmp_path / "child", models, steps=3, start_from=parent / rundir.RESUME)
    intermediate = rundir.intermediate_checkpoint_path(tmp_path / "whole", 2)
    assert stylegan2.load_generator(str(intermediate)).family == "stylegan3"
    resumed = adapt(tmp_path / "whole", models, steps=3, resume_from=intermediate)
    expected = state(whole.checkpoint)
    assert same(expected, state(child.checkpoint))
    assert same(expected, state(resumed.checkpoint))
    assert not same(expected, state(parent / rundir.ADAPTED))  # it did train on


def test_renders_and_a_video_of_a_stylegan3_result(tmp_path, models, gradient_run):
    adapted = gradient_run / rundir.ADAPTED
    for mode, extra in (
        ("seeds", dict(seeds=(1, 2))),
        ("mix", dict(row_seeds=(1,), column_seeds=(2, 3), crossover=15)),
        ("video", dict(keyframes=(1, 2), frames=2, fps=4, format="gif")),
    ):
        result = run_render(RenderParams(mode=mode, **extra), tmp_path / mode,
                            checkpoint_path=adapted, device="cpu", models=models)  # fmt: skip
        assert result.image.is_file()
        if mode == "video":
            assert result.video is not None and count_frames(result.video) == result.frames == 3
    with pytest.raises(Exception, match="below this generator's 16 W\\+ entries"):
        run_render(RenderParams(mode="mix", row_seeds=(1,), column_seeds=(2,), crossover=16),
                   tmp_path / "bad", checkpoint_path=adapted, device="cpu", models=models)  # fmt: skip


def test_config_r_adapts_too(tmp_path, models):
    out = tmp_path / "r"
    result = adapt(out, models, generator=SG3_R, steps=1, sample_every=1, score_latents=0,
                   layers=1, probe_batch=1, batch_size=1, n_samples=1)  # fmt: skip
    adapted = stylegan2.load_generator(str(result.checkpoint))
    assert adapted.family == "stylegan3" and adapted.num_ws == 16
    base = stylegan2.load_generator(str(SG3_R)).generator.state_dict()
    trained = {k for k, v in adapted.generator.state_dict().items() if not torch.equal(v, base[k])}
    assert trained and all(k.startswith(tuple(selected_layers(out))) for k in trained)


# -- the family contract --------------------------------------------------------------------


def test_wplus_entry_k_reaches_group_k_only():
    """Perturbing ws[:, k] changes the input of the layer group whose wplus_index is k,
    and of no other: seen at the w each group's affine receives."""
    g = stylegan2.load_generator(str(SG3_T)).generator
    groups = STYLEGAN3.layer_groups(g)
    assert [gr.wplus_index for gr in groups] == list(range(16))
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        g.get_submodule(gr.name).affine.register_forward_hook(
            lambda _m, args, _out, name=gr.name: seen.__setitem__(name, args[0].detach())
        )
        for gr in groups
    ]
    try:
        with torch.no_grad():
            ws = STYLEGAN3.map(g, torch.randn(1, 64, generator=torch.Generator().manual_seed(1)))
            STYLEGAN3.synthesize(g, ws)
            before = dict(seen)
            for k in range(16):
                moved = ws.clone()
                moved[:, k] += 1.0
                STYLEGAN3.synthesize(g, moved)
                changed = [n for n in before if not torch.equal(before[n], seen[n])]
                assert changed == [groups[k].name], (k, changed)
    finally:
        for h in hooks:
            h.remove()


def test_stylegan3_candidates_and_parameters():
    g = stylegan2.load_generator(str(SG3_T)).generator
    family = family_of(g)
    assert family is STYLEGAN3 and family.noise_shapes(g) == []
    plain, with_rgb = family.candidates(g), family.candidates(g, include_torgb=True)
    assert len(plain) == 14 and "synthesis.input" not in plain  # L0 .. L13
    assert with_rgb == (*plain, "synthesis.L14_64_3")
    names = {id(p): n for n, p in g.named_parameters()}
    params = [names[id(p)] for p in family.group_parameters(g, ["synthesis.L3_36_64"])]
    assert params == ["synthesis.L3_36_64.weight", "synthesis.L3_36_64.bias"]


def test_style_mixing_crosses_over_within_num_ws():
    g = stylegan2.load_generator(str(SG3_T)).generator
    for step in range(8):
        ws = sample_wplus(g, 2, 1.0, step_rng(0, step, "train"))
        assert ws.shape == (2, 16, 64)
        switch = [k for k in range(1, 16) if not torch.equal(ws[:, k], ws[:, k - 1])]
        assert len(switch) == 1  # one crossover, somewhere in 1..15


# -- the content box ------------------------------------------------------------------------

BOX = (0, 4, 16, 12)  # left, top, right, bottom: a 16x8 picture in random-16's frame


@dataclass(frozen=True)
class Letterboxed(LoadedGenerator):
    """A generator whose picture is a band of its frame (as LSUN car's 512x384 in 512)."""

    @property
    def content_box(self) -> tuple[int, int, int, int] | None:
        return BOX


class LetterboxModels(ModelCache):
    def generator(self, name_or_path: str, device: torch.device | str) -> LoadedGenerator:
        loaded = super().generator(name_or_path, device)
        return Letterboxed(loaded.generator, loaded.latent_avg, loaded.identity, loaded.metadata)


def test_crop_to_content():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    assert torch.equal(crop_to_content(images, (1, 2, 5, 4)), images[:, :, 2:4, 1:5])
    assert crop_to_content(images, None) is images


def test_clip_sees_only_the_content_box(tmp_path, monkeypatch):
    """Every image the adaptation hands CLIP (the loss, the probe, the scores) is the box
    of the rendered frame: pixels outside it never reach the image encoder."""
    shapes: list[tuple[int, ...]] = []
    encode = ClipModel.encode_images

    def recording(self: ClipModel, images: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(images.shape[-2:]))
        return encode(self, images)

    monkeypatch.setattr(ClipModel, "encode_images", recording)
    models = LetterboxModels()
    run_adaptation(make_params(generator="random-16", steps=1, sample_every=1, mixing=0.0),
                   tmp_path, device="cpu", models=models)  # fmt: skip
    assert shapes and set(shapes) == {(BOX[3] - BOX[1], BOX[2] - BOX[0])}
    # the samples a person looks at stay whole frames
    from PIL import Image

    assert Image.open(rundir.sample_path(tmp_path, 1)).size == (2 * 16 + 2, 2 * 16 + 2)


def test_image_targets_take_the_source_from_the_boxed_samples(tmp_path):
    """An image-guided job's source domain (the base generator's samples) is embedded as
    CLIP sees the generator: cut to the content box."""
    from PIL import Image

    from invert.example_images import normalize_example, store_example
    from worker.domain_embeddings import (
        domain_guidance,
        encode_batched,
        generator_samples,
        mean_embedding,
    )

    models = ModelCache()
    base, clip = models.generator("random-16", "cpu"), models.clip("nada-tiny:random", "cpu")
    pixels = np.random.default_rng(0).integers(0, 256, (40, 56, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    example = normalize_example(buffer.getvalue(), max_pixels=10**6)
    files = {example.sha256: store_example(example, tmp_path)}
    p = make_params(generator="random-16", target_text="", target_images=(example.sha256,))
    boxed = domain_guidance([clip], p, files, base.generator, base.latent_avg, content_box=BOX)
    whole = domain_guidance([clip], p, files, base.generator, base.latent_avg)
    samples = generator_samples(base.generator, base.latent_avg, seed=p.seed, truncation=0.7)
    source = mean_embedding(encode_batched(clip, crop_to_content(samples, BOX)))
    got = boxed[clip.name]
    torch.testing.assert_close(
        got.direction, torch.nn.functional.normalize(got.target - source, dim=0)
    )
    assert torch.equal(got.target, whole[clip.name].target)  # the example images stay whole
    assert not torch.allclose(got.direction, whole[clip.name].direction)
