"""Refinement by optimisation (invert/refine.py) and its perceptual loss (invert/perceptual.py)
on small random generators: a 16-px generator renders a known code, and refinement from the
mean latent must find its way back to that image."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

import stylegan2
from invert import weights
from invert.perceptual import VGG16_WEIGHTS, PerceptualLoss, load_perceptual
from invert.refine import (
    generator_noise,
    lr_at,
    noise_regularization,
    refine_w_plus,
    synthesize,
)
from nada.events import Canceled


@pytest.fixture(scope="module")
def g16():
    loaded = stylegan2.load_generator("random-16")
    loaded.generator.requires_grad_(False)
    return loaded


@pytest.fixture(scope="module")
def problem(g16):
    """(target image of a known code, that code, the mean-latent start)."""
    g = g16.generator
    rng = torch.Generator().manual_seed(1)
    with torch.no_grad():
        w = g.style(torch.randn(1, g.style_dim, generator=rng))
        w_true = w.unsqueeze(1).repeat(1, g.n_latent, 1)
        target = synthesize(g, w_true, None)
    w_mean = g16.latent_avg.reshape(1, 1, -1).repeat(1, g.n_latent, 1)
    return target, w_true, w_mean


def mse(g, w, target, noise=None) -> float:
    with torch.no_grad():
        return float((synthesize(g, w, noise) - target).square().mean())


def test_refinement_finds_the_image_of_a_known_code(g16, problem):
    target, _, w_mean = problem
    g = g16.generator
    steps_seen: list[int] = []
    result = refine_w_plus(
        g,
        target,
        w_mean,
        steps=20,
        lr=0.03,
        perceptual=None,
        on_step=lambda step, losses, state: steps_seen.append(step),
    )
    before, after = mse(g, w_mean, target), mse(g, result.w_plus, target)
    assert after < 0.5 * before, (before, after)  # measured: ~0.06x
    assert steps_seen == list(range(1, 21))
    assert set(result.losses) == {"total", "pixel", "perceptual", "latent"}
    assert result.losses["perceptual"] == 0.0 and result.noise is None
    assert result.w_plus.shape == w_mean.shape and not result.w_plus.requires_grad


def test_refinement_is_deterministic_and_leaves_the_generator_alone(g16, problem):
    target, _, w_mean = problem
    g = g16.generator
    state = {k: v.clone() for k, v in g.state_dict().items()}
    g.conv1.requires_grad_(True)  # the caller's flags come back afterwards
    try:
        a = refine_w_plus(g, target, w_mean, steps=3, lr=0.03)
        b = refine_w_plus(g, target, w_mean, steps=3, lr=0.03)
        assert all(p.requires_grad for p in g.conv1.parameters())
        assert not any(p.requires_grad for p in g.to_rgb1.parameters())
    finally:
        g.conv1.requires_grad_(False)
    assert torch.equal(a.w_plus, b.w_plus) and a.losses == b.losses
    assert all(torch.equal(v, state[k]) for k, v in g.state_dict().items())
    assert all(p.grad is None for p in g.parameters())


def test_latent_weight_pulls_toward_the_start(g16, problem):
    target, _, w_mean = problem
    g = g16.generator

    def distance(weight: float) -> float:
        result = refine_w_plus(g, target, w_mean, steps=10, lr=0.03, latent_weight=weight)
        return float((result.w_plus - w_mean).square().mean())

    free, held = distance(0.0), distance(100.0)
    assert held < 0.5 * free, (free, held)


def test_zero_steps_return_the_start(g16, problem):
    target, _, w_mean = problem
    result = refine_w_plus(g16.generator, target, w_mean, steps=0, lr=0.03)
    assert torch.equal(result.w_plus, w_mean) and result.losses == {}


def test_cancel_stops_before_a_step(g16, problem):
    target, _, w_mean = problem
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Canceled, match="before refinement step 3 of 5"):
        refine_w_plus(g16.generator, target, w_mean, steps=5, lr=0.03, should_cancel=cancel)
    assert not any(p.requires_grad for p in g16.generator.parameters())


def test_optimised_noise_is_seeded_renormalised_and_regularised(g16, problem):
    target, _, w_mean = problem
    g = g16.generator
    buffers = [n.clone() for n in generator_noise(g)]
    a = refine_w_plus(g, target, w_mean, steps=2, lr=0.03, optimize_noise=True, seed=5)
    b = refine_w_plus(g, target, w_mean, steps=2, lr=0.03, optimize_noise=True, seed=5)
    c = refine_w_plus(g, target, w_mean, steps=2, lr=0.03, optimize_noise=True, seed=6)
    assert a.noise is not None and b.noise is not None and c.noise is not None
    assert [n.shape for n in a.noise] == [n.shape for n in generator_noise(g)]
    assert all(torch.equal(x, y) for x, y in zip(a.noise, b.noise, strict=True))
    assert not torch.equal(a.noise[-1], c.noise[-1])
    for n in a.noise:  # renormalised after every step
        assert abs(float(n.mean())) < 1e-5 and abs(float(n.std()) - 1) < 1e-4
    assert "noise" in a.losses and a.losses["noise"] > 0
    # The generator's buffers are untouched: fixed-noise renders still use them.
    assert all(torch.equal(x, y) for x, y in zip(buffers, generator_noise(g), strict=True))


def test_noise_regularization_sees_structure():
    rng = torch.Generator().manual_seed(0)
    white = torch.randn(1, 1, 32, 32, generator=rng)
    smooth = torch.nn.functional.interpolate(white[..., :8, :8], size=(32, 32), mode="bilinear")
    assert noise_regularization([smooth]) > 10 * noise_regularization([white])


def test_learning_rate_ramps_down_over_the_last_quarter():
    assert lr_at(0, 100, 0.1) == pytest.approx(0.1)
    assert lr_at(75, 100, 0.1) == pytest.approx(0.1)
    assert lr_at(99, 100, 0.1) < 0.001


def test_a_perceptual_term_joins_the_loss(g16, problem):
    target, _, w_mean = problem
    seen = []

    def fake_perceptual(x, y):
        seen.append(x.requires_grad)
        return (x - y).abs().mean(dim=(1, 2, 3))

    result = refine_w_plus(
        g16.generator, target, w_mean, steps=2, lr=0.03, perceptual=fake_perceptual,
        perceptual_weight=2.0, pixel_weight=0.5,
    )  # fmt: skip
    assert seen == [True, True]
    losses = result.losses
    assert losses["perceptual"] > 0
    assert losses["total"] == pytest.approx(
        0.5 * losses["pixel"] + 2.0 * losses["perceptual"], rel=1e-5
    )


# -- LPIPS --------------------------------------------------------------------------------


def _random_vgg16_features(path) -> None:
    """torchvision's VGG16 `features.*` layout with random weights (what its file holds
    besides the classifier, which the loss does not use)."""
    from torchvision.models import vgg

    torch.manual_seed(0)
    features = vgg.make_layers(vgg.cfgs["D"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)


@pytest.fixture(scope="module")
def random_lpips(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    _random_vgg16_features(path)
    mp = pytest.MonkeyPatch()
    mp.setenv(weights.env_var(VGG16_WEIGHTS), str(path))
    try:
        loss = load_perceptual("cpu", download_missing=False)
    finally:
        mp.undo()
    return loss, path


def test_lpips_loads_the_vgg16_file_into_its_backbone(random_lpips):
    loss, path = random_lpips
    assert isinstance(loss, PerceptualLoss)
    state = torch.load(path, weights_only=True)
    backbone = loss.lpips.net
    assert torch.equal(getattr(backbone.slice1, "0").weight, state["features.0.weight"])
    assert torch.equal(getattr(backbone.slice5, "28").bias, state["features.28.bias"])
    assert not any(p.requires_grad for p in loss.parameters())

    rng = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=rng) * 2 - 1
    y = torch.rand(2, 3, 32, 32, generator=rng) * 2 - 1
    assert loss(x, x).shape == (2,)
    assert torch.all(loss(x, x) == 0)
    assert torch.all(loss(x, y) > 0)
    # Larger images are averaged down to 256 px first.
    big = torch.rand(1, 3, 512, 512, generator=rng) * 2 - 1
    small = torch.nn.functional.interpolate(big, size=(256, 256), mode="area")
    other = torch.rand(1, 3, 512, 512, generator=rng) * 2 - 1
    shrunk = torch.nn.functional.interpolate(other, size=(256, 256), mode="area")
    assert torch.allclose(loss(big, other), loss(small, shrunk))


def test_lpips_gradients_reach_the_code(g16, problem, random_lpips):
    target, _, w_mean = problem
    loss, _ = random_lpips
    result = refine_w_plus(
        g16.generator, target, w_mean, steps=2, lr=0.03, perceptual=loss, pixel_weight=0.0
    )
    assert result.losses["perceptual"] > 0 and not torch.equal(result.w_plus, w_mean)


def test_a_file_that_is_not_vgg16_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "not-vgg.pth"
    torch.save({"conv.weight": torch.zeros(3)}, path)  # no features.*: refused before building
    monkeypatch.setenv(weights.env_var(VGG16_WEIGHTS), str(path))
    with pytest.raises(ValueError, match="not torchvision's VGG16"):
        load_perceptual("cpu", download_missing=False)


def test_offline_without_the_file_falls_back_to_pixels_with_one_warning(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.env_var(VGG16_WEIGHTS), raising=False)
    entry = weights.get_weights_info(VGG16_WEIGHTS)
    unreachable = dataclasses.replace(entry, url="http://127.0.0.1:9/vgg16.pth")
    weights.add_weights(unreachable, overwrite=True)
    try:
        with caplog.at_level(logging.WARNING, logger="invert.perceptual"):
            assert load_perceptual("cpu") is None
    finally:
        weights.add_weights(entry, overwrite=True)
    warnings = [r for r in caplog.records if r.name == "invert.perceptual"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "pixel loss only" in message and "NADA_WEIGHTS_VGG16_TORCHVISION" in message
    assert weights.get_weights_info(VGG16_WEIGHTS).url == entry.url
