"""The CLIP losses against direct computations on known embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nada.params import ParamError
from nada.prompts import TEMPLATES, template_prompts
from worker.clip_loss import (
    ClipGuide,
    class_embedding,
    directional_loss,
    global_loss,
    safe_normalize,
    text_direction,
)
from worker.clip_models import load_clip


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_text_direction_is_the_normalised_mean_of_normalised_differences():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(5, 8)) * rng.uniform(0.5, 3, size=(5, 1))
    target = rng.normal(size=(5, 8)) * rng.uniform(0.5, 3, size=(5, 1))
    expected = unit((unit(target) - unit(source)).mean(axis=0))
    got = text_direction(torch.tensor(source), torch.tensor(target))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        text_direction(torch.zeros(5, 8), torch.zeros(4, 8))


def test_class_embedding():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(7, 4))
    np.testing.assert_allclose(
        class_embedding(torch.tensor(e)).numpy(), unit(unit(e).mean(axis=0)), rtol=1e-10
    )


def test_directional_loss_against_direct_computation():
    rng = np.random.default_rng(2)
    adapted, frozen = rng.normal(size=(3, 6)) * 4, rng.normal(size=(3, 6)) * 0.5
    direction = unit(rng.normal(size=6))
    delta = unit(unit(adapted) - unit(frozen))
    expected = np.mean(1 - delta @ direction)
    got = directional_loss(torch.tensor(adapted), torch.tensor(frozen), torch.tensor(direction))
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_directional_loss_on_known_geometry():
    direction = torch.tensor([0.0, 1.0, 0.0])
    up, down = torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[1.0, -1.0, 0.0]])
    left, right = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[1.0, 0.0, 1.0]])
    assert float(directional_loss(up, down, direction)) == pytest.approx(0.0, abs=1e-6)
    assert float(directional_loss(down, up, direction)) == pytest.approx(2.0, abs=1e-6)
    assert float(directional_loss(right, left, direction)) == pytest.approx(1.0, abs=1e-6)


def test_directional_loss_is_finite_when_the_images_agree():
    frozen = torch.randn(2, 16, dtype=torch.float64)
    adapted = frozen.clone().requires_grad_(True)
    direction = safe_normalize(torch.randn(16, dtype=torch.float64))
    loss = directional_loss(adapted, frozen, direction)
    loss.backward()
    assert float(loss.detach()) == 1.0
    assert torch.isfinite(adapted.grad).all() and adapted.grad.abs().sum() > 0
    # The gradient still points the image embedding along ΔT (minus its radial part).
    step = -adapted.grad[0]
    assert float(step @ direction) > 0


def test_global_loss_against_direct_computation():
    rng = np.random.default_rng(3)
    images, target = rng.normal(size=(4, 5)) * 3, unit(rng.normal(size=5))
    expected = np.mean(1 - unit(images) @ target)
    got = global_loss(torch.tensor(images), torch.tensor(target))
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_templates_are_openais_80():
    assert len(TEMPLATES) == 80
    prompts = template_prompts("cat")
    assert prompts[0] == "a bad photo of a cat." and all("cat" in p for p in prompts)


@pytest.fixture(scope="module")
def tiny():
    return load_clip("nada-tiny:random", seed=0)


def test_guide_sums_weighted_terms(tiny):
    other = load_clip("nada-tiny:random", seed=1)
    other.name = "nada-tiny:random#1"  # distinct report keys for the two models
    guide = ClipGuide(
        [(tiny, 2.0), (other, 0.5)], "photo", "sketch", lambda_direction=1.0, lambda_global=3.0
    )
    torch.manual_seed(0)
    frozen = torch.rand(2, 3, 32, 32) * 2 - 1
    adapted = (frozen + 0.3 * torch.randn_like(frozen)).clamp(-1, 1)
    losses = guide.losses(adapted, frozen)
    expected = 0.0
    for term in guide.terms:
        a, f = term.clip.encode_images(adapted), term.clip.encode_images(frozen)
        d = float(directional_loss(a, f, term.direction))
        g = float(global_loss(a, term.target))
        assert float(losses[f"direction/{term.clip.name}"]) == pytest.approx(d, rel=1e-5)
        assert float(losses[f"global/{term.clip.name}"]) == pytest.approx(g, rel=1e-5)
        expected += term.weight * (d + 3.0 * g)
    assert float(losses["total"]) == pytest.approx(expected, rel=1e-5)
    weighted = (
        2.0 * float(losses[f"direction/{tiny.name}"])
        + 0.5 * float(losses["direction/nada-tiny:random#1"])
    ) / 2.5
    assert float(losses["direction"]) == pytest.approx(weighted, rel=1e-5)
    assert losses["total"].requires_grad is False  # no graph: adapted had none

    # Text directions are those of the template embeddings.
    source = tiny.encode_texts(template_prompts("photo"))
    target = tiny.encode_texts(template_prompts("sketch"))
    torch.testing.assert_close(guide.terms[0].direction, text_direction(source, target))
    g_total = guide.global_loss(adapted)
    g_expected = sum(
        t.weight * float(global_loss(t.clip.encode_images(adapted), t.target)) for t in guide.terms
    )
    assert float(g_total) == pytest.approx(g_expected, rel=1e-5)


def test_guide_skips_zero_weight_models_and_refuses_none(tiny):
    guide = ClipGuide([(tiny, 1.0), (tiny, 0.0)], "photo", "sketch")
    assert len(guide.terms) == 1
    with pytest.raises(ParamError) as info:
        ClipGuide([(tiny, 0.0)], "photo", "sketch")
    assert info.value.field == "clip_models"


@pytest.mark.parametrize("field", ["source_text", "target_text"])
def test_prompts_longer_than_the_context_are_refused(tiny, field):
    long = " ".join(["word"] * 75)  # fits 77 alone, not inside "a photo of the ... {}."
    texts = {"source_text": "photo", "target_text": "sketch", field: long}
    with pytest.raises(ParamError) as info:
        ClipGuide([(tiny, 1.0)], texts["source_text"], texts["target_text"])
    assert info.value.field == field and "77" in str(info.value)
    ok = " ".join(["word"] * 60)
    ClipGuide([(tiny, 1.0)], ok, "sketch")


def test_no_nan_gradient_through_the_whole_guide_at_step_zero(tiny):
    guide = ClipGuide([(tiny, 1.0)], "photo", "sketch", lambda_global=0.5)
    images = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    losses = guide.losses(images, images.detach())
    losses["total"].backward()
    assert math.isfinite(float(losses["total"].detach())) and torch.isfinite(images.grad).all()
