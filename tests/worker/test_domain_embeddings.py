"""Image-guided domains (issue 12): the embeddings, the text/image mix, the seeded views and a
tiny run whose target is only pictures. Real tiny models: the 8-px random generator and the
random two-layer CLIP 'nada-tiny'; one stub CLIP whose embedding is a known linear map."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

import stylegan2
from invert.example_images import normalize_example, store_example
from invert.photos import PhotoRejected
from nada.params import AdaptParams, ClipSpec, ParamError
from nada.prompts import template_prompts
from worker.clip_loss import class_embedding, safe_normalize, text_direction
from worker.domain_embeddings import (
    domain_guidance,
    encode_batched,
    generator_samples,
    mean_embedding,
    random_views,
    seeded_rng,
)
from worker.engine import ModelCache, run_adaptation

TINY = (ClipSpec("nada-tiny:random", 1.0),)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def store(run_dir: Path, pixels: np.ndarray) -> tuple[str, Path]:
    example = normalize_example(png(pixels), max_pixels=10**6)
    return example.sha256, store_example(example, run_dir)


def noise_image(seed: int, shape: tuple[int, int] = (40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3))


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="module")
def base(models):  # type: ignore[no-untyped-def]
    return models.generator("random-8", "cpu")


@pytest.fixture(scope="module")
def tiny(models):  # type: ignore[no-untyped-def]
    return models.clip("nada-tiny:random", "cpu", seed=3)


@pytest.fixture()
def examples(tmp_path: Path) -> dict[str, Path]:
    """Three target pictures and two source pictures, stored as the API and the CLI do."""
    return dict(store(tmp_path, noise_image(seed)) for seed in range(5))


def params(files: dict[str, Path], **changes) -> AdaptParams:  # type: ignore[no-untyped-def]
    names = list(files)
    base = dict(
        generator="random-8", clip_models=TINY, steps=2, layers=1, batch_size=2, probe_batch=2,
        sample_every=2, n_samples=2, score_latents=4, seed=3, target_images=tuple(names[:3]),
        image_views=3,
    )  # fmt: skip
    base.update(changes)
    return AdaptParams(**base)


def guidance(clip, p: AdaptParams, files, base):  # type: ignore[no-untyped-def]
    return domain_guidance([clip], p, files, base.generator, base.latent_avg)[clip.name]


# -- the direction on known embeddings -------------------------------------------------------


@dataclass
class LinearClip:
    """A stand-in CLIP whose image embedding is a known linear map of the mean colour: for a
    one-colour picture every crop and flip embeds the same, so the domain's embedding can be
    written down without knowing the views."""

    matrix: Tensor  # [3, D]
    name: str = "linear"
    image_size: tuple[int, int] = (16, 16)
    device: torch.device = torch.device("cpu")

    def encode_images(self, images: Tensor) -> Tensor:
        return images.mean(dim=(2, 3)) @ self.matrix


def test_image_direction_equals_direct_computation_on_known_embeddings(tmp_path, base):  # type: ignore[no-untyped-def]
    colours = {"target": [(250, 10, 10), (200, 60, 0)], "source": [(10, 10, 250), (0, 90, 160)]}
    files, names = {}, {}
    for side, rgbs in colours.items():
        names[side] = []
        for rgb in rgbs:
            sha, path = store(tmp_path, np.broadcast_to(np.array(rgb), (40, 40, 3)))
            files[sha] = path
            names[side].append(sha)
    clip = LinearClip(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)))
    p = params(files, target_images=tuple(names["target"]), source_images=tuple(names["source"]))

    got = guidance(clip, p, files, base)

    def domain(side: str) -> Tensor:  # each picture's embedding is its colour through the map
        embedded = [(torch.tensor(rgb) / 127.5 - 1) @ clip.matrix for rgb in colours[side]]
        units = [e / e.norm() for e in embedded]
        mean = torch.stack(units).mean(0)
        return mean / mean.norm()

    expected = domain("target") - domain("source")
    torch.testing.assert_close(got.direction, expected / expected.norm())
    torch.testing.assert_close(got.target, domain("target"))


# -- the mix of text and images ------------------------------------------------------------


def test_weight_0_is_the_text_1_the_images_and_between_leans_between(tiny, examples, base):  # type: ignore[no-untyped-def]
    texts = dict(source_text="photo", target_text="sketch")
    text_only = guidance(tiny, params(examples, **texts, image_weight=0.0), examples, base)
    src = tiny.encode_texts(template_prompts("photo"))
    tgt = tiny.encode_texts(template_prompts("sketch"))
    assert torch.equal(text_only.direction, text_direction(src, tgt))
    assert torch.equal(text_only.target, class_embedding(tgt))

    images_only = guidance(tiny, params(examples), examples, base)  # no text: weight 1
    mixed_1 = guidance(tiny, params(examples, **texts, image_weight=1.0), examples, base)
    assert torch.equal(mixed_1.direction, images_only.direction)
    assert torch.equal(mixed_1.target, images_only.target)

    half = guidance(tiny, params(examples, **texts, image_weight=0.5), examples, base)
    t, i = text_only.direction, images_only.direction
    torch.testing.assert_close(half.direction, safe_normalize(t + i))
    between = float(t @ i)
    assert float(half.direction @ t) > between and float(half.direction @ i) > between
    torch.testing.assert_close(half.target, safe_normalize(text_only.target + images_only.target))


# -- seeds, views and the source samples ----------------------------------------------------


def test_views_are_seeded(tiny, examples, base):  # type: ignore[no-untyped-def]
    image = torch.rand(3, 40, 56) * 2 - 1
    a = random_views(image, 4, (16, 16), seeded_rng(1, "views/x"))
    b = random_views(image, 4, (16, 16), seeded_rng(1, "views/x"))
    c = random_views(image, 4, (16, 16), seeded_rng(2, "views/x"))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # the views differ from each other

    same = guidance(tiny, params(examples), examples, base)
    again = guidance(tiny, params(examples), examples, base)
    other = guidance(tiny, params(examples, seed=4), examples, base)
    assert torch.equal(same.direction, again.direction)
    assert not torch.allclose(same.direction, other.direction)


def test_source_defaults_to_the_base_generators_samples(tiny, examples, base):  # type: ignore[no-untyped-def]
    p = params(examples)
    samples = generator_samples(base.generator, base.latent_avg, seed=3, truncation=0.7)
    assert samples.shape == (16, 3, 8, 8)
    assert torch.equal(
        samples, generator_samples(base.generator, base.latent_avg, seed=3, truncation=0.7)
    )
    source = mean_embedding(encode_batched(tiny, samples))
    got = guidance(tiny, p, examples, base)
    torch.testing.assert_close(got.direction, safe_normalize(got.target - source))

    names = list(examples)
    with_source = guidance(tiny, params(examples, source_images=tuple(names[3:])), examples, base)
    assert torch.equal(with_source.target, got.target)  # same target images
    assert not torch.allclose(with_source.direction, got.direction)  # another source


# -- the engine ----------------------------------------------------------------------------


def test_a_run_with_target_images_and_no_text_records_them(tmp_path, models, examples):  # type: ignore[no-untyped-def]
    p = params(examples)
    assert p.target_text == "" and p.effective_image_weight == 1.0
    result = run_adaptation(
        p, tmp_path / "run", device="cpu", models=models, domain_images=examples
    )
    assert result.steps == 2
    meta = stylegan2.load_generator(str(result.checkpoint)).metadata
    domain = meta["domain"]
    assert domain["target_images"] == list(p.target_images) and domain["source_images"] == []
    assert domain["image_weight"] == 1.0 and domain["image_views"] == 3
    direction = torch.tensor(domain["embeddings"]["nada-tiny:random"]["direction"])
    assert direction.shape == (64,) and abs(float(direction.norm()) - 1) < 1e-5
    assert meta["params"]["target_images"] == list(p.target_images)


def test_a_missing_or_altered_image_is_refused_naming_it(tmp_path, models, examples):  # type: ignore[no-untyped-def]
    p = params(examples)
    first = p.target_images[0]
    missing = {k: v for k, v in examples.items() if k != first}
    with pytest.raises(ParamError, match=first[:12]) as info:
        run_adaptation(p, tmp_path / "a", device="cpu", models=models, domain_images=missing)
    assert info.value.field == "target_images"

    examples[first].write_bytes(png(noise_image(99)))
    with pytest.raises(PhotoRejected, match=f"{first[:12]}.*other contents"):
        run_adaptation(p, tmp_path / "b", device="cpu", models=models, domain_images=examples)
    assert not (tmp_path / "b" / "adapted.pt").exists()
